/**
 * What every ACPI system description table shares: the 36-byte header with its checksum
 * (ACPI 6.5 §5.2.6), and the Generic Address Structure that points at registers (§5.2.3.2).
 *
 * @module
 */

/** ACPI 6.5 §5.2.6 System Description Table Header: 36 bytes. */
export const SDT_HEADER_SIZE = 36;

/** Offsets in the table header (ACPI 6.5 §5.2.6). */
const Header = {
  SIGNATURE: 0,
  LENGTH: 4,
  REVISION: 8,
  CHECKSUM: 9,
  OEM_ID: 10,
  OEM_TABLE_ID: 16,
  OEM_REVISION: 24,
  CREATOR_ID: 28,
  CREATOR_REVISION: 32,
} as const;

/** OEM ID (6 characters), as crosvm writes it. */
export const OEM_ID = "CROSVM";
/** OEM Table ID (8 characters): crosvm for Deno. */
export const OEM_TABLE_ID = "CROSVMDN";
/** OEM Revision of our tables. */
export const OEM_REVISION = 1;
/** Creator ID (4 characters): the tool that made the tables. */
export const CREATOR_ID = "DENO";
/** Creator Revision. */
export const CREATOR_REVISION = 1;

/** Writes ASCII `text` at `at`, padded with spaces to `width` bytes. */
export function writeAscii(bytes: Uint8Array, at: number, text: string, width: number): void {
  if (text.length > width || !/^[\x20-\x7e]*$/.test(text)) {
    throw new RangeError(`"${text}" is not printable ASCII of at most ${width} characters`);
  }
  bytes.set(new TextEncoder().encode(text.padEnd(width, " ")), at);
}

/** The byte that makes `bytes` sum to zero modulo 256 (ACPI 6.5 §5.2.6, Checksum). */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum += b;
  return (0x100 - (sum & 0xff)) & 0xff;
}

/**
 * A whole table: the header (signature, length, revision, our OEM and creator IDs, checksum)
 * followed by `body`.
 */
export function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const table = new Uint8Array(SDT_HEADER_SIZE + body.length);
  const view = new DataView(table.buffer);
  writeAscii(table, Header.SIGNATURE, signature, 4);
  view.setUint32(Header.LENGTH, table.length, true);
  table[Header.REVISION] = revision;
  writeAscii(table, Header.OEM_ID, OEM_ID, 6);
  writeAscii(table, Header.OEM_TABLE_ID, OEM_TABLE_ID, 8);
  view.setUint32(Header.OEM_REVISION, OEM_REVISION, true);
  writeAscii(table, Header.CREATOR_ID, CREATOR_ID, 4);
  view.setUint32(Header.CREATOR_REVISION, CREATOR_REVISION, true);
  table.set(body, SDT_HEADER_SIZE);
  table[Header.CHECKSUM] = checksum(table);
  return table;
}

/** ACPI 6.5 §5.2.3.2 Generic Address Structure: 12 bytes. */
export const GAS_SIZE = 12;
/** §5.2.3.2 Address Space ID: system I/O space. */
export const GAS_SPACE_SYSTEM_IO = 1;
/** §5.2.3.2 Access Size: byte access. */
export const GAS_ACCESS_BYTE = 1;

/** A register in I/O port space, for a Generic Address Structure. */
export interface IoRegister {
  /** The port. */
  port: number;
  /** Register width in bits (8 for our one-byte registers). */
  bitWidth: number;
}

/** Writes a Generic Address Structure (ACPI 6.5 §5.2.3.2) for a byte-accessed I/O register. */
export function writeIoGas(view: DataView, at: number, reg: IoRegister): void {
  view.setUint8(at, GAS_SPACE_SYSTEM_IO); // Address Space ID
  view.setUint8(at + 1, reg.bitWidth); // Register Bit Width
  view.setUint8(at + 2, 0); // Register Bit Offset
  view.setUint8(at + 3, GAS_ACCESS_BYTE); // Access Size
  view.setBigUint64(at + 4, BigInt(reg.port), true); // Address
}
