/**
 * virtio-net on a real TAP, driven through guest memory as Linux's virtio_net driver drives it:
 * the TAP lives in a network namespace the test makes (10.77.0.1/24 on the kernel's side), so
 * every frame stays there. The guest side sends with the transmit queue and receives what the
 * namespace's kernel answers on the receive queue: an ARP exchange, a ping whose reply spans
 * several merged receive buffers, the same without MRG_RXBUF (dropped and counted), and frames
 * the device must refuse.
 */

import assert from "node:assert/strict";
import { VirtQueue } from "../../../../src/devices/virtio/device.ts";
import { NetBackend } from "../../../../src/devices/virtio/net/device.ts";
import {
  controlQueue,
  NetConfig,
  NetCtrlHeader,
  NetFeature,
  NetHeader,
  RX_QUEUE,
  rxQueue,
  TX_QUEUE,
  VIRTIO_NET_CTRL_GUEST_OFFLOADS,
  VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
  VIRTIO_NET_CTRL_MQ,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
  VIRTIO_NET_ERR,
  VIRTIO_NET_OK,
} from "../../../../src/devices/virtio/net/spec.ts";
import { featureBit } from "../../../../src/devices/virtio/spec.ts";
import { close, F_GETFL, F_SETFL, libc, O_NONBLOCK } from "../../../../src/ffi/libc.ts";
import { PollSet } from "../../../../src/ffi/poll.ts";
import { adoptTapFd, openTap, type Tap, TUN_DEVICE } from "../../../../src/ffi/tap.ts";
import { Driver } from "../../../helpers/split_ring_driver.ts";
import { exists } from "../../../helpers/paths.ts";

const GUEST_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const GUEST_IP = [10, 77, 0, 2];
const HOST_IP = [10, 77, 0, 1];
const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_IPV4 = 0x0800;
/** Bytes of an Ethernet header, an IPv4 header without options, an ICMP echo header. */
const ETH = 14;
const IPV4 = 20;
const ICMP = 8;
const RX_BUFFER = 1536;
const MERGED = featureBit(NetFeature.MRG_RXBUF) | featureBit(NetFeature.GUEST_CSUM);

const CAN_RUN = Deno.uid() === 0 && (await exists(TUN_DEVICE)) && (await run("ip", ["-V"])).ok;
const SKIP = "needs root, /dev/net/tun and iproute2 (ip) to make a TAP in a namespace of its own";

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; err: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return { ok: out.success, err: new TextDecoder().decode(out.stderr) };
  } catch {
    return { ok: false, err: `${cmd} not found` };
  }
}

async function ip(...args: string[]): Promise<void> {
  const out = await run("ip", args);
  assert.ok(out.ok, `ip ${args.join(" ")}: ${out.err}`);
}

/**
 * A TAP whose interface sits in a namespace of its own, as 10.77.0.1/24, MTU 9000, up; with
 * `queues` above 1 a multiqueue TAP, every queue opened before the interface moves.
 */
async function withTap(
  fn: (tap: Tap, ns: string, more: Tap[]) => Promise<void>,
  queues = 1,
): Promise<void> {
  const ns = `crosvm-net-${crypto.randomUUID().slice(0, 8)}`;
  await ip("netns", "add", ns);
  const tap = openTap("cvnet%d", queues > 1);
  const more = Array.from({ length: queues - 1 }, () => openTap(tap.name, true));
  try {
    await ip("link", "set", "dev", tap.name, "netns", ns);
    const sysctl = ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"];
    await ip(...sysctl);
    await ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", tap.name);
    await ip("-n", ns, "link", "set", "dev", tap.name, "mtu", "9000", "up");
    await fn(tap, ns, more);
  } finally {
    for (const t of [tap, ...more]) close(t.fd);
    await ip("netns", "del", ns);
  }
}

/**
 * A NIC on `taps` (a queue pair each) whose queues each run over their own driver's guest
 * memory, plus a control queue where `features` has CTRL_VQ.
 */
