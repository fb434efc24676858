/**
 * `poll(2)` over a fixed set of descriptors, and the eventfd counter operations a device Worker
 * needs around it. Opens its own handle on libc (each isolate opens its own on first use).
 *
 * @module
 */

import { Errno } from "./errno.ts";
import { errno, lastError } from "./libc.ts";

/** `struct pollfd` (`<poll.h>`): `int fd; short events; short revents;`. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;
/** `<asm-generic/poll.h>`: there is data to read. */
export const POLLIN = 0x001;
/** Error condition (always reported). */
export const POLLERR = 0x008;
/** Hung up (always reported). */
export const POLLHUP = 0x010;
/** The descriptor is not open (always reported). */
export const POLLNVAL = 0x020;

/** An eventfd counter is a u64 (`eventfd(2)`): reads and writes move exactly 8 bytes. */
export const EVENTFD_COUNTER_SIZE = 8;

const SYMBOLS = {
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function symbols(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

/** A set of descriptors to wait on for input, with a reusable `struct pollfd` array. */
export class PollSet {
  readonly #fds: readonly number[];
  readonly #buffer: Uint8Array;
  readonly #view: DataView;

  /**
   * Watches `fds` for input.
   * @param fds the descriptors, in the order {@link wait} reports them
   */
  constructor(fds: readonly number[]) {
    this.#fds = [...fds];
    this.#buffer = new Uint8Array(fds.length * POLLFD.size);
    this.#view = new DataView(this.#buffer.buffer);
    fds.forEach((fd, i) => {
      this.#view.setInt32(i * POLLFD.size + POLLFD.fd, fd, true);
      this.#view.setInt16(i * POLLFD.size + POLLFD.events, POLLIN, true);
    });
  }

  /** The descriptors, in order. */
  get fds(): readonly number[] {
    return this.#fds;
  }

  /**
   * Blocks until at least one descriptor is readable (or `timeoutMs` passes; -1 waits forever),
   * retrying on EINTR. Returns the indices (into {@link fds}) that are readable or in error.
   * @throws SyscallError when poll fails, or RangeError when a descriptor is not open (a bug)
   */
  wait(timeoutMs = -1): number[] {
    let n: number;
    do {
      n = symbols().poll(this.#buffer, BigInt(this.#fds.length), timeoutMs);
    } while (n < 0 && errno() === Errno.EINTR);
    if (n < 0) throw lastError("poll");
    const ready: number[] = [];
    for (let i = 0; i < this.#fds.length && ready.length < n; i++) {
      const revents = this.#view.getInt16(i * POLLFD.size + POLLFD.revents, true);
      if (revents & POLLNVAL) throw new RangeError(`poll: descriptor ${this.#fds[i]} is not open`);
      if (revents & (POLLIN | POLLERR | POLLHUP)) ready.push(i);
    }
    return ready;
  }
}

const counter = new Uint8Array(EVENTFD_COUNTER_SIZE);
const counterView = new DataView(counter.buffer);
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

/**
 * Reads and resets a non-blocking eventfd's counter; returns it (0n when it was already 0).
 * @throws SyscallError for anything but EAGAIN
 */
export function drainEventfd(fd: number): bigint {
  const n = symbols().read(fd, counter, BigInt(EVENTFD_COUNTER_SIZE));
  if (n === BigInt(EVENTFD_COUNTER_SIZE)) return counterView.getBigUint64(0, true);
  if (n < 0n && errno() === Errno.EAGAIN) return 0n;
  throw lastError(`read(eventfd ${fd})`);
}

/**
 * Adds 1 to an eventfd's counter (signals it). Safe from any thread.
 * @throws SyscallError when the write fails (a closed descriptor: a bug)
 */
export function signalEventfd(fd: number): void {
  if (symbols().write(fd, ONE, BigInt(EVENTFD_COUNTER_SIZE)) < 0n) {
    throw lastError(`write(eventfd ${fd})`);
  }
}
