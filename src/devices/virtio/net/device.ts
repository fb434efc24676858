/**
 * virtio-net over a TAP (OASIS virtio 1.2 §5.1): one receive and one transmit queue, the
 * virtio-net header passed straight between the guest and the TAP (both use the 12-byte
 * `virtio_net_hdr` with `num_buffers`, so checksum and segmentation offloads cross untouched),
 * the MAC and link status in the configuration.
 *
 * - Transmit: each chain's readable part (header, then frame) goes to the TAP in one `writev`
 *   from guest memory. A chain shorter than a header, or a frame the TAP refuses, is dropped
 *   and counted; the chain is returned either way.
 * - Receive: while the receive queue has buffers, the device loop watches the TAP; each frame
 *   is read whole into a bounce buffer and copied into one chain, or with MRG_RXBUF into as many
 *   as it takes (`num_buffers` in the first). When the ring runs dry mid-frame the chains taken
 *   are held, not returned, until the driver adds more; meanwhile the TAP is not read, so frames
 *   wait in the kernel's queue (which counts what it drops). Without MRG_RXBUF a frame larger
 *   than a chain is dropped and counted.
 * - The TAP is told which offloads it may hand us (TUNSETOFFLOAD) from the features the driver
 *   accepted, when the queues start.
 *
 * @module
 */

import { SyscallError } from "../../../ffi/errno.ts";
import { IOVEC_WORDS, read, setIovec, writev } from "../../../ffi/libc.ts";
import { setTapOffload } from "../../../ffi/tap.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { DescriptorChain } from "../descriptor.ts";
import type { VirtioBackend, VirtQueue } from "../device.ts";
import { featureBit } from "../spec.ts";
import {
  MAX_PACKET,
  NetFeature,
  NetHeader,
  NetIdentity,
  RX_QUEUE,
  tapOffloadsFor,
  TX_QUEUE,
} from "./spec.ts";

/** Most buffers one transmitted frame may have (the kernel's UIO_MAXIOV). */
const MAX_TX_BUFFERS = 1024;

/** What crosses to the device runner: the TAP's descriptor and what the guest is told. */
export interface NetSpec {
  /** Selects virtio-net. */
  kind: "net";
  /** The TAP, opened by the VMM with IFF_VNET_HDR and a 12-byte header, non-blocking. */
  fd: number;
  /** The guest's MAC (six bytes); without it the driver picks one. */
  mac?: readonly number[];
}

/** Counts a NIC keeps of what it could not deliver. */
export interface NetDrops {
  /** Frames the guest sent that were malformed or that the TAP refused. */
  tx: number;
  /** Frames from the TAP too large for the driver's buffers (without MRG_RXBUF). */
  rx: number;
}

/** A frame read from the TAP and the chains it is being copied into. */
interface PendingFrame {
  readonly length: number;
  /** Bytes of it copied so far. */
  copied: number;
  /** Chains taken for it, with the bytes written into each. */
  readonly chains: { chain: DescriptorChain; written: number }[];
}

/** The network device. */
export class NetBackend extends NetIdentity implements VirtioBackend {
  /** The TAP: the loop watches it while {@link wantsEvents} says so. */
  readonly eventFds: readonly number[];
  readonly drops: NetDrops = { tx: 0, rx: 0 };
  readonly #tap: number;
  readonly #frame = new Uint8Array(MAX_PACKET + NetHeader.SIZE);
  readonly #iovecs = new BigUint64Array(MAX_TX_BUFFERS * IOVEC_WORDS);
  /** The iovecs as 32-bit halves, for {@link setIovec}. */
  readonly #iovecHalves = new Uint32Array(this.#iovecs.buffer);
  #mergeable = false;
  /** The receive ring ran dry: wait for the driver's doorbell before reading the TAP again. */
  #starved = false;
  #pending: PendingFrame | null = null;

  /**
   * A NIC on the TAP `spec.fd`.
   * @throws RangeError for a MAC that is not six bytes
   */
  constructor(spec: NetSpec) {
    super(spec.mac);
    this.#tap = spec.fd;
    this.eventFds = [spec.fd];
  }

