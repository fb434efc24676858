/**
 * Interrupt lines backed by KVM irqfds: an eventfd bound to a GSI of the in-kernel
 * irqchip. Writing the eventfd from any thread pulses the line.
 *
 * @module
 */

import { signalEventfd } from "./ffi/eventfd.ts";

/** Something that raises a guest interrupt line. Safe to call from any thread. */
export interface InterruptLine {
  /** Raises the line as an edge (assert, then deassert). */
  trigger(): void;
}

/** An edge-triggered line raised by writing 1 to an eventfd that KVM_IRQFD bound to a GSI. */
export class IrqfdLine implements InterruptLine {
  /** @param fd the eventfd registered with KVM_IRQFD */
  constructor(readonly fd: number) {}

  /** Pulses the GSI. */
  trigger(): void {
    signalEventfd(this.fd);
  }
}
