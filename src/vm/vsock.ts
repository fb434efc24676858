/**
 * The host's end of a VM's vsock (`vm.vsock`): connections to guest ports, and listeners for the
 * guest's connections to host ports, over the userspace device's Unix sockets.
 *
 * @module
 */

/** The longest answer the device gives a CONNECT line (`OK 4294967295\n`). */
const MAX_REPLY = 16;
/** The device's answer once the guest accepted: `OK <host port>`. */
const OK_REPLY = /^OK ([0-9]+)$/;

/** A guest port that could not be reached: nobody listens, or the guest did not answer. */
export class VsockConnectError extends Error {}

/** Host programs' side of a VM's vsock device. */
export class VsockHost {
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
