/**
 * Boot benchmark (runs in the nested test bed): the same L2 kernel (Debian's cloud ELF
 * vmlinux) and initrd booted to the agent's first marker by QEMU (`-M microvm`, KVM), by our
 * VMM with its devices jailed (the default: virtio-rng in a bubblewrap jail with its seccomp
 * filter) and by our VMM with `--disable-sandbox` (the device as a Worker of the VMM), inside
 * the same L1, alternating runs. Prints the median time to the marker and to exit for each,
 * their ratios (jailed/unjailed among them), and where our time goes (Deno start-up and VM
 * set-up until the vCPUs enter KVM_RUN, then the guest).
 *
 * Then the memory runs, one jailed and one unjailed per round: at the end of the agent's report
 * the VMM and every process below it (the jail's two bwrap processes and the device's Deno) are
 * measured by their proportional set size and its anonymous, file and shared-memory parts
 * (`Pss:`, `Pss_Anon:`, … in /proc/PID/smaps_rollup; guest RAM shared
 * with a device process counts once, split between them), and each device process's start-up
 * is timed from outside (the VMM has no log line for a ready device): from the fork of its
 * outer bwrap to the moment its Deno is first seen with its seccomp filter loaded, which it
 * does just before it tells the VMM it is ready ({@link ./boot_l1.sh}).
 *
 * Run: `deno run --allow-all bench/boot.ts [ROUNDS]` (root; builds the bed on first use).
 *
 * @module
 */

import { PROJECT_ROOT } from "../tests/testbed/assets.ts";
import {
  onConsoleLine,
  type ScenarioResult,
  Testbed,
  typeLines,
} from "../tests/testbed/harness.ts";
import { median } from "./stats.ts";

const ROUNDS = Number(Deno.args[0] ?? 3);
if (!(ROUNDS >= 1)) {
  console.error("usage: boot.ts [ROUNDS]");
  Deno.exit(2);
}
const GUEST_PARAMS = "quiet reboot=t panic=-1";
/** Our VMM booting the agent to do `action`, with extra options `flags`. */
const ours = (flags: string, action: string) =>
  `"$DENO" run --allow-all "$PROJECT/main.ts" run --log-level debug --mem 256 ${flags} \\
  -p "${GUEST_PARAMS} agent.action=${action}" -i "$L2_INITRD" "$L2_VMLINUX"`;
const QEMU = `qemu-system-x86_64 -accel kvm -M microvm,rtc=on -cpu host -m 256 -smp 1 \\
  -nodefaults -no-user-config -display none -serial stdio -no-reboot \\
  -kernel "$L2_VMLINUX" -initrd "$L2_INITRD" \\
  -append "console=ttyS0 ${GUEST_PARAMS} agent.action=reboot"`;
const MARKER = "@@AGENT BEGIN";
const VCPUS_RUNNING = /vCPUs in KVM_RUN/;
const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
const L1_SCRIPT = `sh "$PROJECT/${HERE.slice(PROJECT_ROOT.length + 1)}boot_l1.sh"`;

const VMMS = ["qemu", "jailed", "unjailed"] as const;
type Vmm = typeof VMMS[number];
const COMMANDS: Record<Vmm, string> = {
  qemu: QEMU,
  jailed: ours("", "reboot"),
  unjailed: ours("--disable-sandbox", "reboot"),
};
const OURS = ["jailed", "unjailed"] as const;
type Ours = typeof OURS[number];
/**
 * A memory run: our VMM boots the agent to wait for a console line; a watcher times the
 * device processes' start-up meanwhile; at the report's end the tree is measured, then the
 * line is typed and the guest powers off.
 */
const memoryRun = (flags: string) =>
  `${L1_SCRIPT} watch $$ &
watcher=$!
${
    onConsoleLine(
      ours(flags, "echo"),
      "@@AGENT END",
      `${L1_SCRIPT} pss $vmm
    ${typeLines(["measured"])}`,
    )
  }
status=$?
kill $watcher 2>/dev/null
exit $status`;
const MEMORY_COMMANDS: Record<Ours, string> = {
  jailed: memoryRun(""),
  unjailed: memoryRun("--disable-sandbox"),
};

/** Seconds from the scenario's start to the first line matching `pattern`. */
function secondsTo(result: ScenarioResult, pattern: string | RegExp): number {
  const line = result.lines.find((l) =>
    typeof pattern === "string" ? l.text.includes(pattern) : pattern.test(l.text)
  );
  if (!line) throw new Error(`${result.name}: no ${pattern} in:\n${result.output}`);
  return (line.ms - result.startMs) / 1000;
}