function nic(taps: readonly Tap[], features: bigint, ringSize = 16) {
  const pairs = taps.map(() => ({
    rx: new Driver({ size: ringSize }),
    tx: new Driver({ size: ringSize }),
  }));
  const control = new Driver({ size: 8 });
  const backend = new NetBackend({ kind: "net", taps: taps.map((t) => t.fd), mac: GUEST_MAC });
  backend.activate(features);
  const queues: VirtQueue[] = [];
  pairs.forEach(({ rx, tx }, i) => {
    queues[rxQueue(i)] = new VirtQueue(rxQueue(i), rx.queue);
    queues[rxQueue(i) + 1] = new VirtQueue(rxQueue(i) + 1, tx.queue);
  });
  const controlIndex = controlQueue(features, pairs.length);
  queues[controlIndex] = new VirtQueue(controlIndex, control.queue);
  /** Sends one frame (a zero header in front: no offload) from a two-buffer chain of `pair`. */
  const send = (frame: Uint8Array, pair = 0) => {
    const { tx } = pairs[pair];
    const header = tx.buffer(NetHeader.SIZE);
    const body = tx.buffer(frame.length);
    tx.mem.write(body, frame);
    tx.add([{ addr: header, len: NetHeader.SIZE }, { addr: body, len: frame.length }]);
    tx.publish();
    backend.processQueue(rxQueue(pair) + 1, queues[rxQueue(pair) + 1], tx.mem);
  };
  /**
   * Offers `count` receive buffers on every pair and takes what the TAP queues have until they
   * are quiet for a while.
   */
  const receive = (count: number, quietMs = 300) => {
    pairs.forEach(({ rx }, i) => {
      for (let k = 0; k < count; k++) {
        rx.add([{ addr: rx.buffer(RX_BUFFER), len: RX_BUFFER, write: true }]);
      }
      rx.publish();
      backend.processQueue(rxQueue(i), queues[rxQueue(i)], rx.mem);
    });
    const poll = new PollSet(taps.map((t) => t.fd));
    for (;;) {
      taps.forEach((_, i) => poll.watch(i, backend.wantsEvents(i)));
      const ready = poll.wait(quietMs);
      if (ready.length === 0) return;
      for (const i of ready) backend.onEvent(i, queues);
    }
  };
  /** Sends a control command (class, number, then `data`); returns its ack, or null for none. */
  const command = (klass: number, number: number, data: Uint8Array, ackRoom = 1) => {
    const out = control.buffer(NetCtrlHeader.SIZE + data.length);
    control.mem.write(out, Uint8Array.of(klass, number, ...data));
    const ack = control.buffer(Math.max(ackRoom, 1), 0xee);
    const head = control.add([
      { addr: out, len: NetCtrlHeader.SIZE + data.length },
      ...(ackRoom > 0 ? [{ addr: ack, len: ackRoom, write: true }] : []),
    ]);
    control.publish();
    backend.processQueue(controlIndex, queues[controlIndex], control.mem);
    const used = control.used();
    assert.deepEqual(used.map((u) => u.id), [head], "the command comes back");
    return used[0].len === 0 ? null : control.mem.read(ack, 1)[0];
  };
  return { pairs, rx: pairs[0].rx, tx: pairs[0].tx, backend, send, receive, command };
}

function arpRequest(): Uint8Array {
  const f = new Uint8Array(ETH + 28);
  f.fill(0xff, 0, 6);
  f.set(GUEST_MAC, 6);
  const v = new DataView(f.buffer);
  v.setUint16(12, ETHERTYPE_ARP);
  v.setUint16(14, 1); // Ethernet
  v.setUint16(16, ETHERTYPE_IPV4);
  f[18] = 6;
  f[19] = 4;
  v.setUint16(20, 1); // request
  f.set(GUEST_MAC, 22);
  f.set(GUEST_IP, 28);
  f.set(HOST_IP, 38);
  return f;
}

