/**
 * A virtio-blk disk for tests, driven through a split ring in guest memory with requests laid out
 * as Linux's drivers/block/virtio_blk.c lays them out (header, data segments, status byte),
 * against a real image file; and waiting for requests in flight as the device loop would.
 *
 * @module
 */

import assert from "node:assert/strict";
import { VirtQueue } from "../../src/devices/virtio/device.ts";
import { BlockBackend, type BlockSpec } from "../../src/devices/virtio/block/device.ts";
import { openDiskImage } from "../../src/disk/image.ts";
import { close, EFD_NONBLOCK, eventfd } from "../../src/ffi/libc.ts";
import { PollSet } from "../../src/ffi/poll.ts";
import { Driver, type Element } from "./split_ring_driver.ts";

/** virtio-blk's sector (§5.2.6). */
export const SECTOR = 512;
/** Sectors of a test image unless a test asks for more. */
export const IMAGE_SECTORS = 64;
/** A host page: the alignment of the page cache's buffers. */
export const PAGE = 4096;
/** Entries of a test driver's ring unless a test asks for more. */
export const RING_SIZE = 64;
/** How long one wait may take before the test says the kernel never completed a request. */
const COMPLETION_TIMEOUT_MS = 10_000;

/** Deterministic bytes, different per seed. */
export function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed * 13 + (i >> 9)) & 0xff);
}

/** What a test disk is made of: the backend's options, and where and how large its image is. */
export type DiskOptions = Partial<Omit<BlockSpec, "kind" | "fd" | "sizeBytes" | "eventFd">> & {
  /** Sectors of the image (default {@link IMAGE_SECTORS}). */
  sectors?: number;
  /** The directory of the image (default the system's temporary directory). */
  dir?: string;
  /** Leave the image sparse (a hole throughout) instead of filling it with {@link pattern}. */
  hole?: boolean;
  /** An existing image (a block device) to use as it is, instead of a temporary file. */
  image?: string;
  /** Entries of the driver's ring (default {@link RING_SIZE}). */
  ringSize?: number;
};

/**
 * The spec of a disk on the open `image` whose completions signal `eventFd`, with `options` over
 * the defaults: writable, sparse, buffered, 512-byte blocks, one queue, io_uring.
 */
export function blockSpec(
  image: { readonly fd: number; readonly sizeBytes: number },
  eventFd: number,
  options: Partial<Omit<BlockSpec, "kind" | "fd" | "sizeBytes" | "eventFd">> = {},
): BlockSpec {
  return {
    kind: "block",
    fd: image.fd,
    sizeBytes: image.sizeBytes,
    readOnly: options.readOnly ?? false,
    sparse: options.sparse ?? true,
    direct: options.direct ?? false,
    id: options.id ?? "",
    blockSize: options.blockSize ?? SECTOR,
    numQueues: options.numQueues ?? 1,
    engine: options.engine ?? "uring",
    eventFd,
  };
}

/** A temporary image of `sectors` sectors of {@link pattern} seed 1, opened as a disk. */
export async function withDisk(
  options: DiskOptions,
  fn: (disk: BlockDisk) => Promise<void> | void,
): Promise<void> {
  const temporary = options.image === undefined;
  const path = options.image ??
    await Deno.makeTempFile({ prefix: "blk-", suffix: ".img", dir: options.dir });
  const bytes = (options.sectors ?? IMAGE_SECTORS) * SECTOR;
  if (temporary && options.hole) await Deno.truncate(path, bytes);
  else if (temporary) await Deno.writeFile(path, pattern(bytes, 1));
  const readOnly = options.readOnly ?? false;
  const direct = options.direct ?? false;
  const image = openDiskImage({ path, readOnly, direct });
  const eventFd = eventfd(0, EFD_NONBLOCK);
  const backend = new BlockBackend(blockSpec(image, eventFd, options));
  try {
    await fn(new BlockDisk(path, backend, options.ringSize));
  } finally {
    backend.close();
    close(eventFd);
    close(image.fd);
    if (temporary) await Deno.remove(path);
  }
}

