// The program jail.test.ts runs inside the jail. It opens nothing itself: descriptor 3 is the
// write end of a pipe, descriptor 4 one end of a SOCK_SEQPACKET socket pair. It sends what it
// sees as one JSON message (ChildReport) on 4, writes one byte to 3 to say it is ready, then
// waits on 4: a byte b ends it with exit code b, end of file (we closed our end) with code 0.

import { read, writeAll } from "../../src/ffi/libc.ts";

/** The write end of the parent's "ready" pipe. */
const READY_FD = 3;
/** The child's end of the control socket. */
const CONTROL_FD = 4;

/** What the jailed child reports about itself. */
export interface ChildReport {
  /** Its pid, in its own pid namespace. */
  readonly pid: number;
  /** Its uid, in its own user namespace. */
  readonly uid: number;
  /** The names in its root directory. */
  readonly root: string[];
  /** Whether /etc/passwd exists. */
  readonly etcPasswd: boolean;
  /** The names in /proc/self/fd (the listing's own descriptor among them). */
  readonly fds: string[];
  /** The network interfaces in /proc/net/dev. */
  readonly interfaces: string[];
}

/** The names in a directory, sorted. */
function names(path: string): string[] {
  return [...Deno.readDirSync(path)].map((entry) => entry.name).sort();
}

/** Whether `path` exists. */
function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The interface names of /proc/net/dev (two header lines, then `name: counters`). */
function interfaces(): string[] {
  return Deno.readTextFileSync("/proc/net/dev").split("\n").slice(2)
    .map((line) => line.split(":")[0].trim())
    .filter((name) => name !== "");
}

const report: ChildReport = {
  pid: Deno.pid,
  uid: Deno.uid() ?? -1,
  root: names("/"),
  etcPasswd: exists("/etc/passwd"),
  fds: names("/proc/self/fd").sort((a, b) => Number(a) - Number(b)),
  interfaces: interfaces(),
};
writeAll(CONTROL_FD, new TextEncoder().encode(JSON.stringify(report)));
writeAll(READY_FD, new Uint8Array([1]));
const byte = new Uint8Array(1);
Deno.exit(read(CONTROL_FD, byte) === 1 ? byte[0] : 0);
