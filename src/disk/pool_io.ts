/**
 * Asynchronous I/O on an open disk image through a pool of threads ({@link ./pool_thread.ts}),
 * for hosts where io_uring is unavailable or forbidden (an old kernel, `kernel.io_uring_disabled`,
 * a container runtime's seccomp profile): each thread makes one blocking `preadv`, `pwritev` or
 * `fdatasync` at a time, straight between the file and guest RAM, so as many requests as there
 * are threads run at once and complete in whatever order they finish, as QEMU's `aio=threads`.
 *
 * The device and the threads share two SharedArrayBuffers: a submission ring of slot indices
 * (the device publishes its tail at {@link PoolDiskIo.submit}; threads take entries with
 * compare-and-swap and sleep in `Atomics.wait` while it is empty), a completion ring (a thread
 * claims an entry with an atomic add and fills it; the device reads entries in order and stops at
 * one not yet filled), and each slot's operation, descriptor, iovec count, address, offset and
 * result. A thread signals the pool's eventfd after each completion, for the device's poll loop.
 *
 * The threads start when the pool is made and are waited for: a pool made under a seccomp filter
 * (a jailed device) needs, besides the calls themselves, what a Worker's start makes (its event
 * loop's epoll instance and eventfd, `fcntl`, `getrandom`, `sysinfo`), listed in the block
 * device's policy.
 *
 * @module
 */

import type { BufferRange } from "../memory.ts";
import type { DiskIo } from "./disk_io.ts";
import { type PoolLayout, type PoolThreadInit, poolThreadMain } from "./pool_thread.ts";
import { RequestSlots } from "./request_slots.ts";

/**
 * Threads in a pool: enough to keep a fast disk's queue busy at the depths guests use, few enough
 * that each (a V8 isolate of its own, a few MiB) is cheap (QEMU's pool starts threads on demand,
 * up to 64).
 */
export const POOL_THREADS = 8;
/**
 * Descriptors each thread holds: its event loop's epoll instance and eventfd and the runtime's
 * duplicates of them and of stdio (6 measured, with room).
 */
const DESCRIPTORS_PER_THREAD = 8;
/** Descriptors a pool holds, for a process whose RLIMIT_NOFILE is capped (a jailed device). */
export const POOL_DESCRIPTORS = POOL_THREADS * DESCRIPTORS_PER_THREAD;
/** How long the pool waits for its threads to start before giving up. */
const START_TIMEOUT_MS = 30_000;
/** Words before the rings: the ring indices and flags of {@link PoolLayout}. */
const HEADER_WORDS = 8;
/** Words per slot: operation, descriptor, iovec count, result. */
const SLOT_WORDS = 4;
/** Float64s per slot: the iovec array's address and the file offset. */
const SLOT_NUMBERS = 2;

/** The shared words' layout for `slots` requests in flight. */
function layoutFor(slots: number): PoolLayout {
  const size = 1 << Math.ceil(Math.log2(Math.max(2, slots)));
  return {
    sqHead: 0,
    sqTail: 1,
    cqTail: 2,
    stop: 3,
    ready: 4,
    sq: HEADER_WORDS,
    cq: HEADER_WORDS + size,
    size,
    slots: HEADER_WORDS + 2 * size,
    slotWords: SLOT_WORDS,
    slotNumbers: SLOT_NUMBERS,
    op: 0,
    fd: 1,
    count: 2,
    result: 3,
    read: 1,
    write: 2,
    datasync: 3,
  };
}

/** The pool thread's module: its body's source text, run as soon as it loads. */
const THREAD_URL = `data:text/javascript,${encodeURIComponent(`(${poolThreadMain})();`)}`;

/** A thread pool over one disk image descriptor; `T` is what the caller tags each request with. */
export class PoolDiskIo<T> implements DiskIo<T> {
  readonly #slots: RequestSlots<T>;
  readonly #layout: PoolLayout;
  readonly #words: Int32Array;
  readonly #values: Float64Array;
  readonly #threads: Worker[] = [];
  /** The submission ring's tail: entries before it are queued, published at {@link submit}. */
  #sqTail = 0;
  #published = 0;
  /** The next completion-ring entry to read. */
  #cqHead = 0;

