/**
 * The userspace virtio-vsock, driven through guest memory as Linux's virtio_transport drives it
 * (receive buffers of a 44-byte header descriptor and a 4 KiB one, packets sent as a header
 * descriptor and a payload one), against real host programs: Deno's Unix sockets connecting to
 * the device's socket, and listening where guest connections go. The device's sockets are made
 * by the VMM's own code (`openVsock`).
 */

import assert from "node:assert/strict";
import { VirtQueue } from "../../../../src/devices/virtio/device.ts";
import { HANDSHAKE_TIMEOUT_MS, VsockBackend } from "../../../../src/devices/virtio/vsock/device.ts";
import { CONNECTION_BUFFER } from "../../../../src/devices/virtio/vsock/connection.ts";
import { openVsock } from "../../../../src/devices/virtio/vsock/sockets.ts";
import {
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_RCV,
  VIRTIO_VSOCK_SHUTDOWN_SEND,
  VIRTIO_VSOCK_TYPE_STREAM,
  VMADDR_CID_HOST,
  VSOCK_RX_QUEUE,
  VSOCK_TX_QUEUE,
  VsockHeader,
} from "../../../../src/devices/virtio/vsock/spec.ts";
import { PollSet } from "../../../../src/ffi/poll.ts";
import { VsockHost } from "../../../../src/vm/vsock.ts";
import { Driver, type Element } from "../../../helpers/split_ring_driver.ts";

const CID = 7;
/** Linux's receive buffers: a header, then 4 KiB (VIRTIO_VSOCK_DEFAULT_RX_BUF_SIZE). */
const RX_DATA = 4096;
/** What the guest says of its own buffer, unless a test says otherwise (Linux's default). */
const GUEST_BUF_ALLOC = 256 * 1024;

/** A packet as the guest sees it. */
interface Packet {
  srcCid: bigint;
  dstCid: bigint;
  srcPort: number;
  dstPort: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
  type: number;
  payload: Uint8Array;
}

/** What the guest sends: a header's fields (the rest default) and a payload. */
type Outgoing = Partial<Omit<Packet, "payload">> & { payload?: Uint8Array };

/** A vsock device over a socket in a fresh directory, with its guest's two queues. */
async function withDevice(
  fn: (d: ReturnType<typeof guest>, host: VsockHost, dir: string) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vsock_" });
  using cleanup = new DisposableStack();
  const spec = openVsock({ cid: CID, udsPath: `${dir}/v.sock` }, cleanup);
  const backend = new VsockBackend(spec);
  cleanup.defer(() => backend.reset());
  try {
    await fn(guest(backend), new VsockHost(`${dir}/v.sock`), dir);
  } finally {
    cleanup.dispose();
    await Deno.remove(dir, { recursive: true });
  }
}