/** The Internet checksum (RFC 1071) of `bytes`. */
function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function echoRequest(hostMac: Uint8Array, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH + IPV4 + ICMP + payload.length);
  const v = new DataView(f.buffer);
  f.set(hostMac, 0);
  f.set(GUEST_MAC, 6);
  v.setUint16(12, ETHERTYPE_IPV4);
  f[ETH] = 0x45;
  v.setUint16(ETH + 2, IPV4 + ICMP + payload.length);
  f[ETH + 8] = 64; // TTL
  f[ETH + 9] = 1; // ICMP
  f.set(GUEST_IP, ETH + 12);
  f.set(HOST_IP, ETH + 16);
  v.setUint16(ETH + 10, checksum(f.subarray(ETH, ETH + IPV4)));
  f[ETH + IPV4] = 8; // echo request
  v.setUint16(ETH + IPV4 + 4, 0x4242); // id
  v.setUint16(ETH + IPV4 + 6, 1); // sequence
  f.set(payload, ETH + IPV4 + ICMP);
  v.setUint16(ETH + IPV4 + 2, checksum(f.subarray(ETH + IPV4)));
  return f;
}

/** Flows the multiqueue test opens once both pairs run, and the rings that room takes. */
const MULTIQUEUE_FLOWS = 32;
const MULTIQUEUE_RING = 128;

/** TCP header bytes (no options), and the flags of a SYN and of a reset (RFC 9293 §3.1). */
const TCP = 20;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
/** A port nothing listens on in the TAP's namespace: the kernel answers a SYN with a reset. */
const CLOSED_PORT = 9;

/** A TCP SYN from the guest's `port` to {@link CLOSED_PORT} of 10.77.0.1: a flow of its own. */
function synRequest(hostMac: Uint8Array, port: number): Uint8Array {
  const f = new Uint8Array(ETH + IPV4 + TCP);
  const v = new DataView(f.buffer);
  f.set(hostMac, 0);
  f.set(GUEST_MAC, 6);
  v.setUint16(12, ETHERTYPE_IPV4);
  f[ETH] = 0x45;
  v.setUint16(ETH + 2, IPV4 + TCP);
  f[ETH + 8] = 64; // TTL
  f[ETH + 9] = 6; // TCP
  f.set(GUEST_IP, ETH + 12);
  f.set(HOST_IP, ETH + 16);
  v.setUint16(ETH + 10, checksum(f.subarray(ETH, ETH + IPV4)));
  const tcp = ETH + IPV4;
  v.setUint16(tcp, port);
  v.setUint16(tcp + 2, CLOSED_PORT);
  v.setUint32(tcp + 4, 1); // sequence
  f[tcp + 12] = (TCP / 4) << 4; // data offset
  f[tcp + 13] = TCP_SYN;
  v.setUint16(tcp + 14, 0xffff); // window
  // The checksum covers a pseudo-header: both addresses, the protocol and the TCP length.
  const pseudo = new Uint8Array(12 + TCP);
  pseudo.set(f.subarray(ETH + 12, ETH + 20), 0);
  pseudo[9] = 6;
  pseudo[11] = TCP;
  pseudo.set(f.subarray(tcp), 12);
  v.setUint16(tcp + 16, checksum(pseudo));
  return f;
}

/** The frames the guest received: each used chain run joined, its header's num_buffers checked. */
function frames(rx: Driver, used: { id: number; len: number }[], heads: Map<number, number>) {
  const out: { header: DataView; frame: Uint8Array }[] = [];
  for (let i = 0; i < used.length;) {
    const first = rx.mem.read(heads.get(used[i].id)!, used[i].len);
    const header = new DataView(first.buffer, first.byteOffset, NetHeader.SIZE);
    const count = header.getUint16(NetHeader.NUM_BUFFERS, true);
    const parts = used.slice(i, i + count).map((u) => rx.mem.read(heads.get(u.id)!, u.len));
    const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (whole.set(p, at), at + p.length), 0);
    out.push({ header, frame: whole.subarray(NetHeader.SIZE) });
    i += count;
  }
  return out;
}

