/**
 * A device's registers as bytes of one SharedArrayBuffer, behind a {@link SharedMutex} whose lock
 * word sits in the same buffer: every thread's model built over that buffer is the same device.
 * The legacy devices (UART, i8042, CMOS) keep their state this way (ARCHITECTURE.md, "Shared state
 * and locking").
 *
 * @module
 */

import { SharedMutex } from "../sync.ts";

/** The lock word takes the buffer's first Int32 cell; the register bytes follow it. */
const LOCK_BYTES = Int32Array.BYTES_PER_ELEMENT;

/** One thread's view of a device's shared register bytes and their lock. */
export class LockedRegisters {
  /**
   * Fresh state for `size` register bytes, unlocked, to share between threads.
   * @param size register bytes the device needs
   * @param reset sets the power-on values (the bytes are zero before it runs)
   */
  static createState(size: number, reset?: (bytes: Uint8Array) => void): SharedArrayBuffer {
    const state = new SharedArrayBuffer(LOCK_BYTES + size);
    reset?.(new Uint8Array(state, LOCK_BYTES));
    return state;
  }

  /** The register bytes (offset 0 is the first byte past the lock word). */
  readonly bytes: Uint8Array;
  readonly #lock: SharedMutex;

  /** @param state from {@link LockedRegisters.createState}, the same in every thread */
  constructor(state: SharedArrayBuffer) {
    this.#lock = new SharedMutex(new Int32Array(state, 0, 1));
    this.bytes = new Uint8Array(state, LOCK_BYTES);
  }

  /** Runs `fn` with the lock held; only then may it touch {@link bytes}. */
  with<T>(fn: () => T): T {
    return this.#lock.with(fn);
  }
}
