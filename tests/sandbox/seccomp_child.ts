// A child process for seccomp.test.ts: loads the seccomp policy file given as the first argument
// (logging instead of killing when the third argument is "log"), then does what the second says:
//   work    runs timers and allocates (GC) under the filter, then exits with WORK_EXIT_CODE;
//   socket  calls socket(AF_UNIX, SOCK_STREAM, 0) through FFI and prints {"result", "errno"};
//   threads makes the runtime start threads under the filter, then exits with WORK_EXIT_CODE
//           (printing nothing);
//   log     logs a warning as a device does (src/log.ts, to stderr), then exits with
//           WORK_EXIT_CODE.
// Everything the child needs (modules, libc) is loaded before the filter is.

import { errno } from "../../src/ffi/libc.ts";
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

if (import.meta.main) {
  const [policyPath, what, mode] = Deno.args;
  const libc = Deno.dlopen("libc.so.6", CHILD_SYMBOLS);
  errno(); // opens src/ffi/libc.ts's handle now: dlopen cannot open files under the filter
  loadSeccompPolicy(parsePolicyFile(policyPath), { logFailures: mode === "log" });
  if (what === "work") await work();
  else if (what === "socket") socket(libc);
  else if (what === "threads") await threads(libc);
  else if (what === "log") {
    log.warn("virtio-blk: a warning from under the filter");
    Deno.exit(WORK_EXIT_CODE);
  } else throw new Error(`unknown action ${what}`);
}
