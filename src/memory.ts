/**
 * Guest memory: RAM held in one SharedArrayBuffer (so every vCPU Worker and device
 * sees the same bytes), aligned to 2 MiB inside it, advised for huge pages, and
 * addressed by guest-physical address with bounds checks on every access.
 *
 * @module
 */

import {
  addressOf,
  close,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_REMOVE,
  madvise,
} from "./ffi/libc.ts";
import { PAGE_SIZE, SharedArena } from "./shared_region.ts";

/**
 * The host's transparent huge-page size on x86_64 (and arm64 with 4 KiB pages): guest RAM is
 * aligned to it inside its SharedArrayBuffer so KVM can back it with 2 MiB pages.
 */
export const HUGE_PAGE_SIZE = 2 << 20;

/** A contiguous range of guest RAM. */
export interface RamRegion {
  /** Guest-physical start address. */
  readonly guestAddress: number;
  /** Size in bytes. */
  readonly size: number;
}

/** Where one guest buffer lies in `GuestMemory.bytes` (checked to be RAM). */
export interface BufferRange {
  /** Offset of the first byte in `GuestMemory.bytes`. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
}

/** Where guest RAM is registered: a KVM VM (`VmFd`), or anything else that maps slots. */
export interface MemorySlots {
  /** Maps `size` bytes at host address `hostAddress` as guest-physical `guestAddress` (slot `slot`). */
  setUserMemoryRegion(slot: number, guestAddress: number, size: number, hostAddress: bigint): void;
}

/** An access outside guest RAM (a guest bug, or a malicious guest). */
export class GuestMemoryError extends RangeError {
  /**
   * An access of `length` bytes at `address` that is not wholly in RAM.
   * @param address guest-physical start of the access
   * @param length length of the access
   */
  constructor(readonly address: number, readonly length: number) {
    super(`guest address range 0x${address.toString(16)}+${length} is not RAM`);
    this.name = "GuestMemoryError";
  }
}

/** What it takes to rebuild a {@link GuestMemory} view in another Worker. */
export interface GuestMemoryShare {
  /** The SharedArrayBuffer holding RAM. */
  readonly buffer: SharedArrayBuffer;
  /** Offset of guest RAM inside {@link buffer} (2 MiB aligned in host memory). */
  readonly offset: number;
  /** RAM regions in the order they are laid out in the buffer. */
  readonly regions: readonly RamRegion[];
}

/** Guest RAM with bounds-checked access by guest-physical address. */
export class GuestMemory {
  /** All RAM bytes, regions back to back. */
  readonly bytes: Uint8Array;
  /** A DataView over {@link bytes}. */
  readonly view: DataView;
  /** Total RAM size in bytes. */
  readonly size: number;
  readonly #starts: number[];

