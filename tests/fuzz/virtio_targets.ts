/**
 * The virtio devices under fuzzing ({@link FuzzTarget}s), each with its real back end on real
 * host resources: virtio-rng; virtio-blk on a writable and on a read-only image (whose bytes must
 * never change); virtio-vsock on its Unix sockets, with a host program listening on one port;
 * virtio-balloon with its host cells; virtio-net on a two-queue TAP in a namespace of its own.
 *
 * @module
 */

import { BalloonBackend } from "../../src/devices/virtio/balloon/device.ts";
import { BALLOON_HOST_CELLS } from "../../src/devices/virtio/balloon/host.ts";
import { BlockBackend } from "../../src/devices/virtio/block/device.ts";
import {
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from "../../src/devices/virtio/block/config.ts";
import { VirtQueue } from "../../src/devices/virtio/device.ts";
import { NetBackend } from "../../src/devices/virtio/net/device.ts";
import { NetFeature, NetHeader } from "../../src/devices/virtio/net/spec.ts";
import { RngBackend } from "../../src/devices/virtio/rng/device.ts";
import { featureBit } from "../../src/devices/virtio/spec.ts";
import { VsockBackend } from "../../src/devices/virtio/vsock/device.ts";
import { openVsock } from "../../src/devices/virtio/vsock/sockets.ts";
import {
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RST,
  VMADDR_CID_HOST,
  VsockHeader,
} from "../../src/devices/virtio/vsock/spec.ts";
import { openDiskImage } from "../../src/disk/image.ts";
import { close, EFD_NONBLOCK, eventfd } from "../../src/ffi/libc.ts";
import type { Tap } from "../../src/ffi/tap.ts";
import { blockSpec, completeInFlight } from "../helpers/block_disk.ts";
import type { Driver } from "../helpers/split_ring_driver.ts";
import type { Random } from "./random.ts";
import type { FuzzTarget, Request } from "./virtqueue_fuzzer.ts";

const SECTOR = 512;
/** The most guest memory one fuzzed buffer takes (its descriptor may claim more). */
const MAX_BUFFER = 0x8000;
const IMAGE_SECTORS = 128;
const VSOCK_CID = 3;
/** A host port with a program listening (the socket `uds-path_<port>`). */
const VSOCK_LISTENING_PORT = 5000;

/** Random buffers of a device's data: readable (filled) then writable, lengths mostly small. */
function buffers(random: Random, driver: Driver, readable: number, writable: number): Request {
  const out: Request = [];
  for (let i = 0; i < readable + writable; i++) {
    const len = random.chance(0.8) ? 1 + random.below(4096) : random.field(0x20000);
    const clamped = Math.min(len, MAX_BUFFER);
    const addr = driver.buffer(clamped);
    if (i < readable) driver.mem.write(addr, random.bytes(Math.min(clamped, 256)));
    out.push({ addr, len, write: i >= readable });
  }
  return out;
}

/** One used entry back for the one request on `driver`'s ring, or a message. */
function oneUsed(driver: Driver): { id: number; len: number } | string {
  const used = driver.used();
  return used.length === 1 ? used[0] : `${used.length} used entries for one request`;
}

/** virtio-rng. */
export function rngTarget(): FuzzTarget {
  const backend = new RngBackend();
  return {
    name: "virtio-rng",
    backend,
    features: 0n,
    request: (random, driver) => buffers(random, driver, random.below(2), 1 + random.below(3)),
    probe([driver]) {
      const at = driver.buffer(16);
      driver.add([{ addr: at, len: 16, write: true }]);
      driver.publish();
      backend.processQueue(0, new VirtQueue(0, driver.queue), driver.mem);
      const used = oneUsed(driver);
      return typeof used === "string" ? used : used.len === 16 ? null : `got ${used.len} bytes`;
    },
  };
}

/** A virtio-blk disk on a fresh image; with `readOnly`, its bytes must never change. */
export async function blockTarget(readOnly: boolean, cleanup: AsyncDisposableStack) {
  const path = await Deno.makeTempFile({ prefix: "fuzz-blk-" });
  cleanup.defer(() => Deno.remove(path));
  const original = Uint8Array.from({ length: IMAGE_SECTORS * SECTOR }, (_, i) => (i * 7) & 0xff);
  await Deno.writeFile(path, original);
  const image = openDiskImage({ path, readOnly, direct: false });
  cleanup.defer(() => close(image.fd));
  const eventFd = eventfd(0, EFD_NONBLOCK);
  cleanup.defer(() => close(eventFd));
  const backend = new BlockBackend(blockSpec(image, eventFd, { readOnly, id: "fuzz" }));
  cleanup.defer(() => backend.close());
  const TYPES = [
    VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
    VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID,
    VIRTIO_BLK_T_DISCARD,
    VIRTIO_BLK_T_WRITE_ZEROES,
  ];
  /** A request: header (type, sector), data, status byte. */
  const request = (random: Random, driver: Driver): Request => {
    const header = driver.buffer(16);
    driver.mem.writeU32(header, random.chance(0.9) ? random.pick(TYPES) : random.field());
    const sector = random.chance(0.8) ? random.below(IMAGE_SECTORS + 8) : random.field();
    driver.mem.writeU64(header + 8, random.chance(0.02) ? 2n ** 64n - 1n : BigInt(sector));
    const write = random.chance(0.5);
    const data = buffers(
      random,
      driver,
      write ? 1 + random.below(3) : 0,
      write ? 0 : 1 + random.below(3),
    );
    const status = driver.buffer(1);
    return [{ addr: header, len: 16 }, ...data, { addr: status, len: 1, write: true }];
  };
  return {
    name: readOnly ? "virtio-blk (read-only)" : "virtio-blk",
    backend,
    features: 0n,
    request,
    probe([driver]) {
      const header = driver.buffer(16);
      driver.mem.writeU32(header, VIRTIO_BLK_T_IN);
      const data = driver.buffer(SECTOR);
      const status = driver.buffer(1, 0xff);
      driver.add([
        { addr: header, len: 16 },
        { addr: data, len: SECTOR, write: true },
        { addr: status, len: 1, write: true },
      ]);
      driver.publish();
      backend.processQueue(0, new VirtQueue(0, driver.queue), driver.mem);
      completeInFlight(backend);
      const used = oneUsed(driver);
      if (typeof used === "string") return used;
      return driver.mem.read(status, 1)[0] === 0 ? null : "a read of sector 0 failed";
    },
    pump: () => backend.onEvent(0),
    check() {
      completeInFlight(backend);
      if (!readOnly) return null;
      const now = Deno.readFileSync(path);
      return now.length === original.length && now.every((b, i) => b === original[i])
        ? null
        : "a read-only image changed";
    },
  } satisfies FuzzTarget;
}

/** virtio-vsock on its sockets in a fresh directory, a host program listening on one port. */
export async function vsockTarget(cleanup: AsyncDisposableStack): Promise<FuzzTarget> {
  const dir = await Deno.makeTempDir({ prefix: "fuzz-vsock-" });
  cleanup.defer(() => Deno.remove(dir, { recursive: true }));
  const sync = new DisposableStack();
  cleanup.defer(() => sync.dispose());
  const spec = openVsock({ cid: VSOCK_CID, udsPath: `${dir}/v.sock` }, sync);
  const listener = Deno.listen({
    transport: "unix",
    path: `${dir}/v.sock_${VSOCK_LISTENING_PORT}`,
  });
  cleanup.defer(() => listener.close());
  const backend = new VsockBackend(spec);
  cleanup.defer(() => backend.close());
  /** A packet for the host: header (mostly from this guest, to the host) and payload. */
  const packet = (random: Random, driver: Driver): Request => {
    const header = driver.buffer(VsockHeader.SIZE);
    const v = (offset: number, value: number) => driver.mem.writeU32(header + offset, value);
    driver.mem.writeU64(
      header + VsockHeader.SRC_CID,
      BigInt(random.chance(0.9) ? VSOCK_CID : random.field()),
    );
    driver.mem.writeU64(
      header + VsockHeader.DST_CID,
      BigInt(random.chance(0.9) ? VMADDR_CID_HOST : random.field()),
    );
    v(VsockHeader.SRC_PORT, random.below(4));
    v(VsockHeader.DST_PORT, random.chance(0.5) ? VSOCK_LISTENING_PORT : random.field());
    const payload = random.chance(0.5) ? random.below(5000) : 0;
    v(VsockHeader.LEN, random.chance(0.9) ? payload : random.field());
    driver.mem.writeU16(header + VsockHeader.TYPE, random.chance(0.9) ? 1 : random.field());
    driver.mem.writeU16(header + VsockHeader.OP, random.below(9));
    v(VsockHeader.FLAGS, random.below(4));
    v(VsockHeader.BUF_ALLOC, random.field(1 << 20));
    v(VsockHeader.FWD_CNT, random.field());
    const body = payload > 0 ? [{ addr: driver.buffer(payload), len: payload }] : [];
    return [{ addr: header, len: VsockHeader.SIZE }, ...body];
  };
  const rxBuffer = (driver: Driver): Request => [
    { addr: driver.buffer(VsockHeader.SIZE), len: VsockHeader.SIZE, write: true },
    { addr: driver.buffer(4096), len: 4096, write: true },
  ];
  return {
    name: "virtio-vsock",
    backend,
    features: 0n,
    request: (random, driver, queue) =>
      queue === 1
        ? packet(random, driver)
        : queue === 0
        ? rxBuffer(driver)
        : buffers(random, driver, 0, 1),
    pump: (queues) => backend.onEvent(0, queues),
    probe([rx, tx]) {
      rx.add(rxBuffer(rx));
      rx.publish();
      const header = tx.buffer(VsockHeader.SIZE);
      tx.mem.writeU64(header + VsockHeader.SRC_CID, BigInt(VSOCK_CID));
      tx.mem.writeU64(header + VsockHeader.DST_CID, BigInt(VMADDR_CID_HOST));
      tx.mem.writeU32(header + VsockHeader.SRC_PORT, 77);
      tx.mem.writeU32(header + VsockHeader.DST_PORT, 6); // nobody listens
      tx.mem.writeU16(header + VsockHeader.TYPE, 1);
      tx.mem.writeU16(header + VsockHeader.OP, VIRTIO_VSOCK_OP_REQUEST);
      tx.add([{ addr: header, len: VsockHeader.SIZE }]);
      tx.publish();
      const queues = [new VirtQueue(0, rx.queue), new VirtQueue(1, tx.queue)];
      backend.processQueue(1, queues[1], tx.mem, queues);
      const used = oneUsed(rx);
      if (typeof used === "string") return used;
      const op = rx.mem.readU16(rx.mem.readU32(0x10_0000) + VsockHeader.OP);
      return op === VIRTIO_VSOCK_OP_RST ? null : `a REQUEST to nobody got op ${op}, not RST`;
    },
    check: () =>
      backend.connections <= 1024 ? null : `${backend.connections} connections, over the cap`,
  };
}

/** virtio-balloon with its host cells. */
export function balloonTarget(): FuzzTarget {
  const backend = new BalloonBackend({ kind: "balloon", pageReporting: true });
  backend.attachHost(new Int32Array(new SharedArrayBuffer(BALLOON_HOST_CELLS * 4)));
  /** PFNs, mostly of pages clear of the rings (12 MiB up), sometimes anywhere. */
  const pfns = (random: Random, driver: Driver): Request => {
    const count = 1 + random.below(16);
    const at = driver.buffer(count * 4);
    for (let i = 0; i < count; i++) {
      driver.mem.writeU32(
        at + 4 * i,
        random.chance(0.8) ? 0xc00 + random.below(0x300) : random.field(),
      );
    }
    return [{ addr: at, len: count * 4 }];
  };
  return {
    name: "virtio-balloon",
    backend,
    features: 0n,
    request: (random, driver) =>
      random.chance(0.8)
        ? pfns(random, driver)
        : buffers(random, driver, random.below(2), random.below(2)),
    probe: () => null, // its queues only take pages: nothing comes back to check
  };
}

/** virtio-net on `taps` (one per pair), every offload and the control queue negotiated. */
export function netTarget(taps: readonly Tap[]): FuzzTarget {
  const backend = new NetBackend({ kind: "net", taps: taps.map((t) => t.fd) });
  const features = [
    NetFeature.MRG_RXBUF,
    NetFeature.GUEST_CSUM,
    NetFeature.GUEST_TSO4,
    NetFeature.CTRL_VQ,
    NetFeature.MQ,
    NetFeature.CTRL_GUEST_OFFLOADS,
  ].reduce((all, bit) => all | featureBit(bit), 0n);
  const frame = (random: Random, driver: Driver): Request => {
    const header = driver.buffer(NetHeader.SIZE);
    driver.mem.write(
      header,
      random.chance(0.7) ? new Uint8Array(NetHeader.SIZE) : random.bytes(NetHeader.SIZE),
    );
    return [
      { addr: header, len: NetHeader.SIZE },
      ...buffers(random, driver, 1 + random.below(2), 0),
    ];
  };
  const command = (random: Random, driver: Driver): Request => {
    const out = driver.buffer(10);
    driver.mem.write(out, Uint8Array.of(random.below(7), random.below(3), ...random.bytes(8)));
    return [{ addr: out, len: 2 + random.below(9) }, {
      addr: driver.buffer(1),
      len: 1,
      write: true,
    }];
  };
  const controlQueue = 2 * taps.length;
  return {
    name: "virtio-net",
    backend,
    features,
    request: (random, driver, queue) =>
      queue === controlQueue
        ? command(random, driver)
        : queue % 2 === 1
        ? frame(random, driver)
        : buffers(random, driver, 0, 1 + random.below(2)),
    pump(queues) {
      taps.forEach((_, i) => {
        if (backend.wantsEvents(i)) backend.onEvent(i, queues);
      });
    },
    probe(drivers) {
      const control = drivers[controlQueue];
      const out = control.buffer(4);
      control.mem.write(out, Uint8Array.of(4, 0, 1, 0)); // VQ_PAIRS_SET 1
      const ack = control.buffer(1, 0xff);
      control.add([{ addr: out, len: 4 }, { addr: ack, len: 1, write: true }]);
      control.publish();
      backend.processQueue(controlQueue, new VirtQueue(controlQueue, control.queue), control.mem);
      const used = oneUsed(control);
      if (typeof used === "string") return used;
      return control.mem.read(ack, 1)[0] === 0 ? null : "VQ_PAIRS_SET 1 was refused";
    },
    check: () => null,
  };
}
