/**
 * Asynchronous I/O on an open disk image through io_uring ({@link IoUring}): vectored reads and
 * writes straight between the file and guest RAM (one iovec per guest buffer, as
 * {@link ./file.ts}'s `DiskFile`), and `fdatasync`, submitted without waiting and completed in
 * whatever order the kernel finishes them. Each request carries a token of the caller's, handed
 * back with its result (bytes moved, or `-errno`) when its completion is reaped; the kernel
 * signals an eventfd on every completion, for the caller's poll loop.
 *
 * Each request in flight keeps its iovec array in a slot of its own ({@link RequestSlots}) until
 * it completes: the kernel may read it after submission (a request it hands to its worker
 * threads).
 *
 * Note: a seccomp filter sees `io_uring_enter`, not the reads and writes it starts (the kernel
 * runs them for the ring): a known property of io_uring that crosvm accepts too.
 *
 * @module
 */

import type { BufferRange } from "../memory.ts";
import { IoUring } from "../ffi/io_uring.ts";
import type { DiskIo } from "./disk_io.ts";
import { RequestSlots } from "./request_slots.ts";

/** io_uring over one disk image descriptor; `T` is what the caller tags each request with. */
export class UringDiskIo<T> implements DiskIo<T> {
  readonly #ring: IoUring;
  readonly #slots: RequestSlots<T>;

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
    this.#slots = new RequestSlots(this.#ring.sqEntries);
  }

  /** Requests submitted and not yet reaped. */
  get inFlight(): number {
    return this.#slots.inFlight;
  }

  /** Whether a request with `buffers` guest buffers can be taken now. */
  accepts(buffers: number): boolean {
    return this.#slots.accepts(buffers);
  }

  /**
   * Queues a read of the file at `offset` into `ranges` (offsets from host address `base`).
   * Check {@link accepts} first.
   */
  read(base: number, ranges: readonly BufferRange[], offset: number, token: T): void {
    const [slot, count, address] = this.#slots.take(base, ranges, token);
    this.#ring.readv(this.fd, address, count, offset, slot);
  }

  /** Queues a write of `ranges` at file `offset`; as {@link read}. */
  write(base: number, ranges: readonly BufferRange[], offset: number, token: T): void {
    const [slot, count, address] = this.#slots.take(base, ranges, token);
    this.#ring.writev(this.fd, address, count, offset, slot);
  }

  /** Queues an `fdatasync` of the file. Check {@link accepts}(0) first. */
  datasync(token: T): void {
    const [slot] = this.#slots.take(0, [], token);
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
    const complete = (slot: number, result: number) => done(this.#slots.release(slot), result);
    do this.#ring.submit(); while (this.#ring.reap(complete) > 0);
  }

  /** Waits for every request in flight to complete, handing each to `done`. */
  drain(done: (token: T, result: number) => void): void {
    while (this.inFlight > 0) {
      this.#ring.wait(1);
      this.reap(done);
    }
  }

  /** Closes the ring (after {@link drain}: no request may be left writing into guest memory). */
  close(): void {
    if (this.inFlight > 0) {
      throw new Error(`io_uring closed with ${this.inFlight} requests in flight`);
    }
    this.#ring.close();
  }
}
