// Holds the PCI numbers we restate from the PCI Local Bus specification (header register offsets,
// command/status/BAR bits, capability IDs, MSI-X registers) against Linux's <linux/pci_regs.h>:
// a generated C program prints what the compiler says (tests/helpers/c_values.ts).

import * as space from "../../../src/devices/pci/config_space.ts";
import * as bits from "../../../src/devices/pci/header_bits.ts";
import * as msix from "../../../src/devices/pci/msix.ts";
import { assertMatchesC, claimsOf, type CTable } from "../../helpers/c_values.ts";

/** A table entry per name, whose macro is the name behind `PCI_` (`VENDOR_ID`: `PCI_VENDOR_ID`). */
function pciPrefixed<M>(names: readonly (keyof CTable<M> & string)[]): CTable<M> {
  return Object.fromEntries(names.map((name) => [name, `PCI_${name}`])) as CTable<M>;
}

const HEADER_CLAIMS = claimsOf(space, {
  ...pciPrefixed<typeof space>([
    "VENDOR_ID",
    "DEVICE_ID",
    "COMMAND",
    "STATUS",
    "REVISION_ID",
    "CACHE_LINE_SIZE",
    "LATENCY_TIMER",
    "HEADER_TYPE",
    "BIST",
    "SUBSYSTEM_VENDOR_ID",
    "SUBSYSTEM_ID",
    "INTERRUPT_LINE",
    "INTERRUPT_PIN",
  ]),
  CONFIG_SPACE_SIZE: "PCI_CFG_SPACE_EXP_SIZE",
  HEADER_SIZE: "PCI_STD_HEADER_SIZEOF",
  CLASS_PROG_IF: "PCI_CLASS_PROG",
  // PCI_CLASS_DEVICE is the 16-bit class at 0Ah: sub-class in its low byte.
  CLASS_SUBCLASS: "PCI_CLASS_DEVICE",
  BAR0: "PCI_BASE_ADDRESS_0",
  CAPABILITIES_POINTER: "PCI_CAPABILITY_LIST",
  HEADER_TYPE_DEVICE: "PCI_HEADER_TYPE_NORMAL",
  // The bit above the layout field (PCI_HEADER_TYPE_MFD in headers from Linux 6.7 on).
  HEADER_TYPE_MULTI_FUNCTION: "(~PCI_HEADER_TYPE_MASK & 0xff)",
});

const BIT_CLAIMS = claimsOf(bits, {
  COMMAND_IO_SPACE: "PCI_COMMAND_IO",
  COMMAND_MEMORY_SPACE: "PCI_COMMAND_MEMORY",
  COMMAND_BUS_MASTER: "PCI_COMMAND_MASTER",
  COMMAND_INTX_DISABLE: "PCI_COMMAND_INTX_DISABLE",
  STATUS_INTERRUPT: "PCI_STATUS_INTERRUPT",
  STATUS_CAPABILITIES_LIST: "PCI_STATUS_CAP_LIST",
  BAR_IO_SPACE: ["PCI_BASE_ADDRESS_SPACE", "PCI_BASE_ADDRESS_SPACE_IO"],
  BAR_MEMORY_TYPE_32: "PCI_BASE_ADDRESS_MEM_TYPE_32",
  BAR_MEMORY_TYPE_64: "PCI_BASE_ADDRESS_MEM_TYPE_64",
  BAR_PREFETCHABLE: "PCI_BASE_ADDRESS_MEM_PREFETCH",
  // An unsigned long mask in the header; a BAR register is its low 32 bits.
  BAR_MEMORY_ADDRESS_MASK: "PCI_BASE_ADDRESS_MEM_MASK & 0xffffffff",
  BAR_COUNT: "PCI_STD_NUM_BARS",
  EXPANSION_ROM_BASE: "PCI_ROM_ADDRESS",
  CONVENTIONAL_CONFIG_SIZE: "PCI_CFG_SPACE_SIZE",
  FIRST_CAPABILITY_OFFSET: "PCI_STD_HEADER_SIZEOF",
  CAP_ID: "PCI_CAP_LIST_ID",
  CAP_NEXT: "PCI_CAP_LIST_NEXT",
  CAP_ID_VENDOR_SPECIFIC: "PCI_CAP_ID_VNDR",
  CAP_ID_MSIX: "PCI_CAP_ID_MSIX",
});

const MSIX_CLAIMS = claimsOf(msix, {
  MSIX_MESSAGE_CONTROL: "PCI_MSIX_FLAGS",
  MSIX_TABLE_OFFSET: "PCI_MSIX_TABLE",
  MSIX_PBA_OFFSET: "PCI_MSIX_PBA",
  MSIX_CONTROL_TABLE_SIZE: "PCI_MSIX_FLAGS_QSIZE",
  MSIX_CONTROL_FUNCTION_MASK: "PCI_MSIX_FLAGS_MASKALL",
  MSIX_CONTROL_ENABLE: "PCI_MSIX_FLAGS_ENABLE",
  MSIX_BIR_MASK: ["PCI_MSIX_TABLE_BIR", "PCI_MSIX_PBA_BIR"],
  MSIX_MAX_VECTORS: "PCI_MSIX_FLAGS_QSIZE + 1",
  MSIX_ENTRY_SIZE: "PCI_MSIX_ENTRY_SIZE",
  MSIX_ENTRY_ADDRESS_LO: "PCI_MSIX_ENTRY_LOWER_ADDR",
  MSIX_ENTRY_ADDRESS_HI: "PCI_MSIX_ENTRY_UPPER_ADDR",
  MSIX_ENTRY_DATA: "PCI_MSIX_ENTRY_DATA",
  MSIX_ENTRY_VECTOR_CONTROL: "PCI_MSIX_ENTRY_VECTOR_CTRL",
  MSIX_VECTOR_MASKED: "PCI_MSIX_ENTRY_CTRL_MASKBIT",
  // The body starts at Message Control, after the ID and next bytes.
  CAPABILITY_BODY_SIZE: "PCI_CAP_MSIX_SIZEOF - PCI_MSIX_FLAGS",
});

Deno.test("type 0 header register offsets and sizes match <linux/pci_regs.h>", async () => {
  await assertMatchesC(["linux/pci_regs.h"], HEADER_CLAIMS);
});

Deno.test("command, status and BAR bits and capability IDs match <linux/pci_regs.h>", async () => {
  await assertMatchesC(["linux/pci_regs.h"], BIT_CLAIMS);
});

Deno.test("MSI-X capability, table entry and control bits match <linux/pci_regs.h>", async () => {
  await assertMatchesC(["linux/pci_regs.h"], MSIX_CLAIMS);
});
