/**
 * Bits inside the type 0 configuration header's registers, and the capability IDs we implement
 * (PCI Local Bus Spec 3.0 §6.2 and §6.7, and the PCI Code and ID Assignment Spec).
 *
 * @module
 */

/** Command register bit 0 (§6.2.2): the function decodes its I/O BARs. */
export const COMMAND_IO_SPACE = 1 << 0;
/** Command register bit 1: the function decodes its memory BARs. */
export const COMMAND_MEMORY_SPACE = 1 << 1;
/** Command register bit 2: the function may master the bus (DMA and MSI writes). */
export const COMMAND_BUS_MASTER = 1 << 2;
/** Command register bit 10: the function must not assert INTx#. */
export const COMMAND_INTX_DISABLE = 1 << 10;

/** Status register bit 3 (§6.2.3): an INTx interrupt is pending in the function. */
export const STATUS_INTERRUPT = 1 << 3;
/** Status register bit 4: the capabilities pointer at 34h is valid. */
export const STATUS_CAPABILITIES_LIST = 1 << 4;

/** BAR bit 0 (§6.2.5.1): 0 = memory space, 1 = I/O space. */
export const BAR_IO_SPACE = 1 << 0;
/** Memory BAR bits 2:1 = 00b: a 32-bit BAR, anywhere below 4 GiB. */
export const BAR_MEMORY_TYPE_32 = 0b000;
/** Memory BAR bits 2:1 = 10b: a 64-bit BAR spanning this register and the next. */
export const BAR_MEMORY_TYPE_64 = 0b100;
/** Memory BAR bit 3: prefetchable. */
export const BAR_PREFETCHABLE = 1 << 3;
/** Memory BAR bits 3:0 are type bits; the base address is the rest (16-byte granularity). */
export const BAR_MEMORY_ADDRESS_MASK = 0xffff_fff0;
/** Number of base address registers in a type 0 header (10h–24h). */
export const BAR_COUNT = 6;
/** Expansion ROM base address register (§6.2.5.2). */
export const EXPANSION_ROM_BASE = 0x30;

/** Interrupt Pin 01h: the function uses INTA# (§6.2.4). */
export const INTERRUPT_PIN_INTA = 1;

/** Bytes of configuration space a conventional PCI function has (§6.1: 256). */
export const CONVENTIONAL_CONFIG_SIZE = 256;
/** First byte after the predefined header, where capability structures may start (§6.7). */
export const FIRST_CAPABILITY_OFFSET = 0x40;
/** Offset of the ID byte in every capability structure (§6.7). */
export const CAP_ID = 0;
/** Offset of the next-pointer byte in every capability structure (§6.7). */
export const CAP_NEXT = 1;
/** The bottom two bits of a capability pointer are reserved: structures are DWORD aligned. */
export const CAP_ALIGNMENT = 4;

/** Capability ID 09h: vendor specific (PCI Code and ID Assignment Spec, Table 7-1). */
export const CAP_ID_VENDOR_SPECIFIC = 0x09;
/** Capability ID 11h: MSI-X (PCI Local Bus Spec 3.0 §6.8.2). */
export const CAP_ID_MSIX = 0x11;
