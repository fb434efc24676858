/**
 * Errors the user causes by handing the VMM a bad kernel or initrd.
 *
 * @module
 */

/** A kernel or initrd image that cannot be loaded: not a kernel, truncated, or too big for RAM. */
export class ImageError extends Error {
  /** @param path the image's path @param reason what is wrong with it */
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "ImageError";
  }
}
