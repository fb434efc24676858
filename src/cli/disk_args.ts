/**
 * `crosvm run`'s disk options, spelled as crosvm's: `-b/--block PATH[,key=value…]` (its
 * `DiskOption`), and the older `-r/--root`, `--rwroot`, `-d/--disk` and `--rwdisk`, which take the
 * same keys with `ro` and `root` implied. Disks are numbered in the order given across all of
 * them: the first is /dev/vda.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { DEFAULT_BLOCK_SIZE, type DiskConfig, MAX_BLOCK_QUEUES, MAX_DISKS } from "../config.ts";
import { VIRTIO_BLK_ID_BYTES } from "../devices/virtio/block/config.ts";
import { invalidValue, UsageError } from "./errors.ts";
import { type KeySchema, parseKeyValues } from "./key_values.ts";
import type { OptionValue } from "./scan_args.ts";

/** The keys of crosvm's `DiskOption` we support; `path` may go unnamed. */
const DISK_KEYS: KeySchema = [
  "path",
  "ro",
  "root",
  "sparse",
  "direct",
  "id",
  "block-size",
  "num-queues",
  "async-executor",
];
/** crosvm's `async-executor` kinds (`cros_async::ExecutorKind`) that a disk may ask for. */
const ASYNC_EXECUTORS = ["uring", "epoll"] as const;
/** crosvm's `block_option_sparse_default`. */
const DEFAULT_SPARSE = true;
/** Smallest `block-size`: the 512-byte sector every request is counted in (virtio 1.2 §5.2.6). */
const MIN_BLOCK_SIZE = 512;
/** Largest `block-size`: Linux refuses logical blocks larger than a page (`blk_validate_block_size`). */
const MAX_BLOCK_SIZE = 4096;

/** What each disk option implies. */
const DISK_SPELLINGS: Readonly<Record<string, { readOnly?: boolean; root?: boolean }>> = {
  block: {},
  root: { readOnly: true, root: true },
  rwroot: { readOnly: false, root: true },
  disk: { readOnly: true },
  rwdisk: { readOnly: false },
};

/** The disk options, for `parseArgs`. */
export const DISK_OPTIONS: ParseArgsOptionsConfig = {
  block: { type: "string", short: "b", multiple: true },
  root: { type: "string", short: "r", multiple: true },
  rwroot: { type: "string", multiple: true },
  disk: { type: "string", short: "d", multiple: true },
  rwdisk: { type: "string", multiple: true },
};

/** Help text for the disk options. */
export const DISK_USAGE =
  `  -b, --block <PATH[,ro][,root][,sparse=BOOL][,direct][,id=ID][,block-size=N][,num-queues=N][,async-executor=KIND]>
                    add a virtio-blk disk backed by a raw image (a file or a
                    block device); may be given more than once: disks are
                    /dev/vda, /dev/vdb, ... in the order given (with the
                    options below)
                      ro - read-only to the guest; the image is opened read-only
                      root - the root file system: adds root=/dev/vdX and ro
                        or rw to the kernel command line (one disk at most)
                      sparse=BOOL - discard punches holes in the image
                        (default: ${DEFAULT_SPARSE})
                      direct - O_DIRECT: bypass the host's page cache
                      id=ID - the disk's serial, at most ${VIRTIO_BLK_ID_BYTES} bytes
                      block-size=N - logical block size, a power of two from
                        ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE} (default: ${DEFAULT_BLOCK_SIZE})
                      num-queues=N - request queues, 1 to ${MAX_BLOCK_QUEUES}, each with
                        its own interrupt (default: one per vCPU)
                      async-executor=uring|epoll - uring: many requests in
                        flight on an io_uring (default; synchronous where the
                        host has none); epoll: each request served synchronously
                    writable images are locked against other VMs
  -r, --root <PATH[,key=value]>
                    a read-only root disk: --block PATH,ro,root
  --rwroot <PATH[,key=value]>
                    a writable root disk: --block PATH,root
  -d, --disk <PATH[,key=value]>
                    a read-only disk: --block PATH,ro
  --rwdisk <PATH[,key=value]>
                    a writable disk: --block PATH`;

/**
 * The disks from every disk option, in the order given.
 * @throws UsageError for a bad value, a second root disk, or more than {@link MAX_DISKS} disks
 */
export function parseDisks(options: ReadonlyMap<string, readonly OptionValue[]>): DiskConfig[] {
  const given = Object.keys(DISK_SPELLINGS).flatMap((name) =>
    (options.get(name) ?? []).map((option) => ({ option, implied: DISK_SPELLINGS[name] }))
  ).sort((a, b) => a.option.index - b.option.index);
  if (given.length > MAX_DISKS) {
    throw new UsageError(`${given.length} disks given, at most ${MAX_DISKS} (vda to vdz)`);
  }
  const disks: DiskConfig[] = [];
  for (const { option, implied } of given) {
    const disk = parseDisk(option, implied);
    if (disk.root && disks.some((other) => other.root)) {
      throw invalidValue(option.flag, option.value, "there is already a root disk");
    }
    disks.push(disk);
  }
  return disks;
}

/** One disk option's value. */
function parseDisk(
  { flag, value }: OptionValue,
  implied: { readOnly?: boolean; root?: boolean },
): DiskConfig {
  const values = parseKeyValues(flag, value, DISK_KEYS);
  const path = values.string("path");
  if (path === undefined) throw values.error("the image path is missing");
  if (path === "") throw values.error("the path is empty");
  for (const key of ["ro", "root"] as const) {
    if (values.has(key) && flag !== "-b" && flag !== "--block") {
      throw values.error(`${key} is implied by ${flag}; use --block to set it`);
    }
  }
  const disk: DiskConfig = {
    path,
    readOnly: implied.readOnly ?? values.flag("ro"),
    root: implied.root ?? values.flag("root"),
    sparse: values.has("sparse") ? values.flag("sparse") : DEFAULT_SPARSE,
    direct: values.flag("direct"),
    blockSize: values.integer("block-size", { min: MIN_BLOCK_SIZE, max: MAX_BLOCK_SIZE }) ??
      DEFAULT_BLOCK_SIZE,
  };
  if ((disk.blockSize & (disk.blockSize - 1)) !== 0) {
    throw values.error(`block-size ${disk.blockSize} is not a power of two`);
  }
  const numQueues = values.integer("num-queues", { min: 1, max: MAX_BLOCK_QUEUES });
  if (numQueues !== undefined) disk.numQueues = numQueues;
  const executor = values.choice("async-executor", ASYNC_EXECUTORS);
  if (executor !== undefined) disk.asyncExecutor = executor;
  const id = values.string("id");
  if (id !== undefined) {
    if (new TextEncoder().encode(id).length > VIRTIO_BLK_ID_BYTES) {
      throw values.error(`id is longer than ${VIRTIO_BLK_ID_BYTES} bytes`);
    }
    disk.id = id;
  }
  return disk;
}
