/**
 * virtio-vsock in userspace, over Unix sockets (OASIS virtio 1.2 §5.10; the host side as
 * Firecracker's): stream connections between guest ports and host programs.
 *
 * - A host program connects to the device's listening socket (`uds-path`) and writes
 *   `CONNECT <port>\n`; the device asks the guest (REQUEST from the host CID and a port of its
 *   own) and, once the guest accepts (RESPONSE), answers `OK <hostport>\n`; if the guest refuses
 *   (RST) or does not answer in time, the host program's socket is closed.
 * - A guest connection to the host CID, port P, is connected to the Unix socket `uds-path_P`
 *   (through a descriptor of `uds-path`'s directory: the device opens no path of its own
 *   choosing); if nothing listens there the guest gets RST.
 * - Bytes move under the spec's credit rules both ways ({@link VsockConnection}); SHUTDOWN and
 *   RST end connections as Linux's transport expects (its `close` sends SHUTDOWN and waits for
 *   our RST).
 * - Every host socket sits in one epoll set, the one descriptor the device loop watches; a
 *   timer ends handshakes that take too long. Connections are capped ({@link MAX_CONNECTIONS});
 *   packets for the device that break the rules get RST, and count as refused.
 *
 * @module
 */

import { close } from "../../../ffi/libc.ts";
import { Epoll, EpollEvent, IntervalTimer } from "../../../ffi/epoll.ts";
import { SyscallError } from "../../../ffi/errno.ts";
import {
  acceptConnection,
  connectStream,
  PEER_GONE,
  receiveSome,
  sendSome,
  shutdownSending,
} from "../../../ffi/unix_socket.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { DescriptorChain } from "../descriptor.ts";
import type { VirtioBackend, VirtQueue } from "../device.ts";
import { CONNECTION_BUFFER, VsockConnection } from "./connection.ts";
import { VsockIdentity } from "./identity.ts";
import {
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
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
} from "./spec.ts";

/** The largest payload one packet carries either way (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
export const MAX_PAYLOAD = 64 * 1024;
/** Connections at once, both directions together; more are refused. */
export const MAX_CONNECTIONS = 1024;
/** How long a host program has to send its CONNECT line, and the guest to answer a REQUEST. */
export const HANDSHAKE_TIMEOUT_MS = 5000;
/** How often handshakes are checked for their deadline while any is under way. */
const HANDSHAKE_TICK_MS = 500;
/** The longest CONNECT line taken (`CONNECT 4294967295\n` is 19 bytes). */
const MAX_CONNECT_LINE = 32;
/** A host program's request: `CONNECT <port>`. */
const CONNECT_LINE = /^CONNECT ([0-9]{1,10})$/;
/** Ports the device gives host-initiated connections, counting up from here (as Firecracker). */
const FIRST_LOCAL_PORT = 1 << 30;
const MAX_PORT = 0xffff_ffff;
/** Packets for the guest that wait for receive buffers, at most (connection-less RSTs beyond are dropped). */
const MAX_QUEUED_PACKETS = 4 * MAX_CONNECTIONS;
/** Epoll keys of the listening socket and the timer; connections get keys from here on. */
const LISTEN_KEY = 0;
const TIMER_KEY = 1;
const FIRST_CONNECTION_KEY = 2;

/** What crosses to the device runner. */
export interface VsockSpec {
  /** Selects the userspace virtio-vsock. */
  kind: "vsock";
  /** The guest's CID (3 or more). */
  cid: number;
  /** The listening stream socket at `uds-path` (non-blocking), bound by the VMM. */
  listenFd: number;
  /** `uds-path`'s directory (O_PATH), where `<portPrefix>_P` is looked up for guest port P. */
  dirFd: number;
  /** `uds-path`'s file name. */
  portPrefix: string;
}

/** A packet for the guest without payload, waiting for a receive buffer. */
interface QueuedPacket {
  readonly op: number;
  readonly flags: number;
  readonly localPort: number;
  readonly peerPort: number;
  /** Its connection, whose credit the header reports; none for an RST to a stranger. */
  readonly connection?: VsockConnection;
}