/** A request's data: device-readable buffers, or the lengths of device-writable ones. */
export interface Body {
  out?: Uint8Array[];
  in?: number[];
  /** Start every data buffer on a page boundary (as the page cache's buffers are). */
  aligned?: boolean;
}

/** A request's buffers in guest memory. */
export interface Placed {
  head: number;
  data: number[];
  status: number;
}

/** The guest driver's view of one disk. */
export class BlockDisk {
  readonly driver: Driver;
  readonly queue: VirtQueue;

  /**
   * @param path the image
   * @param backend the device over it
   * @param ringSize entries of the driver's ring
   */
  constructor(readonly path: string, readonly backend: BlockBackend, ringSize = RING_SIZE) {
    this.driver = new Driver({ size: ringSize, indirect: true });
    this.queue = new VirtQueue(0, this.driver.queue);
  }

  /**
   * Adds a request: a 16-byte header, then `out` data (device-readable) or `inLengths` buffers
   * (device-writable), then a 1-byte status, each in its own descriptor.
   */
  add(type: number, sector: bigint | number, body: Body): Placed {
    const mem = this.driver.mem;
    const header = this.driver.buffer(16);
    mem.writeU32(header, type);
    mem.writeU64(header + 8, BigInt(sector));
    const elements: Element[] = [{ addr: header, len: 16 }];
    const data: number[] = [];
    const align = () => {
      if (body.aligned) this.driver.buffer(-this.driver.buffer(0) & (PAGE - 1));
    };
    for (const bytes of body.out ?? []) {
      align();
      const at = this.driver.buffer(bytes.length);
      mem.write(at, bytes);
      data.push(at);
      elements.push({ addr: at, len: bytes.length });
    }
    for (const length of body.in ?? []) {
      align();
      const at = this.driver.buffer(length, 0xee);
      data.push(at);
      elements.push({ addr: at, len: length, write: true });
    }
    const status = this.driver.buffer(1, 0xff);
    elements.push({ addr: status, len: 1, write: true });
    return { head: this.driver.add(elements), data, status };
  }

  /**
   * Publishes what was added and lets the device serve it, waiting for every request it left in
   * flight; returns the used entries.
   */
  run(): { id: number; len: number }[] {
    this.submit();
    completeInFlight(this.backend);
    return this.driver.used();
  }

  /** Publishes what was added and lets the device take it, without waiting for completions. */
  submit(): void {
    this.driver.publish();
    this.backend.processQueue(0, this.queue, this.driver.mem);
  }

  /** The status byte the device wrote. */
  status(placed: Placed): number {
    return this.driver.mem.readU8(placed.status);
  }

  /** One request, served; returns its status and used length. */
  one(type: number, sector: bigint | number, body: Body = {}) {
    const placed = this.add(type, sector, body);
    const [used] = this.run();
    assert.equal(used.id, placed.head);
    return { placed, status: this.status(placed), len: used.len };
  }

  /** Bytes of the image file now. */
  async image(offset = 0, length = IMAGE_SECTORS * SECTOR): Promise<Uint8Array> {
    return (await Deno.readFile(this.path)).subarray(offset, offset + length);
  }

  /** A discard/write-zeroes segment. */
  static segment(sector: number, sectors: number, flags = 0): Uint8Array {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(sector), true);
    view.setUint32(8, sectors, true);
    view.setUint32(12, flags, true);
    return bytes;
  }
}

/**
 * Completes every request `backend` has in flight as its device loop would: sleeps in `poll(2)`
 * on the ring's eventfd and hands each wake-up to `onEvent`, until none is left in flight.
 */
export function completeInFlight(backend: BlockBackend): void {
  const poll = new PollSet([...backend.eventFds]);
  while (backend.inFlight > 0) {
    if (poll.wait(COMPLETION_TIMEOUT_MS).length === 0) {
      throw new Error(`virtio-blk: ${backend.inFlight} requests never completed`);
    }
    backend.onEvent(0);
  }
}
