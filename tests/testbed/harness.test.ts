/**
 * The harness's answer to a stuck L1, with a stand-in for L1's QEMU: a shell script that runs
 * the work directory's scenarios the way L1's /init frames them on the console, but with no
 * timeout of its own, so a scenario that sleeps is what a wedged L1 looks like from the host.
 * Every scenario it starts dies with it (parent-death signal), as L2 processes die with QEMU.
 */

import assert from "node:assert/strict";
import { type Assets } from "./assets.ts";
import { type ScenarioResult, Testbed } from "./harness.ts";

/**
 * Plays L1 from QEMU's arguments: finds the `work` share and runs its scenarios in order, with
 * one heartbeat before each (a real L1 beats every 10 s; this one goes silent inside a scenario).
 * Each boot's work directory stands for that L1's /tmp (`$L1_TMP`): a fresh L1 has none of it.
 * A scenario that leaves `$L1_TMP/.timed_out` is reported as killed by its timeout.
 */
const STAND_IN_L1 = `#!/bin/sh
for arg in "$@"; do
  case "$arg" in *mount_tag=work*) work=\${arg#*path=}; work=\${work%%,*} ;; esac
done
echo "@@L1 INIT"
echo "@@RUNNER READY kvm=no cpus=1"
for dir in "$work"/scenarios/*/; do
  name=$(cat "$dir/name")
  touch "$work/heartbeat"
  echo "@@SCENARIO $name BEGIN"
  L1_TMP="$work" setpriv --pdeathsig KILL sh "$dir/command" </dev/null 2>&1
  status=$?
  timeout=0
  [ -e "$work/.timed_out" ] && timeout=1 && rm "$work/.timed_out"
  echo "@@SCENARIO $name END status=$status timeout=$timeout"
done
echo "@@RUNNER DONE"
`;

