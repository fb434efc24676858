/**
 * The harness's answer to a stuck L1, with a stand-in for L1's QEMU: a shell script that runs
 * the work directory's scenarios the way L1's /init frames them on the console, but with no
 * timeout of its own, so a scenario that sleeps is what a wedged L1 looks like from the host.
 * Every scenario it starts dies with it (parent-death signal), as L2 processes die with QEMU.
 */

import assert from "node:assert/strict";
import { type Assets, PROJECT_ROOT } from "./assets.ts";
import { type ScenarioResult, Testbed, type TestbedOptions } from "./harness.ts";

/** How a stand-in L1 starts: the `work` share's path from QEMU's arguments, then L1's markers. */
const L1_START = `#!/bin/sh
for arg in "$@"; do
  case "$arg" in *mount_tag=work*) work=\${arg#*path=}; work=\${work%%,*} ;; esac
done
echo "@@L1 INIT"
echo "@@RUNNER READY kvm=no cpus=1"
`;

/**
 * Plays L1 from QEMU's arguments: finds the `work` share and runs its scenarios in order, with
 * one heartbeat before each (a real L1 beats every 10 s; this one goes silent inside a scenario).
 * Each boot's work directory stands for that L1's /tmp (`$L1_TMP`): a fresh L1 has none of it.
 * A scenario that leaves `$L1_TMP/.timed_out` is reported as killed by its timeout.
 */
const STAND_IN_L1 = `${L1_START}for dir in "$work"/scenarios/*/; do
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

/**
 * Plays L1 with L1's own scenario runner (l1_runner.sh), its files in the work directory's
 * `tmp`; the scenarios run on the host, in /tmp.
 */
const RUNNER_L1 = `${L1_START}mkdir -p "$work/tmp"
WORK="$work" RUNNER_TMP="$work/tmp" PROJECT="${PROJECT_ROOT}" \
  setpriv --pdeathsig KILL sh "${PROJECT_ROOT}/tests/testbed/l1_runner.sh"