/** `items` rotated left by `n` places: each round starts with another VMM. */
const rotated = <T>(items: readonly T[], n: number) =>
  items.map((_, i) => items[(i + n) % items.length]);

const scenarios = Array.from({ length: ROUNDS }, (_, i) => [
  ...rotated(VMMS, i).map((vmm) => ({
    name: `${vmm}-${i}`,
    command: COMMANDS[vmm],
    timeoutSeconds: 180,
  })),
  ...rotated(OURS, i).map((vmm) => ({
    name: `memory-${vmm}-${i}`,
    command: MEMORY_COMMANDS[vmm],
    timeoutSeconds: 180,
  })),
]).flat();
const results = await new Testbed().boot(scenarios);
/** The results of the scenarios named `prefix-<round>`, every one of which must have passed. */
const runs = (prefix: string) =>
  Array.from({ length: ROUNDS }, (_, i) => {
    const r = results.get(`${prefix}-${i}`);
    if (!r || r.status !== 0) throw new Error(`${prefix}-${i} failed:\n${r?.output}`);
    return r;
  });

const toMarker = (r: ScenarioResult) => secondsTo(r, MARKER);
const toExit = (r: ScenarioResult) => r.durationMs / 1000;
const setup = (r: ScenarioResult) => secondsTo(r, VCPUS_RUNNING);
const guestBoot = (r: ScenarioResult) => toMarker(r) - setup(r);
const timed = Object.fromEntries(VMMS.map((vmm) => [vmm, runs(vmm)])) as Record<
  Vmm,
  ScenarioResult[]
>;
const stat = (vmm: Vmm, f: (r: ScenarioResult) => number) => median(timed[vmm].map(f));
/**
 * The median of each round's ratio a/b: a round's runs are close in time, and the host's speed
 * drifts more between rounds than between neighbours.
 */
const roundRatio = (a: Vmm, b: Vmm, f: (r: ScenarioResult) => number) =>
  median(timed[a].map((r, i) => f(r) / f(timed[b][i])));

const cell = (text: string, width = 10) => text.padStart(width);
const s = (n: number) => cell(`${n.toFixed(2)} s`);
const ratio = (a: Vmm, b: Vmm, f: (r: ScenarioResult) => number) =>
  cell(roundRatio(a, b, f).toFixed(2));
console.log(
  `L2 boot to "${MARKER}", median of ${ROUNDS} alternating runs in one L1 (ratios: median of ` +
    `each round's):`,
);
console.log(
  `${"".padEnd(26)}${cell("QEMU")}${cell("jailed")}${cell("unjailed")}` +
    `${cell("jailed/unjailed", 17)}${cell("jailed/QEMU", 13)}${cell("unjailed/QEMU", 15)}`,
);
const phases: [string, (r: ScenarioResult) => number, boolean][] = [
  ["marker", toMarker, true],
  ["exit", toExit, true],
  ["exec to vCPUs in KVM_RUN", setup, false],
  ["guest boot", guestBoot, false],
];
for (const [label, f, withQemu] of phases) {
  console.log(
    `  ${label.padEnd(24)}${withQemu ? s(stat("qemu", f)) : cell("")}${s(stat("jailed", f))}` +
      `${s(stat("unjailed", f))}${ratio("jailed", "unjailed", f).padStart(17)}` +
      (withQemu
        ? `${ratio("jailed", "qemu", f).padStart(13)}${ratio("unjailed", "qemu", f).padStart(15)}`
        : ""),
  );
}

/** A proportional set size and its parts (`smaps_rollup`), in KiB. */
interface Pss {
  total: number;
  anon: number;
  file: number;
  /** Shared memory: guest RAM and the register blocks when they are memfds (jailed). */
  shmem: number;
}
/** One process of a memory run. */
interface Process {
  pid: number;
  parent: number | undefined;
  comm: string;
  pss: Pss;
}
/** One device process's start-up, in L1 boot-clock seconds. */
interface DeviceStart {
  vmm: number;
  spawn: number;
  exec: number;
  ready: number;
}

