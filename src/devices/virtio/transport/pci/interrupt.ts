/**
 * How a virtio-pci device notifies the driver (OASIS virtio 1.2 §4.1.4.5 and §4.1.5.4): through
 * the queue's or the configuration's MSI-X vector when MSI-X is enabled, else by setting ISR bits
 * and asserting INTx.
 *
 * INTx is a level (PCI interrupts are level-triggered, shared, active low): its irqfd is bound
 * with KVM_IRQFD_FLAG_RESAMPLE, so a write holds the GSI up until the guest EOIs it; KVM then
 * lowers it and signals the resample eventfd, and {@link VirtioInterrupt.resample} raises it again
 * while the ISR still holds bits the driver has not read. Reading the ISR clears it, and with it
 * the reason to re-assert: the level follows the ISR, as §4.1.4.5.1 asks.
 *
 * Safe from any thread: vCPU Workers and the device Worker share the state under its lock.
 *
 * @module
 */

import { signalEventfd } from "../../../../ffi/eventfd.ts";
import type { SharedMutex } from "../../../../sync.ts";
import type { ConfigRegisters } from "../../../pci/config_regs.ts";
import { COMMAND } from "../../../pci/config_space.ts";
import { COMMAND_INTX_DISABLE } from "../../../pci/header_bits.ts";
import type { Msix } from "../../../pci/msix.ts";
import type { VirtioRegs } from "../../registers.ts";
import { ISR_CONFIG, ISR_QUEUE } from "../../spec.ts";

/** The legacy interrupt line: an irqfd bound with a resample eventfd to an IOAPIC GSI. */
export interface IntxLine {
  /** The IOAPIC GSI. */
  readonly gsi: number;
  /** The eventfd KVM_IRQFD bound to `gsi` with KVM_IRQFD_FLAG_RESAMPLE. */
  readonly irqfd: number;
  /** The eventfd KVM signals when the guest EOIs the level. */
  readonly resampleFd: number;
}

/** Raises a device's interrupts. */
export class VirtioInterrupt {
  /**
   * Delivers through the given state.
   * @param lock the device's lock
   * @param regs its virtio registers
   * @param msix its MSI-X state
   * @param pciConfig its configuration registers (for the INTx disable bit)
   * @param intx its INTx line, or null when it has none
   */
  constructor(
    private readonly lock: SharedMutex,
    private readonly regs: VirtioRegs,
    private readonly msix: Msix,
    private readonly pciConfig: ConfigRegisters,
    private readonly intx: IntxLine | null,
  ) {}

  /** A used buffer notification for queue `q` (§2.7.7). */
  queue(q: number): void {
    this.lock.with(() => this.#queueLocked(q));
  }

  /** {@link queue} with the lock held. */
  #queueLocked(q: number): void {
    if (this.msix.enabled) {
      this.msix.signal(this.regs.queueVector(q));
    } else {
      // §4.1.4.5.1: the Queue Interrupt bit is only used when MSI-X is disabled.
      this.regs.raiseIsr(ISR_QUEUE);
      this.#assertIntx();
    }
  }

  /** A configuration change notification (§2.5.2), e.g. after DEVICE_NEEDS_RESET. */
  config(): void {
    this.lock.with(() => this.configLocked());
  }

  /** {@link config} for a caller already holding the lock. */
  configLocked(): void {
    // §4.1.4.5.1: the Device Configuration Interrupt bit is set whatever the interrupt mode.
    this.regs.raiseIsr(ISR_CONFIG);
    if (this.msix.enabled) this.msix.signal(this.regs.configVector);
    else this.#assertIntx();
  }

  /** The guest EOI'd the INTx level: raise it again while the ISR is still unread. */
  resample(): void {
    this.lock.with(() => {
      if (!this.msix.enabled && this.regs.isr !== 0) this.#assertIntx();
    });
  }

  /** The PCI status register's Interrupt Status bit: INTx is asserted (ISR non-zero, no MSI-X). */
  get intxPending(): boolean {
    return this.intx !== null && !this.msix.enabled && this.regs.isr !== 0;
  }

  #assertIntx(): void {
    if (this.intx === null) return;
    if (this.pciConfig.read(COMMAND, 2) & COMMAND_INTX_DISABLE) return;
    signalEventfd(this.intx.irqfd);
  }
}
