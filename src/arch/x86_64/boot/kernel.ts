/**
 * Kernel and initrd loading: recognises ELF vmlinux and bzImage, and reports
 * anything else as a user error.
 *
 * @module
 */

import type { GuestMemory } from "../../../memory.ts";
import { isBzImage, loadBzImage } from "./bzimage.ts";
import { isElf, loadElf } from "./elf.ts";
import { ImageError, type LoadedKernel } from "./image.ts";

/** Loads `image` (ELF vmlinux or bzImage) into guest memory. */
export function loadKernel(mem: GuestMemory, image: Uint8Array, path: string): LoadedKernel {
  if (isElf(image)) return loadElf(mem, image, path);
  if (isBzImage(image)) return loadBzImage(mem, image, path);
  throw new ImageError(path, "not a kernel: neither an ELF vmlinux nor a bzImage");
}
