/**
 * A typed client of a VM's control socket (ours or crosvm's): the operations of {@link Vm}'s
 * control API, as promises, over the socket.
 *
 * ```ts
 * import { connect } from "./mod.ts";
 *
 * using vm = connect("/run/crosvm.sock");
 * await vm.suspend({ full: true });
 * await vm.resume({ full: true });
 * console.log(await vm.balloonStats());
 * ```
 *
 * @module
 */

import { errnoName, SyscallError } from "../ffi/errno.ts";
import { close } from "../ffi/libc.ts";
import { PollSet } from "../ffi/poll.ts";
import {
  connectSeqpacket,
  receiveDatagram,
  sendDatagramBlocking,
  shutdownSocket,
} from "../ffi/unix_socket.ts";
import { type BalloonStatsReply, VmControlError } from "../vm/events.ts";
import type { SuspendOptions } from "../vm/vm.ts";
import {
  type ControlRequest,
  type ControlResponse,
  decodeResponse,
  encodeRequest,
  ProtocolError,
} from "./protocol.ts";

/** The longest reply taken (a balloon statistics reply is a few hundred bytes). */
const MAX_REPLY_BYTES = 64 * 1024;

/**
 * Connects to the control socket at `path`.
 * @throws VmControlError (one line) when nothing is there or nobody listens
 */
export function connect(path: string): ControlClient {
  try {
    return new ControlClient(connectSeqpacket(path));
  } catch (e) {
    if (!(e instanceof SyscallError) && !(e instanceof RangeError)) throw e;
    const why = e instanceof SyscallError ? errnoName(e.errno) : e.message;
    throw new VmControlError(`cannot connect to the control socket ${path}: ${why}`);
  }
}

/** One connection to a VM's control socket. Requests go one at a time, in order. */
export class ControlClient {
  readonly #fd: number;
  readonly #poll: PollSet;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  /**
   * A client over an open connection.
   * @param fd a connected SOCK_SEQPACKET socket (see {@link connect})
   */
  constructor(fd: number) {
    this.#fd = fd;
    this.#poll = new PollSet([fd]);
  }

  /**
   * Sends `request` and resolves with the reply, whatever it says.
   * @throws VmControlError when the VM closed the connection or its reply is not one
   */
  request(request: ControlRequest): Promise<ControlResponse> {
    const reply = this.#queue.then(() => this.#exchange(request));
    this.#queue = reply.catch(() => {});
    return reply;
  }

  /** Ends the VM. */
  async stop(): Promise<void> {
    expectOk(await this.request({ kind: "exit" }));
  }

  /** Suspends the VM's vCPUs (and, with `full`, its devices). */
  async suspend(options: SuspendOptions = {}): Promise<void> {
    expectOk(await this.request({ kind: "suspend", full: options.full ?? false }));
  }

  /** Resumes the VM. */
  async resume(options: SuspendOptions = {}): Promise<void> {
    expectOk(await this.request({ kind: "resume", full: options.full ?? false }));
  }

  /** Presses the VM's ACPI power button. */
  async powerButton(): Promise<void> {
    expectOk(await this.request({ kind: "powerbtn" }));
  }

  /** Sets the balloon's target size to `bytes`. */
  async setBalloon(bytes: number, options: { readonly wait?: boolean } = {}): Promise<void> {
    expectOk(
      await this.request({ kind: "balloon-adjust", numBytes: bytes, wait: options.wait ?? false }),
    );
  }

  /** The guest's memory statistics and the balloon's size. */
  async balloonStats(): Promise<BalloonStatsReply> {
    const reply = await this.request({ kind: "balloon-stats" });
    if (reply.kind !== "balloon-stats") throw replyError(reply);
    return { stats: reply.stats, balloonActual: reply.balloonActual };
  }

  /** Resizes disk `index` (0-based, in command-line order) to `bytes`. */
  async resizeDisk(index: number, bytes: number): Promise<void> {
    expectOk(await this.request({ kind: "disk-resize", index, newSize: bytes }));
  }

  /** Closes the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    shutdownSocket(this.#fd);
    close(this.#fd);
  }

  /** {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  async #exchange(request: ControlRequest): Promise<ControlResponse> {
    if (this.#closed) throw new VmControlError("the control connection is closed");
    try {
      sendDatagramBlocking(this.#fd, encodeRequest(request));
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      throw new VmControlError(`the VM closed the control connection (${errnoName(e.errno)})`);
    }
    const buf = new Uint8Array(MAX_REPLY_BYTES);
    for (;;) {
      await this.#poll.waitAsync();
      const datagram = receiveDatagram(this.#fd, buf);
      if (datagram.kind === "none") continue;
      if (datagram.kind !== "datagram") {
        throw new VmControlError("the VM closed the control connection without a reply");
      }
      try {
        return decodeResponse(datagram.bytes);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        throw new VmControlError(`bad reply from the VM: ${e.message}`);
      }
    }
  }
}

/** Rejects a reply other than `"Ok"`. */
function expectOk(reply: ControlResponse): void {
  if (reply.kind !== "ok") throw replyError(reply);
}

/** The error a reply that is not the one asked for stands for. */
export function replyError(reply: ControlResponse): VmControlError {
  switch (reply.kind) {
    case "err":
      return new VmControlError(`the VM refused: ${errnoName(reply.errno)}`, reply.errno);
    case "err-string":
      return new VmControlError(`the VM refused: ${reply.message}`);
    default:
      return new VmControlError(`unexpected reply ${reply.kind}`);
  }
}
