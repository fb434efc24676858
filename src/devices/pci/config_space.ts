/**
 * The PCI configuration header layout every PCI function shares, and the interface a
 * function's configuration space offers to the root that routes accesses to it.
 *
 * @module
 */

/** Bytes of configuration space per function (PCI Express Base Spec 7.2.2: 4 KiB with ECAM). */
export const CONFIG_SPACE_SIZE = 4096;
/** Bytes of the predefined header (PCI Local Bus Spec 3.0 §6.1: the first 64 bytes). */
export const HEADER_SIZE = 64;

// Register offsets of the type 0 header (PCI Local Bus Spec 3.0 §6.1, Figure 6-1).
/** Vendor ID, 16 bits. */
export const VENDOR_ID = 0x00;
/** Device ID, 16 bits. */
export const DEVICE_ID = 0x02;
/** Command register, 16 bits (§6.2.2). */
export const COMMAND = 0x04;
/** Status register, 16 bits (§6.2.3). */
export const STATUS = 0x06;
/** Revision ID, 8 bits. */
export const REVISION_ID = 0x08;
/** Class code: programming interface, 8 bits. */
export const CLASS_PROG_IF = 0x09;
/** Class code: sub-class, 8 bits. */
export const CLASS_SUBCLASS = 0x0a;
/** Class code: base class, 8 bits. */
export const CLASS_BASE = 0x0b;
/** Cache line size, 8 bits. */
export const CACHE_LINE_SIZE = 0x0c;
/** Latency timer, 8 bits. */
export const LATENCY_TIMER = 0x0d;
/** Header type, 8 bits: layout in bits 0-6, multi-function in bit 7. */
export const HEADER_TYPE = 0x0e;
/** Built-in self test, 8 bits. */
export const BIST = 0x0f;
/** First of the six 32-bit base address registers (§6.2.5.1). */
export const BAR0 = 0x10;
/** Subsystem vendor ID, 16 bits. */
export const SUBSYSTEM_VENDOR_ID = 0x2c;
/** Subsystem ID, 16 bits. */
export const SUBSYSTEM_ID = 0x2e;
/** Capabilities pointer, 8 bits (§6.7). */
export const CAPABILITIES_POINTER = 0x34;
/** Interrupt line, 8 bits. */
export const INTERRUPT_LINE = 0x3c;
/** Interrupt pin, 8 bits. */
export const INTERRUPT_PIN = 0x3d;

/** Header type 0: a device that is not a bridge (PCI Local Bus Spec 3.0 §6.2.1). */
export const HEADER_TYPE_DEVICE = 0x00;
/** Header type bit 7: the device has more than one function. */
export const HEADER_TYPE_MULTI_FUNCTION = 0x80;

/** Base class 06h: bridge device (PCI Code and ID Assignment Spec 1.x, Appendix D). */
export const CLASS_BRIDGE = 0x06;
/** Bridge sub-class 00h: host bridge. */
export const SUBCLASS_HOST_BRIDGE = 0x00;

/** Intel's PCI vendor ID (PCI-SIG vendor list). */
export const VENDOR_ID_INTEL = 0x8086;

/** One PCI function's configuration space, as the root sees it. */
export interface PciDevice {
  /** The 32-bit register at dword index `register` (byte offset `register * 4`). */
  readConfigDword(register: number): number;
  /** A guest write of `data` (1, 2 or 4 bytes, within one dword) at byte `offset`. */
  writeConfig(offset: number, data: Uint8Array): void;
}
