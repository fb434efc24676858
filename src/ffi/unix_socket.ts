/**
 * Unix-domain sockets by path through libc (Deno has no seqpacket sockets of its own, and none
 * of its sockets can be handed to another process): SOCK_SEQPACKET and SOCK_STREAM listening,
 * accepting and connecting, datagrams in and out, and stream bytes in and out, all without
 * blocking and without SIGPIPE.
 *
 * @module
 */

import { Errno } from "./errno.ts";
import {
  AF_UNIX,
  check,
  cString,
  errno,
  lastError,
  libc,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
} from "./libc.ts";

/** `socket(2)` type flag from `<bits/socket_type.h>`: non-blocking (the value of O_NONBLOCK). */
const SOCK_NONBLOCK = 0o4000;
/** `send(2)` flag from `<bits/socket.h>`: no SIGPIPE when the peer has gone (EPIPE instead). */
const MSG_NOSIGNAL = 0x4000;
/** `send(2)`/`recv(2)` flag from `<bits/socket.h>`: do not block this call. */
const MSG_DONTWAIT = 0x40;
/** `recv(2)` flag from `<bits/socket.h>`: return the datagram's real length even if cut short. */
const MSG_TRUNC = 0x20;
/** `shutdown(2)` from `<sys/socket.h>`: no more transmissions; no more of either. */
const SHUT_WR = 1;
const SHUT_RDWR = 2;
/** `socket(2)` type from `<bits/socket_type.h>`: a byte stream. */
export const SOCK_STREAM = 1;
/** `struct sockaddr_un` (`<sys/un.h>`): `sa_family_t sun_family` then `char sun_path[108]`. */
const SOCKADDR_UN = { size: 110, family: 0, path: 2, pathBytes: 108 } as const;
/** Connections the kernel queues before {@link acceptConnection} takes them. */
const LISTEN_BACKLOG = 16;

/**
 * The `struct sockaddr_un` for `path`.
 * @throws RangeError when `path` does not fit `sun_path` with its NUL
 */
function socketAddress(path: string): Uint8Array {
  const name = cString(path);
  if (name.length > SOCKADDR_UN.pathBytes) {
    throw new RangeError(
      `socket path ${path} is ${name.length - 1} bytes long: at most ${SOCKADDR_UN.pathBytes - 1}`,
    );
  }
  const address = new Uint8Array(SOCKADDR_UN.size);
  new DataView(address.buffer).setUint16(SOCKADDR_UN.family, AF_UNIX, true);
  address.set(name, SOCKADDR_UN.path);
  return address;
}

/**
 * A non-blocking SOCK_SEQPACKET socket bound to `path`, with mode `mode` and then listening (the
 * mode is set before `listen`, so nobody can connect while it is wider).
 * @throws SyscallError (EADDRINUSE when something exists at `path`), RangeError for a long path
 */
export function listenSeqpacket(path: string, mode: number): number {
  return listenUnix(path, mode, SOCK_SEQPACKET);
}

/** {@link listenSeqpacket} for a SOCK_STREAM socket. */
export function listenStream(path: string, mode: number): number {
  return listenUnix(path, mode, SOCK_STREAM);
}

function listenUnix(path: string, mode: number, type: number): number {
  const address = socketAddress(path);
  const fd = check(
    libc().socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
    () => "socket(AF_UNIX)",
  );
  try {
    check(libc().bind(fd, address, address.length), () => `bind(${path})`);
    Deno.chmodSync(path, mode);
    check(libc().listen(fd, LISTEN_BACKLOG), () => `listen(${path})`);
    return fd;
  } catch (e) {
    libc().close(fd);
    throw e;
  }
}

