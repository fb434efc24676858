/**
 * Descriptor chains of a virtio split virtqueue, read from the device side: the descriptor
 * layout, the walk from a head index through the descriptor table (and at most one indirect
 * table), and the chain a device consumes. Section numbers are those of the OASIS virtio 1.2
 * specification (§2.7 Split Virtqueues).
 *
 * Nothing here trusts the guest: every descriptor is read from a table that was bounds-checked
 * once, every buffer it names is checked to lie wholly inside one RAM region, and every fault is
 * a {@link ChainError} value rather than an exception.
 *
 * @module
 */

import { type BufferRange, type GuestMemory, GuestMemoryError } from "../../memory.ts";
import { DWORD } from "../access.ts";
import { U32_RANGE } from "../../ffi/struct.ts";

/** §2.7.5 `struct virtq_desc`: this buffer continues via the `next` field. */
export const VIRTQ_DESC_F_NEXT = 1;
/** §2.7.5: this buffer is device write-only (otherwise device read-only). */
export const VIRTQ_DESC_F_WRITE = 2;
/** §2.7.5.3: this buffer holds a table of indirect descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** §2.7.5: size of one `struct virtq_desc` (le64 addr, le32 len, le16 flags, le16 next). */
export const VIRTQ_DESC_SIZE = 16;
/** §2.7.5: offset of `addr` (le64) in a descriptor. */
export const VIRTQ_DESC_ADDR = 0;
/** §2.7.5: offset of `len` (le32) in a descriptor. */
export const VIRTQ_DESC_LEN = 8;
/** §2.7.5: offset of `flags` (le16) in a descriptor. */
export const VIRTQ_DESC_FLAGS = 12;
/** §2.7.5: offset of `next` (le16) in a descriptor. */
export const VIRTQ_DESC_NEXT = 14;

/** §2.7: the largest queue size; §2.7.5.3.1 also bounds an indirect chain by the queue size. */
export const VIRTQ_MAX_SIZE = 32768;
/** §2.7.5.2: a descriptor chain holds at most 2^32 bytes in total. */
const VIRTQ_MAX_CHAIN_BYTES = 2 ** 32;

/** High halves of `addr` at or above this put it past 2^53: never RAM, and not a safe integer. */
const ADDR_HIGH_LIMIT = 2 ** 21;

/** One guest buffer a descriptor names: guest-physical start and length in bytes. */
export interface GuestBuffer {
  /** Guest-physical address of the first byte. */
  readonly address: number;
  /** Length in bytes. */
  readonly length: number;
}

/** Why a descriptor chain was refused. */
export type ChainErrorReason =
  /** The driver moved `avail.idx` more than the queue size ahead of the device (§2.7.13). */
  | "avail-index"
  /** An available-ring entry names a descriptor past the end of the table. */
  | "head-out-of-range"
  /** A `next` field names a descriptor past the end of its table. */
  | "next-out-of-range"
  /** More descriptors than the table holds: a loop, or a chain longer than §2.7.5.3.1 allows. */
  | "chain-too-long"
  /** More than 2^32 bytes in all (§2.7.5.2). */
  | "chain-too-large"
  /** A buffer is not wholly inside one region of guest RAM. */
  | "buffer-out-of-range"
  /** A device-readable buffer after a device-writable one (§2.7.4.2). */
  | "readable-after-writable"
  /** VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated (§2.7.5.3.1). */
  | "indirect-not-negotiated"
  /** VIRTQ_DESC_F_INDIRECT inside an indirect table (§2.7.5.3.1). */
  | "nested-indirect"
  /** VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT (§2.7.5.3.1). */
  | "indirect-with-next"
  /** An indirect table that is empty, not whole descriptors, or larger than 32768 of them. */
  | "indirect-table-size"
  /** An indirect table that is not wholly inside one region of guest RAM. */
  | "indirect-table-out-of-range";

/**
 * A malformed descriptor chain (or available ring). It is returned, never thrown: the device
 * fails that request, sets DEVICE_NEEDS_RESET (§2.1.2) and carries on.
 */
export class ChainError extends Error {
  /**
   * Builds the error (to return, not throw).
   * @param head the chain's head index, which the device may still complete with length 0;
   *   `null` when there is no valid head to complete (a bad ring entry or `avail.idx`)
   * @param reason what was wrong, as a stable code
   * @param detail the specifics, for the log
   */
  constructor(
    readonly head: number | null,
    readonly reason: ChainErrorReason,
    detail: string,
  ) {
    super(`virtqueue chain ${head ?? "?"}: ${reason}: ${detail}`);
    this.name = "ChainError";
  }
}