/** Buffer address of each descriptor head, as the Driver laid them out (one buffer per chain). */
function bufferOf(rx: Driver): Map<number, number> {
  const heads = new Map<number, number>();
  for (let i = 0; i < rx.size; i++) heads.set(i, Number(rx.mem.readU64(0x10_0000 + 16 * i)));
  return heads;
}

/** The ARP reply among what the guest received, if any. */
function arpReply(got: { header: DataView; frame: Uint8Array }[]) {
  return got.find(({ frame }) =>
    new DataView(frame.buffer, frame.byteOffset).getUint16(12) === ETHERTYPE_ARP
  );
}

/** Resolves 10.77.0.1 (and so teaches the kernel the guest's MAC); returns the TAP's MAC. */
function resolveHost(n: ReturnType<typeof nic>): Uint8Array {
  n.send(arpRequest());
  n.receive(4);
  const reply = arpReply(frames(n.rx, n.rx.used(), bufferOf(n.rx)));
  assert.ok(reply, "an ARP reply");
  return reply.frame.slice(22, 28);
}

/** A test that needs a TAP (of `queues` queues) in a namespace. */
function tapTest(name: string, fn: (taps: Tap[]) => void, queues = 1): void {
  Deno.test({
    name: CAN_RUN ? `virtio-net: ${name}` : `virtio-net: ${name} [ignored: ${SKIP}]`,
    ignore: !CAN_RUN,
    fn: () => withTap((tap, _ns, more) => Promise.resolve(fn([tap, ...more])), queues),
  });
}

const PAYLOAD = Uint8Array.from({ length: 4000 }, (_, i) => (i * 13 + 7) & 0xff);
/** The echo reply to a {@link PAYLOAD} ping: Ethernet + IPv4 + ICMP + payload, in one frame (MTU 9000). */
const REPLY_LENGTH = ETH + IPV4 + ICMP + PAYLOAD.length;

tapTest(
  "a ping's 4 KiB reply fills three merged receive buffers, num_buffers 3, intact",
  ([tap]) => {
    const n = nic([tap], MERGED);
    const hostMac = resolveHost(n);
    n.send(echoRequest(hostMac, PAYLOAD));
    n.receive(4);
    const got = frames(n.rx, n.rx.used(), bufferOf(n.rx));
    const reply = got.find(({ frame }) => frame.length === REPLY_LENGTH);
    assert.ok(reply, `the echo reply among frames of ${got.map((g) => g.frame.length)} bytes`);
    assert.equal(reply.header.getUint16(NetHeader.NUM_BUFFERS, true), 3);
    assert.equal(reply.frame[ETH + IPV4], 0, "ICMP echo reply");
    assert.deepEqual(reply.frame.subarray(ETH + IPV4 + ICMP), PAYLOAD);
    assert.equal(checksum(reply.frame.subarray(ETH + IPV4)), 0, "its ICMP checksum holds");
    assert.deepEqual(n.backend.drops, { tx: 0, rx: 0 });
  },
);

tapTest(
  "without MRG_RXBUF a frame larger than a receive buffer is dropped and counted",
  ([tap]) => {
    const n = nic([tap], featureBit(NetFeature.GUEST_CSUM));
    const hostMac = resolveHost(n);
    n.send(echoRequest(hostMac, PAYLOAD));
    n.receive(1);
    assert.deepEqual(n.rx.used().map((u) => u.len), [0], "the buffer comes back empty");
    assert.equal(n.backend.drops.rx, 1);
  },
);

tapTest(
  "a transmit chain shorter than a header is returned and counted, and sends nothing",
  ([tap]) => {
    const n = nic([tap], MERGED);
    n.tx.add([{ addr: n.tx.buffer(4), len: 4 }]);
    n.tx.publish();
    n.backend.processQueue(TX_QUEUE, new VirtQueue(TX_QUEUE, n.tx.queue), n.tx.mem);
    assert.deepEqual(n.tx.used().map((u) => u.len), [0]);
    assert.equal(n.backend.drops.tx, 1);
  },
);