/** The next connection waiting on listening socket `fd` (non-blocking), or null when none is. */
export function acceptConnection(fd: number): number | null {
  const client = libc().accept4(fd, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (client >= 0) return client;
  const code = errno();
  if (code === Errno.EAGAIN || code === Errno.EINTR) return null;
  throw lastError("accept4");
}

/**
 * A blocking SOCK_SEQPACKET connection to the socket at `path`.
 * @throws SyscallError (ENOENT: nothing there; ECONNREFUSED: nobody listens)
 */
export function connectSeqpacket(path: string): number {
  return connectUnix(path, SOCK_SEQPACKET);
}

/**
 * A non-blocking SOCK_STREAM connection to the socket at `path`, connected at once (a Unix
 * socket's connect does not wait for the peer to accept).
 * @throws SyscallError (ENOENT: nothing there; ECONNREFUSED: nobody listens; EAGAIN: its
 *   backlog is full), RangeError for a long path
 */
export function connectStream(path: string): number {
  return connectUnix(path, SOCK_STREAM | SOCK_NONBLOCK);
}

/** A close-on-exec Unix socket of `type` (with its flags) connected to `path`. */
function connectUnix(path: string, type: number): number {
  const address = socketAddress(path);
  const fd = check(libc().socket(AF_UNIX, type | SOCK_CLOEXEC, 0), () => "socket(AF_UNIX)");
  try {
    check(libc().connect(fd, address, address.length), () => `connect(${path})`);
    return fd;
  } catch (e) {
    libc().close(fd);
    throw e;
  }
}

/**
 * A stream socket's connection is unusable: the peer closed or reset it, or it failed. Only
 * our own mistakes (a descriptor that is not an open socket, a bad buffer) are thrown instead.
 */
export const PEER_GONE = -1;

/** errno values that are the caller's mistake rather than the connection's fate. */
const CALLER_ERRORS: ReadonlySet<number> = new Set([
  Errno.EBADF,
  Errno.ENOTSOCK,
  Errno.EFAULT,
  Errno.EINVAL,
]);

/** What a failed stream call means: nothing yet (null), or {@link PEER_GONE}. */
function streamFailure(call: string): null | typeof PEER_GONE {
  const code = errno();
  if (code === Errno.EAGAIN || code === Errno.EINTR) return null;
  if (CALLER_ERRORS.has(code)) throw lastError(call);
  return PEER_GONE;
}

/**
 * Sends what of `bytes` fits now on stream socket `fd`: the count sent (0 when its buffer is
 * full), or {@link PEER_GONE}.
 * @throws SyscallError for a descriptor that is not an open socket (a bug)
 */
export function sendSome(fd: number, bytes: Uint8Array): number {
  const n = Number(libc().send(fd, bytes, BigInt(bytes.length), MSG_DONTWAIT | MSG_NOSIGNAL));
  return n >= 0 ? n : streamFailure(`send(${fd})`) ?? 0;
}

/**
 * Receives what stream socket `fd` has now into `buf`: the count, 0 at end of stream (the peer
 * will send no more), null when nothing is there yet, or {@link PEER_GONE}.
 * @throws SyscallError for a descriptor that is not an open socket (a bug)
 */
export function receiveSome(fd: number, buf: Uint8Array): number | null {
  const n = Number(libc().recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT));
  return n >= 0 ? n : streamFailure(`recv(${fd})`);
}

/** `shutdown(fd, SHUT_WR)`: the peer reads end of stream after what was sent; errors ignored. */
export function shutdownSending(fd: number): void {
  libc().shutdown(fd, SHUT_WR);
}

/** What {@link receiveDatagram} found. */
export type Datagram =
  | { readonly kind: "datagram"; readonly bytes: Uint8Array }
  /** Longer than the buffer: its length, the rest is gone. */
  | { readonly kind: "oversized"; readonly length: number }
  | { readonly kind: "none" }
  | { readonly kind: "closed" };

/**
 * Takes the next datagram from `fd` without blocking, into `buf` (a view of it is returned).
 * A peer that closed is `closed` (end of file, or ECONNRESET with our replies unread).
 */
export function receiveDatagram(fd: number, buf: Uint8Array): Datagram {
  const n = Number(libc().recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT | MSG_TRUNC));
  if (n > buf.length) return { kind: "oversized", length: n };
  if (n > 0) return { kind: "datagram", bytes: buf.subarray(0, n) };
  if (n === 0) return { kind: "closed" };
  const code = errno();
  if (code === Errno.EAGAIN || code === Errno.EINTR) return { kind: "none" };
  if (code === Errno.ECONNRESET) return { kind: "closed" };
  throw lastError(`recv(${fd})`);
}

/**
 * Sends `bytes` as one datagram; false when it cannot go now (a full socket buffer: the peer
 * does not read) or the peer has gone.
 */
export function sendDatagram(fd: number, bytes: Uint8Array): boolean {
  return Number(libc().send(fd, bytes, BigInt(bytes.length), MSG_DONTWAIT | MSG_NOSIGNAL)) ===
    bytes.length;
}

/** Sends `bytes` as one datagram, waiting for room. @throws SyscallError (EPIPE: peer gone) */
export function sendDatagramBlocking(fd: number, bytes: Uint8Array): void {
  check(Number(libc().send(fd, bytes, BigInt(bytes.length), MSG_NOSIGNAL)), () => `send(${fd})`);
}

/** `shutdown(fd, SHUT_RDWR)`: wakes whoever waits on it; errors (not connected) are ignored. */
export function shutdownSocket(fd: number): void {
  libc().shutdown(fd, SHUT_RDWR);
}
