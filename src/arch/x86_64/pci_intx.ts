/**
 * Which IOAPIC GSI each PCI INTx line on bus 0 is wired to. One function answers for both sides:
 * the VMM binds a function's INTA# irqfd to that GSI (devices/virtio/vm_devices.ts), and the DSDT's
 * `_PRT` tells the guest the same thing (acpi/dsdt.ts).
 *
 * @module
 */

import { DEVICES_PER_BUS } from "../../devices/pci/root.ts";
import { PCI_INTX_GSIS } from "./layout.ts";

/**
 * The INTx pins of a PCI function, numbered as a `_PRT` entry's Pin field numbers them (ACPI 6.5
 * §6.2.13: 0 is INTA# … 3 is INTD#). The configuration-space Interrupt Pin register counts from 1
 * instead (PCI Local Bus Spec 3.0 §6.2.4).
 */
export const PciIntxPin = { INTA: 0, INTB: 1, INTC: 2, INTD: 3 } as const;

/** INTA#–INTD#: four interrupt pins per device (PCI Local Bus Spec 3.0 §2.2.6). */
export const PCI_INTX_PIN_COUNT = 4;

/**
 * The GSI that pin `pin` of any function in device `slot` on bus 0 drives: the conventional
 * rotation ("swizzle") of the pins over the lines, `gsis[(slot + pin) % gsis.length]`, as PCI
 * bridges rotate their secondary pins onto their primary ones (PCI-to-PCI Bridge Architecture
 * Spec 1.2 §9.1). INTA# of slot `s` is `gsis[s % gsis.length]`, so neighbouring slots spread over
 * the lines.
 * @param slot device number on bus 0, 0–31
 * @param pin 0 for INTA# … 3 for INTD# ({@link PciIntxPin})
 * @param gsis the IOAPIC lines for PCI INTx, {@link PCI_INTX_GSIS} by default; at least one
 * @throws RangeError for a slot, pin or GSI list out of range
 */
export function intxGsiForSlot(
  slot: number,
  pin: number,
  gsis: readonly number[] = PCI_INTX_GSIS,
): number {
  if (!Number.isInteger(slot) || slot < 0 || slot >= DEVICES_PER_BUS) {
    throw new RangeError(`no PCI slot ${slot} on a bus`);
  }
  if (!Number.isInteger(pin) || pin < 0 || pin >= PCI_INTX_PIN_COUNT) {
    throw new RangeError(`no PCI interrupt pin ${pin} (0-3 for INTA#-INTD#)`);
  }
  if (gsis.length === 0) throw new RangeError("no GSIs for PCI INTx");
  return gsis[(slot + pin) % gsis.length];
}
