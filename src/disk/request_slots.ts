/**
 * The requests an asynchronous disk engine ({@link ./disk_io.ts}) has in flight, one slot each:
 * the caller's token and the request's iovec array, which stays put until the request completes
 * (the host may read it after submission: io_uring's worker threads, a pool thread).
 *
 * @module
 */

import type { BufferRange } from "../memory.ts";
import { addressOf, IOV_MAX, IOVEC_WORDS, setIovec } from "../ffi/libc.ts";

/** Bytes of one `struct iovec`. */
const IOVEC_SIZE = IOVEC_WORDS * BigUint64Array.BYTES_PER_ELEMENT;
/** iovecs a slot holds before it grows (a request of a few guest pages). */
const INITIAL_SLOT_IOVECS = 16;

/** One request in flight: its token and its iovecs. */
interface Slot<T> {
  token: T | undefined;
  /** 32-bit halves of the iovec array, in an ArrayBuffer of its own (never moved by the GC). */
  halves: Uint32Array;
  address: bigint;
}

/** A request taken into a slot: the slot's index, its iovec count and the iovec array's address. */
export type TakenRequest = readonly [slot: number, iovecs: number, address: bigint];

/** A fixed number of request slots; `T` is the caller's tag. */
export class RequestSlots<T> {
  readonly #slots: Slot<T>[] = [];
  readonly #free: number[] = [];

  /** @param count how many requests may be in flight at once */
  constructor(readonly count: number) {
    for (let i = count - 1; i >= 0; i--) {
      this.#slots[i] = { token: undefined, halves: new Uint32Array(0), address: 0n };
      this.#free.push(i);
    }
  }

  /** Requests taken and not yet released. */
  get inFlight(): number {
    return this.count - this.#free.length;
  }

  /**
   * Whether a request with `buffers` guest buffers can be taken now: a slot is free, and the
   * buffers fit one vectored call (the kernel's `UIO_MAXIOV`).
   */
  accepts(buffers: number): boolean {
    return this.#free.length > 0 && buffers <= IOV_MAX;
  }

  /**
   * Takes a free slot for `token` and fills its iovecs with `ranges` (offsets from host address
   * `base`; empty ranges left out).
   * @throws Error when every slot is taken (check {@link accepts})
   */
  take(base: number, ranges: readonly BufferRange[], token: T): TakenRequest {
    const index = this.#free.pop();
    if (index === undefined) throw new Error("disk I/O: no free request slot");
    const slot = this.#slots[index];
    const words = ranges.length * IOVEC_WORDS * 2;
    if (slot.halves.length < words) {
      const iovecs = Math.max(INITIAL_SLOT_IOVECS, ranges.length);
      const buffer = new ArrayBuffer(iovecs * IOVEC_SIZE);
      slot.halves = new Uint32Array(buffer);
      slot.address = addressOf(buffer);
    }
    let count = 0;
    for (const range of ranges) {
      if (range.length > 0) setIovec(slot.halves, count++, base + range.offset, range.length);
    }
    slot.token = token;
    return [index, count, slot.address];
  }

  /** Frees slot `index` (its request completed) and returns its token. */
  release(index: number): T {
    const slot = this.#slots[index];
    const token = slot.token as T;
    slot.token = undefined;
    this.#free.push(index);
    return token;
  }
}
