/**
 * AF_VSOCK stream sockets (`vsock(7)`), which Deno has none of: connect to a CID and port,
 * listen on a port, and a connection as a duplex byte stream. Calls that block (connect, accept,
 * read, write) run on Deno's blocking pool, so the event loop goes on; errno cannot be read
 * there, so a failed call says which call failed, not why. Closing shuts the socket down first,
 * which wakes a call blocked on it, and closes the descriptor once no call is using it.
 *
 * @module
 */

import { check, close, libc, SOCK_CLOEXEC } from "./libc.ts";

/** `<sys/socket.h>`: the vsock address family. */
export const AF_VSOCK = 40;
/** `<linux/vm_sockets.h>`: any CID (to listen on), and the host's own (loopback). */
export const VMADDR_CID_ANY = 0xffff_ffff;
export const VMADDR_CID_LOCAL = 1;
/** `socket(2)` type from `<bits/socket_type.h>`. */
const SOCK_STREAM = 1;
/** `shutdown(2)`: no more transmissions; no more of either. */
const SHUT_WR = 1;
const SHUT_RDWR = 2;
/** Connections the kernel queues before they are accepted. */
const LISTEN_BACKLOG = 64;
/** Bytes read at a time by {@link VsockConnection.readable}. */
const READ_CHUNK = 64 * 1024;

/** `struct sockaddr_vm` (`<linux/vm_sockets.h>`): family, reserved, port, CID, flags, zero. */
export const SOCKADDR_VM = { size: 16, family: 0, port: 4, cid: 8 } as const;

/** The `struct sockaddr_vm` of `cid`:`port`. */
function vsockAddress(cid: number, port: number): Uint8Array {
  const address = new Uint8Array(SOCKADDR_VM.size);
  const view = new DataView(address.buffer);
  view.setUint16(SOCKADDR_VM.family, AF_VSOCK, true);
  view.setUint32(SOCKADDR_VM.port, port, true);
  view.setUint32(SOCKADDR_VM.cid, cid, true);
  return address;
}

/** A vsock call that failed (connect refused or timed out, bind taken, the socket closed). */
export class VsockSocketError extends Error {}

/** A socket descriptor whose blocking calls run on the pool, closed once none is running. */
class PooledSocket {
  #busy = 0;
  #closing = false;

  constructor(readonly fd: number) {}

  /** Runs `call` (a blocking-pool FFI call on the descriptor) unless the socket is closing. */
  async run<T>(call: (fd: number) => Promise<T>): Promise<T | null> {
    if (this.#closing) return null;
    this.#busy++;
    try {
      return await call(this.fd);
    } finally {
      this.#busy--;
      if (this.#closing && this.#busy === 0) close(this.fd);
    }
  }

  /** Shuts down the sending side: the peer reads the end of the stream. */
  shutdownSending(): void {
    if (!this.#closing) libc().shutdown(this.fd, SHUT_WR);
  }

  /** Shuts the socket down (waking a blocked call); the descriptor closes when calls are done. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    libc().shutdown(this.fd, SHUT_RDWR);
    if (this.#busy === 0) close(this.fd);
  }
}

/** A connected vsock stream. */
export class VsockConnection {
  readonly #socket: PooledSocket;
  /** The bytes coming from the peer, until it shuts its side down. */
  readonly readable: ReadableStream<Uint8Array>;
  /** The bytes going to the peer; closing it shuts the sending side down (the peer sees the end). */
  readonly writable: WritableStream<Uint8Array>;

  /** A connection on the connected socket `fd`, which it now owns. */
  constructor(fd: number) {
    this.#socket = new PooledSocket(fd);
    this.readable = new ReadableStream({
      pull: async (controller) => {
        const chunk = new Uint8Array(READ_CHUNK);
        const n = await this.read(chunk);
        if (n === null) controller.close();
        else controller.enqueue(chunk.subarray(0, n));
      },
    });
    this.writable = new WritableStream({
      write: async (chunk) => {
        for (let done = 0; done < chunk.length;) done += await this.write(chunk.subarray(done));
      },
      close: () => this.#socket.shutdownSending(),
    });
  }

  /** Reads into `p`: the count, or null at the end of the stream (or once closed). */
  async read(p: Uint8Array): Promise<number | null> {
    const n = await this.#socket.run((fd) => libc().read_async(fd, p, BigInt(p.length)));
    return n === null || n <= 0n ? null : Number(n);
  }

  /**
   * Writes from `p`; the count written.
   * @throws VsockSocketError when the connection is gone
   */
  async write(p: Uint8Array): Promise<number> {
    const n = await this.#socket.run((fd) => libc().write_async(fd, p, BigInt(p.length)));
    if (n === null || n < 0n) {
      throw new VsockSocketError("vsock: write failed: the connection is gone");
    }
    return Number(n);
  }

  /** Closes the connection (a read or write under way ends). */
  close(): void {
    this.#socket.close();
  }
}

/** A new close-on-exec AF_VSOCK stream socket. */
function vsockSocket(): number {
  return check(libc().socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), () => "socket(AF_VSOCK)");
}

/**
 * A connection to `cid`:`port`.
 * @throws VsockSocketError when nobody listens there, or the peer does not answer
 */
export async function connectVsock(cid: number, port: number): Promise<VsockConnection> {
  const fd = vsockSocket();
  const address = vsockAddress(cid, port);
  if (await libc().connect_async(fd, address, address.length) !== 0) {
    close(fd);
    throw new VsockSocketError(`vsock: connect to CID ${cid} port ${port} failed`);
  }
  return new VsockConnection(fd);
}

/** Connections accepted on a vsock port. */
export class VsockListener implements AsyncIterable<VsockConnection> {
  readonly #socket: PooledSocket;

  /**
   * Listens on `port` of every CID this host has.
   * @throws SyscallError when the port is taken (EADDRINUSE)
   */
  constructor(readonly port: number) {
    const fd = vsockSocket();
    const address = vsockAddress(VMADDR_CID_ANY, port);
    try {
      check(libc().bind(fd, address, address.length), () => `bind(vsock port ${port})`);
      check(libc().listen(fd, LISTEN_BACKLOG), () => `listen(vsock port ${port})`);
    } catch (e) {
      close(fd);
      throw e;
    }
    this.#socket = new PooledSocket(fd);
  }

  /**
   * The next connection.
   * @throws VsockSocketError once the listener is closed
   */
  async accept(): Promise<VsockConnection> {
    const fd = await this.#socket.run((listening) =>
      libc().accept4_async(listening, null, null, SOCK_CLOEXEC)
    );
    if (fd === null || fd < 0) throw new VsockSocketError(`vsock: port ${this.port} is closed`);
    return new VsockConnection(fd);
  }

  /** Stops listening (an accept under way ends). */
  close(): void {
    this.#socket.close();
  }

  /** Each connection as it comes, until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<VsockConnection> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (e) {
        if (e instanceof VsockSocketError) return;
        throw e;
      }
    }
  }
}