/** The device-readable or device-writable half of a chain, in order. */
class Segments {
  readonly list: GuestBuffer[] = [];
  /** Where each buffer of {@link list} starts in `GuestMemory.bytes` (checked when read). */
  readonly offsets: number[] = [];
  /** Total bytes in {@link list}. */
  total = 0;

  /** Appends a buffer already checked to be RAM at `offset` of `GuestMemory.bytes`. */
  add(address: number, length: number, offset: number): void {
    this.list.push({ address, length });
    this.offsets.push(offset);
    this.total += length;
  }

  /** Copies between the segments (from byte `skip` of the half) and `data`; returns bytes moved. */
  copy(bytes: Uint8Array, data: Uint8Array, skip: number, toGuest: boolean): number {
    let done = 0;
    for (let i = 0; i < this.list.length && done < data.length; i++) {
      const length = this.list[i].length;
      if (skip >= length) {
        skip -= length;
        continue;
      }
      const n = Math.min(length - skip, data.length - done);
      const at = this.offsets[i] + skip;
      if (toGuest) bytes.set(data.subarray(done, done + n), at);
      else data.set(bytes.subarray(at, at + n), done);
      done += n;
      skip = 0;
    }
    return done;
  }

  /** Live views of every segment. */
  views(bytes: Uint8Array): Uint8Array[] {
    return this.list.map((s, i) => bytes.subarray(this.offsets[i], this.offsets[i] + s.length));
  }

  /** Every segment's place in the RAM buffer. */
  ranges(): BufferRange[] {
    return this.list.map((s, i) => ({ offset: this.offsets[i], length: s.length }));
  }
}

/**
 * One request from the driver: the device-readable buffers followed by the device-writable ones
 * (§2.7.4.2). Every buffer was checked to be guest RAM when the chain was read, so the copy
 * helpers cannot fault; the guest may still change the bytes underneath at any time.
 */
export class DescriptorChain {
  readonly #bytes: Uint8Array;
  readonly #in: Segments;
  readonly #out: Segments;

  /**
   * Chains are built by {@link readChain}; devices get them from `SplitQueue.pop`.
   * @param memory the guest memory the buffers live in
   * @param head index of the chain's first descriptor, to hand back in the used ring
   * @param readable the device-readable buffers
   * @param writable the device-writable buffers
   */
  constructor(memory: GuestMemory, readonly head: number, readable: Segments, writable: Segments) {
    this.#bytes = memory.bytes;
    this.#in = readable;
    this.#out = writable;
  }

  /** The device-readable buffers, in chain order. */
  get readable(): readonly GuestBuffer[] {
    return this.#in.list;
  }

  /** The device-writable buffers, in chain order. */
  get writable(): readonly GuestBuffer[] {
    return this.#out.list;
  }

  /** Total bytes the device may read. */
  get readableLength(): number {
    return this.#in.total;
  }

  /** Total bytes the device may write. */
  get writableLength(): number {
    return this.#out.total;
  }

  /**
   * Copies readable bytes, starting `offset` bytes into the readable part, into `target`.
   * @returns bytes copied: `target.length`, or fewer where the readable part ends
   */
  readInto(target: Uint8Array, offset = 0): number {
    return this.#in.copy(this.#bytes, target, offset, false);
  }