/** A guest packet's header, decoded. */
interface GuestHeader {
  srcCid: bigint;
  dstCid: bigint;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** Counts of what the device refused. */
export interface VsockRefusals {
  /** Guest packets that broke the rules (malformed, wrong CID, credit overrun, unknown op…). */
  packets: number;
  /** Connections turned away: no listener, over the cap, a bad CONNECT line, a timeout. */
  connections: number;
}

/** The userspace vsock device. */
export class VsockBackend extends VsockIdentity implements VirtioBackend {
  /** The epoll set of every host socket. */
  readonly eventFds: readonly number[];
  readonly refused: VsockRefusals = { packets: 0, connections: 0 };
  readonly #epoll = new Epoll();
  readonly #timer = new IntervalTimer();
  #timerRunning = false;
  /** Connections by epoll key, and by `localPort:peerPort` once both are known. */
  readonly #byKey = new Map<number, VsockConnection>();
  readonly #byPorts = new Map<string, VsockConnection>();
  #nextKey = FIRST_CONNECTION_KEY;
  #nextLocalPort = FIRST_LOCAL_PORT;
  readonly #queued: QueuedPacket[] = [];
  /** Connections whose host socket has bytes for the guest, in turn. */
  readonly #readable = new Set<VsockConnection>();
  /** A receive chain taken when there turned out to be nothing to put in it. */
  #spare: DescriptorChain | null = null;
  readonly #header = new Uint8Array(VsockHeader.SIZE);
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #payload = new Uint8Array(MAX_PAYLOAD);

