// Loads seccomp filters for real, each in a child Deno process (seccomp_child.ts) since a filter
// cannot be taken off again: the child's policy includes deno_runtime.policy (what an idle Deno
// needs) the way crosvm's device policies include common_device.policy, and adds the rule under
// test. Also holds src/ffi/seccomp.ts's numbers and struct layout against <seccomp.h>.

import assert from "node:assert/strict";
import { Errno } from "../../src/ffi/errno.ts";
import * as ffi from "../../src/ffi/seccomp.ts";
import { assertMatchesC, type CClaim, namedAfterMacros } from "../helpers/c_values.ts";
import { WORK_EXIT_CODE } from "./seccomp_child.ts";

const CHILD = new URL("./seccomp_child.ts", import.meta.url).pathname;
const RUNTIME_POLICY = new URL("./deno_runtime.policy", import.meta.url);
const COMMON_DEVICE_POLICY =
  new URL("../../seccomp/x86_64/common_device.policy", import.meta.url).pathname;
const POLICY_DIR = new URL("../../seccomp/x86_64", import.meta.url).pathname;
const BLOCK_DEVICE_POLICY = `${POLICY_DIR}/block_device.policy`;
/** How a process killed by signal n exits in a shell's terms: 128 + n. */
const SIGNAL_EXIT_BASE = 128;
/** `SIGSYS` (`<signal.h>`, x86_64): what a seccomp KILL_PROCESS action kills with. */
const SIGSYS = 31;

/** What a child did. */
interface ChildRun {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  /** The JSON line the child printed, if it printed one. */
  readonly printed?: { readonly result?: number; readonly errno?: number; readonly rows?: number };
  readonly stderr: string;
}

/**
 * Runs seccomp_child.ts with a policy of `rules` on top of deno_runtime.policy, doing `action`
 * ("work" or "socket"), logging instead of killing when `log` is set.
 */
