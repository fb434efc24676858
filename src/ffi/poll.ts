/**
 * `poll(2)` over a fixed set of descriptors, through the libc handle of `libc.ts`.
 *
 * @module
 */

import { Errno } from "./errno.ts";
import { errno, lastError, libc } from "./libc.ts";

/** `struct pollfd` (`<poll.h>`): `int fd; short events; short revents;`. */
const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;
/** `<asm-generic/poll.h>`: there is data to read. */
const POLLIN = 0x001;
/** Error condition (always reported). */
const POLLERR = 0x008;
/** Hung up (always reported). */
const POLLHUP = 0x010;
/** The descriptor is not open (always reported). */
const POLLNVAL = 0x020;

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

  /** Watches descriptor `index` or leaves it out of the next waits (poll skips a negative fd). */
  watch(index: number, on: boolean): void {
    const fd = this.#fds[index];
    this.#view.setInt32(index * POLLFD.size + POLLFD.fd, on ? fd : -1 - fd, true);
  }

  /**
   * Blocks until at least one descriptor is readable (or `timeoutMs` passes; -1 waits forever),
   * retrying on EINTR. Returns the indices (into {@link fds}) that are readable or in error.
   * @throws SyscallError when poll fails, or RangeError when a descriptor is not open (a bug)
   */
  wait(timeoutMs = -1): number[] {
    let n: number;
    do {
      n = libc().poll(this.#buffer, BigInt(this.#fds.length), timeoutMs);
    } while (n < 0 && errno() === Errno.EINTR);
    if (n < 0) throw lastError("poll");
    return this.#ready(n);
  }

  /**
   * {@link wait} on a libc worker thread, without blocking the event loop. errno is not
   * available there: a failed poll (EINTR) reports no descriptor ready, and the caller waits
   * again.
   * @throws RangeError when a descriptor is not open (a bug)
   */
  async waitAsync(timeoutMs = -1): Promise<number[]> {
    const n = await libc().poll_async(this.#buffer, BigInt(this.#fds.length), timeoutMs);
    return n < 0 ? [] : this.#ready(n);
  }

  /** The indices of the `n` descriptors poll reported. */
  #ready(n: number): number[] {
    const ready: number[] = [];
    for (let i = 0; i < this.#fds.length && ready.length < n; i++) {
      const revents = this.#view.getInt16(i * POLLFD.size + POLLFD.revents, true);
      if (revents & POLLNVAL) throw new RangeError(`poll: descriptor ${this.#fds[i]} is not open`);
      if (revents & (POLLIN | POLLERR | POLLHUP)) ready.push(i);
    }
    return ready;
  }
}
