/**
 * virtio-vsock through the kernel's vhost-vsock, as crosvm's `--vsock cid=N`: the kernel moves
 * the receive and transmit rings' packets between the guest and the host's AF_VSOCK sockets, so
 * host programs reach the guest with `connect(AF_VSOCK, CID N)` and the guest reaches the host at
 * CID 2. The VMM opens the vhost device and sets the guest's CID on it (a CID in use is refused
 * there, before the VM starts); the runner hands the rings over ({@link VhostRings}) and sets the
 * device running. The event queue stays with the runner, which never fills it (there is no
 * transport reset to announce).
 *
 * @module
 */

import type { GuestMemory } from "../../../memory.ts";
import type { KernelQueue, KernelQueueSetup, VirtioBackend } from "../device.ts";
import { VhostRings } from "../vhost/rings.ts";
import { VsockIdentity } from "./identity.ts";
import { VSOCK_RX_QUEUE, VSOCK_TX_QUEUE } from "./spec.ts";

/** What crosses to the device runner: the vhost device (its CID set) and the call eventfds. */
export interface VhostVsockSpec {
  /** Selects virtio-vsock on vhost-vsock. */
  kind: "vhost-vsock";
  /** The guest's CID (already set on the vhost device). */
  cid: number;
  /** The vhost-vsock device, opened by the VMM; the runner becomes its owner. */
  vhostFd: number;
  /** The eventfds the kernel signals for the receive and the transmit queue's interrupts. */
  callFds: readonly [number, number];
}

/** The vsock device, served by vhost-vsock. */
export class VhostVsockBackend extends VsockIdentity implements VirtioBackend {
  /** The receive and transmit queues. */
  readonly kernelQueues: readonly KernelQueue[];
  readonly #rings: VhostRings;

  /**
   * The device on `spec.vhostFd`. Does nothing to it: the main thread builds one too, for the
   * transport's description.
   * @throws RangeError for a CID below 3
   */
  constructor(spec: VhostVsockSpec) {
    super(spec.cid);
    this.#rings = VhostRings.of(spec.vhostFd, [VSOCK_RX_QUEUE, VSOCK_TX_QUEUE], spec.callFds);
    this.kernelQueues = this.#rings.queues;
  }

  /** DRIVER_OK: the kernel gets the rings, and the device runs. */
  activate(
    driverFeatures: bigint,
    queues: readonly KernelQueueSetup[],
    memory: GuestMemory,
  ): void {
    this.#rings.start(driverFeatures, queues, memory);
    this.#rings.vhost.setRunning(true);
    this.#rings.kick(queues);
  }

  /** The event queue's buffers are kept: TRANSPORT_RESET is never sent. */
  processQueue(): void {}

  /** The driver reset the device, or the runner stops: the kernel stops and gives the rings back. */
  reset(): void {
    if (this.#rings.running.length === 0) return;
    this.#rings.vhost.setRunning(false);
    this.#rings.stop();
  }
}
