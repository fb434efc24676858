/**
 * One virtio-net queue pair over one TAP queue (a TAP descriptor; a multiqueue TAP has one per
 * pair): frames the guest sends on the pair's transmit queue go to the TAP, frames the TAP has
 * go into the pair's receive queue.
 *
 * - Transmit: each chain's readable part (header, then frame) goes to the TAP in one `writev`
 *   from guest memory. A chain shorter than a header, or a frame the TAP refuses, is dropped
 *   and counted; the chain is returned either way.
 * - Receive: each frame is read whole into a bounce buffer and copied into one chain, or with
 *   MRG_RXBUF into as many as it takes (`num_buffers` in the first). When the ring runs dry
 *   mid-frame the chains taken are held, not returned, until the driver adds more; meanwhile the
 *   TAP is not read ({@link TapQueue.starved}), so frames wait in the kernel's queue (which counts
 *   what it drops). Without MRG_RXBUF a frame larger than a chain is dropped and counted.
 *
 * @module
 */

import { SyscallError } from "../../../ffi/errno.ts";
import { IOVEC_WORDS, read, setIovec, writev } from "../../../ffi/libc.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { DescriptorChain } from "../descriptor.ts";
import type { VirtQueue } from "../device.ts";
import { MAX_PACKET, NetHeader } from "./spec.ts";

/** Most buffers one transmitted frame may have (the kernel's UIO_MAXIOV). */
const MAX_TX_BUFFERS = 1024;

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

/** One queue pair's traffic through its TAP descriptor. */
export class TapQueue {
  readonly #frame = new Uint8Array(MAX_PACKET + NetHeader.SIZE);
  readonly #iovecs = new BigUint64Array(MAX_TX_BUFFERS * IOVEC_WORDS);
  /** The iovecs as 32-bit halves, for {@link setIovec}. */
  readonly #iovecHalves = new Uint32Array(this.#iovecs.buffer);
  #pending: PendingFrame | null = null;
  /** The receive ring ran dry: wait for the driver's doorbell before reading the TAP again. */
  starved = false;
  /** Receive buffers are merged (MRG_RXBUF). */
  mergeable = false;

  /**
   * A pair on the TAP descriptor `tap` (non-blocking, 12-byte virtio-net header).
   * @param drops the NIC's counters, shared by its pairs
   */
  constructor(readonly tap: number, private readonly drops: NetDrops) {}

  /** The driver reset the device: a frame in flight is forgotten. */
  reset(): void {
    this.#pending = null;
    this.starved = false;
  }

  /** Sends every frame waiting on the transmit queue. */
  transmit(queue: VirtQueue, memory: GuestMemory): void {
    const ramBase = Number(memory.hostAddress(0));
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      const ranges = chain.readableRanges();
      if (chain.readableLength < NetHeader.SIZE || ranges.length > MAX_TX_BUFFERS) {
        this.drops.tx++;
      } else {
        ranges.forEach((r, i) => setIovec(this.#iovecHalves, i, ramBase + r.offset, r.length));
        try {
          writev(this.tap, this.#iovecs, ranges.length);
        } catch (e) {
          // The TAP is down or its queue full: the frame is lost, as on a real wire.
          if (!(e instanceof SyscallError)) throw e;
          this.drops.tx++;
        }
      }
      queue.pushUsed(chain, 0);
    }
  }

  /** Moves frames from the TAP into the receive queue until either runs out. */
  receive(queue: VirtQueue): void {
    this.starved = false;
    for (;;) {
      if (this.#pending === null) {
        const length = this.#readFrame();
        if (length === 0) return;
        this.#pending = { length, copied: 0, chains: [] };
      }
      if (!this.#place(this.#pending, queue)) {
        this.starved = true;
        return;
      }
      this.#pending = null;
    }
  }

  /** The next frame from the TAP (header included) into the bounce buffer; 0 when none. */
  #readFrame(): number {
    try {
      return read(this.tap, this.#frame);
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
      if (!this.mergeable && chain.writableLength < frame.length) {
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
      if (!this.mergeable) break;
    }
    const count = new Uint8Array(2);
    new DataView(count.buffer).setUint16(0, frame.chains.length, true);
    frame.chains[0].chain.write(count, NetHeader.NUM_BUFFERS);
    for (const { chain, written } of frame.chains) queue.pushUsed(chain, written);
    return true;
  }
}
