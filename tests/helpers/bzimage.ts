/**
 * Synthesises minimal bzImages for loader and boot tests, and finds a real Debian one
 * the test bed may have cached. Offsets from the kernel's Documentation/arch/x86/boot.rst.
 *
 * @module
 */

import { BOOT_FLAG_MAGIC, BootParams, HDRS_MAGIC } from "../../src/arch/x86_64/boot/boot_params.ts";
import { CACHE_DIR, ensureAssets } from "../testbed/assets.ts";

/** Setup header fields the loader reads that src/ does not export (boot.rst). */
export const SetupHeader = {
  /** The short jump at 0x200; its displacement byte at 0x201 gives the header's end. */
  JUMP: 0x200,
  /** `syssize`: the protected-mode kernel's size in 16-byte paragraphs (protocol 2.04+). */
  SYSSIZE: 0x1f4,
  /** `xloadflags` (protocol 2.12+). */
  XLOADFLAGS: 0x236,
  /** `init_size` (protocol 2.10+): linear memory the kernel needs from its load address. */
  INIT_SIZE: 0x260,
  /** End of the 2.15 header (`kernel_info_offset` at 0x268 is its last field). */
  END: 0x26c,
} as const;

/** `loadflags` bit 0, LOADED_HIGH: the protected-mode code loads at 0x100000. */
export const LOADED_HIGH = 1 << 0;
/** `xloadflags` bit 0, XLF_KERNEL_64: a 64-bit entry point at 0x200. */
export const XLF_KERNEL_64 = 1 << 0;

/** What a synthetic bzImage says about itself; every field has a valid default. */
export interface BzImageSpec {
  /** `setup_sects` (0 means 4). Default 1. */
  setupSects?: number;
  /** Boot protocol `version`. Default 0x020f (2.15). */
  version?: number;
  /** `loadflags`. Default LOADED_HIGH. */
  loadflags?: number;
  /** `xloadflags`. Default XLF_KERNEL_64. */
  xloadflags?: number;
  /** `init_size`. Default 1 MiB. */
  initSize?: number;
  /** `cmdline_size` (0: unstated). Default 0. */
  cmdlineSize?: number;
  /** `initrd_addr_max` (0: unstated). Default 0. */
  initrdAddrMax?: number;
  /** The protected-mode kernel after the setup sectors. Default 4 KiB of a byte pattern. */
  payload?: Uint8Array;
  /** `syssize`. Default: the payload's size in 16-byte paragraphs, rounded up. */
  syssize?: number;
}

/** A byte pattern that shows where it came from: byte i is (i * 7 + seed) & 0xff. */
export function pattern(length: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

/** Builds a bzImage: boot sector with the setup header, setup sectors, then the payload. */
export function buildBzImage(spec: BzImageSpec = {}): Uint8Array {
  const setupSects = spec.setupSects ?? 1;
  const payload = spec.payload ?? pattern(4096, 0x5a);
  const kernelOffset = ((setupSects || 4) + 1) * 512;
  const image = new Uint8Array(kernelOffset + payload.length);
  const view = new DataView(image.buffer);
  image[BootParams.SETUP_HEADER] = setupSects;
  view.setUint16(BootParams.BOOT_FLAG, BOOT_FLAG_MAGIC, true);
  image[SetupHeader.JUMP] = 0xeb; // jmp short
  image[SetupHeader.JUMP + 1] = SetupHeader.END - (SetupHeader.JUMP + 2);
  view.setUint32(BootParams.HEADER, HDRS_MAGIC, true);
  view.setUint16(BootParams.VERSION, spec.version ?? 0x020f, true);
  image[BootParams.LOADFLAGS] = spec.loadflags ?? LOADED_HIGH;
  view.setUint32(BootParams.INITRD_ADDR_MAX, spec.initrdAddrMax ?? 0, true);
  view.setUint32(BootParams.CMDLINE_SIZE, spec.cmdlineSize ?? 0, true);
  image[SetupHeader.XLOADFLAGS] = spec.xloadflags ?? XLF_KERNEL_64;
  view.setUint32(SetupHeader.SYSSIZE, spec.syssize ?? Math.ceil(payload.length / 16), true);
  view.setUint32(SetupHeader.INIT_SIZE, spec.initSize ?? 1 << 20, true);
  image.set(payload, kernelOffset);
  return image;
}

/** Where the test bed keeps the L2 bzImage (tests/testbed/assets.ts). */
const CACHED_BZIMAGE = `${CACHE_DIR}/assets/l2-bzImage`;

/**
 * Debian's cloud bzImage from the test bed: built (or reused from .cache/testbed/) when we
 * are root and can install it, else whatever an earlier build left; undefined if neither.
 */
export async function debianBzImage(): Promise<string | undefined> {
  if (Deno.uid() === 0) return (await ensureAssets()).l2Kernel;
  return await Deno.stat(CACHED_BZIMAGE).then(() => CACHED_BZIMAGE, () => undefined);
}

/** The skip note for tests that need {@link debianBzImage}. */
export const NO_DEBIAN_BZIMAGE =
  "needs Debian's cloud bzImage: run as root so the test bed can fetch it";