/** Runs `fn` with a bed whose L1 is {@link STAND_IN_L1}, in a scratch directory. */
async function withStandIn(
  fn: (bed: Testbed, scratch: string) => Promise<void>,
): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "harness_test_" });
  try {
    // A project with nothing to compile, so each boot's module cache is quick to build.
    await Deno.mkdir(`${scratch}/project/src`, { recursive: true });
    await Deno.writeTextFile(`${scratch}/project/main.ts`, "");
    const qemu = `${scratch}/qemu`;
    await Deno.writeTextFile(qemu, STAND_IN_L1, { mode: 0o755 });
    const unused = `${scratch}/none`;
    const assets: Assets = {
      dir: scratch,
      l1Kernel: unused,
      l1Initrd: unused,
      l2Kernel: unused,
      l2Vmlinux: unused,
      l2Initrd: unused,
      l2ToolsInitrd: unused,
      qemu,
      versions: {},
    };
    const bed = new Testbed({
      assets,
      projectRoot: `${scratch}/project`,
      wedgedGraceSeconds: 1,
      heartbeatSilenceSeconds: 2,
    });
    await fn(bed, scratch);
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

/** The names of the scenarios one boot began, in order. */
function begun(lines: readonly { text: string }[]): string[] {
  return lines.flatMap((l) => /^@@SCENARIO (\S+) BEGIN$/.exec(l.text)?.[1] ?? []);
}

const ended = (r: ScenarioResult | undefined) => [r?.status, r?.output];

Deno.test("a stuck L1 is rebooted twice, each time running what was left, the stuck scenario last", async () => {
  await withStandIn(async (bed) => {
    const results = await bed.boot([
      { name: "before", command: "echo before", timeoutSeconds: 1 },
      { name: "stuck", command: "exec sleep 600", timeoutSeconds: 1 },
      { name: "after", command: "echo after", timeoutSeconds: 1 },
    ]);
    assert.equal(bed.boots.length, 3, "two reboots, then no more");
    assert.deepEqual(bed.boots.map((b) => b.wedgedIn), ["stuck", "stuck", "stuck"]);
    assert.deepEqual(bed.boots.map((b) => begun(b.lines)), [
      ["before", "stuck"],
      ["after", "stuck"],
      ["stuck"],
    ]);
    assert.deepEqual(ended(results.get("before")), [0, "before"]);
    assert.deepEqual(ended(results.get("after")), [0, "after"]);
    assert.equal(results.get("stuck")?.status, undefined, "the stuck scenario never ended");
  });
});

Deno.test("a scenario that L1 got stuck in once passes on the fresh L1", async () => {
  await withStandIn(async (bed, scratch) => {
    const marker = `${scratch}/stuck_once`;
    const results = await bed.boot([{
      name: "stuck-once",
      command: `[ -e ${marker} ] && { echo recovered; exit 0; }\ntouch ${marker}\nexec sleep 600`,
      timeoutSeconds: 1,
    }]);
    assert.deepEqual(bed.boots.map((b) => b.wedgedIn), ["stuck-once", undefined]);
    assert.deepEqual(ended(results.get("stuck-once")), [0, "recovered"]);
  });
});

Deno.test("an L1 whose heartbeat stops counts as stuck before the scenario's timeout", async () => {
  await withStandIn(async (bed) => {
    const t0 = performance.now();
    const results = await bed.boot([
      { name: "silent", command: "exec sleep 600", timeoutSeconds: 120 },
      { name: "next", command: "echo next", timeoutSeconds: 1 },
    ]);
    assert.equal(bed.boots[0].wedgedIn, "silent");
    assert.ok(performance.now() - t0 < 60_000, "found by the silence, not the 120 s timeout");
    assert.deepEqual(ended(results.get("next")), [0, "next"]);
  });
});

Deno.test("an L1 whose kernel reports a stuck CPU is rebooted at once, and the scenario rerun", async () => {
  await withStandIn(async (bed, scratch) => {
    const marker = `${scratch}/locked_once`;
    const t0 = performance.now();
    const results = await bed.boot([{
      name: "locked",
      // What l1_init.sh prints for a soft lockup in L1's kmsg, then a scenario that would sleep.
      command: `[ -e ${marker} ] && { echo recovered; exit 0; }\ntouch ${marker}
echo "@@L1 LOCKUP watchdog: BUG: soft lockup - CPU#2 stuck for 104s! [worker-1:462]"
exec sleep 600`,
      timeoutSeconds: 120,
    }]);
    assert.deepEqual(bed.boots.map((b) => b.wedgedIn), ["locked", undefined]);
    assert.ok(performance.now() - t0 < 60_000, "found by the report, not the 120 s timeout");
    assert.deepEqual(ended(results.get("locked")), [0, "recovered"]);
  });
});

Deno.test("a scenario out of time with its guest's vCPU running runs once more on a fresh L1; others do not", async () => {
  await withStandIn(async (bed, scratch) => {
    // What a timed-out scenario's output holds when timeout_report.sh saw a vCPU in its guest.
    const outOfTime = (report: string) => `${report}\ntouch "$L1_TMP/.timed_out"\nexit 137`;
    const once = `${scratch}/stuck_once`;
    const results = await bed.boot([
      {
        name: "stuck-once",
        command: `[ -e ${once} ] && { echo booted; exit 0; }\ntouch ${once}
${outOfTime('echo "@@L1 VCPU RUNNING 158/164"')}`,
        timeoutSeconds: 1,
      },
      {
        name: "always-stuck",
        command: outOfTime('echo "@@L1 VCPU RUNNING 200/201"'),
        timeoutSeconds: 1,
      },
      {
        name: "sleeping",
        command: outOfTime('echo "@@L1 TIMEOUT 9/9 sleep S do_wait"'),
        timeoutSeconds: 1,
      },
    ]);
    assert.deepEqual(bed.boots.map((b) => begun(b.lines)), [
      ["stuck-once", "always-stuck", "sleeping"],
      ["stuck-once", "always-stuck"],
    ]);
    assert.deepEqual(bed.rerun, ["stuck-once", "always-stuck"]);
    assert.deepEqual(ended(results.get("stuck-once")), [0, "booted"]);
    assert.equal(
      results.get("always-stuck")?.timedOut,
      true,
      "rerun once, then its failure stands",
    );
    assert.equal(results.get("sleeping")?.timedOut, true, "no vCPU running: not rerun");
  });
});

Deno.test("a fresh L1 first reruns what the scenarios left need: the files they made in L1", async () => {
  await withStandIn(async (bed, scratch) => {
    const once = `${scratch}/stuck_once`;
    const results = await bed.boot([
      { name: "make", command: 'touch "$L1_TMP/made"', timeoutSeconds: 1 },
      {
        name: "stuck-once",
        command: `[ -e ${once} ] && exit 0\ntouch ${once}\nexec sleep 600`,
        timeoutSeconds: 1,
      },
      {
        name: "use",
        command: '[ -e "$L1_TMP/made" ] && echo found',
        timeoutSeconds: 1,
        needs: ["make"],
      },
    ]);
    assert.deepEqual(bed.boots.map((b) => begun(b.lines)), [
      ["make", "stuck-once"],
      ["make", "use", "stuck-once"],
    ]);
    assert.deepEqual(ended(results.get("use")), [0, "found"]);
  });
});

Deno.test("a scenario out of time: timeout_report.sh shows where each of its threads waits", async () => {
  // setsid(1) makes the sleep a session of its own, as L1 starts each scenario.
  const scenario = new Deno.Command("setsid", { args: ["sleep", "600"], stdout: "null" }).spawn();
  try {
    // Once it is sleeping, not still being set up.
    for (let i = 0; i < 100; i++) {
      const stat = await Deno.readTextFile(`/proc/${scenario.pid}/stat`).catch(() => "");
      if (/^\d+ \(sleep\) S /.test(stat)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const report = await new Deno.Command("sh", {
      args: [new URL("./timeout_report.sh", import.meta.url).pathname, String(scenario.pid)],
    }).output();
    assert.equal(report.code, 0);
    const lines = new TextDecoder().decode(report.stdout).trim().split("\n");
    assert.equal(lines.length, 1, "the scenario's one thread, and no process of another session");
    // The wait channel is the kernel's name for where it sleeps (hrtimer_nanosleep, say).
    assert.match(
      lines[0],
      new RegExp(`^@@L1 TIMEOUT ${scenario.pid}/${scenario.pid} sleep S \\w+$`),
    );
  } finally {
    scenario.kill("SIGKILL");
    await scenario.status;
  }
});