function guest(backend: VsockBackend) {
  const rx = new Driver({ size: 256 });
  const tx = new Driver({ size: 256 });
  const queues = [new VirtQueue(VSOCK_RX_QUEUE, rx.queue), new VirtQueue(VSOCK_TX_QUEUE, tx.queue)];
  const poll = new PollSet(backend.eventFds);
  /** rx descriptor head → the guest addresses of its header and data buffers. */
  const buffers = new Map<number, [number, number]>();
  let fwdCnt = 0;
  const received: Packet[] = [];

  /** Posts `count` receive buffers, as Linux's rx fill does. */
  const offer = (count: number) => {
    for (let i = 0; i < count; i++) {
      const header = rx.buffer(VsockHeader.SIZE);
      const data = rx.buffer(RX_DATA);
      const head = rx.add([
        { addr: header, len: VsockHeader.SIZE, write: true },
        { addr: data, len: RX_DATA, write: true },
      ]);
      buffers.set(head, [header, data]);
    }
    rx.publish();
    backend.processQueue(VSOCK_RX_QUEUE, queues[0], rx.mem, queues);
  };
  /** Sends one packet on the transmit queue. */
  const send = (p: Outgoing, options: { bufAlloc?: number } = {}) => {
    const payload = p.payload ?? new Uint8Array(0);
    const h = new DataView(new ArrayBuffer(VsockHeader.SIZE));
    h.setBigUint64(VsockHeader.SRC_CID, p.srcCid ?? BigInt(CID), true);
    h.setBigUint64(VsockHeader.DST_CID, p.dstCid ?? BigInt(VMADDR_CID_HOST), true);
    h.setUint32(VsockHeader.SRC_PORT, p.srcPort ?? 0, true);
    h.setUint32(VsockHeader.DST_PORT, p.dstPort ?? 0, true);
    h.setUint32(VsockHeader.LEN, payload.length, true);
    h.setUint16(VsockHeader.TYPE, p.type ?? VIRTIO_VSOCK_TYPE_STREAM, true);
    h.setUint16(VsockHeader.OP, p.op ?? VIRTIO_VSOCK_OP_RW, true);
    h.setUint32(VsockHeader.FLAGS, p.flags ?? 0, true);
    h.setUint32(VsockHeader.BUF_ALLOC, p.bufAlloc ?? options.bufAlloc ?? GUEST_BUF_ALLOC, true);
    h.setUint32(VsockHeader.FWD_CNT, p.fwdCnt ?? fwdCnt, true);
    const header = tx.buffer(VsockHeader.SIZE);
    tx.mem.write(header, new Uint8Array(h.buffer));
    const elements: Element[] = [{ addr: header, len: VsockHeader.SIZE }];
    if (payload.length > 0) {
      const body = tx.buffer(payload.length);
      tx.mem.write(body, payload);
      elements.push({ addr: body, len: payload.length });
    }
    tx.add(elements);
    tx.publish();
    backend.processQueue(VSOCK_TX_QUEUE, queues[1], tx.mem, queues);
    assert.equal(tx.used().length, 1, "the packet's chain comes back");
  };
  /** Lets the device act on its sockets until it has been quiet for `quietMs`. */
  const pump = async (quietMs = 50) => {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 0)); // host programs' I/O runs
      if (poll.wait(quietMs).length === 0) return;
      backend.onEvent(0, queues);
    }
  };
  /** The packets the device put in receive buffers since the last call (payload counted read). */
  const take = (): Packet[] => {
    const out: Packet[] = [];
    for (const { id, len } of rx.used()) {
      const [headerAt, dataAt] = buffers.get(id)!;
      const h = new DataView(rx.mem.read(headerAt, VsockHeader.SIZE).buffer);
      const length = h.getUint32(VsockHeader.LEN, true);
      assert.equal(len, VsockHeader.SIZE + length, "used length: header and payload");
      fwdCnt += length;
      out.push({
        srcCid: h.getBigUint64(VsockHeader.SRC_CID, true),
        dstCid: h.getBigUint64(VsockHeader.DST_CID, true),
        srcPort: h.getUint32(VsockHeader.SRC_PORT, true),
        dstPort: h.getUint32(VsockHeader.DST_PORT, true),
        type: h.getUint16(VsockHeader.TYPE, true),
        op: h.getUint16(VsockHeader.OP, true),
        flags: h.getUint32(VsockHeader.FLAGS, true),
        bufAlloc: h.getUint32(VsockHeader.BUF_ALLOC, true),
        fwdCnt: h.getUint32(VsockHeader.FWD_CNT, true),
        payload: rx.mem.read(dataAt, length),
      });
    }
    received.push(...out);
    return out;
  };
  return {
    backend,
    offer,
    send,
    pump,
    take,
    received,
    get fwdCnt() {
      return fwdCnt;
    },
  };
}

/** Reads from `conn` until `n` bytes came or it ends. */
async function readBytes(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = await conn.read(out.subarray(at));
    if (got === null) break;
    at += got;
  }
  return out.subarray(0, at);
}

/**
 * The guest connects from its port `guestPort` to host port `hostPort`, where a host program
 * listens (the socket `uds-path_<hostPort>`); resolves with the program's end once accepted.
 */
async function guestConnects(
  g: ReturnType<typeof guest>,
  host: VsockHost,
  hostPort: number,
  guestPort: number,
  credit: { bufAlloc?: number; fwdCnt?: number } = {},
) {
  const listener = host.listen(hostPort);
  const accepted = listener.accept();
  const ports = { srcPort: guestPort, dstPort: hostPort };
  g.send({ ...ports, op: VIRTIO_VSOCK_OP_REQUEST, ...credit });
  const conn = await accepted;
  listener.close();
  return { conn, ports };
}

const text = (s: string) => new TextEncoder().encode(s);
const decoded = (b: Uint8Array) => new TextDecoder().decode(b);
const only = (packets: Packet[], op: number) => packets.filter((p) => p.op === op);

