/**
 * virtio-net through the kernel's vhost-net: the same NIC as `device.ts` shows the driver (one
 * queue pair, the same features and configuration), but the kernel moves the frames between the
 * TAP and the rings. The runner only sets the kernel up and relays its interrupts:
 *
 * - The first activation makes the runner's own process the vhost owner (VHOST_SET_OWNER): guest
 *   memory is a memfd mapped in the VMM and in a jailed device process alike, and the memory
 *   table names this process's mapping of it.
 * - At DRIVER_OK: the TAP's offloads from the driver's features (TUNSETOFFLOAD); the features
 *   both the driver and vhost know; the memory table (every RAM region); for each ring its size,
 *   addresses, base 0, kick (the queue's doorbell ioeventfd, which the runner then leaves alone)
 *   and call eventfd; then the TAP as each ring's back end, and one kick each, for doorbells the
 *   driver rang before the rings were the kernel's.
 * - The kernel signals a ring's call eventfd when the driver wants an interrupt (it reads
 *   `used_event` itself); the runner's loop then raises the queue's interrupt, MSI-X or INTx.
 * - At a reset (and when the runner stops) each ring loses its back end and is stopped
 *   (VHOST_GET_VRING_BASE), so the next DRIVER_OK sets everything up afresh.
 *
 * No virtio-net header is added by vhost (VHOST_NET_F_VIRTIO_NET_HDR is never set): the TAP's
 * 12-byte header is the guest's, as in the userspace device.
 *
 * @module
 */

import { signalEventfd } from "../../../ffi/eventfd.ts";
import { setTapOffload } from "../../../ffi/tap.ts";
import { VHOST_FILE_UNBIND, VhostDevice } from "../../../ffi/vhost.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { KernelQueue, KernelQueueSetup, VirtioBackend } from "../device.ts";
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
  readonly #vhost: VhostDevice;
  readonly #tap: number;
  #owner = false;
  /** The rings handed to the kernel at the last activation. */
  #running: number[] = [];

  /**
   * A NIC on the TAP `spec.fd` through the vhost-net device `spec.vhostFd`. Does nothing to
   * either: the main thread builds one too, for the transport's description.
   * @throws RangeError for a MAC that is not six bytes
   */
  constructor(spec: VhostNetSpec) {
    super({ mac: spec.mac, pairs: 1, control: false });
    this.#tap = spec.fd;
    this.#vhost = new VhostDevice(spec.vhostFd);
    this.kernelQueues = [
      { index: RX_QUEUE, callFd: spec.callFds[0] },
      { index: TX_QUEUE, callFd: spec.callFds[1] },
    ];
  }

  /** DRIVER_OK: hands the rings and the TAP to the kernel (see the module notes). */
  activate(
    driverFeatures: bigint,
    queues: readonly KernelQueueSetup[],
    memory: GuestMemory,
  ): void {
    const vhost = this.#vhost;
    if (!this.#owner) {
      vhost.setOwner();
      this.#owner = true;
    }
    setTapOffload(this.#tap, tapOffloadsFor(driverFeatures));
    vhost.setFeatures(driverFeatures & vhost.features());
    vhost.setMemTable(memory.regions.map((r) => ({
      guestAddress: r.guestAddress,
      size: r.size,
      hostAddress: memory.hostAddress(memory.offsetOf(r.guestAddress, r.size)),
    })));
    const host = (address: number) => memory.hostAddress(memory.offsetOf(address, 1));
    for (const q of queues) {
      vhost.setVringNum(q.index, q.size);
      vhost.setVringAddr(q.index, {
        desc: host(q.descTable),
        avail: host(q.availRing),
        used: host(q.usedRing),
      });
      vhost.setVringBase(q.index, 0);
      vhost.setVringKick(q.index, q.kickFd);
      vhost.setVringCall(q.index, this.#callFd(q.index));
    }
    for (const q of queues) {
      vhost.setNetBackend(q.index, this.#tap);
      this.#running.push(q.index);
    }
    for (const q of queues) signalEventfd(q.kickFd);
  }

  /** Never called: both queues are the kernel's. */
  processQueue(): void {}

  /** The driver reset the device, or the runner stops: take the rings back from the kernel. */
  reset(): void {
    for (const index of this.#running) this.#vhost.setNetBackend(index, VHOST_FILE_UNBIND);
    for (const index of this.#running) this.#vhost.vringBase(index);
    this.#running = [];
  }

  #callFd(index: number): number {
    const queue = this.kernelQueues.find((q) => q.index === index);
    if (queue === undefined) throw new RangeError(`vhost-net: no queue ${index}`);
    return queue.callFd;
  }
}
