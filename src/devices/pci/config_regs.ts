/**
 * A function's conventional configuration space held in SharedArrayBuffer cells, so every vCPU
 * Worker sees the registers the guest last wrote, with a per-byte write mask (the same in every
 * thread, built from the same description) deciding which bits a guest write may change.
 *
 * @module
 */

import {
  CAP_ALIGNMENT,
  CAP_ID,
  CAP_NEXT,
  CONVENTIONAL_CONFIG_SIZE,
  FIRST_CAPABILITY_OFFSET,
  STATUS_CAPABILITIES_LIST,
} from "./header_bits.ts";
import { CAPABILITIES_POINTER, STATUS } from "./config_space.ts";
import { DWORD, dwordLanes } from "../access.ts";

/** Dwords in a conventional configuration space. */
export const CONFIG_DWORDS = CONVENTIONAL_CONFIG_SIZE / DWORD;

/**
 * A configuration space as it is built: initial bytes, and which bits of each byte the guest may
 * write. Build it the same way in every thread (it is deterministic); only the main thread copies
 * {@link bytes} into the shared cells.
 */
export class ConfigImage {
  /** Reset values of the 256 bytes. */
  readonly bytes = new Uint8Array(CONVENTIONAL_CONFIG_SIZE);
  /** Per byte, the bits a guest write changes. */
  readonly writable = new Uint8Array(CONVENTIONAL_CONFIG_SIZE);
  readonly #view = new DataView(this.bytes.buffer);
  /** Offset of the last capability added, or 0 when there is none. */
  #lastCapability = 0;
  /** Where the next capability goes. */
  #nextCapability = FIRST_CAPABILITY_OFFSET;

  /** Sets a byte. */
  setU8(offset: number, value: number): void {
    this.#view.setUint8(offset, value);
  }

  /** Sets a little-endian 16-bit register. */
  setU16(offset: number, value: number): void {
    this.#view.setUint16(offset, value, true);
  }

  /** Sets a little-endian 32-bit register. */
  setU32(offset: number, value: number): void {
    this.#view.setUint32(offset, value >>> 0, true);
  }

  /** Lets the guest change the bits of `mask` in the `size`-byte register at `offset`. */
  allowWrite(offset: number, size: 1 | 2 | 4, mask: number): void {
    for (let i = 0; i < size; i++) this.writable[offset + i] |= (mask >>> (8 * i)) & 0xff;
  }

  /**
   * Appends a capability structure (§6.7): `body` is everything after the ID and next-pointer
   * bytes. Links it from the previous one (or the capabilities pointer) and sets the status
   * register's capabilities-list bit.
   * @returns the offset of the new structure
   */
  addCapability(id: number, body: Uint8Array): number {
    const offset = this.#nextCapability;
    const end = offset + 2 + body.length;
    if (end > CONVENTIONAL_CONFIG_SIZE) throw new RangeError("capabilities overflow 256 bytes");
    this.setU8(offset + CAP_ID, id);
    this.setU8(offset + CAP_NEXT, 0);
    this.bytes.set(body, offset + 2);
    if (this.#lastCapability === 0) this.setU8(CAPABILITIES_POINTER, offset);
    else this.setU8(this.#lastCapability + CAP_NEXT, offset);
    this.setU16(STATUS, this.#view.getUint16(STATUS, true) | STATUS_CAPABILITIES_LIST);
    this.#lastCapability = offset;
    this.#nextCapability = Math.ceil(end / CAP_ALIGNMENT) * CAP_ALIGNMENT;
    return offset;
  }
}

/** What a guest write changed in one dword. */
export interface DwordWrite {
  /** The dword index (byte offset / 4). */
  readonly register: number;
  /** The dword before the write. */
  readonly before: number;
  /** The dword after it. */
  readonly after: number;
}

/**
 * The live registers: 64 dwords in shared cells. Reads are single atomic loads; writes are
 * read-merge-store and must run under the owning device's lock.
 */
export class ConfigRegisters {
  /**
   * Views the shared registers.
   * @param cells 64 Uint32 cells of the device's shared state
   * @param writable the per-byte write mask, from the same {@link ConfigImage} in every thread
   */
  constructor(private readonly cells: Uint32Array, private readonly writable: Uint8Array) {
    if (cells.length !== CONFIG_DWORDS) throw new RangeError("config space needs 64 cells");
  }

  /** Copies an image's reset values into the cells (once, by the thread that creates the state). */
  static initialize(cells: Uint32Array, image: ConfigImage): void {
    const view = new DataView(image.bytes.buffer);
    for (let i = 0; i < CONFIG_DWORDS; i++) {
      Atomics.store(cells, i, view.getUint32(i * DWORD, true));
    }
  }

  /** The dword at index `register`; 0 past the conventional 256 bytes. */
  readDword(register: number): number {
    return register < CONFIG_DWORDS ? Atomics.load(this.cells, register) : 0;
  }

  /** A `size`-byte register at byte `offset` (within one dword). */
  read(offset: number, size: 1 | 2 | 4): number {
    return dwordLanes(this.readDword(Math.floor(offset / DWORD)), offset, size);
  }

  /** Sets the dword at `register`, bypassing the write mask (device-side updates). */
  store(register: number, value: number): void {
    Atomics.store(this.cells, register, value >>> 0);
  }

  /**
   * Applies a guest write of `data` at byte `offset` (within one dword) through the write mask.
   * @returns the dword before and after, or undefined past the conventional space
   */
  write(offset: number, data: Uint8Array): DwordWrite | undefined {
    const lane = offset % DWORD;
    const register = (offset - lane) / DWORD;
    if (register >= CONFIG_DWORDS || lane + data.length > DWORD) return undefined;
    const before = Atomics.load(this.cells, register);
    let after = before;
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const shift = 8 * (lane + i);
      const mask = this.writable[at] << shift;
      after = (after & ~mask) | ((data[i] << shift) & mask);
    }
    after >>>= 0;
    Atomics.store(this.cells, register, after);
    return { register, before, after };
  }
}
