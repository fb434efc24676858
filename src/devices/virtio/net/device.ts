/**
 * virtio-net over a TAP (OASIS virtio 1.2 §5.1): one or more queue pairs, each on its own queue
 * of the TAP ({@link TapQueue}: a multiqueue TAP has a descriptor per queue), and a control
 * queue ({@link NetControl}). The virtio-net header is passed straight between the guest and
 * the TAP (both use the 12-byte `virtio_net_hdr` with `num_buffers`, so checksum and
 * segmentation offloads cross untouched); the MAC, link status, pair count and MTU are in the
 * configuration.
 *
 * - Queue pairs: only the first is used until the driver asks for more (VQ_PAIRS_SET, with MQ).
 *   The TAP queues of the pairs not in use are detached from the interface (TUNSETQUEUE), so the
 *   kernel steers no flow to a receive queue nobody fills.
 * - Receive: while a pair's receive queue has buffers, the device loop watches its TAP queue.
 * - The TAP is told which offloads it may hand us (TUNSETOFFLOAD) from the features the driver
 *   accepted when the queues start, and again when the driver changes them on the control queue.
 *
 * @module
 */

import { setTapOffload, setTapQueueAttached } from "../../../ffi/tap.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { VirtioBackend, VirtQueue } from "../device.ts";
import { featureBit } from "../spec.ts";
import { NetControl } from "./control.ts";
import { controlQueue, NetFeature, NetIdentity, pairOf, rxQueue, tapOffloadsFor } from "./spec.ts";
import { type NetDrops, TapQueue } from "./tap_queue.ts";

export type { NetDrops };

/** What crosses to the device runner: the TAP's descriptors and what the guest is told. */
export interface NetSpec {
  /** Selects virtio-net. */
  kind: "net";
  /**
   * The TAP, opened by the VMM with IFF_VNET_HDR and a 12-byte header, non-blocking: one
   * descriptor per queue pair (several only on a multiqueue TAP).
   */
  taps: number[];
  /** The guest's MAC (six bytes); without it the driver picks one. */
  mac?: readonly number[];
  /** The TAP interface's MTU, offered to the guest (VIRTIO_NET_F_MTU); absent: not offered. */
  mtu?: number;
}

/** The network device. */
export class NetBackend extends NetIdentity implements VirtioBackend {
  /** The TAP queues, one per pair: the loop watches each while {@link wantsEvents} says so. */
  readonly eventFds: readonly number[];
  readonly drops: NetDrops = { tx: 0, rx: 0 };
  readonly #pairs: TapQueue[];
  readonly #control: NetControl;
  /** The control queue's index for the features the driver accepted. */
  #controlIndex = -1;
  /** Pairs in use (the first ones). */
  #activePairs = 1;
  /** Which TAP queues take part in the interface now (all do when opened). */
  readonly #attached: boolean[];

  /**
   * A NIC on the TAP queues `spec.taps`.
   * @throws RangeError for a MAC that is not six bytes, no TAP, or an MTU out of range
   */
  constructor(spec: NetSpec) {
    super({ mac: spec.mac, pairs: spec.taps.length, control: true, mtu: spec.mtu });
    this.#pairs = spec.taps.map((tap) => new TapQueue(tap, this.drops));
    this.#attached = spec.taps.map(() => true);
    this.#control = new NetControl({
      setQueuePairs: (n) => this.#usePairs(n),
      setGuestOffloads: (offloads) => this.#setOffloads(offloads),
    }, spec.taps.length);
    this.eventFds = [...spec.taps];
  }

  /** Commands the control queue refused (answered VIRTIO_NET_ERR, or with no room to answer). */
  get controlRejected(): number {
    return this.#control.rejected;
  }

  /** The queues start with the driver's features: the first pair, the offloads it takes. */
  activate(driverFeatures: bigint): void {
    const mergeable = (driverFeatures & featureBit(NetFeature.MRG_RXBUF)) !== 0n;
    for (const pair of this.#pairs) {
      pair.reset();
      pair.mergeable = mergeable;
    }
    this.#controlIndex = (driverFeatures & featureBit(NetFeature.CTRL_VQ)) !== 0n
      ? controlQueue(driverFeatures, this.#pairs.length)
      : -1;
    this.#control.activate(driverFeatures);
    this.#setOffloads(driverFeatures);
    this.#usePairs(1);
  }

  /** Whether the loop should watch pair `index`'s TAP queue: in use, and with buffers to fill. */
  wantsEvents(index: number): boolean {
    return index < this.#activePairs && !this.#pairs[index].starved;
  }

  /** Pair `index`'s TAP queue has frames: receive them while its ring has buffers. */
  onEvent(index: number, queues: readonly (VirtQueue | undefined)[]): void {
    const rx = queues[rxQueue(index)];
    if (rx !== undefined && index < this.#activePairs) this.#pairs[index].receive(rx);
  }

  /** A doorbell: the driver added receive buffers, frames to send, or a command. */
  processQueue(index: number, queue: VirtQueue, memory: GuestMemory): void {
    if (index === this.#controlIndex) {
      this.#control.process(queue);
      return;
    }
    const pair = this.#pairs[pairOf(index)];
    if (pair === undefined) return;
    if (index % 2 === 0) pair.receive(queue);
    else pair.transmit(queue, memory);
  }

  /** The driver reset the device: frames in flight are forgotten. */
  reset(): void {
    for (const pair of this.#pairs) pair.reset();
  }

  /** Tells every TAP queue which offloads the guest takes (`offloads`: guest feature bits). */
  #setOffloads(offloads: bigint): void {
    const tapOffloads = tapOffloadsFor(offloads);
    for (const pair of this.#pairs) setTapOffload(pair.tap, tapOffloads);
  }

  /** Uses the first `count` pairs: the TAP steers flows to their queues only. */
  #usePairs(count: number): void {
    this.#activePairs = count;
    if (this.#pairs.length === 1) return; // a single-queue TAP has nothing to attach
    this.#pairs.forEach((pair, i) => {
      const attach = i < count;
      if (this.#attached[i] === attach) return;
      setTapQueueAttached(pair.tap, attach);
      this.#attached[i] = attach;
    });
  }
}
