/**
 * Guest memory: RAM held in one SharedArrayBuffer (so every vCPU Worker and device
 * sees the same bytes), aligned to 2 MiB inside it, advised for huge pages, and
 * addressed by guest-physical address with bounds checks on every access.
 *
 * @module
 */

import { HUGE_PAGE_SIZE, type RamRegion, ramRegions } from "./arch/x86_64/layout.ts";
import { addressOf, MADV_HUGEPAGE, madvise } from "./ffi/libc.ts";
import type { VmFd } from "./ffi/kvm.ts";

/** An access outside guest RAM (a guest bug, or a malicious guest). */
export class GuestMemoryError extends RangeError {
  /**
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

  /** Rebuilds a view over memory shared by another thread (see {@link share}). */
  constructor(readonly shared: GuestMemoryShare) {
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
   * Allocates `memSize` bytes of guest RAM laid out around the 32-bit MMIO hole.
   * Pages are touched lazily, so large guests cost nothing until used.
   */
  static allocate(memSize: number): GuestMemory {
    if (memSize <= 0 || memSize % 4096 !== 0) {
      throw new RangeError(`guest memory size ${memSize} must be a positive multiple of 4 KiB`);
    }
    const buffer = new SharedArrayBuffer(memSize + HUGE_PAGE_SIZE);
    const base = addressOf(buffer);
    const misalignment = Number(base % BigInt(HUGE_PAGE_SIZE));
    const offset = misalignment === 0 ? 0 : HUGE_PAGE_SIZE - misalignment;
    const mem = new GuestMemory({ buffer, offset, regions: ramRegions(memSize) });
    madvise(mem.hostAddress(0), memSize, MADV_HUGEPAGE);
    return mem;
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
  register(vm: VmFd, firstSlot = 0): void {
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
