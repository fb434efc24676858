import assert from "node:assert/strict";
import { describeSeccompKill, seccompKillIn } from "../../src/sandbox/audit.ts";

/** A kernel log record of a seccomp kill, as /dev/kmsg gives it. */
const record = (pid: number, sig: number, exe = "/usr/bin/deno") =>
  `6,1234,5678,-;audit: type=1326 audit(1796163288.181:16): auid=4294967295 uid=0 gid=0 ` +
  `ses=4294967295 pid=${pid} comm="deno" exe="${exe}" sig=${sig} arch=c000003e syscall=318 ` +
  `compat=0 ip=0x7f00 code=0x80000000`;

Deno.test("a seccomp kill record names the syscall of one of our processes", () => {
  assert.equal(seccompKillIn(record(42, 31), [7, 42]), 318);
  assert.equal(seccompKillIn(record(43, 31), [7, 42]), undefined, "another process");
  assert.equal(seccompKillIn(record(42, 0), [42]), undefined, "a logged call (sig=0) is no kill");
  assert.equal(seccompKillIn("6,1,2,-;audit: type=1300 pid=42 sig=31 syscall=1", [42]), undefined);
  assert.equal(seccompKillIn(record(43, 31)), 318, "without pids, a kill of any process");
  assert.equal(seccompKillIn(record(43, 0)), undefined);
});

Deno.test("fields inside quotes cannot pose as the record's own", () => {
  const tricky = record(42, 31, "/tmp/pid=42 sig=31 syscall=5/deno");
  assert.equal(seccompKillIn(tricky, [42]), 318);
  assert.equal(seccompKillIn(record(9, 31, "/x pid=42"), [42]), undefined);
});

Deno.test("the death line names the syscall and the policy, or says how to find it", () => {
  assert.equal(
    describeSeccompKill(318, "/p/rng_device.policy"),
    "seccomp denied syscall 318 (getrandom), which /p/rng_device.policy does not allow",
  );
  assert.match(describeSeccompKill(undefined, "/p/x.policy"), /--seccomp-log-failures/);
});
