/**
 * A VM's disks, from configuration to virtio-blk devices: each image opened and locked before the
 * VM starts ({@link openDiskImage}), named /dev/vda, /dev/vdb… in the order given, and the root
 * disk's kernel parameters.
 *
 * @module
 */

import { type DiskConfig, MAX_BLOCK_QUEUES, MAX_DISKS } from "../../../config.ts";
import type { BlockSpec } from "./device.ts";
import { DiskImageError, openDiskImage } from "../../../disk/image.ts";
import { SECTOR_SIZE } from "./config.ts";
import { close, EFD_NONBLOCK, eventfd } from "../../../ffi/libc.ts";
import * as log from "../../../log.ts";

/** `a` for the first disk: Linux's virtio_blk names disks vda, vdb, … in probe order. */
const FIRST_DISK_LETTER = "a".charCodeAt(0);

/** The guest's name for disk `index` (0-based): `vda`, `vdb`, … */
export function diskName(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_DISKS) {
    throw new RangeError(`disk ${index}: at most ${MAX_DISKS} disks`);
  }
  return `vd${String.fromCharCode(FIRST_DISK_LETTER + index)}`;
}

/**
 * The kernel parameters for the root disk, if one is marked root: `root=/dev/vdX` and `ro` or
 * `rw`, as crosvm adds them.
 */
export function rootParams(disks: readonly DiskConfig[]): string[] {
  const index = disks.findIndex((disk) => disk.root);
  if (index < 0) return [];
  return [`root=/dev/${diskName(index)}`, disks[index].readOnly ? "ro" : "rw"];
}

/**
 * Opens and locks every image, in order, each with the eventfd its I/O completions signal; the
 * descriptors are closed when `cleanup` is disposed. A disk without `numQueues` gets one queue
 * per vCPU (of `cpus`), at most {@link MAX_BLOCK_QUEUES}.
 * @throws DiskImageError for the first image that cannot be used (those opened are closed)
 */
export function openDisks(
  disks: readonly DiskConfig[],
  cpus: number,
  cleanup: DisposableStack,
): BlockSpec[] {
  if (disks.length > MAX_DISKS) throw new RangeError(`${disks.length} disks: at most ${MAX_DISKS}`);
  refuseSharedWritable(disks);
  return disks.map((disk) => {
    const image = openDiskImage({ path: disk.path, readOnly: disk.readOnly, direct: disk.direct });
    cleanup.defer(() => close(image.fd));
    const eventFd = eventfd(0, EFD_NONBLOCK);
    cleanup.defer(() => close(eventFd));
    const tail = image.sizeBytes % SECTOR_SIZE;
    if (tail !== 0) {
      log.warn(`disk image ${disk.path}: the last ${tail} bytes are not a whole sector; unseen`);
    }
    return {
      kind: "block",
      fd: image.fd,
      sizeBytes: image.sizeBytes,
      readOnly: disk.readOnly,
      sparse: disk.sparse,
      direct: disk.direct,
      id: disk.id ?? "",
      blockSize: disk.blockSize,
      numQueues: disk.numQueues ?? Math.min(cpus, MAX_BLOCK_QUEUES),
      engine: disk.asyncExecutor ?? "uring",
      eventFd,
    };
  });
}

/**
 * One image given twice to the same VM, once writable, would corrupt it as surely as two VMs:
 * refuse it by name (the lock would only say "locked by another process").
 * @throws DiskImageError naming the image
 */
function refuseSharedWritable(disks: readonly DiskConfig[]): void {
  const seen = new Map<string, DiskConfig>();
  for (const disk of disks) {
    let key: string;
    try {
      const info = Deno.statSync(disk.path);
      key = `${info.dev}:${info.ino}`;
    } catch {
      continue; // openDiskImage reports it
    }
    const other = seen.get(key);
    if (other !== undefined && !(other.readOnly && disk.readOnly)) {
      throw new DiskImageError(disk.path, "given more than once, and not only read-only");
    }
    seen.set(key, disk);
  }
}
