/**
 * What loading a kernel image yields, and the error a bad kernel or initrd gives.
 *
 * @module
 */

import { UserError } from "../../../errors.ts";

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
