// A child process for jail.test.ts: makes pidfd_open(2) fail with ENOSYS, as on a kernel before
// 5.3 (a seccomp filter that allows everything else), then starts two children with spawnProcess:
// one that exits with status 3, one that it kills. Prints {"pidfd", "exited", "killed"}.

import { libseccomp, SCMP_ACT_ALLOW, scmpActErrno } from "../../src/ffi/seccomp.ts";
import { spawnProcess, SYS_pidfd_open } from "../../src/ffi/spawn.ts";
import { Errno } from "../../src/ffi/errno.ts";

if (import.meta.main) {
  const seccomp = libseccomp();
  const ctx = seccomp.seccomp_init(SCMP_ACT_ALLOW);
  const none = new Uint8Array(8);
  if (
    seccomp.seccomp_rule_add_array(ctx, scmpActErrno(Errno.ENOSYS), SYS_pidfd_open, 0, none) < 0
  ) {
    throw new Error("seccomp_rule_add_array failed");
  }
  if (seccomp.seccomp_load(ctx) < 0) throw new Error("seccomp_load failed");
  const exiting = spawnProcess("/bin/sh", ["sh", "-c", "exit 3"], { fds: [], env: {} });
  const sleeping = spawnProcess("/bin/sleep", ["sleep", "60"], { fds: [], env: {} });
  sleeping.kill();
  console.log(JSON.stringify({
    pidfd: [exiting.pidfd, sleeping.pidfd],
    exited: await exiting.exited,
    killed: await sleeping.exited,
  }));
}
