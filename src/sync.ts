/**
 * A mutex over one Int32 cell of a SharedArrayBuffer, usable from every thread
 * (main and Workers), in the three-state futex design of Drepper's "Futexes Are Tricky".
 *
 * The cell may also be shared with another process (a jailed device maps the same memfd): the
 * atomic operations then work across processes, but `Atomics.notify` wakes waiters of its own
 * process only. So a waiter never sleeps longer than {@link WAIT_SLICE_MS} before it looks at
 * the lock again: a release in another process costs a contended waiter at most that long, and
 * a release in this process still wakes it at once.
 *
 * @module
 */

const UNLOCKED = 0;
const LOCKED = 1;
const CONTENDED = 2;
/** Longest sleep of a contended waiter before it retries (see the module comment). */
export const WAIT_SLICE_MS = 1;
/**
 * Longest a waiter waits at all. Every holder keeps the lock for microseconds (register
 * accesses); a lock held this long has a holder that hangs or is hostile (a jailed device process
 * may write its lock word), and waiting on would hang the VM.
 */
export const LOCK_TIMEOUT_MS = 5000;

/** The lock was held for longer than {@link LOCK_TIMEOUT_MS}. */
export class LockTimeoutError extends Error {
  /** A lock that stayed held. */
  constructor() {
    super(`a device lock stayed held for more than ${LOCK_TIMEOUT_MS / 1000} s`);
    this.name = "LockTimeoutError";
  }
}

/** A mutex whose state lives at `cells[index]`. Rebuild it in another thread over the same cells. */
export class SharedMutex {
  /**
   * @param cells an Int32Array over a SharedArrayBuffer
   * @param index which cell holds the lock word
   */
  constructor(private readonly cells: Int32Array, private readonly index = 0) {}

  /**
   * Blocks until the lock is held by the caller.
   * @throws LockTimeoutError after {@link LOCK_TIMEOUT_MS} of waiting
   */
  lock(): void {
    let c = Atomics.compareExchange(this.cells, this.index, UNLOCKED, LOCKED);
    if (c === UNLOCKED) return;
    if (c !== CONTENDED) c = Atomics.exchange(this.cells, this.index, CONTENDED);
    const deadline = performance.now() + LOCK_TIMEOUT_MS;
    while (c !== UNLOCKED) {
      if (performance.now() > deadline) throw new LockTimeoutError();
      Atomics.wait(this.cells, this.index, CONTENDED, WAIT_SLICE_MS);
      c = Atomics.exchange(this.cells, this.index, CONTENDED);
    }
  }

  /**
   * Releases the lock whoever holds it, waking every waiter: for a holder known to be gone (a
   * device process that died holding it).
   */
  forceUnlock(): void {
    Atomics.store(this.cells, this.index, UNLOCKED);
    Atomics.notify(this.cells, this.index);
  }

  /** Releases the lock, waking one waiter if there is one. */
  unlock(): void {
    if (Atomics.sub(this.cells, this.index, 1) !== LOCKED) {
      Atomics.store(this.cells, this.index, UNLOCKED);
      Atomics.notify(this.cells, this.index, 1);
    }
  }

  /** Runs `fn` with the lock held. */
  with<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }
}

/**
 * Looks at `condition` every `intervalMs`, without blocking the event loop, until it holds or
 * `timeoutMs` has passed; resolves with whether it held. For state that another process sets in
 * shared memory (a jailed device's answer), where no `Atomics.notify` reaches this one.
 */
export async function pollUntil(
  condition: () => boolean,
  timeoutMs: number,
  intervalMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return true;
}