echo "@@RUNNER DONE"
`;

/**
 * Runs `fn` with a bed whose L1 is `l1` ({@link STAND_IN_L1} by default), in a scratch
 * directory, with `options` over the stand-in's.
 */
async function withStandIn(
  fn: (bed: Testbed, scratch: string) => Promise<void>,
  l1 = STAND_IN_L1,
  options: TestbedOptions = {},
): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "harness_test_" });
  try {
    // A project with nothing to compile, so each boot's module cache is quick to build.
    await Deno.mkdir(`${scratch}/project/src`, { recursive: true });
    await Deno.writeTextFile(`${scratch}/project/main.ts`, "");
    const qemu = `${scratch}/qemu`;
    await Deno.writeTextFile(qemu, l1, { mode: 0o755 });
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
      ...options,
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

/** Where in one boot's console each scenario's BEGIN and END marker came. */
function markerOrder(lines: readonly { text: string }[]): Map<string, number> {
  const order = new Map<string, number>();
  lines.forEach((l, i) => {
    const marker = /^@@SCENARIO (\S+) (BEGIN|END)\b/.exec(l.text);
    if (marker) order.set(`${marker[2]} ${marker[1]}`, i);
  });
  return order;
}

/** {@link withStandIn} with L1's own runner ({@link RUNNER_L1}) in two lanes, and `options`. */
const withRunner = (fn: (bed: Testbed) => Promise<void>, options: TestbedOptions = {}) =>
  withStandIn(fn, RUNNER_L1, { lanes: 2, ...options });

Deno.test("two lanes: scenarios run side by side, each line kept with its own; needs wait; alone ones run last, by themselves", async () => {
  await withRunner(
    async (bed) => {
      const results = await bed.boot([
        { name: "a", command: "for i in 1 2 3; do echo a$i; sleep 0.2; done", timeoutSeconds: 10 },
        { name: "b", command: "for i in 1 2 3; do echo b$i; sleep 0.2; done", timeoutSeconds: 10 },
        { name: "after-a", command: "echo after-a", timeoutSeconds: 10, needs: ["a"] },
        {
          name: "by-itself",
          command: "echo by-itself; printf unended",
          timeoutSeconds: 10,
          alone: true,
        },
      ]);
      assert.deepEqual(ended(results.get("a")), [0, "a1\na2\na3"]);
      assert.deepEqual(ended(results.get("b")), [0, "b1\nb2\nb3"]);
      assert.deepEqual(ended(results.get("after-a")), [0, "after-a"]);
      assert.deepEqual(ended(results.get("by-itself")), [0, "by-itself\nunended"]);
      const at = markerOrder(bed.lastBoot!.lines);
      const [beginA, beginB, endA, endB] = ["BEGIN a", "BEGIN b", "END a", "END b"].map((m) =>
        at.get(m)!
      );
      assert.ok(Math.max(beginA, beginB) < Math.min(endA, endB), "a and b ran at once");
      const lines = bed.lastBoot!.lines.map((l) => l.text);
      const line = (text: string) => lines.indexOf(`@@OUT ${text}`);
      assert.ok(
        line("a a1") < line("b b3") && line("b b1") < line("a a3"),
        "each line reaches the console as it is printed, not when its scenario ends",
      );
      assert.ok(at.get("BEGIN after-a")! > endA, "after-a waited for a");
      const lastEnd = Math.max(endA, endB, at.get("END after-a")!);
      assert.ok(at.get("BEGIN by-itself")! > lastEnd, "by-itself waited for every other");
    },
  );
});

Deno.test("two lanes: a scenario out of time is killed with where it waited; its neighbour goes on", async () => {
  await withRunner(
    async (bed) => {
      const results = await bed.boot([
        { name: "slow", command: "echo started; exec sleep 600", timeoutSeconds: 1 },
        { name: "quick", command: "sleep 2; echo quick", timeoutSeconds: 10 },
      ]);
      const slow = results.get("slow");
      assert.equal(slow?.status, 137);
      assert.equal(slow?.timedOut, true);
      assert.match(slow.output, /^started\n@@L1 TIMEOUT \d+\/\d+ sleep S /);
      assert.deepEqual(ended(results.get("quick")), [0, "quick"]);
      assert.equal(bed.lastBoot?.wedgedIn, undefined, "L1 itself answered throughout");
    },
    { wedgedGraceSeconds: 20 },
  );
});

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

/** What L1 prints when it is broken: l1_init.sh's words for its kernel's records, or its kernel. */
const L1_BROKEN_REPORTS = {
  "a stuck CPU": "@@L1 LOCKUP watchdog: BUG: soft lockup - CPU#2 stuck for 104s! [worker-1:462]",
  "a bug of its own": "[  268.325856] BUG: scheduling while atomic: worker-1/1612/0x00110001",
  "a panic on the console":
    "[   51.75] Kernel panic - not syncing: Attempted to kill the idle task!",
};

for (const [what, report] of Object.entries(L1_BROKEN_REPORTS)) {
  Deno.test(`an L1 whose kernel reports ${what} is rebooted at once, and the scenario rerun`, async () => {
    await withStandIn(async (bed, scratch) => {
      const marker = `${scratch}/broken_once`;
      const t0 = performance.now();
      const results = await bed.boot([{
        name: "broken",
        // The report, then a scenario that would sleep.
        command: `[ -e ${marker} ] && { echo recovered; exit 0; }\ntouch ${marker}
echo "${report}"
exec sleep 600`,
        timeoutSeconds: 120,
      }]);
      assert.deepEqual(bed.boots.map((b) => b.wedgedIn), ["broken", undefined]);
      assert.ok(performance.now() - t0 < 60_000, "found by the report, not the 120 s timeout");
      assert.deepEqual(ended(results.get("broken")), [0, "recovered"]);
    });
  });
}

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
