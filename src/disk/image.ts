/**
 * Opening a raw disk image for a VM, on the main thread before the VM starts: a regular file or
 * a block device, read-only or read-write, optionally O_DIRECT, locked with `flock` (exclusive
 * for writable images, shared for read-only ones, as crosvm does) so two VMs never write one
 * image. Every problem the user can cause is a {@link DiskImageError} with one clear line.
 *
 * The descriptor is process-wide: the block device's Worker does the I/O on it ({@link ./file.ts}).
 *
 * @module
 */

import { _IOR } from "../ffi/ioctl.ts";
import { UserError } from "../errors.ts";
import { SyscallError } from "../ffi/errno.ts";
import {
  close,
  flock,
  ioctlBuf,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  O_DIRECT,
  O_RDONLY,
  O_RDWR,
  open,
} from "../ffi/libc.ts";

/** `sizeof(size_t)` on x86_64 (LP64). */
const SIZE_T_BYTES = 8;
/** `BLKGETSIZE64` = `_IOR(0x12, 114, size_t)` (`<linux/fs.h>`): a block device's size in bytes. */
export const BLKGETSIZE64 = _IOR(0x12, 114, SIZE_T_BYTES);

/** An image the VM cannot use, said in one line. */
export class DiskImageError extends UserError {
  /**
   * The image at `path` cannot be used, for `problem`.
   * @param path the image
   * @param problem what is wrong with it
   */
  constructor(readonly path: string, problem: string) {
    super(`disk image ${path}: ${problem}`);
  }
}

/** How to open an image. */
export interface DiskOpenOptions {
  /** The image's path. */
  readonly path: string;
  /** Open read-only (and take a shared lock). */
  readonly readOnly: boolean;
  /** Open with O_DIRECT, bypassing the host's page cache. */
  readonly direct: boolean;
}

/** An open, locked image. */
export interface OpenDisk {
  /** The descriptor (close-on-exec); closing it releases the lock. */
  readonly fd: number;
  /** Its size in bytes. */
  readonly sizeBytes: number;
  /** Whether it is a block device (otherwise a regular file). */
  readonly blockDevice: boolean;
}

/**
 * Opens and locks an image.
 * @throws DiskImageError when it is missing, not a file or block device, not accessible,
 *   locked by another process, or cannot be opened as asked
 */
export function openDiskImage(options: DiskOpenOptions): OpenDisk {
  const { path } = options;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DiskImageError(path, "no such file");
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new DiskImageError(path, "permission denied");
    }
    throw new DiskImageError(path, (e as Error).message);
  }
  if (info.isDirectory) throw new DiskImageError(path, "is a directory");
  const blockDevice = info.isBlockDevice === true;
  if (!info.isFile && !blockDevice) {
    throw new DiskImageError(path, "is neither a regular file nor a block device");
  }
  const flags = (options.readOnly ? O_RDONLY : O_RDWR) | (options.direct ? O_DIRECT : 0);
  let fd: number;
  try {
    fd = open(path, flags);
  } catch (e) {
    throw new DiskImageError(path, openProblem(e, options));
  }
  try {
    lock(fd, options);
    return { fd, sizeBytes: blockDevice ? blockDeviceSize(fd) : info.size, blockDevice };
  } catch (e) {
    close(fd);
    if (e instanceof SyscallError) throw new DiskImageError(path, e.message);
    throw e;
  }
}

/** Why `open` failed, in the user's terms. */
function openProblem(e: unknown, options: DiskOpenOptions): string {
  if (!(e instanceof SyscallError)) throw e;
  if (e.is("EACCES") || e.is("EPERM")) {
    return `permission denied (opening it ${options.readOnly ? "read-only" : "read-write"})`;
  }
  if (e.is("EROFS")) return "is on a read-only file system: give it as read-only (ro)";
  if (e.is("EINVAL") && options.direct) {
    return "its file system does not support direct I/O: drop the direct option";
  }
  return e.message;
}

/** Takes the image's lock without waiting. */
function lock(fd: number, options: DiskOpenOptions): void {
  try {
    flock(fd, (options.readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB);
  } catch (e) {
    if (e instanceof SyscallError && e.is("EAGAIN")) {
      throw new DiskImageError(
        options.path,
        `is locked by another process (is another VM using it${
          options.readOnly ? " read-write" : ""
        }?)`,
      );
    }
    throw e;
  }
}

/** A block device's size from `BLKGETSIZE64`. */
function blockDeviceSize(fd: number): number {
  const size = new BigUint64Array(1);
  ioctlBuf(fd, BLKGETSIZE64, new Uint8Array(size.buffer), "BLKGETSIZE64");
  return Number(size[0]);
}
