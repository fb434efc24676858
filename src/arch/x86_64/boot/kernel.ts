/**
 * Kernel and initrd loading: recognises ELF vmlinux and bzImage, and reports
 * anything else as a user error.
 *
 * @module
 */

import type { GuestMemory } from "../../../memory.ts";
import { isBzImage, loadBzImage } from "./bzimage.ts";
import { isElf, loadElf } from "./elf.ts";
import { type BootImage, headOf, ImageError, type LoadedKernel } from "./image.ts";

/** Loads `image` (ELF vmlinux or bzImage) into guest memory. */
export function loadKernel(mem: GuestMemory, image: BootImage): LoadedKernel {
  const head = headOf(image);
  if (isElf(head)) return loadElf(mem, image);
  if (isBzImage(head)) return loadBzImage(mem, image);
  throw new ImageError(image.path, "not a kernel: neither an ELF vmlinux nor a bzImage");
}
