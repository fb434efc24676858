/**
 * The two operations on an eventfd's counter (`eventfd(2)`): signal it (add 1) and drain it
 * (read and reset it). Create one with `eventfd` from `libc.ts`.
 *
 * @module
 */

import { Errno } from "./errno.ts";
import { errno, lastError, libc } from "./libc.ts";

/** An eventfd counter is a u64 (`eventfd(2)`): reads and writes move exactly 8 bytes. */
const EVENTFD_COUNTER_SIZE = 8;
const COUNTER_LENGTH = BigInt(EVENTFD_COUNTER_SIZE);

/** The 1 that {@link signalEventfd} adds, as the host-endian u64 the kernel reads. */
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const counter = new Uint8Array(EVENTFD_COUNTER_SIZE);
const counterView = new DataView(counter.buffer);

/**
 * Adds 1 to an eventfd's counter (signals it): pulses an irqfd's GSI, rings a doorbell, wakes a
 * poller. Safe from any thread.
 * @throws SyscallError when the write fails (a closed descriptor: a bug)
 */
export function signalEventfd(fd: number): void {
  if (libc().write(fd, ONE, COUNTER_LENGTH) < 0n) throw lastError(`write(eventfd ${fd})`);
}

/**
 * Reads and resets a non-blocking eventfd's counter; returns it (0n when it was already 0).
 * @throws SyscallError for anything but EAGAIN
 */
export function drainEventfd(fd: number): bigint {
  const n = libc().read(fd, counter, COUNTER_LENGTH);
  if (n === COUNTER_LENGTH) return counterView.getBigUint64(0, true);
  if (n < 0n && errno() === Errno.EAGAIN) return 0n;
  throw lastError(`read(eventfd ${fd})`);
}
