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
import { close, O_NONBLOCK, O_RDONLY, open, read } from "../ffi/libc.ts";
import { resolveSyscallNumber } from "../ffi/seccomp.ts";

/** The kernel's log, one record per read. */
const KMSG = "/dev/kmsg";
/** A record's text is at most this long (printk's LOG_LINE_MAX and its prefix fit). */
const KMSG_RECORD_BYTES = 8192;
/** AUDIT_SECCOMP from `<linux/audit.h>`. */
const AUDIT_SECCOMP = 1326;
/** SIGSYS: the signal of a seccomp kill (`<asm-generic/signal.h>`). */
const SIGSYS = 31;

/**
 * The syscall number of the latest seccomp kill the kernel logged for one of `pids`, or
 * undefined when there is none or the log cannot be read.
 */
export function findSeccompKill(pids: readonly number[]): number | undefined {
  let fd: number;
  try {
    fd = open(KMSG, O_RDONLY | O_NONBLOCK);
  } catch (e) {
    if (e instanceof SyscallError) return undefined;
    throw e;
  }
  let found: number | undefined;
  const buf = new Uint8Array(KMSG_RECORD_BYTES);
  try {
    for (;;) {
      let n: number;
      try {
        n = read(fd, buf);
      } catch (e) {
        if (e instanceof SyscallError && e.is("EPIPE")) continue; // records overwritten: go on
        if (e instanceof SyscallError && e.is("EAGAIN")) break; // read them all
        throw e;
      }
      if (n <= 0) break;
      const nr = seccompKillIn(new TextDecoder().decode(buf.subarray(0, n)), pids);
      if (nr !== undefined) found = nr;
    }
  } finally {
    close(fd);
  }
  return found;
}

/** The killed syscall of one kernel log record, if it is a seccomp kill of one of `pids`. */
export function seccompKillIn(record: string, pids: readonly number[]): number | undefined {
  if (!record.includes(`type=${AUDIT_SECCOMP} `)) return undefined;
  const field = (name: string) => record.match(new RegExp(`\\b${name}=(\\d+)`))?.[1];
  const pid = Number(field("pid"));
  if (!pids.includes(pid) || Number(field("sig")) !== SIGSYS) return undefined;
  const nr = field("syscall");
  return nr === undefined ? undefined : Number(nr);
}

/** The part of a death message that says which syscall a policy did not allow. */
export function describeSeccompKill(syscall: number | undefined, policyFile: string): string {
  if (syscall === undefined) {
    return `seccomp denied a syscall that ${policyFile} does not allow (the kernel log does not ` +
      `say which here: rerun with --seccomp-log-failures and read the kernel log)`;
  }
  const name = resolveSyscallNumber(syscall);
  return `seccomp denied syscall ${syscall}${name ? ` (${name})` : ""}, which ${policyFile} ` +
    `does not allow`;
}
