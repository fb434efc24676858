/**
 * The VM's control socket, as crosvm's `-s/--socket`: a SOCK_SEQPACKET socket at a path, mode
 * 0600, where any number of clients (up to {@link MAX_CLIENTS} at once) send requests, one per
 * datagram, and get one reply each, in order. One `poll(2)` on a libc worker thread watches the
 * listening socket and every client, so the event loop never blocks and the VM's own work goes
 * on; a client's next request is read only once its last one has been answered.
 *
 * Nothing a client does can hurt the VM: a datagram that is not a request, an unknown request
 * or an oversized one gets an `ErrString` reply; a client that leaves mid-request, or does not
 * read its replies, is dropped.
 *
 * @module
 */

import { drainEventfd, signalEventfd } from "../ffi/eventfd.ts";
import { close, EFD_NONBLOCK, eventfd } from "../ffi/libc.ts";
import { PollSet } from "../ffi/poll.ts";
import {
  acceptConnection,
  connectSeqpacket,
  listenSeqpacket,
  receiveDatagram,
  sendDatagram,
} from "../ffi/unix_socket.ts";
import { SyscallError } from "../ffi/errno.ts";
import * as log from "../log.ts";
import { UserError } from "../errors.ts";
import { clearStaleSocket, isDenoError, lstat, SocketPathError } from "../socket_path.ts";
import {
  type ControlRequest,
  type ControlResponse,
  decodeRequest,
  encodeResponse,
  ProtocolError,
} from "./protocol.ts";

/** The socket file's mode: only its owner may connect (crosvm's is the same). */
export const SOCKET_MODE = 0o600;
/** Clients connected at once; one more is closed as soon as it is accepted. */
export const MAX_CLIENTS = 32;
/** The longest request taken (crosvm's are well under 1 KiB). */
export const MAX_REQUEST_BYTES = 64 * 1024;

/** Serves one request; rejections become `ErrString` replies. */
export type RequestHandler = (request: ControlRequest) => Promise<ControlResponse>;

/** The control socket's path or its directory could not be used. */
export class ControlSocketError extends UserError {}

/** A client: its socket, and whether one of its requests is being served. */
interface Client {
  readonly fd: number;
  busy: boolean;
}

/** A listening control socket. */
export class ControlServer {
  readonly #listenFd: number;
  /** Signalled to make the poll look again (a reply went out, or the server is closing). */
  readonly #wake: number;
  readonly #clients = new Set<Client>();
  readonly #buffer = new Uint8Array(MAX_REQUEST_BYTES);
  #closed = false;
  #loop: Promise<void> | undefined;

  private constructor(readonly path: string, listenFd: number) {
    this.#listenFd = listenFd;
    this.#wake = eventfd(0, EFD_NONBLOCK);
  }

  /**
   * Creates the socket at `path`, or `path/crosvm-<pid>.sock` when `path` is a directory. A
   * socket that nobody listens on any more (left by a VM that died) is replaced; a live one, or
   * anything that is not a socket, is refused and left alone.
   * @throws ControlSocketError (one line) when the path cannot be used
   */
  static listen(path: string): ControlServer {
    let socketPath = path;
    try {
      if (lstat(path)?.isDirectory) socketPath = `${path}/crosvm-${Deno.pid}.sock`;
      clearStaleSocket(socketPath, connectSeqpacket);
      return new ControlServer(socketPath, listenSeqpacket(socketPath, SOCKET_MODE));
    } catch (e) {
      const known = e instanceof SocketPathError || e instanceof SyscallError ||
        e instanceof RangeError || isDenoError(e);
      if (!known) throw e;
      throw new ControlSocketError(`control socket ${socketPath}: ${(e as Error).message}`);
    }
  }

  /** Starts answering requests with `handler` until {@link close}. */
  serve(handler: RequestHandler): void {
    this.#loop ??= this.#run(handler);
  }

  /** Stops serving, disconnects every client and removes the socket file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    signalEventfd(this.#wake);
    await this.#loop;
    for (const client of this.#clients) close(client.fd);
    this.#clients.clear();
    close(this.#listenFd);
    close(this.#wake);
    Deno.removeSync(this.path);
  }

  async #run(handler: RequestHandler): Promise<void> {
    while (!this.#closed) {
      const idle = [...this.#clients].filter((c) => !c.busy);
      const poll = new PollSet([this.#wake, this.#listenFd, ...idle.map((c) => c.fd)]);
      const ready = await poll.waitAsync();
      if (this.#closed) return;
      // Clients first: one that hung up frees its place for a connection waiting to be accepted.
      for (const i of ready) if (i >= 2) this.#read(idle[i - 2], handler);
      if (ready.includes(0)) drainEventfd(this.#wake);
      if (ready.includes(1)) this.#accept();
    }
  }

  #accept(): void {
    for (
      let fd = acceptConnection(this.#listenFd);
      fd !== null;
      fd = acceptConnection(this.#listenFd)
    ) {
      if (this.#clients.size >= MAX_CLIENTS) {
        log.warn(`control socket: ${MAX_CLIENTS} clients already; one more refused`);
        close(fd);
      } else {
        this.#clients.add({ fd, busy: false });
      }
    }
  }

  /** Takes the client's next datagram and serves it (or drops a client that has gone). */
  #read(client: Client, handler: RequestHandler): void {
    const datagram = receiveDatagram(client.fd, this.#buffer);
    switch (datagram.kind) {
      case "none":
        return;
      case "closed":
        this.#drop(client);
        return;
      case "oversized":
        this.#reply(client, {
          kind: "err-string",
          message: `request of ${datagram.length} bytes: at most ${MAX_REQUEST_BYTES}`,
        });
        return;
      case "datagram": {
        let request: ControlRequest;
        try {
          request = decodeRequest(datagram.bytes);
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
          this.#reply(client, { kind: "err-string", message: `bad request: ${e.message}` });
          return;
        }
        client.busy = true;
        Promise.resolve().then(() => handler(request))
          .catch((e): ControlResponse => ({ kind: "err-string", message: (e as Error).message }))
          .then((response) => {
            client.busy = false;
            if (this.#clients.has(client)) this.#reply(client, response);
            if (!this.#closed) signalEventfd(this.#wake);
          });
      }
    }
  }

  /** Sends a reply; a client that cannot take it (gone, or not reading) is dropped. */
  #reply(client: Client, response: ControlResponse): void {
    if (!sendDatagram(client.fd, encodeResponse(response))) this.#drop(client);
  }

  #drop(client: Client): void {
    if (!this.#clients.delete(client)) return;
    close(client.fd);
  }
}