  /**
   * A copy of at most `maxLength` readable bytes from `offset` on. The cap is required: the
   * guest chooses the chain's length (up to 4 GiB).
   */
  read(maxLength: number, offset = 0): Uint8Array {
    const out = new Uint8Array(Math.max(0, Math.min(maxLength, this.#in.total - offset)));
    this.readInto(out, offset);
    return out;
  }

  /**
   * Writes `data` into the writable part, starting `offset` bytes into it.
   * @returns bytes written: `data.length`, or fewer where the writable part ends
   */
  write(data: Uint8Array, offset = 0): number {
    return this.#out.copy(this.#bytes, data, offset, true);
  }

  /** Live views (no copy) of the readable buffers, e.g. for `writev`. */
  readableViews(): Uint8Array[] {
    return this.#in.views(this.#bytes);
  }

  /** Live views (no copy) of the writable buffers, e.g. for `readv`. The device must only write. */
  writableViews(): Uint8Array[] {
    return this.#out.views(this.#bytes);
  }

  /** Where the readable buffers lie in `GuestMemory.bytes`, for I/O straight into guest RAM. */
  readableRanges(): BufferRange[] {
    return this.#in.ranges();
  }

  /** Where the writable buffers lie in `GuestMemory.bytes`. The device must only write them. */
  writableRanges(): BufferRange[] {
    return this.#out.ranges();
  }
}

/** Where a descriptor table lies, as `readChain` needs it. */
export interface DescriptorTable {
  /** Offset of entry 0 in `GuestMemory.bytes` (the whole table already checked to be RAM). */
  readonly offset: number;
  /** Number of descriptors in the table (the queue size). */
  readonly size: number;
}

/**
 * Walks the chain that starts at descriptor `head` of `table` (§2.7.5), following one level of
 * indirect table when `indirect` (VIRTIO_F_INDIRECT_DESC) was negotiated (§2.7.5.3).
 *
 * @returns the chain, or a {@link ChainError} naming the first fault; never throws for anything
 *   the guest wrote
 */
export function readChain(
  memory: GuestMemory,
  table: DescriptorTable,
  head: number,
  indirect: boolean,
): DescriptorChain | ChainError {
  const view = memory.view;
  const readable = new Segments();
  const writable = new Segments();
  const fail = (reason: ChainErrorReason, detail: string) => new ChainError(head, reason, detail);
  let base = table.offset;
  let limit = table.size;
  let inIndirect = false;
  let index = head;
  let visited = 0;
  for (;;) {
    if (index >= limit) {
      return fail("next-out-of-range", `descriptor ${index} of a table of ${limit}`);
    }
    // §2.7.5.2 forbids loops and §2.7.5.3.1 chains longer than the queue size: with a bounded
    // count, a loop is just a chain that never ends.
    if (++visited > limit) return fail("chain-too-long", `more than ${limit} descriptors`);
    const at = base + index * VIRTQ_DESC_SIZE;
    // The le64 `addr` as two le32 halves, the high one second.
    const high = view.getUint32(at + VIRTQ_DESC_ADDR + DWORD, true);
    const address = high * U32_RANGE + view.getUint32(at + VIRTQ_DESC_ADDR, true);
    const length = view.getUint32(at + VIRTQ_DESC_LEN, true);
    const flags = view.getUint16(at + VIRTQ_DESC_FLAGS, true);
    const offset = high >= ADDR_HIGH_LIMIT ? -1 : ramOffset(memory, address, length);

    if (flags & VIRTQ_DESC_F_INDIRECT) {
      // §2.7.5.3.1 driver requirements; the WRITE flag is ignored here (§2.7.5.3.2).
      if (!indirect) return fail("indirect-not-negotiated", `descriptor ${index}`);
      if (inIndirect) return fail("nested-indirect", `indirect descriptor ${index}`);
      if (flags & VIRTQ_DESC_F_NEXT) return fail("indirect-with-next", `descriptor ${index}`);
      const entries = length / VIRTQ_DESC_SIZE;
      if (!Number.isInteger(entries) || entries === 0 || entries > VIRTQ_MAX_SIZE) {
        return fail("indirect-table-size", `${length} bytes`);
      }
      if (offset < 0) {
        return fail("indirect-table-out-of-range", `0x${address.toString(16)}+${length}`);
      }
      base = offset;
      limit = entries;
      inIndirect = true;
      index = 0;
      visited = 0;
      continue;
    }

    if (offset < 0) return fail("buffer-out-of-range", `0x${address.toString(16)}+${length}`);
    if (readable.total + writable.total + length > VIRTQ_MAX_CHAIN_BYTES) {
      return fail("chain-too-large", `more than ${VIRTQ_MAX_CHAIN_BYTES} bytes`);
    }
    if (flags & VIRTQ_DESC_F_WRITE) {
      writable.add(address, length, offset);
    } else if (writable.list.length > 0) {
      return fail("readable-after-writable", `descriptor ${index}`);
    } else {
      readable.add(address, length, offset);
    }
    if (!(flags & VIRTQ_DESC_F_NEXT)) return new DescriptorChain(memory, head, readable, writable);
    index = view.getUint16(at + VIRTQ_DESC_NEXT, true);
  }
}

/** The offset of `[address, address + length)` in `memory.bytes`, or -1 if it is not all RAM. */
function ramOffset(memory: GuestMemory, address: number, length: number): number {
  try {
    return memory.offsetOf(address, length);
  } catch (e) {
    if (e instanceof GuestMemoryError) return -1;
    throw e;
  }
}