function parseMemoryRun(r: ScenarioResult): { processes: Process[]; devices: DeviceStart[] } {
  const processes: Process[] = [];
  const devices: DeviceStart[] = [];
  for (const { text } of r.lines) {
    const p = /^@@PSS (\d+) (\S+) (\S*) (\d+) (\d+) (\d+) (\d+)$/.exec(text);
    if (p) {
      const [total, anon, file, shmem] = p.slice(4).map(Number);
      processes.push({
        pid: Number(p[1]),
        parent: p[2] === "-" ? undefined : Number(p[2]),
        comm: p[3],
        pss: { total, anon, file, shmem },
      });
    }
    const d = /^@@DEV \d+ vmm=([\d.]+) spawn=([\d.]+) exec=([\d.]+) ready=([\d.]+)$/.exec(text);
    if (d) {
      const [vmm, spawn, exec, ready] = d.slice(1).map(Number);
      devices.push({ vmm, spawn, exec, ready });
    }
  }
  if (processes.length === 0) throw new Error(`${r.name}: no @@PSS lines in:\n${r.output}`);
  return { processes, devices };
}

const MiB = 1024;
const mib = (kib: number) => `${(kib / MiB).toFixed(1)} MiB`;
const memory = Object.fromEntries(
  OURS.map((vmm) => [vmm, runs(`memory-${vmm}`).map(parseMemoryRun)]),
) as Record<Ours, ReturnType<typeof parseMemoryRun>[]>;
/** A {@link Pss} whose every part is `f(part)`. */
const pssOf = (f: (part: keyof Pss) => number): Pss => ({
  total: f("total"),
  anon: f("anon"),
  file: f("file"),
  shmem: f("shmem"),
});
/** The PSS of `ps` together. */
const sum = (ps: Process[]) => pssOf((part) => ps.reduce((n, p) => n + p.pss[part], 0));
/** The median of each part over `sets`. */
const medianPss = (sets: Process[][]) => pssOf((part) => median(sets.map((ps) => sum(ps)[part])));
const described = (pss: Pss) =>
  `${mib(pss.total)} (anon ${mib(pss.anon)}, file ${mib(pss.file)}, shmem ${mib(pss.shmem)})`;
const vmmOnly = (ps: Process[]) => ps.filter((p) => p.parent === undefined);
/** The processes below the VMM, by the VMM's child each descends from: one jail each. */
function jails(ps: Process[]): Process[][] {
  const vmm = vmmOnly(ps)[0].pid;
  const rootOf = (p: Process): number => {
    const parent = ps.find((q) => q.pid === p.parent);
    return parent === undefined || parent.pid === vmm ? p.pid : rootOf(parent);
  };
  const byRoot = new Map<number, Process[]>();
  for (const p of ps.filter((q) => q.parent !== undefined)) {
    byRoot.set(rootOf(p), [...byRoot.get(rootOf(p)) ?? [], p]);
  }
  return [...byRoot.values()];
}

const unjailed = medianPss(memory.unjailed.map((m) => m.processes));
const jailedTotal = medianPss(memory.jailed.map((m) => m.processes));
const jailedVmm = medianPss(memory.jailed.map((m) => vmmOnly(m.processes)));
const jailCount = median(memory.jailed.map((m) => jails(m.processes).length));
const perJail = memory.jailed.flatMap((m) => jails(m.processes));
const perComm = (comm: string) =>
  mib(medianPss(perJail.map((j) => j.filter((p) => p.comm === comm))).total);
const starts = memory.jailed.flatMap((m) => m.devices);
console.log(
  `\nMemory at the end of the agent's report (PSS, VMM and every process below it), median of ` +
    `${ROUNDS}:`,
);
console.log(`  unjailed  VMM ${described(unjailed)}`);
console.log(`  jailed    VMM ${described(jailedVmm)}`);
console.log(
  `            + ${jailCount} device process${jailCount === 1 ? "" : "es"} = ` +
    `${described(jailedTotal)}, jailed/unjailed ${(jailedTotal.total / unjailed.total).toFixed(2)}`,
);
console.log(
  `  per device process: ${described(medianPss(perJail))}: deno ${perComm("deno")}, bwrap ` +
    `${perComm("bwrap")}; in all ${mib(jailedTotal.total - unjailed.total)} more than unjailed`,
);
if (starts.length === 0) {
  console.log("  device start-up: no device process was seen ready");
} else {
  const t = (f: (d: DeviceStart) => number) => `${median(starts.map(f)).toFixed(2)} s`;
  console.log(
    `  device start-up (${starts.length} seen): ${t((d) => d.ready - d.spawn)} from the jail's ` +
      `spawn to its seccomp filter loaded (bwrap to Deno's exec ${t((d) => d.exec - d.spawn)}, ` +
      `Deno start-up, modules and device set-up ${t((d) => d.ready - d.exec)}); spawned ` +
      `${t((d) => d.spawn - d.vmm)} after the VMM started`,
  );
}