  /** The queues start with the driver's features: the TAP may hand over what the guest takes. */
  activate(driverFeatures: bigint): void {
    this.#mergeable = (driverFeatures & featureBit(NetFeature.MRG_RXBUF)) !== 0n;
    setTapOffload(this.#tap, tapOffloadsFor(driverFeatures));
    this.#starved = false;
  }

  /** Whether the loop should watch the TAP: only while there may be buffers to receive into. */
  wantsEvents(): boolean {
    return !this.#starved;
  }

  /** The TAP has frames: receive them while the ring has buffers. */
  onEvent(_index: number, queues: readonly (VirtQueue | undefined)[]): void {
    const rx = queues[RX_QUEUE];
    if (rx !== undefined) this.#receive(rx);
  }

  /** A doorbell: the driver added receive buffers, or frames to send. */
  processQueue(index: number, queue: VirtQueue, memory: GuestMemory): void {
    if (index === RX_QUEUE) {
      this.#starved = false;
      this.#receive(queue);
    } else if (index === TX_QUEUE) {
      this.#transmit(queue, memory);
    }
  }

  /** The driver reset the device: frames in flight are forgotten. */
  reset(): void {
    this.#pending = null;
    this.#starved = false;
  }

  #transmit(queue: VirtQueue, memory: GuestMemory): void {
    const ramBase = Number(memory.hostAddress(0));
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      const ranges = chain.readableRanges();
      if (chain.readableLength < NetHeader.SIZE || ranges.length > MAX_TX_BUFFERS) {
        this.drops.tx++;
      } else {
        ranges.forEach((r, i) => setIovec(this.#iovecHalves, i, ramBase + r.offset, r.length));
        try {
          writev(this.#tap, this.#iovecs, ranges.length);
        } catch (e) {
          // The TAP is down or its queue full: the frame is lost, as on a real wire.
          if (!(e instanceof SyscallError)) throw e;
          this.drops.tx++;
        }
      }
      queue.pushUsed(chain, 0);
    }
  }

  #receive(queue: VirtQueue): void {
    for (;;) {
      if (this.#pending === null) {
        const length = this.#readFrame();
        if (length === 0) return;
        this.#pending = { length, copied: 0, chains: [] };
      }
      if (!this.#place(this.#pending, queue)) {
        this.#starved = true;
        return;
      }
      this.#pending = null;
    }
  }

  /** The next frame from the TAP (header included) into the bounce buffer; 0 when none. */
  #readFrame(): number {
    try {
      return read(this.#tap, this.#frame);
    } catch (e) {
      if (e instanceof SyscallError && e.is("EAGAIN")) return 0;
      throw e;
    }
  }

  /**
   * Copies the rest of `frame` into chains from `queue` and returns them; false when the ring
   * ran dry first (the chains taken so far are kept in `frame`).
   */
  #place(frame: PendingFrame, queue: VirtQueue): boolean {
    while (frame.copied < frame.length) {
      const chain = queue.pop();
      if (chain === null) return false;
      if (!this.#mergeable && chain.writableLength < frame.length) {
        // One chain must hold the frame: drop it; the driver gets the chain back empty (and
        // counts a length error).
        this.drops.rx++;
        queue.pushUsed(chain, 0);
        frame.copied = frame.length;
        return true;
      }
      const written = chain.write(this.#frame.subarray(frame.copied, frame.length));
      if (written === 0) {
        // A chain with no room (not even for a header): hand it back empty.
        queue.pushUsed(chain, 0);
        continue;
      }
      frame.chains.push({ chain, written });
      frame.copied += written;
      if (!this.#mergeable) break;
    }
    const count = new Uint8Array(2);
    new DataView(count.buffer).setUint16(0, frame.chains.length, true);
    frame.chains[0].chain.write(count, NetHeader.NUM_BUFFERS);
    for (const { chain, written } of frame.chains) queue.pushUsed(chain, written);
    return true;
  }
}
