// AF_VSOCK streams through FFI (src/ffi/vsock_socket.ts), over the kernel's vsock loopback
// (module vsock_loopback, CID 1): our hosts lack it, so this runs for real in the test bed's L1
// (scenario ffi-vsock), and is ignored here. The API vm.vsock gives for vhost-vsock is built on it.

import assert from "node:assert/strict";
import {
  connectVsock,
  VMADDR_CID_LOCAL,
  VsockListener,
  VsockSocketError,
} from "../../src/ffi/vsock_socket.ts";
import { exists } from "../helpers/paths.ts";

const LOOPBACK = await exists("/sys/module/vsock_loopback");
const PORT = 7000 + Math.floor(Math.random() * 1000);
const BYTES = 1 << 20;

/** All of a stream's bytes. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  return all;
}

Deno.test({
  name: LOOPBACK
    ? "AF_VSOCK: a listener accepts, 1 MiB crosses each way intact, close ends the stream and the listener"
    : "AF_VSOCK through FFI [ignored: no vsock loopback (module vsock_loopback) on this host; the bed's ffi-vsock runs it]",
  ignore: !LOOPBACK,
  fn: async () => {
    const listener = new VsockListener(PORT);
    const payload = Uint8Array.from({ length: BYTES }, (_, i) => (i * 31 + 7) & 0xff);
    const server = (async () => {
      const conn = await listener.accept();
      const got = await drain(conn.readable); // until the client closes its writing side
      const writer = conn.writable.getWriter();
      await writer.write(got);
      conn.close();
      return got.length;
    })();
    const client = await connectVsock(VMADDR_CID_LOCAL, PORT);
    const writer = client.writable.getWriter();
    await writer.write(payload);
    await writer.close();
    // Closing the writer shut the sending side down: the server has everything, and echoes it.
    const [echoed, received] = await Promise.all([drain(client.readable), server]);
    assert.equal(received, BYTES);
    assert.deepEqual(echoed, payload);
    client.close();
    listener.close();
    await assert.rejects(listener.accept(), VsockSocketError);
    await assert.rejects(connectVsock(VMADDR_CID_LOCAL, PORT), VsockSocketError);
  },
});
