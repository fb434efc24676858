/**
 * Handing a device's rings to one of the kernel's vhost back ends and taking them back, the part
 * every vhost device shares (vhost-net, vhost-vsock); each adds its own start and stop (a TAP as
 * the rings' back end, a vsock device set running).
 *
 * - The first start makes the runner's own process the vhost owner (VHOST_SET_OWNER): guest
 *   memory is a memfd mapped in the VMM and in a jailed device process alike, and the memory
 *   table names this process's mapping of it.
 * - Each start: the features both the driver and vhost know; the memory table (every RAM
 *   region); for each ring its size, addresses, base 0, kick (the queue's doorbell ioeventfd,
 *   which the runner then leaves alone) and call eventfd.
 * - The kernel signals a ring's call eventfd when the driver wants an interrupt (it reads
 *   `used_event` itself). With MSI-X that is the irqfd of the queue's vector, so KVM interrupts
 *   the guest with no wake-up of ours (as QEMU's vhost does through its irqfds; pci/msix.ts
 *   keeps a masked vector's interrupt); with INTx it is the ring's own call eventfd, and the
 *   runner's loop raises the interrupt.
 * - Each stop reads every ring's base back (VHOST_GET_VRING_BASE), which stops it, so the next
 *   DRIVER_OK sets everything up afresh.
 *
 * @module
 */

import { signalEventfd } from "../../../ffi/eventfd.ts";
import { VhostDevice } from "../../../ffi/vhost.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { KernelQueue, KernelQueueSetup } from "../device.ts";

/** A device's kernel-served rings on one vhost device. */
export class VhostRings {
  #owner = false;
  /** The rings handed to the kernel at the last start. */
  #running: number[] = [];

  /**
   * The rings `queues` (with their call eventfds) on `vhost`.
   * @param vhost the vhost device, opened by the VMM
   * @param queues the queues the kernel serves
   */
  constructor(readonly vhost: VhostDevice, readonly queues: readonly KernelQueue[]) {}

  /** The queues `indices` on the vhost device `vhostFd`, each with its call eventfd in `callFds`. */
  static of(vhostFd: number, indices: readonly number[], callFds: readonly number[]): VhostRings {
    return new VhostRings(
      new VhostDevice(vhostFd),
      indices.map((index, i) => ({ index, callFd: callFds[i] })),
    );
  }

  /** The rings the kernel has now. */
  get running(): readonly number[] {
    return this.#running;
  }

  /** DRIVER_OK: the kernel gets the rings `setups` (see the module notes). */
  start(driverFeatures: bigint, setups: readonly KernelQueueSetup[], memory: GuestMemory): void {
    const vhost = this.vhost;
    if (!this.#owner) {
      vhost.setOwner();
      this.#owner = true;
    }
    vhost.setFeatures(driverFeatures & vhost.features());
    vhost.setMemTable(memory.regions.map((r) => ({
      guestAddress: r.guestAddress,
      size: r.size,
      hostAddress: memory.hostAddress(memory.offsetOf(r.guestAddress, r.size)),
    })));
    const host = (address: number) => memory.hostAddress(memory.offsetOf(address, 1));
    for (const q of setups) {
      vhost.setVringNum(q.index, q.size);
      vhost.setVringAddr(q.index, {
        desc: host(q.descTable),
        avail: host(q.availRing),
        used: host(q.usedRing),
      });
      vhost.setVringBase(q.index, 0);
      vhost.setVringKick(q.index, q.kickFd);
      vhost.setVringCall(q.index, q.irqFd ?? this.#callFd(q.index));
      this.#running.push(q.index);
    }
  }

  /** One kick per ring, for doorbells the driver rang before the rings were the kernel's. */
  kick(setups: readonly KernelQueueSetup[]): void {
    for (const q of setups) signalEventfd(q.kickFd);
  }

  /** A reset, or the runner stops: every ring is stopped and read back. */
  stop(): void {
    for (const index of this.#running) this.vhost.vringBase(index);
    this.#running = [];
  }

  #callFd(index: number): number {
    const queue = this.queues.find((q) => q.index === index);
    if (queue === undefined) throw new RangeError(`vhost: no kernel queue ${index}`);
    return queue.callFd;
  }
}