  /**
   * Rebuilds a view over memory shared by another thread (see {@link shared}).
   * @param shared the buffer, offset and regions
   * @param fd the memfd backing RAM, when it is shareable with other processes
   */
  constructor(readonly shared: GuestMemoryShare, readonly fd?: number) {
    this.size = shared.regions.reduce((sum, r) => sum + r.size, 0);
    this.bytes = new Uint8Array(shared.buffer, shared.offset, this.size);
    this.view = new DataView(shared.buffer, shared.offset, this.size);
    let start = 0;
    this.#starts = shared.regions.map((r) => {
      const here = start;
      start += r.size;
      return here;
    });
  }

  /**
   * Allocates guest RAM for `regions` (the architecture's memory map, in guest-physical order),
   * back to back in a buffer of its own, for this process's threads. Pages are touched lazily,
   * so large guests cost nothing until used.
   */
  static allocate(regions: readonly RamRegion[]): GuestMemory {
    return GuestMemory.inArena(SharedArena.reserve(ramSize(regions), 0, HUGE_PAGE_SIZE), regions);
  }

  /**
   * Guest RAM for `regions` as the head of `arena` (reserved with the RAM's size and 2 MiB
   * alignment); with `shareable` it is backed by a memfd ({@link fd}) that jailed device
   * processes map.
   */
  static inArena(
    arena: SharedArena,
    regions: readonly RamRegion[],
    shareable = false,
  ): GuestMemory {
    const size = ramSize(regions);
    if (size > arena.headSize) {
      throw new RangeError(`${size} bytes of RAM do not fit the arena's ${arena.headSize}`);
    }
    const head = arena.head(shareable ? "guest-ram" : undefined);
    const mem = new GuestMemory({ buffer: head.buffer, offset: head.offset, regions }, head.fd);
    try {
      madvise(mem.hostAddress(0), head.size, MADV_HUGEPAGE);
    } catch (e) {
      if (head.fd !== undefined) close(head.fd);
      throw e;
    }
    return mem;
  }

  /**
   * Guest RAM mapped from the memfd `fd` of another process's shareable RAM, as the head of
   * `arena` (the side of a jailed device process).
   */
  static fromFd(arena: SharedArena, fd: number, regions: readonly RamRegion[]): GuestMemory {
    const head = arena.mapHead(fd);
    return new GuestMemory({ buffer: head.buffer, offset: head.offset, regions }, fd);
  }

  /**
   * Gives the host back the pages of `[address, address + length)` (page-aligned): their
   * contents are gone and they read as zero when next touched, which brings them back. RAM of
   * this process's own is private (MADV_DONTNEED frees it); RAM in a memfd shared with jailed
   * devices needs its backing store removed (MADV_REMOVE).
   * @throws GuestMemoryError when the range is not all RAM
   */
  discard(address: number, length: number): void {
    const offset = this.offsetOf(address, length);
    madvise(this.hostAddress(offset), length, this.fd === undefined ? MADV_DONTNEED : MADV_REMOVE);
  }

  /** The RAM regions, in guest-physical order. */
  get regions(): readonly RamRegion[] {
    return this.shared.regions;
  }

  /** The host virtual address of byte `offset` of the RAM block. */
  hostAddress(offset: number): bigint {
    return addressOf(this.shared.buffer) + BigInt(this.shared.offset + offset);
  }

  /** Registers every region as a KVM memory slot, numbered from `firstSlot`. */
  register(vm: MemorySlots, firstSlot = 0): void {
    this.shared.regions.forEach((r, i) => {
      vm.setUserMemoryRegion(
        firstSlot + i,
        r.guestAddress,
        r.size,
        this.hostAddress(this.#starts[i]),
      );
    });
  }

  /** The buffer offset of `[address, address + length)`, or a GuestMemoryError if not all RAM. */
  offsetOf(address: number, length: number): number {
    const regions = this.shared.regions;
    if (!Number.isInteger(address) || !Number.isInteger(length)) {
      throw new GuestMemoryError(address, length);
    }
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i];
      if (address >= r.guestAddress && length >= 0 && address + length <= r.guestAddress + r.size) {
        return this.#starts[i] + (address - r.guestAddress);
      }
    }
    throw new GuestMemoryError(address, length);
  }

  /** True when `[address, address + length)` lies wholly in one RAM region. */
  contains(address: number, length: number): boolean {
    return this.shared.regions.some((r) =>
      address >= r.guestAddress && length >= 0 && address + length <= r.guestAddress + r.size
    );
  }

  /** A live view (no copy) of guest RAM; writes through it reach the guest. */
  slice(address: number, length: number): Uint8Array {
    const at = this.offsetOf(address, length);
    return this.bytes.subarray(at, at + length);
  }

  /** A copy of `length` bytes at `address`. */
  read(address: number, length: number): Uint8Array {
    return this.slice(address, length).slice();
  }

  /** Copies `data` into guest RAM at `address`. */
  write(address: number, data: Uint8Array): void {
    this.bytes.set(data, this.offsetOf(address, data.length));
  }

  /** Reads a little-endian u8. */
  readU8(address: number): number {
    return this.view.getUint8(this.offsetOf(address, 1));
  }

  /** Reads a little-endian u16. */
  readU16(address: number): number {
    return this.view.getUint16(this.offsetOf(address, 2), true);
  }

  /** Reads a little-endian u32. */
  readU32(address: number): number {
    return this.view.getUint32(this.offsetOf(address, 4), true);
  }

  /** Reads a little-endian u64. */
  readU64(address: number): bigint {
    return this.view.getBigUint64(this.offsetOf(address, 8), true);
  }

  /** Writes a u8. */
  writeU8(address: number, value: number): void {
    this.view.setUint8(this.offsetOf(address, 1), value);
  }

  /** Writes a little-endian u16. */
  writeU16(address: number, value: number): void {
    this.view.setUint16(this.offsetOf(address, 2), value, true);
  }

  /** Writes a little-endian u32. */
  writeU32(address: number, value: number): void {
    this.view.setUint32(this.offsetOf(address, 4), value >>> 0, true);
  }

  /** Writes a little-endian u64. */
  writeU64(address: number, value: bigint): void {
    this.view.setBigUint64(this.offsetOf(address, 8), value, true);
  }
}

/**
 * The part `[skip, skip + length)` of the bytes `ranges` cover, as ranges (the whole request
 * body past a header, say, or the data before a trailing status byte).
 * @throws RangeError when the ranges hold fewer than `skip + length` bytes
 */
export function sliceRanges(
  ranges: readonly BufferRange[],
  skip: number,
  length: number,
): BufferRange[] {
  const out: BufferRange[] = [];
  let left = length;
  for (const range of ranges) {
    if (left === 0) break;
    if (skip >= range.length) {
      skip -= range.length;
      continue;
    }
    const n = Math.min(range.length - skip, left);
    out.push({ offset: range.offset + skip, length: n });
    left -= n;
    skip = 0;
  }
  if (left > 0) throw new RangeError(`${length} bytes past ${skip} are more than the buffers hold`);
  return out;
}

/**
 * The total size of `regions`.
 * @throws RangeError unless every region is a positive multiple of the page size
 */
export function ramSize(regions: readonly RamRegion[]): number {
  const size = regions.reduce((sum, r) => sum + r.size, 0);
  if (regions.length === 0 || regions.some((r) => r.size <= 0 || r.size % PAGE_SIZE !== 0)) {
    throw new RangeError(
      `guest memory size ${size} must be regions of positive multiples of 4 KiB`,
    );
  }
  return size;
}