tapTest(
  "a tap-fd handed over blocking is adopted non-blocking: the device reads until EAGAIN",
  ([tap]) => {
    const fd = Number(libc().fcntl(tap.fd, F_GETFL, 0));
    libc().fcntl(tap.fd, F_SETFL, fd & ~O_NONBLOCK);
    assert.equal(adoptTapFd(tap.fd).name, tap.name);
    assert.ok(libc().fcntl(tap.fd, F_GETFL, 0) & O_NONBLOCK, "O_NONBLOCK set");
    // With nothing to read, receiving returns at once instead of blocking the device's loop.
    const n = nic([tap], MERGED);
    n.rx.add([{ addr: n.rx.buffer(RX_BUFFER), len: RX_BUFFER, write: true }]);
    n.rx.publish();
    n.backend.onEvent(0, [new VirtQueue(RX_QUEUE, n.rx.queue)]);
    assert.deepEqual(n.rx.used(), []);
  },
);

Deno.test({
  name: CAN_RUN
    ? "virtio-net: an ARP request from the guest gets the namespace kernel's reply on the receive queue"
    : `virtio-net: ARP through a TAP [ignored: ${SKIP}]`,
  ignore: !CAN_RUN,
  fn: () =>
    withTap(async (tap) => {
      const { rx, tx, send, receive, backend } = nic([tap], MERGED);
      send(arpRequest());
      assert.deepEqual(tx.used().map((u) => u.len), [0], "the transmitted chain comes back");
      receive(4);
      const got = frames(rx, rx.used(), bufferOf(rx));
      const reply = arpReply(got);
      assert.ok(reply, `an ARP reply among ${got.length} frames`);
      const f = reply.frame;
      assert.equal(new DataView(f.buffer, f.byteOffset).getUint16(20), 2, "opcode: reply");
      assert.deepEqual([...f.subarray(0, 6)], GUEST_MAC, "to the guest");
      assert.deepEqual([...f.subarray(28, 32)], HOST_IP, "10.77.0.1 is at…");
      assert.deepEqual([...f.subarray(38, 42)], GUEST_IP);
      assert.equal(reply.header.getUint16(NetHeader.NUM_BUFFERS, true), 1);
      assert.deepEqual(backend.drops, { tx: 0, rx: 0 });
      await Promise.resolve();
    }),
});

/** Control-queue data: a little-endian u16 or u64. */
const le16 = (n: number) => Uint8Array.of(n & 0xff, n >> 8);
const le64 = (n: bigint) => new Uint8Array(BigUint64Array.of(n).buffer);
const MQ = MERGED | featureBit(NetFeature.CTRL_VQ) | featureBit(NetFeature.MQ) |
  featureBit(NetFeature.CTRL_GUEST_OFFLOADS) | featureBit(NetFeature.GUEST_TSO4);

tapTest("the control queue acks what it can do and refuses the rest, changing nothing", (taps) => {
  const n = nic(taps, MQ);
  const { MQ: mq, OFFLOADS: offloads } = {
    MQ: [VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET] as const,
    OFFLOADS: [VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET] as const,
  };
  assert.equal(n.command(...mq, le16(0)), VIRTIO_NET_ERR, "no pairs");
  assert.equal(n.command(...mq, le16(3)), VIRTIO_NET_ERR, "more pairs than the device has");
  assert.equal(n.command(...mq, Uint8Array.of(2)), VIRTIO_NET_ERR, "a count cut short");
  assert.equal(n.command(...mq, le16(2)), VIRTIO_NET_OK);
  const guest = (bit: number) => featureBit(bit);
  assert.equal(n.command(...offloads, le64(guest(NetFeature.GUEST_CSUM))), VIRTIO_NET_OK);
  assert.equal(
    n.command(...offloads, le64(guest(NetFeature.GUEST_CSUM) | guest(NetFeature.GUEST_TSO4))),
    VIRTIO_NET_OK,
  );
  assert.equal(
    n.command(...offloads, le64(guest(NetFeature.GUEST_TSO6))),
    VIRTIO_NET_ERR,
    "an offload the driver did not negotiate",
  );
  assert.equal(n.command(...offloads, le64(1n << 40n)), VIRTIO_NET_ERR, "not an offload");
  assert.equal(n.command(0, 0, Uint8Array.of(1)), VIRTIO_NET_ERR, "RX mode: not offered");
  assert.equal(n.command(...mq, le16(1), 0), null, "no room for the ack: returned unanswered");
  assert.equal(n.backend.controlRejected, 7);
}, 2);

