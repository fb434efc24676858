/**
 * What loading a kernel image yields, and the error a bad kernel or initrd gives.
 *
 * @module
 */

import { UserError } from "../../../errors.ts";
import type { BootImage } from "../../machine.ts";

export type { BootImage };

/**
 * The first bytes of an image, which say what it is: the ELF magic, or a bzImage's boot sector and
 * setup header (which ends by 0x301, the jump at 0x200 reaching at most 0xff past 0x202).
 */
export const HEAD_BYTES = 0x400;

/** An image already in memory (`path` names it in messages). */
export function bytesImage(path: string, bytes: Uint8Array): BootImage {
  return {
    path,
    size: bytes.length,
    read: (offset, into) => into.set(bytes.subarray(offset, offset + into.length)),
  };
}

/** `length` bytes of `image` from `offset`, in a new array (for headers). */
export function readBytes(image: BootImage, offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  image.read(offset, bytes);
  return bytes;
}

/** The image's first {@link HEAD_BYTES} (fewer in a shorter one). */
export function headOf(image: BootImage): Uint8Array {
  return readBytes(image, 0, Math.min(image.size, HEAD_BYTES));
}

/** A kernel or initrd image that cannot be loaded: not a kernel, truncated, or too big for RAM. */
export class ImageError extends UserError {
  /**
   * The image at `path` cannot be loaded, for `reason`.
   * @param path the image's path
   * @param reason what is wrong with it
   */
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
  }
}

/** Where a kernel landed and how to enter it. */
export interface LoadedKernel {
  /** Guest-physical 64-bit entry point. */
  entry: number;
  /** First guest-physical address past the kernel's memory. */
  end: number;
  /** The bzImage setup header to copy into the zero page (absent for ELF). */
  setupHeader?: Uint8Array;
}
