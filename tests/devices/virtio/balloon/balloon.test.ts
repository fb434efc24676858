// virtio-balloon driven through a split ring in guest memory as Linux's
// drivers/virtio/virtio_balloon.c drives it: arrays of le32 page frame numbers on inflateq and
// deflateq, one statistics buffer of (le16 tag, le64 value) entries on statsq, and free page
// ranges on reporting_vq. One ring stands in for each queue in turn.

import assert from "node:assert/strict";
import { VirtQueue } from "../../../../src/devices/virtio/device.ts";
import {
  BALLOON_PAGE_SIZE,
  BALLOON_STAT_SIZE,
  BalloonBackend,
  parseStats,
  VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
  VIRTIO_BALLOON_F_MUST_TELL_HOST,
  VIRTIO_BALLOON_F_REPORTING,
  VIRTIO_BALLOON_F_STATS_VQ,
} from "../../../../src/devices/virtio/balloon/device.ts";
import { BALLOON_HOST_CELLS, BalloonHost } from "../../../../src/devices/virtio/balloon/host.ts";
import { BALLOON_STAT_TAGS } from "../../../../src/devices/virtio/balloon/stats.ts";
import { featureBit } from "../../../../src/devices/virtio/spec.ts";
import { Driver, RAM_SIZE } from "../../../helpers/split_ring_driver.ts";

const INFLATE = 0;
const DEFLATE = 1;
const STATS = 2;
const REPORTING = 3;
/** Where the test's balloon pages are: clear of the ring and its buffers. */
const PAGES = 0xc0_0000;

/** A balloon and a driver's ring, with the cells the VMM would share. */
function setup(pageReporting = false) {
  const driver = new Driver({ size: 64 });
  const queue = new VirtQueue(0, driver.queue);
  const balloon = new BalloonBackend({ kind: "balloon", pageReporting });
  const cells = new Int32Array(new SharedArrayBuffer(BALLOON_HOST_CELLS * 4));
  balloon.attachHost(cells);
  const serve = (index: number) => {
    driver.publish();
    balloon.processQueue(index, queue, driver.mem);
    return driver.used();
  };
  return { driver, queue, balloon, host: new BalloonHost(cells), serve };
}

/** A readable buffer holding `pfns` as le32s. */
function pfnBuffer(driver: Driver, pfns: number[]): number {
  const at = driver.buffer(pfns.length * 4);
  pfns.forEach((pfn, i) => driver.mem.writeU32(at + 4 * i, pfn));
  return at;
}

/** A readable buffer of statistics entries. */
function statsBuffer(driver: Driver, stats: [number, bigint][]): number {
  const at = driver.buffer(stats.length * BALLOON_STAT_SIZE);
  stats.forEach(([tag, value], i) => {
    driver.mem.writeU16(at + BALLOON_STAT_SIZE * i, tag);
    driver.mem.writeU64(at + BALLOON_STAT_SIZE * i + 2, value);
  });
  return at;
}

const page = (n: number) => PAGES + n * BALLOON_PAGE_SIZE;
const pfn = (n: number) => page(n) / BALLOON_PAGE_SIZE;

Deno.test("virtio-balloon: features, queues and the writable `actual`", () => {
  const plain = new BalloonBackend({ kind: "balloon", pageReporting: false });
  const offered = featureBit(VIRTIO_BALLOON_F_MUST_TELL_HOST) |
    featureBit(VIRTIO_BALLOON_F_STATS_VQ) | featureBit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
  assert.equal(plain.features, offered);
  assert.equal(plain.queueSizes.length, 3, "inflateq, deflateq, statsq");
  const reporting = new BalloonBackend({ kind: "balloon", pageReporting: true });
  assert.equal(reporting.features, offered | featureBit(VIRTIO_BALLOON_F_REPORTING));
  assert.equal(reporting.queueSizes.length, 4, "and reporting_vq, numbered 3 as Linux does");
  assert.deepEqual(plain.driverWritableConfig, { offset: 4, length: 4 });
  assert.equal(plain.configBytes.length, 8);
});

