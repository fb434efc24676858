/**
 * Which syscall a seccomp filter killed a process for. The kernel records every
 * SECCOMP_RET_KILL_PROCESS as an audit message of type 1326 (AUDIT_SECCOMP,
 * `<linux/audit.h>`), which reaches the kernel log when no audit daemon runs:
 * `audit: type=1326 audit(…): … pid=PID comm="deno" … sig=31 arch=c000003e syscall=NR …`.
 * Reading `/dev/kmsg` needs privilege (CAP_SYSLOG, or `kernel.dmesg_restrict=0`); without it the
 * syscall stays unknown and the message says how to find it.
 *
 * @module
 */

import { SyscallError } from "../ffi/errno.ts";
import { close, lseek, O_NONBLOCK, O_RDONLY, open, read, SEEK_END } from "../ffi/libc.ts";
import { resolveSyscallNumber } from "../ffi/seccomp.ts";
import { SIGNAL_CONSTANTS } from "./constants.ts";

/** The kernel's log, one record per read. */
const KMSG = "/dev/kmsg";
/** A record's text is at most this long (printk's LOG_LINE_MAX and its prefix fit). */
const KMSG_RECORD_BYTES = 8192;
/** AUDIT_SECCOMP from `<linux/audit.h>`. */
const AUDIT_SECCOMP = 1326;
/** How often, and how far apart, the log is read for a record that may come late. */
const AUDIT_ATTEMPTS = 25;
const AUDIT_RETRY_MS = 20;

/**
 * The syscall number of the latest seccomp kill the kernel logged for one of `pids`, or undefined
 * when there is none or the log cannot be read.
 */
export async function findSeccompKill(pids: readonly number[]): Promise<number | undefined> {
  const log = SeccompKillLog.fromStart();
  try {
    return await log.find(pids);
  } finally {
    log.close();
  }
}

/**
 * A reader of the seccomp kills in the kernel log: of every record it holds, or only of those
 * logged after the reader was opened (for a process that died before its pid was known).
 */
export class SeccompKillLog {
  readonly #fd: number | undefined;
  readonly #buf = new Uint8Array(KMSG_RECORD_BYTES);

  private constructor(fd: number | undefined) {
    this.#fd = fd;
  }

  /** Reads every record the kernel log holds. */
  static fromStart(): SeccompKillLog {
    return new SeccompKillLog(openKernelLog());
  }

  /** Reads only the records logged from now on. */
  static fromNow(): SeccompKillLog {
    const fd = openKernelLog();
    if (fd !== undefined) lseek(fd, 0, SEEK_END);
    return new SeccompKillLog(fd);
  }

  /**
   * The syscall of the latest kill of one of `pids` (of any process when left out) among the
   * records not read yet. Without an audit daemon the kernel's audit thread prints the record a
   * moment after the process died, so the log is read again for a while.
   */
  async find(pids?: readonly number[]): Promise<number | undefined> {
    if (this.#fd === undefined) return undefined;
    for (let attempt = 0; attempt < AUDIT_ATTEMPTS; attempt++) {
      const found = this.#readNew(this.#fd, pids);
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, AUDIT_RETRY_MS));
    }
    return undefined;
  }

  /** Closes the log. */
  close(): void {
    if (this.#fd !== undefined) close(this.#fd);
  }

  #readNew(fd: number, pids: readonly number[] | undefined): number | undefined {
    let found: number | undefined;
    for (;;) {
      let n: number;
      try {
        n = read(fd, this.#buf);
      } catch (e) {
        if (e instanceof SyscallError && e.is("EPIPE")) continue; // records overwritten: go on
        if (e instanceof SyscallError && e.is("EAGAIN")) break; // read them all
        throw e;
      }
      if (n <= 0) break;
      const nr = seccompKillIn(new TextDecoder().decode(this.#buf.subarray(0, n)), pids);
      if (nr !== undefined) found = nr;
    }
    return found;
  }
}

/** The kernel log, non-blocking, or undefined when this process may not read it. */
function openKernelLog(): number | undefined {
  try {
    return open(KMSG, O_RDONLY | O_NONBLOCK);
  } catch (e) {
    if (e instanceof SyscallError) return undefined;
    throw e;
  }
}

/**
 * The killed syscall of one kernel log record, if it is a seccomp kill of one of `pids` (of any
 * process when left out). Fields are read as `key=value` words outside quotes (a quoted `comm`
 * or `exe` could hold anything).
 */
export function seccompKillIn(record: string, pids?: readonly number[]): number | undefined {
  const fields = new Map<string, string>();
  for (const word of record.replace(/"[^"]*"/g, '""').split(/\s+/)) {
    const at = word.indexOf("=");
    if (at > 0) fields.set(word.slice(0, at), word.slice(at + 1));
  }
  if (fields.get("type") !== String(AUDIT_SECCOMP)) return undefined;
  if (pids !== undefined && !pids.includes(Number(fields.get("pid")))) return undefined;
  if (Number(fields.get("sig")) !== SIGNAL_CONSTANTS.SIGSYS) return undefined;
  const nr = Number(fields.get("syscall"));
  return Number.isInteger(nr) ? nr : undefined;
}

/** The part of a death message that says which syscall a policy did not allow. */
export function describeSeccompKill(syscall: number | undefined, policyFile: string): string {
  if (syscall === undefined) {
    return `seccomp denied a syscall that ${policyFile} does not allow (the kernel log does not ` +
      `say which here: rerun with --seccomp-log-failures and read the kernel log, or the audit ` +
      `log with ausearch -m SECCOMP)`;
  }
  const name = resolveSyscallNumber(syscall);
  return `seccomp denied syscall ${syscall}${name ? ` (${name})` : ""}, which ${policyFile} ` +
    `does not allow`;
}
