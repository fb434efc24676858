/**
 * virtio-net's control queue (OASIS virtio 1.2 §5.1.6.5): each chain is a command (its class
 * and number, then its data, all readable) and one writable `ack` byte. Two classes are served,
 * those whose features the device offers:
 *
 * - VIRTIO_NET_CTRL_MQ / VQ_PAIRS_SET (with MQ): how many queue pairs the driver uses, between
 *   1 and the device's `max_virtqueue_pairs`;
 * - VIRTIO_NET_CTRL_GUEST_OFFLOADS / SET (with CTRL_GUEST_OFFLOADS): which receive offloads the
 *   driver takes now, a subset of those it negotiated.
 *
 * Anything else (a class whose feature was not negotiated, a value out of bounds, a command too
 * short for its data) is answered VIRTIO_NET_ERR and changes nothing; a chain without room for
 * the ack is returned unanswered. None of these stops the device.
 *
 * @module
 */

import type { DescriptorChain } from "../descriptor.ts";
import type { VirtQueue } from "../device.ts";
import { featureBit } from "../spec.ts";
import {
  GUEST_OFFLOAD_FEATURES,
  NetCtrlHeader,
  NetFeature,
  VIRTIO_NET_CTRL_GUEST_OFFLOADS,
  VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET,
  VIRTIO_NET_CTRL_MQ,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
  VIRTIO_NET_ERR,
  VIRTIO_NET_OK,
} from "./spec.ts";

/** Bytes of VQ_PAIRS_SET's `virtqueue_pairs` (le16) and GUEST_OFFLOADS_SET's mask (le64). */
const PAIRS_BYTES = 2;
const OFFLOADS_BYTES = 8;
/** The longest command served: a header and an offload mask. */
const MAX_COMMAND = NetCtrlHeader.SIZE + OFFLOADS_BYTES;

/** What the commands change, done by the NIC. */
export interface NetControlTarget {
  /** Use the first `pairs` queue pairs (1 ≤ pairs ≤ the device's maximum). */
  setQueuePairs(pairs: number): void;
  /** Hand the driver only these receive offloads (guest feature bits it negotiated). */
  setGuestOffloads(features: bigint): void;
}

/** Serves a NIC's control queue. */
export class NetControl {
  #features = 0n;
  /** Commands answered VIRTIO_NET_ERR, and chains that had no room for an answer. */
  rejected = 0;

  /**
   * A control queue acting on `target`.
   * @param target what the commands change
   * @param maxPairs the device's `max_virtqueue_pairs`
   */
  constructor(private readonly target: NetControlTarget, private readonly maxPairs: number) {}

  /** The queues start with the features the driver accepted. */
  activate(driverFeatures: bigint): void {
    this.#features = driverFeatures;
  }

  /** Answers every command waiting on `queue`. */
  process(queue: VirtQueue): void {
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      if (chain.writableLength < 1) {
        this.rejected++;
        queue.pushUsed(chain, 0);
        continue;
      }
      const ack = this.#execute(chain);
      if (ack !== VIRTIO_NET_OK) this.rejected++;
      queue.pushUsed(chain, chain.write(Uint8Array.of(ack)));
    }
  }

  /** Carries out one command; its ack. */
  #execute(chain: DescriptorChain): number {
    const command = chain.read(MAX_COMMAND);
    if (command.length < NetCtrlHeader.SIZE) return VIRTIO_NET_ERR;
    const view = new DataView(command.buffer, command.byteOffset, command.byteLength);
    const data = command.length - NetCtrlHeader.SIZE;
    const klass = command[NetCtrlHeader.CLASS];
    const number = command[NetCtrlHeader.COMMAND];
    if (
      klass === VIRTIO_NET_CTRL_MQ && number === VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET &&
      this.#has(NetFeature.MQ) && data >= PAIRS_BYTES
    ) {
      const pairs = view.getUint16(NetCtrlHeader.SIZE, true);
      if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > this.maxPairs) return VIRTIO_NET_ERR;
      this.target.setQueuePairs(pairs);
      return VIRTIO_NET_OK;
    }
    if (
      klass === VIRTIO_NET_CTRL_GUEST_OFFLOADS && number === VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET &&
      this.#has(NetFeature.CTRL_GUEST_OFFLOADS) && data >= OFFLOADS_BYTES
    ) {
      const offloads = view.getBigUint64(NetCtrlHeader.SIZE, true);
      // §5.1.6.5.6.2: only offloads the driver negotiated, and nothing else in the mask.
      if ((offloads & ~(GUEST_OFFLOAD_FEATURES & this.#features)) !== 0n) return VIRTIO_NET_ERR;
      this.target.setGuestOffloads(offloads);
      return VIRTIO_NET_OK;
    }
    return VIRTIO_NET_ERR;
  }

  #has(bit: number): boolean {
    return (this.#features & featureBit(bit)) !== 0n;
  }
}