tapTest("without MQ the control queue is queue 2 and refuses VQ_PAIRS_SET", (taps) => {
  const features = MERGED | featureBit(NetFeature.CTRL_VQ);
  assert.equal(controlQueue(features, 2), 2);
  const n = nic(taps, features);
  assert.equal(
    n.command(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, le16(2)),
    VIRTIO_NET_ERR,
  );
}, 2);

tapTest(
  "multiqueue: until the driver asks for two pairs, pair 1's TAP queue is detached and its flows come back on pair 0; then pair 1 carries flows too",
  (taps) => {
    const n = nic(taps, MQ, MULTIQUEUE_RING);
    const hostMac = resolveHost(n);
    const isReset = ({ frame }: { frame: Uint8Array }) =>
      frame[ETH + 9] === 6 && (frame[ETH + IPV4 + 13] & TCP_RST) !== 0;
    let port = 40000;
    /**
     * SYNs of `flows` flows from pair 1; how many resets each pair's receive queue got. Which
     * attached queue a flow's packets take is the TAP's choice: the queue the flow last left from
     * (Linux's flow table), or its hash's.
     */
    const resetsByPair = (flows: number) => {
      for (let i = 0; i < flows; i++) n.send(synRequest(hostMac, port++), 1);
      n.receive(flows);
      return n.pairs.map(({ rx }) => frames(rx, rx.used(), bufferOf(rx)).filter(isReset).length);
    };
    assert.equal(n.backend.wantsEvents(1), false, "pair 1 is not watched yet");
    assert.deepEqual(resetsByPair(4), [4, 0], "a detached queue gets nothing");
    assert.equal(
      n.command(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, le16(2)),
      VIRTIO_NET_OK,
    );
    const [first, second] = resetsByPair(MULTIQUEUE_FLOWS);
    assert.equal(first + second, MULTIQUEUE_FLOWS, "every flow answered once");
    // By flow table or hash, 32 flows all missing pair 1 would be a one in 2^32 chance.
    assert.ok(second > 0, `pair 1 carries flows now (${first} on pair 0, ${second} on pair 1)`);
    assert.deepEqual(n.backend.drops, { tx: 0, rx: 0 });
  },
  2,
);

Deno.test("virtio-net's identity: pairs, control queue and MTU decide the features, queues and configuration", () => {
  const has = (features: bigint, bit: number) => (features & featureBit(bit)) !== 0n;
  const one = new NetBackend({ kind: "net", taps: [-1] });
  assert.ok(has(one.features, NetFeature.CTRL_VQ) && !has(one.features, NetFeature.MQ));
  assert.ok(!has(one.features, NetFeature.MTU) && !has(one.features, NetFeature.MAC));
  assert.equal(one.queueSizes.length, 3, "rx, tx, control");
  const four = new NetBackend({ kind: "net", taps: [-1, -1, -1, -1], mac: GUEST_MAC, mtu: 9000 });
  assert.ok(has(four.features, NetFeature.MQ) && has(four.features, NetFeature.MTU));
  assert.equal(four.queueSizes.length, 9, "four pairs and the control queue");
  const config = new DataView(four.configBytes.buffer);
  assert.equal(config.getUint16(NetConfig.MAX_VIRTQUEUE_PAIRS, true), 4);
  assert.equal(config.getUint16(NetConfig.MTU, true), 9000);
  assert.deepEqual([...four.configBytes.subarray(NetConfig.MAC, NetConfig.MAC + 6)], GUEST_MAC);
  assert.throws(() => new NetBackend({ kind: "net", taps: [-1], mtu: 70000 }), /MTU 70000/);
  assert.throws(() => new NetBackend({ kind: "net", taps: [] }), /0 queue pairs/);
});
