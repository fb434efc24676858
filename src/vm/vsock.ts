/**
 * The host's end of a VM's vsock (`vm.vsock`): connections to guest ports, and listeners for the
 * guest's connections to host ports, whichever back end the VM uses: the userspace device's Unix
 * sockets ({@link VsockHost}) or, with vhost-vsock, AF_VSOCK sockets to the guest's CID
 * ({@link VhostVsockHost}).
 *
 * @module
 */

import { connectVsock, VsockListener } from "../ffi/vsock_socket.ts";

/** A connection to a guest port: a duplex byte stream, as `Deno.Conn` is. */
export interface VsockConn {
  /** Reads into `p`: the count, or null at the end of the stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes from `p`; the count written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes the connection. */
  close(): void;
  /** The bytes from the guest. */
  readonly readable: ReadableStream<Uint8Array>;
  /** The bytes to the guest. */
  readonly writable: WritableStream<Uint8Array>;
}

/** The guest's connections to one host port, as `Deno.Listener` gives them. */
export interface VsockPortListener extends AsyncIterable<VsockConn> {
  /** The next connection. */
  accept(): Promise<VsockConn>;
  /** Stops listening. */
  close(): void;
}

/** The host's end of a VM's vsock device. */
export interface VsockEndpoint {
  /** A stream to guest port `port`, once the guest accepted it. */
  connect(port: number): Promise<VsockConn>;
  /** Accepts the guest's connections to host port `port`. */
  listen(port: number): VsockPortListener;
}

/** The longest answer the device gives a CONNECT line (`OK 4294967295\n`). */
const MAX_REPLY = 16;
/** The device's answer once the guest accepted: `OK <host port>`. */
const OK_REPLY = /^OK ([0-9]+)$/;

/** A guest port that could not be reached: nobody listens, or the guest did not answer. */
export class VsockConnectError extends Error {}

/** Host programs' side of a VM's userspace vsock device. */
export class VsockHost implements VsockEndpoint {
  /**
   * The host side of the device listening at `udsPath`.
   * @param udsPath the device's listening socket
   */
  constructor(readonly udsPath: string) {}

  /**
   * A stream to guest port `port`, once the guest accepted it.
   * @throws VsockConnectError when the guest refused it or did not answer
   */
  async connect(port: number): Promise<Deno.UnixConn> {
    const conn = await Deno.connect({ transport: "unix", path: this.udsPath });
    try {
      await conn.write(new TextEncoder().encode(`CONNECT ${port}\n`));
      // Byte by byte: what follows the answer is the guest's.
      const byte = new Uint8Array(1);
      let reply = "";
      while (reply.length <= MAX_REPLY) {
        if (await conn.read(byte) !== 1) break;
        if (byte[0] === 0x0a) {
          if (OK_REPLY.test(reply)) return conn;
          break;
        }
        reply += String.fromCharCode(byte[0]);
      }
      throw new VsockConnectError(`vsock: guest port ${port} refused the connection`);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  /**
   * Accepts the guest's connections to host port `port` (the socket `<udsPath>_<port>`, removed
   * again when the listener closes).
   */
  listen(port: number): Deno.UnixListener {
    return Deno.listen({ transport: "unix", path: `${this.udsPath}_${port}` });
  }
}

/** Host programs' side of a VM's vhost-vsock device: AF_VSOCK sockets to the guest's CID. */
export class VhostVsockHost implements VsockEndpoint {
  /**
   * The host side of the guest with CID `cid`.
   * @param cid the guest's CID
   */
  constructor(readonly cid: number) {}

  /**
   * A stream to guest port `port`, once the guest accepted it.
   * @throws VsockConnectError when nobody listens there or the guest does not answer
   */
  async connect(port: number): Promise<VsockConn> {
    try {
      return await connectVsock(this.cid, port);
    } catch (e) {
      if (e instanceof Error) throw new VsockConnectError(`${e.message}`);
      throw e;
    }
  }

  /** Accepts connections to host port `port` (from this guest, or any other). */
  listen(port: number): VsockPortListener {
    return new VsockListener(port);
  }
}
