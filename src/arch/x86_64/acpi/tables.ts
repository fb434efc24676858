/**
 * The VM's ACPI tables, laid out as one blob for one guest-physical place: RSDP, XSDT, FADT,
 * MADT, MCFG and DSDT, in that order, each 16-byte aligned, from {@link ACPI_TABLES_START}
 * (the BIOS area an OS scans for the RSDP; Linux also takes its address from the zero page).
 *
 * @module
 */

import { type E820Entry, E820Type } from "../boot/boot_params.ts";
import { ACPI_TABLES_END, ACPI_TABLES_START, PCIE_ECAM_BASE } from "../layout.ts";
import { RESET_VECTOR_ADDRESS } from "../boot/reset_vector.ts";
import { buildDsdt, type IsaDevices, PCI_BUS_FIRST, PCI_BUS_LAST } from "./dsdt.ts";
import { buildFadt, FADT_SIZE } from "./fadt.ts";
import { buildMadt } from "./madt.ts";
import { checksum, OEM_ID, sdt, SDT_HEADER_SIZE, writeAscii } from "./sdt.ts";

/** ACPI 6.5 §5.2.5.3 RSDP Structure: 36 bytes for revision 2. */
export const RSDP_SIZE = 36;
/** RSDP Revision 2 (ACPI 2.0 on): with Length, XsdtAddress and the extended checksum. */
export const RSDP_REVISION = 2;
/** The RSDP's first checksum covers its first 20 bytes, the ACPI 1.0 structure (§5.2.5.3). */
const RSDP_V1_SIZE = 20;
/** RSDP field offsets (§5.2.5.3). */
const Rsdp = {
  SIGNATURE: 0,
  CHECKSUM: 8,
  OEM_ID: 9,
  REVISION: 15,
  RSDT_ADDRESS: 16,
  LENGTH: 20,
  XSDT_ADDRESS: 24,
  EXTENDED_CHECKSUM: 32,
} as const;
/** §5.2.5.3: "RSD PTR " (note the trailing space). */
const RSDP_SIGNATURE = "RSD PTR ";

/** XSDT revision 1 (ACPI 6.5 §5.2.8). */
const XSDT_REVISION = 1;
/** An XSDT entry: a 64-bit table address. */
const XSDT_ENTRY_SIZE = 8;

/** MCFG revision 1 (PCI Firmware Specification 3.3 §4.1.2). */
const MCFG_REVISION = 1;
/** MCFG: 8 reserved bytes after the header, then 16-byte allocation structures. */
const MCFG_RESERVED = 8;
const MCFG_ALLOCATION_SIZE = 16;
/** The PCI segment group of our one host bridge. */
const PCI_SEGMENT = 0;

/** Tables start on 16-byte boundaries (the RSDP must; the rest just stay tidy). */
const TABLE_ALIGNMENT = 16;
/** The tables end before the reset-vector stub at the top of the BIOS area. */
const TABLES_LIMIT = Math.min(ACPI_TABLES_END, RESET_VECTOR_ADDRESS);
/** The e820 range covering the tables is rounded up to whole pages. */
const PAGE_SIZE = 4096;

/** What the tables describe. */
export interface AcpiOptions {
  /** vCPUs, with APIC IDs 0…cpus-1. */
  cpus: number;
  /** First address past the highest RAM (places the 64-bit PCI window above it). */
  memoryTop: number;
  /** Legacy ISA devices present, described in the DSDT so the guest finds their IRQs. */
  isa?: IsaDevices;
}

/** One table's place in the blob. */
export interface AcpiTable {
  /** Its signature: "RSD PTR ", "XSDT", "FACP", "APIC", "MCFG" or "DSDT". */
  signature: string;
  /** Guest-physical address. */
  address: number;
  /** Its bytes (a view into the blob). */
  bytes: Uint8Array;
}

/** The tables, ready to be written at `address`. */
export interface AcpiTables {
  /** Guest-physical address to write {@link AcpiTables.blob} at. */
  address: number;
  /** Every table, already pointing at each other's final addresses. */
  blob: Uint8Array;
  /** The RSDP's address, for the zero page's `acpi_rsdp_addr`. */
  rsdpAddress: number;
  /** Each table, in blob order. */
  tables: readonly AcpiTable[];
  /** The range to report in the e820 map, as ACPI tables (ACPI 6.5 §15, AddressRangeACPI). */
  e820: E820Entry;
}

