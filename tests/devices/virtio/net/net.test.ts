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
  NetFeature,
  NetHeader,
  RX_QUEUE,
  TX_QUEUE,
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

/** A TAP whose interface sits in a namespace of its own, as 10.77.0.1/24, MTU 9000, up. */
async function withTap(fn: (tap: Tap, ns: string) => Promise<void>): Promise<void> {
  const ns = `crosvm-net-${crypto.randomUUID().slice(0, 8)}`;
  await ip("netns", "add", ns);
  const tap = openTap("cvnet%d");
  try {
    await ip("link", "set", "dev", tap.name, "netns", ns);
    const sysctl = ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"];
    await ip(...sysctl);
    await ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", tap.name);
    await ip("-n", ns, "link", "set", "dev", tap.name, "mtu", "9000", "up");
    await fn(tap, ns);
  } finally {
    close(tap.fd);
    await ip("netns", "del", ns);
  }
}

/** A NIC with its two queues, each over its driver's guest memory. */
function nic(tap: Tap, features: bigint) {
  const rx = new Driver({ size: 16 });
  const tx = new Driver({ size: 16 });
  const backend = new NetBackend({ kind: "net", fd: tap.fd, mac: GUEST_MAC });
  backend.activate(features);
  const queues = [new VirtQueue(RX_QUEUE, rx.queue), new VirtQueue(TX_QUEUE, tx.queue)];
  /** Sends one frame (a zero header in front: no offload) from a two-buffer chain. */
  const send = (frame: Uint8Array) => {
    const header = tx.buffer(NetHeader.SIZE);
    const body = tx.buffer(frame.length);
    tx.mem.write(body, frame);
    tx.add([{ addr: header, len: NetHeader.SIZE }, { addr: body, len: frame.length }]);
    tx.publish();
    backend.processQueue(TX_QUEUE, queues[TX_QUEUE], tx.mem);
  };
  /** Offers `count` receive buffers and takes what the TAP has until it is quiet for a while. */
  const receive = (count: number, quietMs = 300) => {
    for (let i = 0; i < count; i++) {
      rx.add([{ addr: rx.buffer(RX_BUFFER), len: RX_BUFFER, write: true }]);
    }
    rx.publish();
    backend.processQueue(RX_QUEUE, queues[RX_QUEUE], rx.mem);
    const poll = new PollSet([tap.fd]);
    while (backend.wantsEvents() && poll.wait(quietMs).length > 0) backend.onEvent(0, queues);
  };
  return { rx, tx, backend, send, receive };
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

/** A test that needs a TAP in a namespace. */
function tapTest(name: string, fn: (tap: Tap) => void): void {
  Deno.test({
    name: CAN_RUN ? `virtio-net: ${name}` : `virtio-net: ${name} [ignored: ${SKIP}]`,
    ignore: !CAN_RUN,
    fn: () => withTap((tap) => Promise.resolve(fn(tap))),
  });
}

const PAYLOAD = Uint8Array.from({ length: 4000 }, (_, i) => (i * 13 + 7) & 0xff);
/** The echo reply to a {@link PAYLOAD} ping: Ethernet + IPv4 + ICMP + payload, in one frame (MTU 9000). */
const REPLY_LENGTH = ETH + IPV4 + ICMP + PAYLOAD.length;

tapTest("a ping's 4 KiB reply fills three merged receive buffers, num_buffers 3, intact", (tap) => {
  const n = nic(tap, MERGED);
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
});

tapTest("without MRG_RXBUF a frame larger than a receive buffer is dropped and counted", (tap) => {
  const n = nic(tap, featureBit(NetFeature.GUEST_CSUM));
  const hostMac = resolveHost(n);
  n.send(echoRequest(hostMac, PAYLOAD));
  n.receive(1);
  assert.deepEqual(n.rx.used().map((u) => u.len), [0], "the buffer comes back empty");
  assert.equal(n.backend.drops.rx, 1);
});

tapTest(
  "a transmit chain shorter than a header is returned and counted, and sends nothing",
  (tap) => {
    const n = nic(tap, MERGED);
    n.tx.add([{ addr: n.tx.buffer(4), len: 4 }]);
    n.tx.publish();
    n.backend.processQueue(TX_QUEUE, new VirtQueue(TX_QUEUE, n.tx.queue), n.tx.mem);
    assert.deepEqual(n.tx.used().map((u) => u.len), [0]);
    assert.equal(n.backend.drops.tx, 1);
  },
);

tapTest(
  "a tap-fd handed over blocking is adopted non-blocking: the device reads until EAGAIN",
  (tap) => {
    const fd = Number(libc().fcntl(tap.fd, F_GETFL, 0));
    libc().fcntl(tap.fd, F_SETFL, fd & ~O_NONBLOCK);
    assert.equal(adoptTapFd(tap.fd).name, tap.name);
    assert.ok(libc().fcntl(tap.fd, F_GETFL, 0) & O_NONBLOCK, "O_NONBLOCK set");
    // With nothing to read, receiving returns at once instead of blocking the device's loop.
    const n = nic(tap, MERGED);
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
      const { rx, tx, send, receive, backend } = nic(tap, MERGED);
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
