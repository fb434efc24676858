/**
 * virtio-net through the kernel's vhost-net: the same NIC as `device.ts` shows the driver (one
 * queue pair, the same features and configuration), but the kernel moves the frames between the
 * TAP and the rings. The runner only sets the kernel up ({@link VhostRings}) and relays its
 * interrupts:
 *
 * - At DRIVER_OK: the TAP's offloads from the driver's features (TUNSETOFFLOAD), the rings, then
 *   the TAP as each ring's back end, and one kick each.
 * - At a reset (and when the runner stops) each ring loses its back end and is stopped, so the
 *   next DRIVER_OK sets everything up afresh.
 *
 * No virtio-net header is added by vhost (VHOST_NET_F_VIRTIO_NET_HDR is never set): the TAP's
 * 12-byte header is the guest's, as in the userspace device.
 *
 * @module
 */

import { setTapOffload } from "../../../ffi/tap.ts";
import { VHOST_FILE_UNBIND } from "../../../ffi/vhost.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { KernelQueue, KernelQueueSetup, VirtioBackend } from "../device.ts";
import { VhostRings } from "../vhost/rings.ts";
import { NetIdentity, RX_QUEUE, tapOffloadsFor, TX_QUEUE } from "./spec.ts";

/** What crosses to the device runner: the TAP, the vhost device, the call eventfds, the MAC. */
export interface VhostNetSpec {
  /** Selects virtio-net on vhost-net. */
  kind: "vhost-net";
  /** The TAP, opened by the VMM with IFF_VNET_HDR and a 12-byte header. */
  fd: number;
  /** The vhost-net device, opened by the VMM; the runner becomes its owner. */
  vhostFd: number;
  /** The eventfds the kernel signals for the receive and the transmit queue's interrupts. */
  callFds: readonly [number, number];
  /** The guest's MAC (six bytes); without it the driver picks one. */
  mac?: readonly number[];
}

/** The network device, served by vhost-net. */
export class VhostNetBackend extends NetIdentity implements VirtioBackend {
  /** Both queues: receiveq1 and transmitq1. */
  readonly kernelQueues: readonly KernelQueue[];
  readonly #rings: VhostRings;
  readonly #tap: number;

  /**
   * A NIC on the TAP `spec.fd` through the vhost-net device `spec.vhostFd`. Does nothing to
   * either: the main thread builds one too, for the transport's description.
   * @throws RangeError for a MAC that is not six bytes
   */
  constructor(spec: VhostNetSpec) {
    super({ mac: spec.mac, pairs: 1, control: false });
    this.#tap = spec.fd;
    this.#rings = VhostRings.of(spec.vhostFd, [RX_QUEUE, TX_QUEUE], spec.callFds);
    this.kernelQueues = this.#rings.queues;
  }

  /** DRIVER_OK: hands the rings and the TAP to the kernel (see the module notes). */
  activate(
    driverFeatures: bigint,
    queues: readonly KernelQueueSetup[],
    memory: GuestMemory,
  ): void {
    setTapOffload(this.#tap, tapOffloadsFor(driverFeatures));
    this.#rings.start(driverFeatures, queues, memory);
    for (const q of queues) this.#rings.vhost.setNetBackend(q.index, this.#tap);
    this.#rings.kick(queues);
  }

  /** Never called: both queues are the kernel's. */
  processQueue(): void {}

  /** The driver reset the device, or the runner stops: take the rings back from the kernel. */
  reset(): void {
    for (const index of this.#rings.running) {
      this.#rings.vhost.setNetBackend(index, VHOST_FILE_UNBIND);
    }
    this.#rings.stop();
  }
}
