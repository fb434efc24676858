/**
 * The x86_64 guest-physical memory map: where RAM, the 32-bit MMIO hole and the
 * fixed platform devices live.
 *
 * @module
 */

import type { ComPort } from "../../devices/legacy/serial_ports.ts";
import type { RamRegion } from "../../memory.ts";

/** One MiB. */
export const MIB = 1 << 20;
/** One GiB. */
export const GIB = 1 << 30;
/** 4 GiB: the first address above the 32-bit space, where high RAM resumes. */
export const FIRST_ADDR_PAST_32BITS = 4 * GIB;
/** Size of the 32-bit MMIO hole below 4 GiB (crosvm's `MEM_32BIT_GAP_SIZE`: 768 MiB). */
export const MEM_32BIT_GAP_SIZE = 768 * MIB;
/** Start of the 32-bit MMIO hole: low RAM ends here at the latest. */
export const MMIO_HOLE_START = FIRST_ADDR_PAST_32BITS - MEM_32BIT_GAP_SIZE;
/** PCIe ECAM (MMCONFIG) window: 1 MiB per bus (PCI Express Base Spec 7.2.2), 256 buses. */
export const PCIE_ECAM_BASE = 0xe000_0000;
/** Size of the ECAM window for buses 0–255. */
export const PCIE_ECAM_SIZE = 256 * MIB;
/** Start of the region for 32-bit PCI BARs (between the hole start and ECAM). */
export const PCI_MMIO_32_BASE = MMIO_HOLE_START;
/** Size of the 32-bit PCI BAR region: up to the ECAM window (0xD0000000–0xDFFFFFFF). */
export const PCI_MMIO_32_SIZE = PCIE_ECAM_BASE - PCI_MMIO_32_BASE;
/**
 * IOAPIC GSIs the PCI functions' INTx lines go to, by slot and pin (`intxGsiForSlot` in
 * pci_intx.ts): level-triggered, shareable lines clear of the legacy devices (PIT 0, i8042 1,
 * COM 3/4, RTC 8). MSI GSIs start past the IOAPIC's 24 pins (`MSI_GSI_BASE` in irq_routing.ts).
 */
export const PCI_INTX_GSIS: readonly number[] = [5, 9, 10, 11];
/**
 * The IOAPIC GSI of the ACPI Generic Event Device (the DSDT's `GED0`), which carries the power
 * button: edge-triggered, past the ISA range and clear of {@link PCI_INTX_GSIS}.
 */
export const ACPI_GED_GSI = 16;
/**
 * Size of the 64-bit PCI BAR window above RAM (see `pciMmio64Window` in acpi/dsdt.ts): 64 GiB,
 * room for large BARs while ending below 2^39 for any guest under 440 GiB of RAM.
 */
export const PCI_MMIO_64_SIZE = 64 * GIB;
/** The 64-bit PCI BAR window starts on a 1 GiB boundary (one PDPT entry). */
export const PCI_MMIO_64_ALIGNMENT = GIB;
/** The IOAPIC's MMIO page (Intel 82093AA datasheet: default base 0xFEC00000). */
export const IOAPIC_BASE = 0xfec0_0000;
/** The local APICs' MMIO page (Intel SDM vol. 3A 10.4.1: default base 0xFEE00000). */
export const LAPIC_BASE = 0xfee0_0000;
/** Three pages for KVM_SET_TSS_ADDR, just below the identity-map page, inside the hole. */
export const KVM_TSS_ADDRESS = 0xfffb_d000;
/** One page for KVM_SET_IDENTITY_MAP_ADDR, just below 4 GiB minus the BIOS area. */
export const KVM_IDENTITY_MAP_ADDRESS = 0xfffb_c000;

/**
 * The x86_64 memory map for `memSize` bytes of RAM, split around the 32-bit MMIO hole: RAM from 0 up to the
 * hole, and whatever does not fit there from 4 GiB upward.
 */
export function ramRegions(memSize: number): RamRegion[] {
  if (memSize <= MMIO_HOLE_START) return [{ guestAddress: 0, size: memSize }];
  return [
    { guestAddress: 0, size: MMIO_HOLE_START },
    { guestAddress: FIRST_ADDR_PAST_32BITS, size: memSize - MMIO_HOLE_START },
  ];
}

/** Where the boot GDT goes (Firecracker's BOOT_GDT_OFFSET; free low memory). */
export const BOOT_GDT_ADDRESS = 0x500;
/** Where an empty boot IDT goes, right after the GDT. */
export const BOOT_IDT_ADDRESS = 0x520;
/** The zero page (`struct boot_params`). */
export const ZERO_PAGE_ADDRESS = 0x7000;
/** Initial stack pointer of the boot vCPU (grows down below the page tables). */
export const BOOT_STACK_POINTER = 0x8ff0;
/** The boot page tables: PML4, then one PDPT, then four page directories (4 GiB of 2 MiB pages). */
export const PML4_ADDRESS = 0x9000;
/** The boot PDPT. */
export const PDPT_ADDRESS = 0xa000;
/** The first of four boot page directories. */
export const PD_ADDRESS = 0xb000;
/** The kernel command line. */
export const CMDLINE_ADDRESS = 0x20000;
/** Start of the Extended BIOS Data Area: conventional RAM ends here. */
export const EBDA_START = 0x9fc00;
/** The first address above the legacy BIOS area, where "high memory" starts. */
export const HIGH_MEMORY_START = 0x10_0000;
/**
 * Where the ACPI tables go: the BIOS read-only area 0xE0000–0xFFFFF, which an OS searches for the
 * RSDP on 16-byte boundaries (ACPI 6.5 §5.2.5.1, "Finding the RSDP on IA-PC Systems").
 */
export const ACPI_TABLES_START = 0xe_0000;
/** End (exclusive) of the ACPI table area. */
export const ACPI_TABLES_END = HIGH_MEMORY_START;

/** COM1–COM4: base port and ISA IRQ (IBM PC/AT convention). */
export const COM_PORTS: readonly ComPort[] = [
  { base: 0x3f8, irq: 4 },
  { base: 0x2f8, irq: 3 },
  { base: 0x3e8, irq: 4 },
  { base: 0x2e8, irq: 3 },
];

/**
 * Ports Linux writes to for I/O delays (0x80, the POST code port; 0xED, its alternative), as
 * `[base, length]`: absorbed silently.
 */
export const IO_DELAY_PORTS: [number, number][] = [[0x80, 1], [0xed, 1]];