  /**
   * Starts `threads` threads for up to `depth` requests in flight, completions signalling
   * `eventFd`; returns once every thread waits for requests.
   * @param fd the open image
   * @param eventFd a non-blocking eventfd, signalled on every completion
   * @throws Error when the threads do not start
   */
  constructor(
    readonly fd: number,
    readonly eventFd: number,
    depth: number,
    threads = POOL_THREADS,
  ) {
    this.#slots = new RequestSlots(depth);
    const layout = this.#layout = layoutFor(depth);
    const words = new SharedArrayBuffer((layout.slots + depth * SLOT_WORDS) * 4);
    const numbers = new SharedArrayBuffer(depth * SLOT_NUMBERS * 8);
    this.#words = new Int32Array(words);
    this.#values = new Float64Array(numbers);
    const init: PoolThreadInit = { words, numbers, layout, eventFd };
    try {
      for (let i = 0; i < threads; i++) {
        const thread = new Worker(THREAD_URL, { type: "module", name: `disk-pool-${i}` });
        this.#threads.push(thread);
        thread.postMessage(init);
      }
      const deadline = performance.now() + START_TIMEOUT_MS;
      for (let ready; (ready = Atomics.load(this.#words, layout.ready)) < threads;) {
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`disk thread pool: ${ready} of ${threads} threads started`);
        Atomics.wait(this.#words, layout.ready, ready, left);
      }
    } catch (e) {
      this.#stop();
      throw e;
    }
  }

  /** Requests queued and not yet reaped. */
  get inFlight(): number {
    return this.#slots.inFlight;
  }

  /** Whether a request with `buffers` guest buffers can be taken now. */
  accepts(buffers: number): boolean {
    return this.#slots.accepts(buffers);
  }

  /** Queues a read of the file at `offset` into `ranges` (offsets from host address `base`). */
  read(base: number, ranges: readonly BufferRange[], offset: number, token: T): void {
    this.#queue(this.#layout.read, base, ranges, offset, token);
  }

  /** Queues a write of `ranges` at file `offset`; as {@link read}. */
  write(base: number, ranges: readonly BufferRange[], offset: number, token: T): void {
    this.#queue(this.#layout.write, base, ranges, offset, token);
  }

  /** Queues an `fdatasync` of the file. */
  datasync(token: T): void {
    this.#queue(this.#layout.datasync, 0, [], 0, token);
  }

  /** Publishes every queued request and wakes as many threads. */
  submit(): void {
    const queued = (this.#sqTail - this.#published) | 0;
    if (queued === 0) return;
    Atomics.store(this.#words, this.#layout.sqTail, this.#sqTail);
    this.#published = this.#sqTail;
    Atomics.notify(this.#words, this.#layout.sqTail, queued);
  }

  /**
   * Hands `done` every completion that has arrived (the eventfd is the caller's to drain), until
   * none is left, including those of requests `done` itself queued.
   */
  reap(done: (token: T, result: number) => void): void {
    do this.submit(); while (this.#reapArrived(done) > 0);
  }

  /** Waits for every request in flight to complete, handing each to `done`. */
  drain(done: (token: T, result: number) => void): void {
    while (this.inFlight > 0) {
      this.submit();
      Atomics.wait(this.#words, this.#nextCompletion(), 0);
      this.reap(done);
    }
  }

  /** Ends the threads (after {@link drain}: no request may be left writing into guest memory). */
  close(): void {
    if (this.inFlight > 0) {
      throw new Error(`disk thread pool closed with ${this.inFlight} requests in flight`);
    }
    this.#stop();
  }

  /** Tells every thread to end, wakes those waiting, and terminates their Workers. */
  #stop(): void {
    const words = this.#words;
    Atomics.store(words, this.#layout.stop, 1);
    // A changed tail: a thread about to sleep on the old one does not.
    Atomics.add(words, this.#layout.sqTail, 1);
    Atomics.notify(words, this.#layout.sqTail);
    for (const thread of this.#threads) thread.terminate();
    this.#threads.length = 0;
  }

  /** The completion-ring entry read next. */
  #nextCompletion(): number {
    return this.#layout.cq + (this.#cqHead & (this.#layout.size - 1));
  }

  /** Hands `done` the completions filled in so far, in ring order; returns how many. */
  #reapArrived(done: (token: T, result: number) => void): number {
    const L = this.#layout;
    let reaped = 0;
    for (;;) {
      const entry = this.#nextCompletion();
      const filled = Atomics.load(this.#words, entry);
      if (filled === 0) return reaped;
      Atomics.store(this.#words, entry, 0);
      this.#cqHead = (this.#cqHead + 1) | 0;
      const slot = filled - 1;
      const result = this.#words[L.slots + slot * L.slotWords + L.result];
      done(this.#slots.release(slot), result);
      reaped++;
    }
  }

  /** Takes a slot for `token`, fills in its request and queues it. */
  #queue(op: number, base: number, ranges: readonly BufferRange[], offset: number, token: T) {
    const L = this.#layout;
    const [slot, count, address] = this.#slots.take(base, ranges, token);
    const at = L.slots + slot * L.slotWords;
    this.#words[at + L.op] = op;
    this.#words[at + L.fd] = this.fd;
    this.#words[at + L.count] = count;
    this.#values[SLOT_NUMBERS * slot] = Number(address);
    this.#values[SLOT_NUMBERS * slot + 1] = offset;
    Atomics.store(this.#words, L.sq + (this.#sqTail & (L.size - 1)), slot);
    this.#sqTail = (this.#sqTail + 1) | 0;
  }
}
