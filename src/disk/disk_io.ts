/**
 * What an asynchronous disk engine offers the block device: vectored reads and writes straight
 * between an open image and guest RAM, and `fdatasync`, each queued with a token of the caller's,
 * handed to the engine in batches ({@link DiskIo.submit}) and completed in whatever order the
 * host finishes them, the engine signalling an eventfd of the caller's as completions arrive.
 * Two engines: io_uring ({@link ./uring_io.ts}) and, where io_uring is unavailable, a pool of
 * threads making the blocking calls ({@link ./pool_io.ts}).
 *
 * @module
 */

import type { BufferRange } from "../memory.ts";

/** An asynchronous engine over one disk image; `T` tags each request. */
export interface DiskIo<T> {
  /** Requests queued and not yet reaped. */
  readonly inFlight: number;
  /** Whether a request with `buffers` guest buffers can be taken now. */
  accepts(buffers: number): boolean;
  /**
   * Queues a read of the file at `offset` into `ranges` (offsets from host address `base`).
   * Check {@link accepts} first.
   */
  read(base: number, ranges: readonly BufferRange[], offset: number, token: T): void;
  /** Queues a write of `ranges` at file `offset`; as {@link read}. */
  write(base: number, ranges: readonly BufferRange[], offset: number, token: T): void;
  /** Queues an `fdatasync` of the file. Check {@link accepts}(0) first. */
  datasync(token: T): void;
  /** Hands every queued request to the host. */
  submit(): void;
  /**
   * Hands `done` every completion that has arrived, with the request's result (bytes moved, or
   * `-errno`), until none is left, including those of requests `done` itself queued. The eventfd
   * is the caller's to drain.
   */
  reap(done: (token: T, result: number) => void): void;
  /** Waits for every request in flight to complete, handing each to `done`. */
  drain(done: (token: T, result: number) => void): void;
  /** Frees the engine (after {@link drain}: no request may be left writing into guest memory). */
  close(): void;
}