Deno.test("virtio-balloon: inflated pages are given back and read as zero; others are kept", () => {
  const { driver, serve } = setup();
  for (let n = 0; n < 6; n++) {
    driver.mem.write(page(n), new Uint8Array(BALLOON_PAGE_SIZE).fill(0xaa));
  }
  // Pages 0-2 (given in no order), 4 alone, and a page frame past the end of RAM, skipped.
  const pfns = [pfn(2), RAM_SIZE / BALLOON_PAGE_SIZE + 5, pfn(0), pfn(4), pfn(1)];
  const head = driver.add([{ addr: pfnBuffer(driver, pfns), len: pfns.length * 4 }]);
  assert.deepEqual(serve(INFLATE), [{ id: head, len: 0 }]);
  for (const n of [0, 1, 2, 4]) {
    assert.ok(driver.mem.read(page(n), BALLOON_PAGE_SIZE).every((b) => b === 0), `page ${n} freed`);
  }
  for (const n of [3, 5]) {
    assert.ok(
      driver.mem.read(page(n), BALLOON_PAGE_SIZE).every((b) => b === 0xaa),
      `page ${n} kept`,
    );
  }
  // Deflating needs nothing of the device: the guest touches the pages back in.
  const back = driver.add([{ addr: pfnBuffer(driver, [pfn(0)]), len: 4 }]);
  assert.deepEqual(serve(DEFLATE), [{ id: back, len: 0 }]);
  driver.mem.writeU8(page(0), 7);
  assert.equal(driver.mem.readU8(page(0)), 7);
});

Deno.test("virtio-balloon: the statistics buffer is held, handed back on request, and read again", () => {
  const { driver, queue, balloon, host, serve } = setup();
  const free = BALLOON_STAT_TAGS.free_memory;
  const total = BALLOON_STAT_TAGS.total_memory;
  assert.equal(host.holding, false);
  const first = driver.add([{
    addr: statsBuffer(driver, [[free, 1000n], [total, 4096n]]),
    len: 20,
  }]);
  assert.deepEqual(serve(STATS), [], "held, not returned");
  assert.equal(host.holding, true);
  assert.equal(host.stats().free_memory, 1000);
  assert.equal(host.stats().swap_in, null, "not reported");
  // The VMM asks; the device returns the buffer so the driver can refill it.
  const request = host.requestStats();
  assert.equal(host.answered(request), false);
  balloon.onControl([queue, queue, queue]);
  assert.deepEqual(driver.used(), [{ id: first, len: 0 }]);
  assert.equal(host.holding, false);
  driver.add([{
    addr: statsBuffer(driver, [[free, 2n ** 40n], [0xffff, 3n], [999, 1n]]),
    len: 30,
  }]);
  serve(STATS);
  assert.equal(host.answered(request), true);
  assert.equal(host.stats().free_memory, 2 ** 40, "64-bit values survive the cells");
  assert.equal(host.stats().unevictable_memory, 3, "crosvm's non-standard tag");
  assert.equal(host.stats().total_memory, null, "this report had no total");
});

Deno.test("virtio-balloon: a stats entry cut short or an unknown tag is ignored", () => {
  const bytes = new Uint8Array(BALLOON_STAT_SIZE * 2 + 3);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 4, true);
  view.setBigUint64(2, 77n, true);
  view.setUint16(10, 1234, true);
  assert.deepEqual(parseStats(bytes), { free_memory: 77 });
});

Deno.test("virtio-balloon: reported free ranges go back to the host", () => {
  const { driver, serve } = setup(true);
  driver.mem.write(page(8), new Uint8Array(4 * BALLOON_PAGE_SIZE).fill(0x55));
  const head = driver.add([{ addr: page(8), len: 2 * BALLOON_PAGE_SIZE }]);
  assert.deepEqual(serve(REPORTING), [{ id: head, len: 0 }]);
  assert.ok(driver.mem.read(page(8), 2 * BALLOON_PAGE_SIZE).every((b) => b === 0));
  assert.ok(driver.mem.read(page(10), 2 * BALLOON_PAGE_SIZE).every((b) => b === 0x55));
});

Deno.test("virtio-balloon: a reported range that is not page-aligned gives back the whole pages it covers, and the device goes on", () => {
  const { driver, serve } = setup(true);
  for (let n = 0; n < 4; n++) {
    driver.mem.write(page(n), new Uint8Array(BALLOON_PAGE_SIZE).fill(0xbb));
  }
  // From the middle of page 0 to the middle of page 3: pages 1 and 2 are whole.
  const head = driver.add([{ addr: page(0) + 100, len: 3 * BALLOON_PAGE_SIZE }]);
  assert.deepEqual(serve(REPORTING), [{ id: head, len: 0 }]);
  const filled = (n: number) =>
    driver.mem.read(page(n), BALLOON_PAGE_SIZE).every((b) => b === 0xbb);
  assert.deepEqual([0, 1, 2, 3].map(filled), [true, false, false, true]);
});