Deno.test("vsock: a host program connects to a guest port; bytes cross both ways; the guest's close ends it with RST", async () => {
  await withDevice(async (g, host) => {
    g.offer(8);
    const connecting = host.connect(1234);
    await g.pump();
    const [request] = g.take();
    assert.equal(request.op, VIRTIO_VSOCK_OP_REQUEST);
    assert.deepEqual([request.srcCid, request.dstCid], [BigInt(VMADDR_CID_HOST), BigInt(CID)]);
    assert.equal(request.dstPort, 1234);
    assert.ok(request.srcPort >= 1 << 30, `a host port of the device's: ${request.srcPort}`);
    const ports = { srcPort: 1234, dstPort: request.srcPort };
    g.send({ ...ports, op: VIRTIO_VSOCK_OP_RESPONSE });
    const conn = await connecting;
    await conn.write(text("hello, guest"));
    await g.pump();
    const [data] = g.take();
    assert.equal(data.op, VIRTIO_VSOCK_OP_RW);
    assert.equal(decoded(data.payload), "hello, guest");
    g.send({ ...ports, payload: text("hello, host") });
    assert.equal(decoded(await readBytes(conn, 11)), "hello, host");
    g.send({
      ...ports,
      op: VIRTIO_VSOCK_OP_SHUTDOWN,
      flags: VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND,
    });
    await g.pump();
    assert.deepEqual(g.take().map((p) => p.op), [VIRTIO_VSOCK_OP_RST]);
    assert.equal(await conn.read(new Uint8Array(1)), null, "the host program reads the end");
    assert.equal(g.backend.connections, 0);
    conn.close();
  });
});

Deno.test("vsock: a guest connects to host port P, which is the socket uds-path_P; the host's close reaches the guest after its bytes", async () => {
  await withDevice(async (g, host) => {
    g.offer(8);
    const { conn, ports } = await guestConnects(g, host, 5000, 40000);
    const [response] = g.take();
    assert.equal(response.op, VIRTIO_VSOCK_OP_RESPONSE);
    assert.deepEqual([response.srcPort, response.dstPort], [5000, 40000]);
    g.send({ ...ports, payload: text("ping") });
    assert.equal(decoded(await readBytes(conn, 4)), "ping");
    await conn.write(text("pong"));
    conn.close();
    await g.pump();
    const packets = g.take();
    assert.equal(decoded(only(packets, VIRTIO_VSOCK_OP_RW)[0].payload), "pong");
    assert.equal(packets.at(-1)!.op, VIRTIO_VSOCK_OP_RST, "then the end");
    assert.equal(g.backend.connections, 0);
  });
});

Deno.test("vsock: a guest connection to a port nobody listens on gets RST", async () => {
  await withDevice((g) => {
    g.offer(4);
    g.send({ srcPort: 40001, dstPort: 6000, op: VIRTIO_VSOCK_OP_REQUEST });
    const [reply] = g.take();
    assert.equal(reply.op, VIRTIO_VSOCK_OP_RST);
    assert.deepEqual([reply.srcPort, reply.dstPort], [6000, 40001]);
    assert.equal(g.backend.refused.connections, 1);
  });
});

Deno.test("vsock: the device never sends the guest more than the credit it gave, and resumes on its CREDIT_UPDATE", async () => {
  await withDevice(async (g, host) => {
    const credit = 10_000;
    g.offer(32);
    const { conn, ports } = await guestConnects(g, host, 5001, 40002, {
      bufAlloc: credit,
      fwdCnt: 0,
    });
    const payload = Uint8Array.from({ length: 3 * credit }, (_, i) => (i * 31) & 0xff);
    const writing = conn.write(payload);
    await g.pump();
    const first = only(g.take(), VIRTIO_VSOCK_OP_RW).reduce((n, p) => n + p.payload.length, 0);
    assert.equal(first, credit, "exactly the credit");
    // The guest read it all: its fwd_cnt says so, and the rest flows.
    for (let round = 0; round < 4 && g.fwdCnt < payload.length; round++) {
      g.send({ ...ports, op: VIRTIO_VSOCK_OP_CREDIT_UPDATE, bufAlloc: credit, fwdCnt: g.fwdCnt });
      g.offer(8);
      await g.pump();
      g.take();
    }
    await writing;
    const got = only(g.received, VIRTIO_VSOCK_OP_RW);
    const joined = new Uint8Array(got.reduce((n, p) => n + p.payload.length, 0));
    got.reduce((at, p) => (joined.set(p.payload, at), at + p.payload.length), 0);
    assert.deepEqual(joined, payload, "every byte, in order");
    conn.close();
  });
});

