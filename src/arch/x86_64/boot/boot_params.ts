/**
 * The Linux x86 "zero page" (`struct boot_params`) the 64-bit boot protocol hands the
 * kernel in RSI: the setup header, the command line pointer and the e820 memory map.
 * Offsets from the kernel's Documentation/arch/x86/zero-page.rst and boot.rst.
 *
 * @module
 */

/** Size of `struct boot_params` (one page). */
export const BOOT_PARAMS_SIZE = 0x1000;

/** Offsets into `struct boot_params` (zero-page.rst) and its setup header (boot.rst). */
export const BootParams = {
  /** `acpi_rsdp_addr`: where the RSDP is, so the kernel need not scan for it. */
  ACPI_RSDP_ADDR: 0x070,
  /** `ext_cmd_line_ptr`: upper 32 bits of the command line address. */
  EXT_CMD_LINE_PTR: 0x0c8,
  /** `e820_entries`: number of entries in `e820_table`. */
  E820_ENTRIES: 0x1e8,
  /** Start of `struct setup_header` (`setup_sects`). */
  SETUP_HEADER: 0x1f1,
  /** `boot_flag`: 0xAA55. */
  BOOT_FLAG: 0x1fe,
  /** `header`: the magic "HdrS". */
  HEADER: 0x202,
  /** `version`: boot protocol version. */
  VERSION: 0x206,
  /** `type_of_loader`. */
  TYPE_OF_LOADER: 0x210,
  /** `loadflags`. */
  LOADFLAGS: 0x211,
  /** `ramdisk_image`: initrd address. */
  RAMDISK_IMAGE: 0x218,
  /** `ramdisk_size`. */
  RAMDISK_SIZE: 0x21c,
  /** `heap_end_ptr`. */
  HEAP_END_PTR: 0x224,
  /** `cmd_line_ptr`: command line address (low 32 bits). */
  CMD_LINE_PTR: 0x228,
  /** `initrd_addr_max`. */
  INITRD_ADDR_MAX: 0x22c,
  /** `cmdline_size`: longest command line the kernel accepts, without the NUL. */
  CMDLINE_SIZE: 0x238,
  /** `e820_table`: up to {@link E820_MAX_ENTRIES} entries of {@link E820_ENTRY_SIZE} bytes. */
  E820_TABLE: 0x2d0,
} as const;

/** `boot_flag` value (boot.rst). */
export const BOOT_FLAG_MAGIC = 0xaa55;
/** `header` value: "HdrS" little-endian (boot.rst). */
export const HDRS_MAGIC = 0x5372_6448;
/** `type_of_loader` 0xFF: "undefined" boot loader (boot.rst). */
export const LOADER_TYPE_UNDEFINED = 0xff;
/** `E820_MAX_ENTRIES_ZEROPAGE` (arch/x86/include/uapi/asm/setup_data.h). */
export const E820_MAX_ENTRIES = 128;
/** `sizeof(struct boot_e820_entry)`: addr u64, size u64, type u32 (packed). */
export const E820_ENTRY_SIZE = 20;
/**
 * `cmdline_size` for a kernel that states none: Linux's x86 `COMMAND_LINE_SIZE` (2048)
 * less the NUL, as boot.rst defines the field.
 */
export const DEFAULT_CMDLINE_SIZE = 2047;

/** e820 range types (ACPI 6.5 §15.1 table 15.1). */
export const E820Type = {
  RAM: 1,
  RESERVED: 2,
  ACPI: 3,
  NVS: 4,
} as const;

/** One e820 range. */
export interface E820Entry {
  /** Start address. */
  address: number;
  /** Length in bytes. */
  size: number;
  /** One of {@link E820Type}. */
  type: number;
}

/** What the zero page carries. */
export interface BootParamsInput {
  /** Guest-physical address of the NUL-terminated command line. */
  cmdlineAddress: number;
  /** The memory map. */
  e820: readonly E820Entry[];
  /** The kernel's setup header bytes (from a bzImage), copied in before our fields. */
  setupHeader?: Uint8Array;
  /** Initrd placement, if any. */
  initrd?: { address: number; size: number };
  /** Guest-physical address of the ACPI RSDP, if the VM has ACPI tables. */
  acpiRsdpAddress?: number;
}

/** Builds the zero page. Throws if the e820 map has more entries than it can hold. */
export function buildBootParams(input: BootParamsInput): Uint8Array {
  const page = new Uint8Array(BOOT_PARAMS_SIZE);
  const view = new DataView(page.buffer);
  if (input.setupHeader) page.set(input.setupHeader, BootParams.SETUP_HEADER);
  else {
    view.setUint16(BootParams.BOOT_FLAG, BOOT_FLAG_MAGIC, true);
    view.setUint32(BootParams.HEADER, HDRS_MAGIC, true);
  }
  view.setUint8(BootParams.TYPE_OF_LOADER, LOADER_TYPE_UNDEFINED);
  view.setUint32(BootParams.CMD_LINE_PTR, input.cmdlineAddress, true);
  view.setUint32(BootParams.EXT_CMD_LINE_PTR, Math.floor(input.cmdlineAddress / 2 ** 32), true);
  if (input.acpiRsdpAddress !== undefined) {
    view.setBigUint64(BootParams.ACPI_RSDP_ADDR, BigInt(input.acpiRsdpAddress), true);
  }
  if (input.initrd) {
    view.setUint32(BootParams.RAMDISK_IMAGE, input.initrd.address, true);
    view.setUint32(BootParams.RAMDISK_SIZE, input.initrd.size, true);
  }
  if (input.e820.length > E820_MAX_ENTRIES) {
    throw new RangeError(`e820 map has ${input.e820.length} entries, at most ${E820_MAX_ENTRIES}`);
  }
  view.setUint8(BootParams.E820_ENTRIES, input.e820.length);
  input.e820.forEach((e, i) => {
    const at = BootParams.E820_TABLE + i * E820_ENTRY_SIZE;
    view.setBigUint64(at, BigInt(e.address), true);
    view.setBigUint64(at + 8, BigInt(e.size), true);
    view.setUint32(at + 16, e.type, true);
  });
  return page;
}
