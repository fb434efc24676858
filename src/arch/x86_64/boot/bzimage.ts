/**
 * bzImage loading per the Linux x86 boot protocol (Documentation/arch/x86/boot.rst):
 * the protected-mode kernel goes to 1 MiB and is entered at its 64-bit entry point
 * (load address + 0x200); the setup header is handed on in the zero page.
 *
 * @module
 */

import { BOOT_FLAG_MAGIC, BootParams, HDRS_MAGIC } from "./boot_params.ts";
import { HIGH_MEMORY_START } from "../layout.ts";
import type { GuestMemory } from "../../../memory.ts";
import { type BootImage, headOf, ImageError, type LoadedKernel } from "./image.ts";

/** The 64-bit entry is 0x200 bytes into the protected-mode kernel (boot.rst, 64-bit boot protocol). */
const STARTUP_64_OFFSET = 0x200;
/** Sector size of the real-mode setup code. */
const SECTOR_SIZE = 512;
/** `setup_sects` of 0 means 4 (boot.rst). */
const DEFAULT_SETUP_SECTS = 4;
/** The 64-bit boot protocol needs version 2.12 (xloadflags). */
const MIN_PROTOCOL_VERSION = 0x020c;
/** `xloadflags` offset and XLF_KERNEL_64 bit (boot.rst). */
const XLOADFLAGS = 0x236;
const XLF_KERNEL_64 = 1 << 0;
/** `loadflags` LOADED_HIGH: the protected-mode kernel loads at 1 MiB. */
const LOADED_HIGH = 1 << 0;
/** `init_size` offset: memory the kernel needs from its load address while it decompresses. */
const INIT_SIZE = 0x260;
/** `syssize` offset: the protected-mode kernel's size in 16-byte paragraphs (boot.rst, 2.04+). */
const SYSSIZE = 0x1f4;
const SYSSIZE_UNIT = 16;
/** `payload_offset` and `payload_length`: the compressed kernel inside the protected-mode part. */
const PAYLOAD_OFFSET = 0x248;
const PAYLOAD_LENGTH = 0x24c;
/** The setup header ends at 0x202 + the byte at 0x201 (the jump's displacement). */
const SETUP_HEADER_JUMP_DISPLACEMENT = 0x201;

/** True when `image` carries a boot-protocol setup header ("HdrS" and 0xAA55). */
export function isBzImage(image: Uint8Array): boolean {
  if (image.length < BootParams.HEADER + 4) return false;
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  return view.getUint16(BootParams.BOOT_FLAG, true) === BOOT_FLAG_MAGIC &&
    view.getUint32(BootParams.HEADER, true) === HDRS_MAGIC;
}

/** Loads a bzImage's protected-mode kernel at 1 MiB. Throws ImageError on a bad header. */
export function loadBzImage(mem: GuestMemory, image: BootImage): LoadedKernel {
  const fail = (reason: string) => new ImageError(image.path, reason);
  const head = headOf(image);
  if (!isBzImage(head)) throw fail("no boot protocol setup header");
  const view = new DataView(head.buffer);
  const headerEnd = BootParams.HEADER + head[SETUP_HEADER_JUMP_DISPLACEMENT];
  if (head.length < Math.max(headerEnd, INIT_SIZE + 4)) throw fail("truncated setup header");
  const version = view.getUint16(BootParams.VERSION, true);
  if (version < MIN_PROTOCOL_VERSION) {
    throw fail(`boot protocol ${version >> 8}.${version & 0xff} is too old (need 2.12)`);
  }
  if ((head[XLOADFLAGS] & XLF_KERNEL_64) === 0) throw fail("kernel has no 64-bit entry point");
  if ((head[BootParams.LOADFLAGS] & LOADED_HIGH) === 0) throw fail("kernel does not load high");
  const setupSects = head[BootParams.SETUP_HEADER] || DEFAULT_SETUP_SECTS;
  const kernelOffset = (setupSects + 1) * SECTOR_SIZE;
  if (kernelOffset >= image.size) {
    throw fail(
      `truncated: ${setupSects} setup sectors and the kernel after them need more than ` +
        `${kernelOffset} bytes, the file has ${image.size}`,
    );
  }
  const kernelLength = image.size - kernelOffset;
  // A file cut short would otherwise boot into whatever follows it in guest memory.
  // syssize counts whole paragraphs, the last one possibly short.
  const paragraphs = Math.ceil(kernelLength / SYSSIZE_UNIT);
  const payloadEnd = view.getUint32(PAYLOAD_OFFSET, true) + view.getUint32(PAYLOAD_LENGTH, true);
  if (paragraphs < view.getUint32(SYSSIZE, true) || kernelLength < payloadEnd) {
    const declared = Math.max(view.getUint32(SYSSIZE, true) * SYSSIZE_UNIT, payloadEnd);
    throw fail(
      `truncated: the setup header declares ${declared} bytes of protected-mode kernel after ` +
        `${kernelOffset} bytes of setup, the file has ${kernelLength}`,
    );
  }
  const initSize = Math.max(view.getUint32(INIT_SIZE, true), kernelLength);
  if (!mem.contains(HIGH_MEMORY_START, initSize)) {
    throw fail(`kernel needs ${initSize} bytes from 1 MiB, more than guest memory has`);
  }
  image.read(kernelOffset, mem.slice(HIGH_MEMORY_START, kernelLength));
  return {
    entry: HIGH_MEMORY_START + STARTUP_64_OFFSET,
    end: HIGH_MEMORY_START + initSize,
    setupHeader: head.slice(BootParams.SETUP_HEADER, headerEnd),
  };
}