async function runChild(rules: readonly string[], action: string, log = false): Promise<ChildRun> {
  const dir = await Deno.makeTempDir({ prefix: "seccomp_" });
  try {
    await Deno.copyFile(RUNTIME_POLICY, `${dir}/deno_runtime.policy`);
    const policy = `${dir}/case.policy`;
    const include = "@include /usr/share/policy/crosvm/deno_runtime.policy";
    await Deno.writeTextFile(policy, [include, ...rules].join("\n") + "\n");
    return await runChildUnder(policy, action, log);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs seccomp_child.ts under the policy file `policy`, doing `action`. */
async function runChildUnder(policy: string, action: string, log = false): Promise<ChildRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-code-cache", CHILD, policy, action, log ? "log" : ""],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  return {
    code: out.code,
    signal: out.signal,
    printed: stdout === "" ? undefined : JSON.parse(stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("<seccomp.h>: the actions, comparisons, attributes and struct scmp_arg_cmp", async () => {
  const claims: CClaim[] = [
    ...namedAfterMacros(ffi, /^SCMP_(ACT_(KILL_PROCESS|LOG|ALLOW)|CMP_|FLTATR_|ARCH_NATIVE)/),
    { name: "NR_SCMP_ERROR", value: ffi.NR_SCMP_ERROR, c: ["__NR_SCMP_ERROR"] },
    { name: "SCMP_ACT_ERRNO_BASE", value: ffi.SCMP_ACT_ERRNO_BASE, c: ["SCMP_ACT_ERRNO(0)"] },
    {
      name: "SCMP_ACT_ERRNO_MASK",
      value: ffi.SCMP_ACT_ERRNO_MASK,
      c: ["SCMP_ACT_ERRNO(0xffffffffU) ^ SCMP_ACT_ERRNO(0)"],
    },
    {
      name: "scmpActErrno(EPERM)",
      value: ffi.scmpActErrno(Errno.EPERM),
      c: ["SCMP_ACT_ERRNO(EPERM)"],
    },
    { name: "SCMP_ARG_CMP.size", value: ffi.SCMP_ARG_CMP.size, c: ["sizeof(struct scmp_arg_cmp)"] },
    ...Object.entries(ffi.SCMP_ARG_CMP.fields).map(([field, offset]) => ({
      name: `SCMP_ARG_CMP.${field}`,
      value: offset,
      c: [`offsetof(struct scmp_arg_cmp, ${field})`],
    })),
  ];
  assert.ok(
    (await Deno.stat("/usr/include/seccomp.h").catch(() => null)) !== null,
    "<seccomp.h> not found: install libseccomp-dev",
  );
  await assertMatchesC(["seccomp.h", "errno.h"], claims);
});

Deno.test("a program its policy allows runs to its exit code", async () => {
  const run = await runChild([], "work");
  assert.equal(run.code, WORK_EXIT_CODE, run.stderr);
  assert.deepEqual(run.printed, { rows: 1000 });
});

Deno.test("the shipped common device policy lets the runtime start threads under the filter", async () => {
  // A device process's runtime may start a thread at any time, and one started just before the
  // filter may set itself up after it: a thread's first syscalls must all be allowed.
  const run = await runChildUnder(COMMON_DEVICE_POLICY, "threads");
  assert.equal(run.code, WORK_EXIT_CODE, `signal ${run.signal}: ${run.stderr}`);
});

Deno.test("the shipped common device policy lets a device log (stderr asks whether it is a terminal)", async () => {
  const run = await runChildUnder(COMMON_DEVICE_POLICY, "log");
  assert.equal(run.code, WORK_EXIT_CODE, `signal ${run.signal}: ${run.stderr}`);
  assert.match(run.stderr, /a warning from under the filter/);
});

Deno.test("the shipped block device policy lets a disk set up, enter and close its io_uring", async () => {
  const run = await runChildUnder(BLOCK_DEVICE_POLICY, "uring");
  assert.equal(run.code, WORK_EXIT_CODE, `signal ${run.signal}: ${run.stderr}`);
});

Deno.test("a sandbox that refuses io_uring_setup (EPERM): the disk starts its thread pool under the shipped block policy and serves its requests on it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "seccomp_" });
  try {
    for (const entry of Deno.readDirSync(POLICY_DIR)) {
      await Deno.copyFile(`${POLICY_DIR}/${entry.name}`, `${dir}/${entry.name}`);
    }
    const policy = `${dir}/block_device.policy`;
    const text = await Deno.readTextFile(policy);
    await Deno.writeTextFile(
      policy,
      text.replace(/^io_uring_setup: 1$/m, "io_uring_setup: return EPERM"),
    );
    const run = await runChildUnder(policy, "uring-denied");
    assert.equal(run.code, WORK_EXIT_CODE, `signal ${run.signal}: ${run.stderr}`);
    assert.match(
      run.stderr,
      /no io_uring \(io_uring_setup failed: EPERM .*\); serving requests on 8 threads/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a syscall no rule allows kills the process with SIGSYS", async () => {
  const run = await runChild([], "socket");
  assert.equal(run.signal, "SIGSYS", `code ${run.code}: ${run.stderr}`);
  assert.equal(run.code, SIGNAL_EXIT_BASE + SIGSYS);
  assert.equal(run.printed, undefined);
});

Deno.test("a 'return EPERM' rule fails the call with EPERM and the process goes on", async () => {
  const run = await runChild(["socket: return EPERM"], "socket");
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.printed, { result: -1, errno: Errno.EPERM });
});

Deno.test("'EXPR; return ERRNO' fails only the calls EXPR matches", async () => {
  const matching = await runChild(["socket: arg0 == AF_UNIX; return EACCES"], "socket");
  assert.deepEqual(matching.printed, { result: -1, errno: Errno.EACCES }, matching.stderr);
  const other = await runChild(["socket: arg0 == AF_INET; return EACCES"], "socket");
  assert.equal(other.signal, "SIGSYS", other.stderr);
});

Deno.test("a rule with conditions allows the calls it matches", async () => {
  const run = await runChild(
    ["socket: arg0 == AF_UNIX && arg1 in SOCK_STREAM|SOCK_CLOEXEC"],
    "socket",
  );
  assert.equal(run.code, 0, run.stderr);
  assert.ok((run.printed?.result ?? -1) >= 0, JSON.stringify(run.printed));
});

Deno.test("with logFailures a forbidden call is only logged and the process runs on", async () => {
  const run = await runChild([], "socket", true);
  assert.equal(run.code, 0, run.stderr);
  assert.ok((run.printed?.result ?? -1) >= 0, JSON.stringify(run.printed));
  assert.equal(run.printed?.errno, 0);
});
