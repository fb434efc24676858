/**
 * Asynchronous I/O on an open disk image through io_uring ({@link IoUring}): vectored reads and
 * writes straight between the file and guest RAM (one iovec per guest buffer, as
 * {@link ./file.ts}'s `DiskFile`), and `fdatasync`, submitted without waiting and completed in
 * whatever order the kernel finishes them. Each request carries a token of the caller's, handed
 * back with its result (bytes moved, or `-errno`) when its completion is reaped; the kernel
 * signals an eventfd on every completion, for the caller's poll loop.
 *
 * Each request in flight keeps its iovec array in a slot of its own until it completes: the
 * kernel may read it after submission (a request it hands to its worker threads).
 *
 * Note: a seccomp filter sees `io_uring_enter`, not the reads and writes it starts (the kernel
 * runs them for the ring): a known property of io_uring that crosvm accepts too.
 *
 * @module
 */

import type { BufferRange } from "../memory.ts";
import { IoUring } from "../ffi/io_uring.ts";
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

/** io_uring over one disk image descriptor; `T` is what the caller tags each request with. */
export class UringDiskIo<T> {
  /** The most guest buffers one request may have (the kernel's `UIO_MAXIOV`). */
  static readonly MAX_BUFFERS = IOV_MAX;
  readonly #ring: IoUring;
  readonly #slots: Slot<T>[] = [];
  readonly #free: number[] = [];
  #inFlight = 0;

  /**
   * Sets up a ring of `depth` entries whose completions signal `eventFd`.
   * @param fd the open image
   * @param eventFd a non-blocking eventfd, signalled on every completion
   * @param depth the most requests in flight at once
   * @throws SyscallError when io_uring is unavailable (see `ioUringUnavailable`)
   */
  constructor(readonly fd: number, readonly eventFd: number, depth: number) {
    this.#ring = IoUring.create(depth);
    try {
      this.#ring.registerEventfd(eventFd);
    } catch (e) {
      this.#ring.close();
      throw e;
    }
    for (let i = this.#ring.sqEntries - 1; i >= 0; i--) {
      this.#slots[i] = { token: undefined, halves: new Uint32Array(0), address: 0n };
      this.#free.push(i);
    }
  }

  /** Requests submitted and not yet reaped. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Whether a request with `buffers` guest buffers can be taken now. */
  accepts(buffers: number): boolean {
    return this.#free.length > 0 && buffers <= UringDiskIo.MAX_BUFFERS;
  }

  /**
   * Queues a read of the file at `offset` into `ranges` (offsets from host address `base`).
   * Check {@link accepts} first.
   */
  read(base: number, ranges: readonly BufferRange[], offset: number, token: T): void {
    const [slot, count, address] = this.#take(base, ranges, token);
    this.#ring.readv(this.fd, address, count, offset, slot);
  }

  /** Queues a write of `ranges` at file `offset`; as {@link read}. */
  write(base: number, ranges: readonly BufferRange[], offset: number, token: T): void {
    const [slot, count, address] = this.#take(base, ranges, token);
    this.#ring.writev(this.fd, address, count, offset, slot);
  }

  /** Queues an `fdatasync` of the file. Check {@link accepts}(0) first. */
  datasync(token: T): void {
    const [slot] = this.#take(0, [], token);
    this.#ring.fdatasync(this.fd, slot);
  }

  /** Hands every queued request to the kernel. */
  submit(): void {
    this.#ring.submit();
  }

  /**
   * Hands `done` every completion that has arrived (the eventfd is the caller's to drain), until
   * none is left, including those of requests `done` itself queued.
   */
  reap(done: (token: T, result: number) => void): void {
    const complete = (slot: number, result: number) => {
      const s = this.#slots[slot];
      const token = s.token as T;
      s.token = undefined;
      this.#free.push(slot);
      this.#inFlight--;
      done(token, result);
    };
    do this.#ring.submit(); while (this.#ring.reap(complete) > 0);
  }

  /** Waits for every request in flight to complete, handing each to `done`. */
  drain(done: (token: T, result: number) => void): void {
    while (this.#inFlight > 0) {
      this.#ring.wait(1);
      this.reap(done);
    }
  }

  /** Closes the ring (after {@link drain}: no request may be left writing into guest memory). */
  close(): void {
    if (this.#inFlight > 0) {
      throw new Error(`io_uring closed with ${this.#inFlight} requests in flight`);
    }
    this.#ring.close();
  }

  /** Takes a free slot for `token` and fills its iovecs; returns it, their count and address. */
  #take(base: number, ranges: readonly BufferRange[], token: T): [number, number, bigint] {
    const index = this.#free.pop();
    if (index === undefined) throw new Error("io_uring: no free request slot");
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
    this.#inFlight++;
    return [index, count, slot.address];
  }
}
