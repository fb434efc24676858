/**
 * Memory that several threads and processes see as one. A {@link SharedArena} is one
 * SharedArrayBuffer laid out as a head (guest RAM, 2 MiB aligned) and a tail of page-aligned
 * regions (device register blocks). Any region may be backed by a memfd mapped over its pages,
 * so a jailed device process that maps the same memfd over an arena of its own shares the bytes.
 *
 * The buffer is growable: V8 reserves its whole address space as a mapping of its own and makes
 * it usable as it grows (see {@link GROW_STEP}), so only whole pages inside that mapping are ever
 * mapped over, and they go away with it. Keep the arena referenced for as long as its regions are
 * in use: the device state lives in its tail, not in buffers of its own, for the same reason.
 *
 * Atomics work on these bytes from every thread of every process that maps them, but
 * `Atomics.wait`/`notify` wake only threads of the same process: see `SharedMutex`.
 *
 * @module
 */

import {
  addressOf,
  close,
  MAP_FIXED,
  MAP_SHARED,
  memfdCreate,
  mmap,
  PROT_READ,
  PROT_WRITE,
} from "./ffi/libc.ts";
import { UserError } from "./errors.ts";

/** The host's page size on x86_64. */
export const PAGE_SIZE = 4096;
/**
 * Most bytes one grow of an arena's buffer adds. Under the kernel's default overcommit heuristic
 * (`vm.overcommit_memory` 0) one private writable mapping larger than RAM plus swap is refused,
 * so a plain buffer for a guest larger than the host fails outright. A growable buffer reserves
 * its address space inaccessible and is made usable in steps that each pass; its pages are still
 * touched lazily, so a guest may be larger than free host memory, as under QEMU and crosvm.
 */
const GROW_STEP = 1 << 30;
const MIB = 1 << 20;

/** The host will not reserve the address space a guest's memory needs. */
export class MemoryReserveError extends UserError {}

/** A window of a SharedArrayBuffer: what every thread and process views. */
export interface SharedRegion {
  /** The buffer holding the window. */
  readonly buffer: SharedArrayBuffer;
  /** Where the window starts in {@link buffer} (page aligned in host memory). */
  readonly offset: number;
  /** The window's length in bytes. */
  readonly size: number;
}

/** A region and, when it can cross to another process, the memfd behind it. */
export interface SharableRegion extends SharedRegion {
  /** The memfd whose pages the window maps (its creator closes it when done). */
  readonly fd?: number;
}

/** A zeroed region of its own buffer, for this process's threads only (tests, unjailed state). */
export function privateRegion(size: number): SharedRegion {
  return { buffer: new SharedArrayBuffer(size), offset: 0, size };
}

/** One buffer holding a head region and a tail of page-aligned regions. */
export class SharedArena {
  readonly #buffer: SharedArrayBuffer;
  readonly #headOffset: number;
  readonly #tailEnd: number;
  #tailNext: number;

  private constructor(
    buffer: SharedArrayBuffer,
    headOffset: number,
    /** The head's size in bytes. */
    readonly headSize: number,
    tailSize: number,
  ) {
    this.#buffer = buffer;
    this.#headOffset = headOffset;
    this.#tailNext = headOffset + roundUp(headSize, PAGE_SIZE);
    this.#tailEnd = this.#tailNext + roundUp(tailSize, PAGE_SIZE);
  }

  /**
   * Reserves an arena: `headSize` bytes aligned to `headAlignment` (a multiple of the page
   * size), then room for `tailSize` bytes of page-aligned regions. Pages are touched lazily.
   */
  static reserve(headSize: number, tailSize: number, headAlignment = PAGE_SIZE): SharedArena {
    const length = headAlignment + roundUp(headSize, PAGE_SIZE) + roundUp(tailSize, PAGE_SIZE);
    const buffer = reserveBuffer(length, headSize);
    const base = addressOf(buffer);
    const misalignment = Number(base % BigInt(headAlignment));
    const headOffset = misalignment === 0 ? 0 : headAlignment - misalignment;
    return new SharedArena(buffer, headOffset, headSize, tailSize);
  }

  /** The head. With `memfdName` it is backed by a new memfd of that name (in `fd`). */
  head(memfdName?: string): SharableRegion {
    return this.#region(this.#headOffset, this.headSize, memfdName);
  }

  /** The head, backed by the memfd `fd` another process created (the jailed side). */
  mapHead(fd: number): SharedRegion {
    return this.#map(this.#headOffset, this.headSize, fd);
  }

  /**
   * The next `size` bytes of the tail, page aligned. With `memfdName` they are backed by a new
   * memfd of that name (in `fd`).
   * @throws RangeError when the tail is full
   */
  allocate(size: number, memfdName?: string): SharableRegion {
    return this.#region(this.#take(size), size, memfdName);
  }

  /** The next `size` bytes of the tail, backed by the memfd `fd` another process created. */
  mapNext(fd: number, size: number): SharedRegion {
    return this.#map(this.#take(size), size, fd);
  }

  #take(size: number): number {
    const offset = this.#tailNext;
    const end = offset + roundUp(size, PAGE_SIZE);
    if (end > this.#tailEnd) throw new RangeError(`shared arena: no room for ${size} more bytes`);
    this.#tailNext = end;
    return offset;
  }

  #region(offset: number, size: number, memfdName: string | undefined): SharableRegion {
    if (memfdName === undefined) return { buffer: this.#buffer, offset, size };
    const fd = memfdCreate(memfdName, roundUp(size, PAGE_SIZE));
    try {
      return { ...this.#map(offset, size, fd), fd };
    } catch (e) {
      close(fd);
      throw e;
    }
  }

  #map(offset: number, size: number, fd: number): SharedRegion {
    const address = addressOf(this.#buffer) + BigInt(offset);
    mmap(roundUp(size, PAGE_SIZE), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0, address);
    return { buffer: this.#buffer, offset, size };
  }
}

/** A buffer of `length` bytes, grown to it in {@link GROW_STEP}s; `headSize` is for the error. */
function reserveBuffer(length: number, headSize: number): SharedArrayBuffer {
  try {
    const buffer = new SharedArrayBuffer(0, { maxByteLength: length });
    while (buffer.byteLength < length) buffer.grow(Math.min(length, buffer.byteLength + GROW_STEP));
    return buffer;
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new MemoryReserveError(
      `cannot reserve ${Math.ceil(headSize / MIB)} MiB of guest memory: the host refused ` +
        `(${e.message}; see ulimit -v and vm.overcommit_memory)`,
    );
  }
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
