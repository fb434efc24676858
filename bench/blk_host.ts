/**
 * The host side of bench/blk.ts's "where the time goes": our virtio-blk backend's cost per
 * request with no VM at all. A split ring in guest RAM (tests/helpers/split_ring_driver.ts)
 * carries requests laid out as Linux's virtio_blk lays them out (header, one indirect table,
 * one descriptor per 4 KiB page, status byte); {@link BlockBackend.processQueue} serves each
 * one, and the same transfer is also done as one bare `preadv`/`pwritev` over the same iovecs.
 * The difference is what JavaScript adds per request (ring and descriptor walking, bounds
 * checks, iovec building, FFI); it runs many times slower under L1's TCG.
 *
 * Run: `deno run --allow-all bench/blk_host.ts [REQUESTS]` (the image goes in /dev/shm, which
 * takes no O_DIRECT, so it measures the buffered path; ~same code as `direct` when aligned).
 *
 * @module
 */

import { VirtQueue } from "../src/devices/virtio/device.ts";
import { BlockBackend } from "../src/devices/virtio/block/device.ts";
import { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from "../src/devices/virtio/block/config.ts";
import { VIRTQ_DESC_F_INDIRECT } from "../src/devices/virtio/descriptor.ts";
import { openDiskImage } from "../src/disk/image.ts";
import { close, IOVEC_WORDS, preadv, pwritev } from "../src/ffi/libc.ts";
import { blockSpec } from "../tests/helpers/block_disk.ts";
import { DATA, Driver, INDIRECT_TABLES } from "../tests/helpers/split_ring_driver.ts";

const REQUESTS = Number(Deno.args[0] ?? 2000);
const PAGE = 4096;
const IMAGE_BYTES = 64 << 20;
const HEADER = DATA;
const STATUS = DATA + PAGE;
const BUFFERS = DATA + 2 * PAGE;

const path = await Deno.makeTempFile({ dir: "/dev/shm", prefix: "blk-bench-" });
await Deno.writeFile(path, new Uint8Array(IMAGE_BYTES).fill(0x5a));
const image = openDiskImage({ path, readOnly: false, direct: false });
// The synchronous path: each request is served inside processQueue, as this loop expects.
const backend = new BlockBackend(blockSpec(image, -1, { engine: "epoll" }));
const driver = new Driver({ size: 256, indirect: true });
const queue = new VirtQueue(0, driver.queue);
const mem = driver.mem;

/** Writes one request with `pages` 4 KiB data descriptors through an indirect table. */
function request(type: number, pages: number): void {
  const write = type === VIRTIO_BLK_T_IN;
  const elements = [
    { addr: HEADER, len: 16 },
    ...Array.from({ length: pages }, (_, i) => ({ addr: BUFFERS + i * PAGE, len: PAGE, write })),
    { addr: STATUS, len: 1, write: true },
  ];
  driver.writeChain(elements, 0, INDIRECT_TABLES);
  driver.writeDesc(0, {
    addr: INDIRECT_TABLES,
    len: elements.length * 16,
    flags: VIRTQ_DESC_F_INDIRECT,
  });
  mem.writeU32(HEADER, type);
}

/** The same transfer as one bare syscall, over iovecs built once. */
function bare(type: number, pages: number): (offset: number) => void {
  const iovecs = new BigUint64Array(pages * IOVEC_WORDS);
  for (let i = 0; i < pages; i++) {
    iovecs[i * IOVEC_WORDS] = mem.hostAddress(BUFFERS + i * PAGE);
    iovecs[i * IOVEC_WORDS + 1] = BigInt(PAGE);
  }
  return type === VIRTIO_BLK_T_IN
    ? (offset) => preadv(image.fd, iovecs, pages, offset)
    : (offset) => pwritev(image.fd, iovecs, pages, offset);
}

/** µs per request for the backend and for the bare syscall. */
function measure(type: number, pages: number, random: boolean): [number, number] {
  const bytes = pages * PAGE;
  const slots = IMAGE_BYTES / bytes;
  let state = 12345;
  const offsetOf = (i: number) => {
    state = (state * 1103515245 + 12345) >>> 0;
    return (random ? state % slots : i % slots) * bytes;
  };
  request(type, pages);
  let served = 0;
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    mem.writeU64(HEADER + 8, BigInt(offsetOf(i) / 512));
    driver.offer(0);
    driver.publish();
    backend.processQueue(0, queue, mem);
    served += driver.used().length;
  }
  const t1 = performance.now();
  if (served !== REQUESTS || mem.readU8(STATUS) !== 0) throw new Error("a request failed");
  const syscall = bare(type, pages);
  const t2 = performance.now();
  for (let i = 0; i < REQUESTS; i++) syscall(offsetOf(i));
  const t3 = performance.now();
  return [((t1 - t0) * 1000) / REQUESTS, ((t3 - t2) * 1000) / REQUESTS];
}

try {
  console.log(`our virtio-blk backend on this host, no VM, ${REQUESTS} requests each (µs/req):`);
  console.log("                          backend   bare syscall   JS overhead");
  for (
    const [label, type, pages, random] of [
      ["write 1 MiB (256 segs)", VIRTIO_BLK_T_OUT, 256, false],
      ["read 1 MiB (256 segs) ", VIRTIO_BLK_T_IN, 256, false],
      ["read 4 KiB random     ", VIRTIO_BLK_T_IN, 1, true],
    ] as const
  ) {
    measure(type, pages, random); // warm up the JIT
    const [ours, raw] = measure(type, pages, random);
    console.log(
      `  ${label} ${ours.toFixed(1).padStart(8)} ${raw.toFixed(1).padStart(14)}` +
        ` ${(ours - raw).toFixed(1).padStart(13)}`,
    );
  }
} finally {
  close(image.fd);
  await Deno.remove(path);
}