  /**
   * The device for guest CID `spec.cid` on the sockets of `spec`.
   * @throws RangeError for a CID below 3
   */
  constructor(private readonly spec: VsockSpec) {
    super(spec.cid);
    this.#epoll.add(spec.listenFd, LISTEN_KEY, EpollEvent.EPOLLIN);
    this.#epoll.add(this.#timer.fd, TIMER_KEY, EpollEvent.EPOLLIN);
    this.eventFds = [this.#epoll.fd];
  }

  /** Connections open now. */
  get connections(): number {
    return this.#byKey.size;
  }

  /** A doorbell: receive buffers to fill, or packets from the guest. */
  processQueue(
    index: number,
    queue: VirtQueue,
    _memory: GuestMemory,
    queues?: readonly (VirtQueue | undefined)[],
  ): void {
    if (index === VSOCK_TX_QUEUE) this.#transmit(queue);
    // The event queue's buffers are kept: TRANSPORT_RESET is never sent.
    if (index !== VSOCK_RX_QUEUE && index !== VSOCK_TX_QUEUE) return;
    const rx = index === VSOCK_RX_QUEUE ? queue : queues?.[VSOCK_RX_QUEUE];
    if (rx !== undefined) this.#fillReceive(rx);
  }

  /** Host sockets are ready: accept, read CONNECT lines, flush, notice hang-ups; then deliver. */
  onEvent(_index: number, queues: readonly (VirtQueue | undefined)[]): void {
    for (const { key, events } of this.#epoll.ready()) {
      if (key === LISTEN_KEY) this.#acceptAll();
      else if (key === TIMER_KEY) this.#checkDeadlines();
      else {
        const connection = this.#byKey.get(key);
        if (connection !== undefined) this.#onSocket(connection, events);
      }
    }
    const rx = queues[VSOCK_RX_QUEUE];
    if (rx !== undefined) this.#fillReceive(rx);
  }

  /** The driver reset the device: every connection ends (the host programs see their sockets close). */
  reset(): void {
    for (const connection of [...this.#byKey.values()]) this.#close(connection);
    this.#queued.length = 0;
    this.#spare = null;
  }

  /** The runner stops: every connection ends, and the epoll set and timer are closed. */
  close(): void {
    this.reset();
    this.#epoll.close();
    this.#timer.close();
  }

  // --- the guest's packets ---

  #transmit(queue: VirtQueue): void {
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      const header = this.#readHeader(chain);
      if (header === null) {
        this.refused.packets++;
      } else {
        const payload = this.#payload.subarray(0, header.len);
        chain.readInto(payload, VsockHeader.SIZE);
        this.#onPacket(header, payload);
      }
      queue.pushUsed(chain, 0);
    }
  }

  /** A chain's header, or null when the chain is too short for it or for the payload it declares. */
  #readHeader(chain: DescriptorChain): GuestHeader | null {
    if (chain.readInto(this.#header) < VsockHeader.SIZE) return null;
    const v = this.#headerView;
    const len = v.getUint32(VsockHeader.LEN, true);
    if (len > MAX_PAYLOAD || len > chain.readableLength - VsockHeader.SIZE) return null;
    return {
      srcCid: v.getBigUint64(VsockHeader.SRC_CID, true),
      dstCid: v.getBigUint64(VsockHeader.DST_CID, true),
      srcPort: v.getUint32(VsockHeader.SRC_PORT, true),
      dstPort: v.getUint32(VsockHeader.DST_PORT, true),
      len,
      type: v.getUint16(VsockHeader.TYPE, true),
      op: v.getUint16(VsockHeader.OP, true),
      flags: v.getUint32(VsockHeader.FLAGS, true),
      bufAlloc: v.getUint32(VsockHeader.BUF_ALLOC, true),
      fwdCnt: v.getUint32(VsockHeader.FWD_CNT, true),
    };
  }

  #onPacket(h: GuestHeader, payload: Uint8Array): void {
    if (h.srcCid !== this.cid || h.dstCid !== BigInt(VMADDR_CID_HOST)) {
      this.refused.packets++; // not from this guest, or not for the host: nobody to answer
      return;
    }
    const connection = this.#byPorts.get(`${h.dstPort}:${h.srcPort}`);
    if (h.type !== VIRTIO_VSOCK_TYPE_STREAM) {
      this.#refusePacket(h, connection);
      return;
    }
    if (connection === undefined) {
      if (h.op === VIRTIO_VSOCK_OP_REQUEST) this.#guestConnect(h);
      else if (h.op !== VIRTIO_VSOCK_OP_RST) this.#refusePacket(h);
      return;
    }
    const hadCredit = connection.peerCredit > 0;
    connection.updatePeerCredit(h.bufAlloc, h.fwdCnt);
    switch (h.op) {
      case VIRTIO_VSOCK_OP_RESPONSE:
        if (connection.state !== "connecting") return this.#refusePacket(h, connection);
        this.#established(connection);
        break;
      case VIRTIO_VSOCK_OP_RST:
        this.#close(connection);
        return;
      case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (connection.state !== "established") return this.#refusePacket(h, connection);
        connection.guestShutSend ||= (h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND) !== 0;
        connection.guestShutRcv ||= (h.flags & VIRTIO_VSOCK_SHUTDOWN_RCV) !== 0;
        this.#afterFlush(connection);
        break;
      case VIRTIO_VSOCK_OP_RW:
        if (connection.state !== "established" || connection.guestShutSend) {
          return this.#refusePacket(h, connection);
        }
        this.#toHost(connection, payload);
        break;
      case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break;
      case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        this.#queueCreditUpdate(connection);
        break;
      default: // REQUEST on a live connection, INVALID, or an op the spec does not have
        return this.#refusePacket(h, connection);
    }
    if (connection.state === "closed") return;
    if (!hadCredit && connection.peerCredit > 0 && connection.hostGone) {
      this.#readable.add(connection);
    }
    this.#watch(connection);
  }

  /** A packet that breaks the rules: RST to its sender, and its connection (if any) ends. */
  #refusePacket(h: GuestHeader, connection?: VsockConnection): void {
    this.refused.packets++;
    if (connection !== undefined) this.#reset(connection);
    else {this.#queue({
        op: VIRTIO_VSOCK_OP_RST,
        flags: 0,
        localPort: h.dstPort,
        peerPort: h.srcPort,
      });}
  }

  /** The guest connects to host port `h.dstPort`: to the Unix socket `<uds-path>_<port>`. */
  #guestConnect(h: GuestHeader): void {
    const refuse = () => {
      this.refused.connections++;
      this.#queue({ op: VIRTIO_VSOCK_OP_RST, flags: 0, localPort: h.dstPort, peerPort: h.srcPort });
    };
    if (this.#byKey.size >= MAX_CONNECTIONS) return refuse();
    let fd: number;
    try {
      fd = connectStream(
        `/proc/self/fd/${this.spec.dirFd}/${this.spec.portPrefix}_${h.dstPort}`,
      );
    } catch (e) {
      if (e instanceof SyscallError || e instanceof RangeError) return refuse();
      throw e;
    }
    const connection = this.#add(fd, "established", h.dstPort, h.srcPort);
    connection.updatePeerCredit(h.bufAlloc, h.fwdCnt);
    this.#queue({
      op: VIRTIO_VSOCK_OP_RESPONSE,
      flags: 0,
      localPort: h.dstPort,
      peerPort: h.srcPort,
      connection,
    });
    this.#watch(connection);
  }

  /** The guest accepted a host program's connection: tell the program its port. */
  #established(connection: VsockConnection): void {
    connection.state = "established";
    connection.deadline = Infinity;
    const reply = new TextEncoder().encode(`OK ${connection.localPort}\n`);
    // A fresh socket takes a short line whole; one that does not has gone or is broken.
    if (sendSome(connection.fd, reply) !== reply.length) this.#reset(connection);
  }

  /** The guest's bytes for the host: sent now, or held within the credit we gave. */
  #toHost(connection: VsockConnection, payload: Uint8Array): void {
    if (connection.pendingBytes + payload.length > CONNECTION_BUFFER) {
      this.refused.packets++; // more than the credit we gave
      this.#reset(connection);
      return;
    }
    let sent = 0;
    if (connection.pendingBytes === 0) {
      sent = sendSome(connection.fd, payload);
      if (sent === PEER_GONE) return this.#reset(connection);
      connection.fwdCnt = (connection.fwdCnt + sent) >>> 0;
    }
    if (sent < payload.length) connection.hold(payload.subarray(sent));
    if (connection.creditUpdateDue) this.#queueCreditUpdate(connection);
  }

  /** Once the host has taken what was held: the guest's shutdowns take effect. */
  #afterFlush(connection: VsockConnection): void {
    if (connection.pendingBytes > 0) return;
    if (connection.guestShutSend && connection.guestShutRcv) {
      this.#reset(connection); // Linux's close: SHUTDOWN both ways, then it waits for our RST
    } else if (connection.guestShutSend) {
      shutdownSending(connection.fd);
    }
  }

  // --- the host's sockets ---

  #acceptAll(): void {
    for (
      let fd = acceptConnection(this.spec.listenFd);
      fd !== null;
      fd = acceptConnection(this.spec.listenFd)
    ) {
      if (this.#byKey.size >= MAX_CONNECTIONS) {
        this.refused.connections++;
        close(fd);
        continue;
      }
      const connection = this.#add(fd, "awaiting-connect");
      connection.deadline = performance.now() + HANDSHAKE_TIMEOUT_MS;
      this.#startTimer();
      this.#watch(connection);
    }
  }

  #onSocket(connection: VsockConnection, events: number): void {
    if (events & EpollEvent.EPOLLERR) return this.#reset(connection);
    if (connection.state === "awaiting-connect") {
      if (events & (EpollEvent.EPOLLIN | EpollEvent.EPOLLHUP)) this.#readConnectLine(connection);
      return;
    }
    if (events & EpollEvent.EPOLLHUP) {
      // The program closed its socket: what it sent is still to be read, to the end; the socket
      // stays out of the set (a hang-up is reported for as long as it lasts).
      connection.hostGone = true;
      this.#readable.add(connection);
      this.#unwatch(connection);
      return;
    }
    if (events & EpollEvent.EPOLLOUT) {
      if (!connection.flush((bytes) => sendSome(connection.fd, bytes))) {
        return this.#reset(connection);
      }
      if (connection.creditUpdateDue) this.#queueCreditUpdate(connection);
      this.#afterFlush(connection);
      if (connection.state === "closed") return;
    }
    if (events & EpollEvent.EPOLLIN) this.#readable.add(connection);
    this.#watch(connection);
  }

  /** Reads a host program's `CONNECT <port>` line, a byte at a time (what follows is data). */
  #readConnectLine(connection: VsockConnection): void {
    const byte = new Uint8Array(1);
    for (;;) {
      const n = receiveSome(connection.fd, byte);
      if (n === null) return;
      if (n !== 1) return this.#turnAway(connection);
      if (byte[0] !== 0x0a) {
        connection.line += String.fromCharCode(byte[0]);
        if (connection.line.length > MAX_CONNECT_LINE) return this.#turnAway(connection);
        continue;
      }
      const match = CONNECT_LINE.exec(connection.line);
      const port = match === null ? NaN : Number(match[1]);
      if (!(port <= MAX_PORT)) return this.#turnAway(connection);
      connection.peerPort = port;
      connection.localPort = this.#freeLocalPort(port);
      connection.state = "connecting";
      connection.deadline = performance.now() + HANDSHAKE_TIMEOUT_MS;
      this.#byPorts.set(`${connection.localPort}:${port}`, connection);
      this.#queue({
        op: VIRTIO_VSOCK_OP_REQUEST,
        flags: 0,
        localPort: connection.localPort,
        peerPort: port,
        connection,
      });
      this.#watch(connection);
      return;
    }
  }

  /** A host port no connection to guest port `peerPort` uses. */
  #freeLocalPort(peerPort: number): number {
    for (;;) {
      const port = this.#nextLocalPort;
      this.#nextLocalPort = port >= MAX_PORT ? FIRST_LOCAL_PORT : port + 1;
      if (!this.#byPorts.has(`${port}:${peerPort}`)) return port;
    }
  }

  /** A host program that did not ask properly, or in time: its socket closes. */
  #turnAway(connection: VsockConnection): void {
    this.refused.connections++;
    this.#close(connection);
  }

  #checkDeadlines(): void {
    this.#timer.acknowledge();
    const now = performance.now();
    let waiting = false;
    for (const connection of [...this.#byKey.values()]) {
      if (connection.deadline === Infinity) continue;
      if (connection.deadline > now) {
        waiting = true;
      } else if (connection.state === "connecting") {
        this.refused.connections++;
        this.#reset(connection); // the guest never answered: withdraw the request
      } else {
        this.#turnAway(connection);
      }
    }
    if (!waiting) {
      this.#timer.set(0);
      this.#timerRunning = false;
    }
  }

  #startTimer(): void {
    if (this.#timerRunning) return;
    this.#timer.set(HANDSHAKE_TICK_MS);
    this.#timerRunning = true;
  }

  // --- the receive queue ---

  /** Fills receive buffers with queued packets, then data, until one or the other runs out. */
  #fillReceive(rx: VirtQueue): void {
    while (this.#queued.length > 0 || this.#readable.size > 0) {
      const chain = this.#spare ?? rx.pop();
      this.#spare = null;
      if (chain === null) return; // the driver's doorbell brings us back
      if (chain.writableLength < VsockHeader.SIZE) {
        rx.pushUsed(chain, 0);
        continue;
      }
      const written = this.#nextPacket(chain);
      if (written === 0) {
        this.#spare = chain;
        return;
      }
      rx.pushUsed(chain, written);
    }
  }

  /** Writes the next packet for the guest into `chain`; its length, or 0 when there is none. */
  #nextPacket(chain: DescriptorChain): number {
    for (;;) {
      const packet = this.#queued.shift();
      if (packet !== undefined) {
        if (packet.op === VIRTIO_VSOCK_OP_CREDIT_UPDATE && packet.connection !== undefined) {
          packet.connection.creditQueued = false;
        }
        return this.#writePacket(chain, packet, 0);
      }
      const connection = this.#readable.values().next().value;
      if (connection === undefined) return 0;
      this.#readable.delete(connection);
      const room = Math.min(chain.writableLength - VsockHeader.SIZE, connection.peerCredit);
      if (room <= 0) {
        this.#watch(connection); // read again once the guest gives credit
        continue;
      }
      const data = this.#payload.subarray(0, Math.min(room, MAX_PAYLOAD));
      const n = receiveSome(connection.fd, data);
      if (n === null) {
        this.#watch(connection);
      } else if (n === PEER_GONE) {
        this.#reset(connection);
      } else if (n === 0) {
        this.#hostEnded(connection);
      } else {
        this.#readable.add(connection); // there may be more: its turn comes again
        connection.txCnt = (connection.txCnt + n) >>> 0;
        chain.write(data.subarray(0, n), VsockHeader.SIZE);
        return this.#writePacket(chain, {
          op: VIRTIO_VSOCK_OP_RW,
          flags: 0,
          localPort: connection.localPort,
          peerPort: connection.peerPort,
          connection,
        }, n);
      }
    }
  }

  /** The host program will send no more: the guest reads end of stream after what it has. */
  #hostEnded(connection: VsockConnection): void {
    connection.hostEof = true;
    if (connection.hostGone) {
      this.#reset(connection);
      return;
    }
    this.#queue({
      op: VIRTIO_VSOCK_OP_SHUTDOWN,
      flags: VIRTIO_VSOCK_SHUTDOWN_SEND,
      localPort: connection.localPort,
      peerPort: connection.peerPort,
      connection,
    });
    this.#watch(connection);
  }

  /** Writes `packet`'s header (`len` payload bytes follow it, already written) into `chain`. */
  #writePacket(chain: DescriptorChain, packet: QueuedPacket, len: number): number {
    const v = this.#headerView;
    v.setBigUint64(VsockHeader.SRC_CID, BigInt(VMADDR_CID_HOST), true);
    v.setBigUint64(VsockHeader.DST_CID, this.cid, true);
    v.setUint32(VsockHeader.SRC_PORT, packet.localPort, true);
    v.setUint32(VsockHeader.DST_PORT, packet.peerPort, true);
    v.setUint32(VsockHeader.LEN, len, true);
    v.setUint16(VsockHeader.TYPE, VIRTIO_VSOCK_TYPE_STREAM, true);
    v.setUint16(VsockHeader.OP, packet.op, true);
    v.setUint32(VsockHeader.FLAGS, packet.flags, true);
    v.setUint32(VsockHeader.BUF_ALLOC, CONNECTION_BUFFER, true);
    const fwdCnt = packet.connection?.fwdCnt ?? 0;
    v.setUint32(VsockHeader.FWD_CNT, fwdCnt, true);
    if (packet.connection !== undefined) packet.connection.reportedFwdCnt = fwdCnt;
    chain.write(this.#header);
    return VsockHeader.SIZE + len;
  }

  #queue(packet: QueuedPacket): void {
    // A guest that floods strangers with packets fills the queue with RSTs: those are dropped
    // (its connects time out); a connection's own packets always go.
    if (packet.connection === undefined && this.#queued.length >= MAX_QUEUED_PACKETS) return;
    this.#queued.push(packet);
  }

  #queueCreditUpdate(connection: VsockConnection): void {
    if (connection.creditQueued) return;
    connection.creditQueued = true;
    this.#queue({
      op: VIRTIO_VSOCK_OP_CREDIT_UPDATE,
      flags: 0,
      localPort: connection.localPort,
      peerPort: connection.peerPort,
      connection,
    });
  }

  // --- connections ---

  #add(
    fd: number,
    state: VsockConnection["state"],
    localPort = 0,
    peerPort = 0,
  ): VsockConnection {
    const connection = new VsockConnection(fd, this.#nextKey++, state, localPort, peerPort);
    this.#byKey.set(connection.key, connection);
    if (state !== "awaiting-connect") this.#byPorts.set(`${localPort}:${peerPort}`, connection);
    return connection;
  }

  /** Ends `connection` with an RST to the guest (when it knows of it). */
  #reset(connection: VsockConnection): void {
    if (connection.state !== "awaiting-connect") {
      this.#queue({
        op: VIRTIO_VSOCK_OP_RST,
        flags: 0,
        localPort: connection.localPort,
        peerPort: connection.peerPort,
      });
    }
    this.#close(connection);
  }

  /** Forgets `connection` and closes its host socket. */
  #close(connection: VsockConnection): void {
    if (connection.state === "closed") return;
    this.#unwatch(connection);
    close(connection.fd);
    connection.state = "closed";
    this.#byKey.delete(connection.key);
    this.#byPorts.delete(`${connection.localPort}:${connection.peerPort}`);
    this.#readable.delete(connection);
  }

  /** Watches the connection's socket for what it can act on now. */
  #watch(connection: VsockConnection): void {
    if (connection.state === "closed" || connection.hostGone) return;
    const wantsInput = connection.state === "awaiting-connect" ||
      (connection.state === "established" && !this.#readable.has(connection) &&
        !connection.hostEof && !connection.guestShutRcv && connection.peerCredit > 0);
    const events = (wantsInput ? EpollEvent.EPOLLIN : 0) |
      (connection.pendingBytes > 0 ? EpollEvent.EPOLLOUT : 0);
    if (connection.watching === events) return;
    if (connection.watching === null) this.#epoll.add(connection.fd, connection.key, events);
    else this.#epoll.modify(connection.fd, connection.key, events);
    connection.watching = events;
  }

  #unwatch(connection: VsockConnection): void {
    if (connection.watching === null) return;
    this.#epoll.remove(connection.fd);
    connection.watching = null;
  }
}