/** Builds the RSDP pointing at the XSDT, both checksums set. */
export function buildRsdp(xsdtAddress: number): Uint8Array {
  const rsdp = new Uint8Array(RSDP_SIZE);
  const view = new DataView(rsdp.buffer);
  writeAscii(rsdp, Rsdp.SIGNATURE, RSDP_SIGNATURE, RSDP_SIGNATURE.length);
  writeAscii(rsdp, Rsdp.OEM_ID, OEM_ID, 6);
  rsdp[Rsdp.REVISION] = RSDP_REVISION;
  view.setUint32(Rsdp.RSDT_ADDRESS, 0, true); // no RSDT: revision 2 readers use the XSDT
  view.setUint32(Rsdp.LENGTH, RSDP_SIZE, true);
  view.setBigUint64(Rsdp.XSDT_ADDRESS, BigInt(xsdtAddress), true);
  rsdp[Rsdp.CHECKSUM] = checksum(rsdp.subarray(0, RSDP_V1_SIZE));
  rsdp[Rsdp.EXTENDED_CHECKSUM] = checksum(rsdp);
  return rsdp;
}

/** Builds the XSDT listing `addresses` (ACPI 6.5 §5.2.8). */
export function buildXsdt(addresses: readonly number[]): Uint8Array {
  const body = new Uint8Array(addresses.length * XSDT_ENTRY_SIZE);
  const view = new DataView(body.buffer);
  addresses.forEach((a, i) => view.setBigUint64(i * XSDT_ENTRY_SIZE, BigInt(a), true));
  return sdt("XSDT", XSDT_REVISION, body);
}

/** Builds the MCFG: one ECAM allocation for segment 0, buses 0–255 (PCI Firmware 3.3 §4.1.2). */
export function buildMcfg(): Uint8Array {
  const body = new Uint8Array(MCFG_RESERVED + MCFG_ALLOCATION_SIZE);
  const view = new DataView(body.buffer);
  const at = MCFG_RESERVED;
  view.setBigUint64(at, BigInt(PCIE_ECAM_BASE), true); // base address of the ECAM window
  view.setUint16(at + 8, PCI_SEGMENT, true);
  view.setUint8(at + 10, PCI_BUS_FIRST);
  view.setUint8(at + 11, PCI_BUS_LAST);
  return sdt("MCFG", MCFG_REVISION, body);
}

const align = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * Builds every table for the VM, placed from {@link ACPI_TABLES_START}. Throws a RangeError if
 * they do not fit below the reset vector (not with any vCPU count the MADT allows).
 */
export function buildAcpiTables(opts: AcpiOptions): AcpiTables {
  const madt = buildMadt(opts.cpus);
  const mcfg = buildMcfg();
  const dsdt = buildDsdt({ memoryTop: opts.memoryTop, isa: opts.isa });
  const xsdtEntries = 3; // FADT, MADT, MCFG; the FADT points at the DSDT
  const sizes = [
    RSDP_SIZE,
    SDT_HEADER_SIZE + xsdtEntries * XSDT_ENTRY_SIZE,
    FADT_SIZE,
    madt.length,
    mcfg.length,
    dsdt.length,
  ];
  const addresses: number[] = [];
  let next = ACPI_TABLES_START;
  for (const size of sizes) {
    addresses.push(next);
    next = align(next + size, TABLE_ALIGNMENT);
  }
  if (next > TABLES_LIMIT) {
    throw new RangeError(`ACPI tables need ${next - ACPI_TABLES_START} bytes, more than fit`);
  }
  const [rsdpAt, xsdtAt, fadtAt, madtAt, mcfgAt, dsdtAt] = addresses;
  const built: [string, Uint8Array][] = [
    [RSDP_SIGNATURE, buildRsdp(xsdtAt)],
    ["XSDT", buildXsdt([fadtAt, madtAt, mcfgAt])],
    ["FACP", buildFadt(dsdtAt)],
    ["APIC", madt],
    ["MCFG", mcfg],
    ["DSDT", dsdt],
  ];
  const blob = new Uint8Array(next - ACPI_TABLES_START);
  const tables = built.map(([signature, bytes], i) => {
    const offset = addresses[i] - ACPI_TABLES_START;
    blob.set(bytes, offset);
    return {
      signature,
      address: addresses[i],
      bytes: blob.subarray(offset, offset + bytes.length),
    };
  });
  return {
    address: ACPI_TABLES_START,
    blob,
    rsdpAddress: rsdpAt,
    tables,
    e820: {
      address: ACPI_TABLES_START,
      size: align(blob.length, PAGE_SIZE),
      type: E820Type.ACPI,
    },
  };
}
