/**
 * The MADT (ACPI 6.5 §5.2.12, signature "APIC"): one enabled local APIC per vCPU, the I/O APIC,
 * and LINT1 as every processor's NMI input.
 *
 * No Interrupt Source Override: KVM's default GSI routing (arch/x86/kvm/irq_comm.c,
 * `default_routing`) wires ISA IRQ n to I/O APIC pin n, the PIT included, so the usual
 * "IRQ0 -> GSI 2" of PC firmware would be false here (QEMU only gets away with it by rerouting
 * GSI 0 itself). Identity is also what the MADT means without overrides (§5.2.12.5).
 *
 * @module
 */

import { IOAPIC_BASE, LAPIC_BASE } from "../layout.ts";
import { sdt } from "./sdt.ts";

/** MADT revision 5 (ACPI 6.3 on: the local APIC "Online Capable" flag is defined). */
export const MADT_REVISION = 5;
/** §5.2.12 MADT flags bit 0, PCAT_COMPAT: the system also has 8259 PICs (KVM's irqchip does). */
const MADT_PCAT_COMPAT = 1 << 0;
/** Local Interrupt Controller Address and Flags, after the header. */
const MADT_FIXED_FIELDS = 8;

/** §5.2.12.2 Processor Local APIC Structure: type 0, 8 bytes. */
const TYPE_LOCAL_APIC = 0;
const LOCAL_APIC_LENGTH = 8;
/** §5.2.12.2 Local APIC Flags bit 0: Enabled. */
const LOCAL_APIC_ENABLED = 1 << 0;
/** §5.2.12.3 I/O APIC Structure: type 1, 12 bytes. */
const TYPE_IO_APIC = 1;
const IO_APIC_LENGTH = 12;
/** The I/O APIC's pins start at GSI 0. */
const IO_APIC_GSI_BASE = 0;
/** §5.2.12.7 Local APIC NMI Structure: type 4, 6 bytes. */
const TYPE_LOCAL_APIC_NMI = 4;
const LOCAL_APIC_NMI_LENGTH = 6;
/** §5.2.12.7: ACPI Processor UID 0xFF means all processors. */
const ALL_PROCESSORS = 0xff;
/** §5.2.12.5 MPS INTI flags 0: polarity and trigger mode conform to the bus. */
const MPS_INTI_CONFORMING = 0;
/** The local APIC input the NMI is wired to: LINT1, as cpu.ts programs it. */
const NMI_LINT = 1;

/**
 * Most vCPUs the MADT can describe: xAPIC IDs and processor UIDs are one byte and 0xFF is the
 * broadcast ID / "all processors", and the I/O APIC takes the ID after the last vCPU.
 */
export const MADT_MAX_CPUS = 254;

/** The I/O APIC's ID: the first one after the local APICs (IDs 0…cpus-1). */
export function ioApicId(cpus: number): number {
  return cpus;
}

/** Builds the MADT for `cpus` vCPUs whose APIC IDs and processor UIDs are 0…cpus-1. */
export function buildMadt(cpus: number): Uint8Array {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MADT_MAX_CPUS) {
    throw new RangeError(`the MADT describes 1-${MADT_MAX_CPUS} vCPUs, not ${cpus}`);
  }
  const body = new Uint8Array(
    MADT_FIXED_FIELDS + cpus * LOCAL_APIC_LENGTH + IO_APIC_LENGTH + LOCAL_APIC_NMI_LENGTH,
  );
  const view = new DataView(body.buffer);
  view.setUint32(0, LAPIC_BASE, true); // Local Interrupt Controller Address
  view.setUint32(4, MADT_PCAT_COMPAT, true); // Flags
  let at = MADT_FIXED_FIELDS;
  for (let id = 0; id < cpus; id++) {
    body.set([TYPE_LOCAL_APIC, LOCAL_APIC_LENGTH, id, id], at); // type, length, UID, APIC ID
    view.setUint32(at + 4, LOCAL_APIC_ENABLED, true);
    at += LOCAL_APIC_LENGTH;
  }
  body.set([TYPE_IO_APIC, IO_APIC_LENGTH, ioApicId(cpus), 0], at); // …, I/O APIC ID, reserved
  view.setUint32(at + 4, IOAPIC_BASE, true);
  view.setUint32(at + 8, IO_APIC_GSI_BASE, true);
  at += IO_APIC_LENGTH;
  body.set([TYPE_LOCAL_APIC_NMI, LOCAL_APIC_NMI_LENGTH, ALL_PROCESSORS], at);
  view.setUint16(at + 3, MPS_INTI_CONFORMING, true);
  body[at + 5] = NMI_LINT;
  return sdt("APIC", MADT_REVISION, body);
}
