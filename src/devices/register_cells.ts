/**
 * Byte-lane access to registers kept as Uint32 cells of a SharedArrayBuffer, and a bump
 * allocator that carves one device's shared state into such cell arrays. Cells are read and
 * written with `Atomics`, so a reader in another thread never sees a torn dword.
 *
 * @module
 */

import { DWORD } from "./access.ts";

/**
 * Fills `data` with the little-endian bytes at byte `offset` of `cells` (any size, any
 * alignment); bytes past the end read 0.
 */
export function readCellBytes(cells: Uint32Array, offset: number, data: Uint8Array): void {
  for (let i = 0; i < data.length; i++) {
    const at = offset + i;
    const cell = Math.floor(at / DWORD);
    data[i] = cell < cells.length ? Atomics.load(cells, cell) >>> (8 * (at % DWORD)) : 0;
  }
}

/**
 * Stores `data` at byte `offset` of `cells`, merging partial dwords; bytes past the end are
 * dropped. Concurrent writers of one dword must hold the owner's lock.
 */
export function writeCellBytes(cells: Uint32Array, offset: number, data: Uint8Array): void {
  for (let i = 0; i < data.length; i++) {
    const at = offset + i;
    const cell = Math.floor(at / DWORD);
    if (cell >= cells.length) return;
    const shift = 8 * (at % DWORD);
    const merged = (Atomics.load(cells, cell) & ~(0xff << shift)) | (data[i] << shift);
    Atomics.store(cells, cell, merged >>> 0);
  }
}

/** Hands out consecutive Uint32 cell arrays of one SharedArrayBuffer, in a fixed order. */
export class CellCarver {
  #next = 0;

  /**
   * Carves from byte `offset` of `buffer`.
   * @param buffer the device's shared state (its size from a dry run with {@link cellsNeeded})
   * @param offset where the state starts in `buffer` (a multiple of 4)
   */
  constructor(private readonly buffer: SharedArrayBuffer, private readonly offset = 0) {}

  /** The next `count` cells. */
  take(count: number): Uint32Array {
    const cells = new Uint32Array(this.buffer, this.offset + this.#next * DWORD, count);
    this.#next += count;
    return cells;
  }

  /** Cells handed out so far. */
  get used(): number {
    return this.#next;
  }
}

/** Bytes of a SharedArrayBuffer holding `cells` Uint32 cells. */
export function cellsNeeded(cells: number): number {
  return cells * DWORD;
}