Deno.test("vsock: a host program that stops reading holds at most the credit we gave; a guest that sends past it is reset", async () => {
  await withDevice(async (g, host) => {
    g.offer(8);
    const { conn, ports } = await guestConnects(g, host, 5002, 40003); // and never read
    const chunk = new Uint8Array(60_000).fill(7);
    let sent = 0;
    const replies = () => g.take().map((p) => p.op);
    // The guest honours our credit: buf_alloc minus what it sent that we have not forwarded.
    let ourFwdCnt = 0;
    for (let i = 0; i < 200; i++) {
      for (const p of g.take()) ourFwdCnt = p.fwdCnt;
      const room = CONNECTION_BUFFER - (sent - ourFwdCnt);
      if (room < chunk.length) break;
      g.send({ ...ports, payload: chunk });
      sent += chunk.length;
      await g.pump(5);
    }
    assert.ok(
      sent > CONNECTION_BUFFER,
      `the socket took some: ${sent} sent, ${ourFwdCnt} forwarded`,
    );
    assert.ok(sent - ourFwdCnt <= CONNECTION_BUFFER, "the guest stopped at our credit");
    assert.equal(g.backend.connections, 1);
    // Past the credit: the connection is reset, and what was held goes with it.
    g.offer(4);
    let reset = false;
    for (let i = 0; i < 5 && !reset; i++) {
      g.send({ ...ports, payload: chunk });
      reset = replies().includes(VIRTIO_VSOCK_OP_RST);
    }
    assert.ok(reset, "reset once past the credit");
    assert.equal(g.backend.connections, 0);
    assert.equal(g.backend.refused.packets, 1);
    conn.close();
  });
});

Deno.test("vsock: packets that break the rules are refused, answered with RST where there is someone to answer", async () => {
  await withDevice((g) => {
    g.offer(16);
    g.send({ srcCid: 99n, srcPort: 1, dstPort: 2, op: VIRTIO_VSOCK_OP_REQUEST });
    g.send({ dstCid: 5n, srcPort: 1, dstPort: 2, op: VIRTIO_VSOCK_OP_REQUEST });
    assert.deepEqual(g.take(), [], "a packet not from this guest or not for the host: dropped");
    g.send({ srcPort: 1, dstPort: 2, payload: text("data for nobody") });
    g.send({ srcPort: 1, dstPort: 2, op: 99 });
    g.send({ srcPort: 1, dstPort: 2, op: VIRTIO_VSOCK_OP_REQUEST, type: 2 });
    g.send({ srcPort: 1, dstPort: 2, op: VIRTIO_VSOCK_OP_RST });
    assert.deepEqual(
      g.take().map((p) => p.op),
      [VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_OP_RST],
      "RW to nobody, an unknown op, SEQPACKET; an RST is not answered",
    );
    assert.equal(g.backend.refused.packets, 5);
  });
});

Deno.test("vsock: a chain too short for its header, or for the payload it declares, is refused", async () => {
  await withDevice((g) => {
    const d = g.backend;
    const tx = new Driver({ size: 8 });
    const queues = [undefined, new VirtQueue(VSOCK_TX_QUEUE, tx.queue)];
    tx.add([{ addr: tx.buffer(20), len: 20 }]);
    const header = new DataView(new ArrayBuffer(VsockHeader.SIZE));
    header.setUint32(VsockHeader.LEN, 4096, true);
    const at = tx.buffer(VsockHeader.SIZE + 10);
    tx.mem.write(at, new Uint8Array(header.buffer));
    tx.add([{ addr: at, len: VsockHeader.SIZE + 10 }]);
    tx.publish();
    d.processQueue(VSOCK_TX_QUEUE, queues[1]!, tx.mem, queues);
    assert.deepEqual(tx.used().map((u) => u.len), [0, 0]);
    assert.equal(d.refused.packets, 2);
  });
});

Deno.test("vsock: a host program that never sends its CONNECT line, or a bad one, is turned away; so is one the guest never answers", async () => {
  await withDevice(async (g, host) => {
    g.offer(8);
    const silent = await Deno.connect({ transport: "unix", path: host.udsPath });
    const bad = await Deno.connect({ transport: "unix", path: host.udsPath });
    await bad.write(text("HELLO 12\n"));
    const unanswered = assert.rejects(host.connect(77), /refused/);
    await g.pump();
    assert.equal(await bad.read(new Uint8Array(1)), null, "a bad line: closed");
    assert.equal(only(g.take(), VIRTIO_VSOCK_OP_REQUEST).length, 1);
    await new Promise((resolve) => setTimeout(resolve, HANDSHAKE_TIMEOUT_MS + 600));
    await g.pump();
    assert.equal(await silent.read(new Uint8Array(1)), null, "silent: closed at the deadline");
    await unanswered;
    assert.deepEqual(g.take().map((p) => p.op), [VIRTIO_VSOCK_OP_RST], "the request withdrawn");
    assert.equal(g.backend.connections, 0);
    assert.equal(g.backend.refused.connections, 3);
    silent.close();
    bad.close();
  });
});
