// A child process for seccomp.test.ts: loads the seccomp policy file given as the first argument
// (logging instead of killing when the third argument is "log"), then does what the second says:
//   work    runs timers and allocates (GC) under the filter, then exits with WORK_EXIT_CODE;
//   socket  calls socket(AF_UNIX, SOCK_STREAM, 0) through FFI and prints {"result", "errno"};
//   threads makes the runtime start threads under the filter, then exits with WORK_EXIT_CODE
//           (printing nothing);
//   log     logs a warning as a device does (src/log.ts, to stderr), then exits with
//           WORK_EXIT_CODE;
//   uring   sets up an io_uring on a disk image opened before the filter (as the block device
//           does when its queues start), writes, reads back and fdatasyncs through it, waiting
//           on its eventfd, closes it, then exits with WORK_EXIT_CODE (1 if the bytes differ);
//   uring-denied  (under a policy whose io_uring_setup returns EPERM) a virtio-blk disk built
//           before the filter starts its thread pool under the filter and serves a read on it:
//           WORK_EXIT_CODE if it did.
// Everything the child needs (modules, libc) is loaded before the filter is.

import { BlockBackend } from "../../src/devices/virtio/block/device.ts";
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN } from "../../src/devices/virtio/block/config.ts";
import { openDiskImage } from "../../src/disk/image.ts";
import { UringDiskIo } from "../../src/disk/uring_io.ts";
import { drainEventfd } from "../../src/ffi/eventfd.ts";
import {
  addressOf,
  bindAllLibcSymbols,
  EFD_NONBLOCK,
  errno,
  eventfd,
  O_RDWR,
  open,
} from "../../src/ffi/libc.ts";
import { PollSet } from "../../src/ffi/poll.ts";
import { BlockDisk, blockSpec, IMAGE_SECTORS, pattern, SECTOR } from "../helpers/block_disk.ts";
import * as log from "../../src/log.ts";
import { SOCKET_CONSTANTS } from "../../src/sandbox/constants.ts";
import { parsePolicyFile } from "../../src/sandbox/policy.ts";
import { loadSeccompPolicy } from "../../src/sandbox/seccomp.ts";

/** The exit code of a `work` run that finished. */
export const WORK_EXIT_CODE = 7;

async function work(): Promise<never> {
  let kept: number[][] = [];
  for (let round = 0; round < 5; round++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    kept = Array.from({ length: 1000 }, (_, i) => Array.from({ length: 100 }, () => i * round));
  }
  console.log(JSON.stringify({ rows: kept.length }));
  Deno.exit(WORK_EXIT_CODE);
}

/** Bytes the `uring` action writes and reads back. */
const URING_BYTES = 4096;

/** The `uring` action on `fd` (a writable image), its completions signalling `eventFd`. */
function uring(fd: number, eventFd: number): never {
  const io = new UringDiskIo<string>(fd, eventFd, 4);
  const ram = new Uint8Array(new ArrayBuffer(2 * URING_BYTES));
  ram.fill(0x5a, 0, URING_BYTES);
  const base = Number(addressOf(ram));
  const results: number[] = [];
  const poll = new PollSet([eventFd]);
  const complete = () => {
    while (io.inFlight > 0) {
      poll.wait(-1);
      drainEventfd(eventFd);
      io.reap((_, result) => results.push(result));
    }
  };
  io.write(base, [{ offset: 0, length: URING_BYTES }], 0, "write");
  io.submit();
  complete();
  io.datasync("flush");
  io.read(base, [{ offset: URING_BYTES, length: URING_BYTES }], 0, "read");
  io.submit();
  complete();
  io.close();
  const same = ram.subarray(URING_BYTES).every((b) => b === 0x5a);
  const expected = [0, URING_BYTES, URING_BYTES];
  const right = results.sort((a, b) => a - b).every((r, i) => r === expected[i]);
  Deno.exit(same && right ? WORK_EXIT_CODE : 1);
}

/**
 * The `uring-denied` action on `disk` (built before the filter): its first read finds no
 * io_uring, starts the thread pool and is served on it.
 */
function uringDenied(disk: BlockDisk): never {
  log.setLogLevel("info"); // the VMM's default: the device says why it serves synchronously
  const { placed, status } = disk.one(VIRTIO_BLK_T_IN, 1, { in: [SECTOR] });
  const same = disk.driver.mem.read(placed.data[0], SECTOR)
    .every((b, i) => b === pattern(2 * SECTOR, 1)[SECTOR + i]);
  const right = status === VIRTIO_BLK_S_OK && same && disk.backend.asynchronous === true;
  Deno.exit(right ? WORK_EXIT_CODE : 1);
}

/** The libc calls the actions make: `socket(2)`, and `usleep(3)` on the runtime's thread pool. */
const CHILD_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  usleep: { parameters: ["u32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;
type ChildLibc = Deno.DynamicLibrary<typeof CHILD_SYMBOLS>;

/** How many calls the `threads` action has in flight at once, and how long each sleeps. */
const THREADS = 8;
const THREAD_SLEEP_US = 20_000;

function socket(libc: ChildLibc): never {
  const result = libc.symbols.socket(SOCKET_CONSTANTS.AF_UNIX, SOCKET_CONSTANTS.SOCK_STREAM, 0);
  console.log(JSON.stringify({ result, errno: result < 0 ? errno() : 0 }));
  Deno.exit(0);
}

/**
 * A nonblocking FFI call runs on a thread of the runtime's blocking pool: more at once than the
 * pool has threads makes it start new ones, which set themselves up (name, signal stack, arena)
 * under the filter, as the runtime's threads may at any time in a device process.
 */
async function threads(libc: ChildLibc): Promise<never> {
  const calls = Array.from({ length: THREADS }, () => libc.symbols.usleep(THREAD_SLEEP_US));
  const results = await Promise.all(calls);
  // Nothing printed: the common policy does not let the console ask whether stdout is a tty.
  Deno.exit(results.every((r) => r === 0) ? WORK_EXIT_CODE : 1);
}

/** A disk over a fresh image of {@link pattern} seed 1, for `uring-denied`. */
function deniedDisk(eventFd: number): BlockDisk {
  const path = Deno.makeTempFileSync();
  Deno.writeFileSync(path, pattern(IMAGE_SECTORS * SECTOR, 1));
  const image = openDiskImage({ path, readOnly: false, direct: false });
  return new BlockDisk(path, new BlockBackend(blockSpec(image, eventFd)));
}

if (import.meta.main) {
  const [policyPath, what, mode] = Deno.args;
  const libc = Deno.dlopen("libc.so.6", CHILD_SYMBOLS);
  errno(); // opens src/ffi/libc.ts's handle now: dlopen cannot open files under the filter
  bindAllLibcSymbols();
  // The image and eventfd are the VMM's, opened before the filter as a device is handed them.
  const image = what === "uring" ? open(Deno.makeTempFileSync(), O_RDWR) : -1;
  const eventFd = what.startsWith("uring") ? eventfd(0, EFD_NONBLOCK) : -1;
  const disk = what === "uring-denied" ? deniedDisk(eventFd) : undefined;
  loadSeccompPolicy(parsePolicyFile(policyPath), { logFailures: mode === "log" });
  if (what === "work") await work();
  else if (what === "socket") socket(libc);
  else if (what === "threads") await threads(libc);
  else if (what === "uring") uring(image, eventFd);
  else if (disk !== undefined) uringDenied(disk);
  else if (what === "log") {
    log.warn("virtio-blk: a warning from under the filter");
    Deno.exit(WORK_EXIT_CODE);
  } else throw new Error(`unknown action ${what}`);
}
