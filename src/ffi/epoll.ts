/**
 * An `epoll(7)` instance over a changing set of descriptors, each registered with a number of
 * the caller's choosing (its `data`), and a monotonic `timerfd_create(2)` timer. An epoll
 * descriptor is itself readable while any of its descriptors is ready, so a device with many
 * connections gives its loop one descriptor to poll.
 *
 * @module
 */

import { Errno } from "./errno.ts";
import { check, errno, lastError, libc, O_CLOEXEC, O_NONBLOCK } from "./libc.ts";

/** `<sys/epoll.h>` `epoll_ctl` operations. */
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
/** `<sys/epoll.h>` `epoll_create1` flag (the value of O_CLOEXEC). */
const EPOLL_CLOEXEC = O_CLOEXEC;

/** `<sys/epoll.h>` event bits. */
export const EpollEvent = {
  EPOLLIN: 0x001,
  EPOLLOUT: 0x004,
  EPOLLERR: 0x008,
  EPOLLHUP: 0x010,
  EPOLLRDHUP: 0x2000,
} as const;

/** `struct epoll_event` on x86_64: packed, `uint32_t events` then `uint64_t data`. */
const EPOLL_EVENT = { size: 12, events: 0, data: 4 } as const;
/** Events taken per {@link Epoll.ready} call. */
const MAX_EVENTS = 64;

/** One ready descriptor: the number it was registered with and what it is ready for. */
export interface EpollReady {
  readonly key: number;
  readonly events: number;
}

/** An epoll instance (level-triggered). */
export class Epoll {
  /** The epoll descriptor: poll it for input to learn that something is ready. */
  readonly fd: number;
  readonly #one = new Uint8Array(EPOLL_EVENT.size);
  readonly #oneView = new DataView(this.#one.buffer);
  readonly #events = new Uint8Array(EPOLL_EVENT.size * MAX_EVENTS);
  readonly #eventsView = new DataView(this.#events.buffer);

  /** A new, empty instance (close-on-exec). @throws SyscallError */
  constructor() {
    this.fd = check(libc().epoll_create1(EPOLL_CLOEXEC), () => "epoll_create1");
  }

  /** Watches `fd` for `events`, reported with `key`. @throws SyscallError */
  add(fd: number, key: number, events: number): void {
    this.#ctl(EPOLL_CTL_ADD, fd, key, events);
  }

  /** Changes what `fd` is watched for. @throws SyscallError */
  modify(fd: number, key: number, events: number): void {
    this.#ctl(EPOLL_CTL_MOD, fd, key, events);
  }

  /** Stops watching `fd` (closing it does too, once no other descriptor refers to it). */
  remove(fd: number): void {
    libc().epoll_ctl(this.fd, EPOLL_CTL_DEL, fd, this.#one);
  }

  /** The descriptors ready now (no waiting), up to {@link MAX_EVENTS}. @throws SyscallError */
  ready(): EpollReady[] {
    const n = libc().epoll_wait(this.fd, this.#events, MAX_EVENTS, 0);
    if (n < 0) {
      if (errno() === Errno.EINTR) return [];
      throw lastError("epoll_wait");
    }
    return Array.from({ length: n }, (_, i) => ({
      events: this.#eventsView.getUint32(i * EPOLL_EVENT.size + EPOLL_EVENT.events, true),
      key: Number(this.#eventsView.getBigUint64(i * EPOLL_EVENT.size + EPOLL_EVENT.data, true)),
    }));
  }

  /** Closes the instance. */
  close(): void {
    libc().close(this.fd);
  }

  #ctl(op: number, fd: number, key: number, events: number): void {
    this.#oneView.setUint32(EPOLL_EVENT.events, events, true);
    this.#oneView.setBigUint64(EPOLL_EVENT.data, BigInt(key), true);
    check(libc().epoll_ctl(this.fd, op, fd, this.#one), () => `epoll_ctl(${fd})`);
  }
}

/** `<time.h>`: the clock that never jumps. */
const CLOCK_MONOTONIC = 1;
/** `<sys/timerfd.h>` flags (the values of O_NONBLOCK and O_CLOEXEC). */
const TFD_NONBLOCK = O_NONBLOCK;
const TFD_CLOEXEC = O_CLOEXEC;
/** `struct itimerspec`: interval then first expiry, each a `struct timespec` (s, ns). */
const ITIMERSPEC = { size: 32, intervalSec: 0, intervalNsec: 8, valueSec: 16, valueNsec: 24 };
const NS_PER_MS = 1_000_000;
const MS_PER_S = 1000;

/** A periodic monotonic timer whose descriptor is readable once a period has passed. */
export class IntervalTimer {
  /** The timer's descriptor (non-blocking, close-on-exec). */
  readonly fd: number;
  readonly #spec = new Uint8Array(ITIMERSPEC.size);
  readonly #counter = new Uint8Array(8);

  /** A stopped timer. @throws SyscallError */
  constructor() {
    this.fd = check(
      libc().timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
      () => "timerfd_create",
    );
  }

  /** Fires every `periodMs` from now on; 0 stops it. @throws SyscallError */
  set(periodMs: number): void {
    const view = new DataView(this.#spec.buffer);
    const sec = BigInt(Math.floor(periodMs / MS_PER_S));
    const nsec = BigInt((periodMs % MS_PER_S) * NS_PER_MS);
    for (
      const [s, ns] of [[ITIMERSPEC.intervalSec, ITIMERSPEC.intervalNsec], [
        ITIMERSPEC.valueSec,
        ITIMERSPEC.valueNsec,
      ]]
    ) {
      view.setBigInt64(s, sec, true);
      view.setBigInt64(ns, nsec, true);
    }
    check(libc().timerfd_settime(this.fd, 0, this.#spec, null), () => "timerfd_settime");
  }

  /** Takes the expiries so far (the descriptor is no longer readable until the next). */
  acknowledge(): void {
    libc().read(this.fd, this.#counter, 8n);
  }

  /** Closes the timer. */
  close(): void {
    libc().close(this.fd);
  }
}
