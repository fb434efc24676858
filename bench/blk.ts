/**
 * Block I/O benchmark (runs in the nested test bed): the same L2 kernel (Debian's cloud ELF
 * vmlinux) and initrd, in the same L1, on the same raw disk, served by QEMU's `virtio-blk-pci`
 * and by our virtio-blk twice: jailed (the default: the device in its own bubblewrap jail under
 * its seccomp filter) and unjailed (`--disable-sandbox`: the device in a Worker of the VMM),
 * alternating runs. In the guest, `bench/guest/blkbench.c` (static,
 * appended to the test agent's initramfs with `bench/guest/blk_agent.sh`) does O_DIRECT I/O on
 * /dev/vda at queue depth 1: a sequential write and a sequential read in 1 MiB blocks, then
 * random 4 KiB reads; on the brd disk also at depth, through the guest's native AIO (as fio's
 * libaio engine): random 4 KiB reads and writes at depth 1, 8 and 32, sequential 1 MiB reads and
 * writes at depth 4. Each phase is timed on the host, from the serial lines around it; the
 * guest's own clock is printed as a cross-check.
 *
 * Prints, per metric, the median of each VMM and the ratios jailed/unjailed and jailed/QEMU,
 * then where the time goes per request: the guest's request count (its block layer's
 * counters), L1's KVM exits and interrupt injections (debugfs, L1 runs nothing else), and the
 * CPU time of each thread of the VMM and of the processes below it (a jailed device's, named
 * `jail …`).
 *
 * Disk modes (`--mode`, default `both`):
 * - `direct`: a brd RAM disk in L1 (`/dev/ram0`; L1's /tmp is tmpfs, which has no
 *   O_DIRECT before Linux 6.6), opened O_DIRECT by all: ours `-b /dev/ram0,direct`, QEMU
 *   `cache=none,aio=native`.
 * - `cached`: a raw file on L1's tmpfs through the host page cache on all: ours
 *   `-b /tmp/blk.img`, QEMU `cache=writeback,aio=threads`.
 * - `both`: each of them, in the same L1 boot.
 *
 * Run: `deno run --allow-all bench/blk.ts [ROUNDS] [--mode M] [--mib N] [--ops N]` (root;
 * builds the bed on first use; needs gcc and glibc's static libraries for the guest program).
 * Each run's results are saved in `bench/.build/blk/last-run.json`; `--replay FILE` prints
 * them again without booting anything.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Assets, CACHE_DIR, ensureAssets, PROJECT_ROOT } from "../tests/testbed/assets.ts";
import { type ScenarioResult, Testbed } from "../tests/testbed/harness.ts";
import {
  appendToInitrd,
  median,
  parseSnapshots,
  type PhaseCounters,
  phaseCounters,
  threadCpu,
} from "./bed_lib.ts";

const { values: opts, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    mode: { type: "string", default: "both" },
    mib: { type: "string", default: "1024" },
    ops: { type: "string", default: "3000" },
    "disk-mib": { type: "string", default: "256" },
    replay: { type: "string" },
  },
});
const ROUNDS = Number(positionals[0] ?? 3);
const SEQ_MIB = Number(opts.mib);
const RAND_OPS = Number(opts.ops);
const DISK_MIB = Number(opts["disk-mib"]);
type Mode = "direct" | "cached";
const MODES: Mode[] = opts.mode === "both" ? ["direct", "cached"] : [opts.mode as Mode];
if (!MODES.every((m) => m === "direct" || m === "cached") || !(ROUNDS >= 1)) {
  console.error("usage: blk.ts [ROUNDS] [--mode direct|cached|both] [--mib N] [--ops N]");
  Deno.exit(2);
}
const VMMS = ["qemu", "jailed", "unjailed"] as const;
type Vmm = typeof VMMS[number];
/** At queue depth 1 (pread/pwrite), in every mode. */
const QD1_PHASES = ["write", "read", "rand"];
/**
 * At depth, through the guest's native AIO (the name ends with the depth), on the brd disk
 * (`direct` mode) only: random 4 KiB reads and writes at 1, 8 and 32, sequential 1 MiB at 4.
 */
const DEPTH_PHASES = [
  ...[1, 8, 32].flatMap((d) => [`randread${d}`, `randwrite${d}`]),
  "seqread4",
  "seqwrite4",
];
type Phase = string;
const phasesOf = (mode: Mode): Phase[] =>
  mode === "direct" ? [...QD1_PHASES, ...DEPTH_PHASES] : QD1_PHASES;
/** Random 4 KiB phases are measured in IOPS, the others in MiB/s. */
const isRandom = (phase: Phase) => phase.startsWith("rand");
const isWrite = (phase: Phase) => phase.includes("write");

const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
const BUILD = `${HERE}.build/blk`;

/** Runs a command, throwing with its stderr when it fails. */
async function run(cmd: string, args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

/** The guest program, built static for L2. */
async function buildGuestTool(): Promise<string> {
  const out = `${BUILD}/blkbench`;
  await run("gcc", ["-static", "-O2", "-Wall", "-o", out, `${HERE}guest/blkbench.c`]);
  return out;
}

/** brd.ko of L1's kernel, from the Debian package the test bed downloaded. */
async function extractBrd(assets: Assets): Promise<string> {
  const entry = Object.entries(assets.versions).find(([name]) =>
    /^linux-image-.*-amd64$/.test(name) && !name.includes("cloud")
  );
  if (!entry) throw new Error("no L1 kernel package in the test bed's manifest");
  const [pkg, version] = entry;
  const deb = `${CACHE_DIR}/debs/${pkg}_${version.replace(":", "%3a")}_amd64.deb`;
  const out = `${BUILD}/brd.ko`;
  const release = pkg.slice("linux-image-".length);
  const member = `./lib/modules/${release}/kernel/drivers/block/brd.ko`;
  await run("sh", [
    "-c",
    `dpkg-deb --fsys-tarfile "$1" | tar -xO "$2" >"$3"`,
    "sh",
    deb,
    member,
    out,
  ]);
  return out;
}

/** The test agent's initramfs with the benchmark (`/agent/blkbench{,.sh}`) appended. */
async function buildInitrd(assets: Assets, tool: string): Promise<string> {
  return await appendToInitrd(assets.l2Initrd, [
    {
      kind: "file",
      path: "agent/blkbench.sh",
      data: await Deno.readFile(`${HERE}guest/blk_agent.sh`),
    },
    { kind: "file", path: "agent/blkbench", data: await Deno.readFile(tool), mode: 0o755 },
  ], `${BUILD}/initrd.cpio`);
}

await Deno.mkdir(BUILD, { recursive: true });
const assets = await ensureAssets();
const [tool, brd] = await Promise.all([buildGuestTool(), extractBrd(assets)]);
const initrd = await buildInitrd(assets, tool);

const L1_SCRIPT = `sh "$PROJECT/${HERE.slice(PROJECT_ROOT.length + 1)}blk_l1.sh"`;
const params = (mode: Mode) =>
  `agent.action=blkbench agent.blk_mib=${SEQ_MIB} agent.blk_ops=${RAND_OPS}` +
  (mode === "direct" ? " agent.blk_depth=1" : "");
const runName = (mode: Mode, vmm: Vmm, round: number) => `${mode}-${vmm}-${round}`;
const scenarios = MODES.flatMap((mode) => [
  {
    name: `setup-${mode}`,
    command: `${L1_SCRIPT} setup ${mode} ${DISK_MIB} ${brd}`,
    timeoutSeconds: 120,
  },
  // Rotate which VMM goes first, so slow drift in L1 weighs on all alike.
  ...Array.from(
    { length: ROUNDS },
    (_, i) =>
      VMMS.map((_, j) => VMMS[(i + j) % VMMS.length]).map((vmm) => ({
        name: runName(mode, vmm, i),
        command: `${L1_SCRIPT} run ${vmm} ${mode} ${initrd} "${params(mode)}"`,
        timeoutSeconds: 600,
        needs: [`setup-${mode}`],
      })),
  ).flat(),
]);

/** The last run's results, for `--replay` (re-analysis without booting). */
const RECORD = `${BUILD}/last-run.json`;
let results: Map<string, ScenarioResult>;
let notes: string[];
if (opts.replay) {
  const saved = JSON.parse(await Deno.readTextFile(opts.replay));
  results = new Map(saved.results);
  notes = saved.notes;
} else {
  const bed = new Testbed({ assets });
  results = await bed.boot(scenarios);
  notes = bed.boots.flatMap((boot) => boot.lines).filter((l) => l.text.startsWith("@@BLK")).map((
    l,
  ) => l.text);
  await Deno.writeTextFile(RECORD, JSON.stringify({ results: [...results], notes }));
}

/** What one VMM run measured, per phase (L1's KVM counters and the VMM's CPU as counters). */
interface PhaseMeasure extends PhaseCounters {
  ops: number;
  bytes: number;
  hostSeconds: number;
  guestSeconds: number;
  /** Requests the guest's block layer completed. */
  requests: number;
  sectors: number;
}

function parseRun(r: ScenarioResult, phases: Phase[]): Record<Phase, PhaseMeasure> {
  const fail = (why: string) => new Error(`${r.name}: ${why}\n${r.output}`);
  if (r.status !== 0) throw fail(`status ${r.status}`);
  const marks = new Map<string, number>();
  const ends = new Map<string, number[]>();
  const queue: number[][] = [];
  for (const line of r.lines) {
    const b = /@B (\w+)/.exec(line.text);
    if (b) marks.set(`B${b[1]}`, line.ms);
    const e = /@E (\w+) (\d+) (\d+) (\d+)/.exec(line.text);
    if (e) {
      marks.set(`E${e[1]}`, line.ms);
      ends.set(e[1], [Number(e[2]), Number(e[3]), Number(e[4])]);
    }
    const q = /@Q ([\d ]+)/.exec(line.text);
    if (q) queue.push(q[1].trim().split(/\s+/).map(Number));
  }
  const snaps = parseSnapshots(r.lines);
  if (queue.length !== phases.length + 1) {
    throw fail(`${queue.length} @Q lines, not ${phases.length + 1}`);
  }
  const out = {} as Record<Phase, PhaseMeasure>;
  for (const [i, phase] of phases.entries()) {
    const begin = marks.get(`B${phase}`);
    const end = marks.get(`E${phase}`);
    const guest = ends.get(phase);
    if (begin === undefined || end === undefined || !guest) throw fail(`no ${phase} phase`);
    const [q0, q1] = [queue[i], queue[i + 1]];
    const writes = isWrite(phase);
    const counters = phaseCounters(snaps, phase);
    if (!counters) throw fail(`no snapshots around the ${phase} phase`);
    out[phase] = {
      ...counters,
      ops: guest[0],
      bytes: guest[1],
      hostSeconds: (end - begin) / 1000,
      guestSeconds: guest[2] / 1e9,
      requests: writes ? q1[3] - q0[3] : q1[0] - q0[0],
      sectors: writes ? q1[4] - q0[4] : q1[1] - q0[1],
    };
  }
  return out;
}

const MiB = 1 << 20;
const rate = (p: PhaseMeasure, phase: Phase) =>
  isRandom(phase) ? p.ops / p.hostSeconds : p.bytes / MiB / p.hostSeconds;
const guestRate = (p: PhaseMeasure, phase: Phase) =>
  isRandom(phase) ? p.ops / p.guestSeconds : p.bytes / MiB / p.guestSeconds;
const unit = (phase: Phase) => isRandom(phase) ? "IOPS" : "MiB/s";
/** `seq write 1 MiB`, `rand read 4 KiB`, and at depth `rand write 4K QD8`. */
function label(phase: Phase): string {
  const depth = /\d+$/.exec(phase)?.[0];
  const io = isWrite(phase) ? "write" : "read";
  if (!depth) return isRandom(phase) ? `rand ${io} 4 KiB` : `seq ${io} 1 MiB`;
  return `${isRandom(phase) ? "rand" : "seq"} ${io} ${isRandom(phase) ? "4K" : "1M"} QD${depth}`;
}
const SETTINGS: Record<Mode, string> = {
  direct: "brd RAM disk /dev/ram0 in L1, O_DIRECT on all: ours -b /dev/ram0,direct; " +
    "QEMU virtio-blk-pci cache=none,aio=native",
  cached: "raw file on L1's tmpfs, host page cache on all: ours -b /tmp/blk.img; " +
    "QEMU virtio-blk-pci cache=writeback,aio=threads",
};

/** One line of where one VMM's time went in one phase, per guest request (medians). */
function perRequest(ms: PhaseMeasure[]): string {
  const per = (f: (p: PhaseMeasure) => number) => median(ms.map((p) => f(p) / p.requests));
  const kvm = (name: string) => per((p) => p.counters[name] ?? NaN);
  return `${median(ms.map((p) => p.requests)).toFixed(0)} req of ` +
    `${per((p) => p.sectors / 2).toFixed(0)} KiB, ${per((p) => p.hostSeconds * 1e6).toFixed(0)} ` +
    `µs each; L1 KVM/req: ${kvm("exits").toFixed(1)} exits, ` +
    `${kvm("irq_injections").toFixed(1)} irq, ${kvm("halt_exits").toFixed(1)} hlt ` +
    `(${(kvm("halt_wait_ns") / 1000).toFixed(0)} µs halted), ` +
    `${kvm("insn_emulation").toFixed(1)} emulated; CPU µs/req ([guest+]user+sys): ${
      threadCpu(ms, ms.map((p) => p.requests))
    }`;
}

for (const note of notes) console.log(note);
const num = (n: number, digits = 1) => n.toFixed(digits).padStart(8);
for (const mode of MODES) {
  const phases = phasesOf(mode);
  const measured = Object.fromEntries(VMMS.map((vmm) => [
    vmm,
    Array.from({ length: ROUNDS }, (_, i) => {
      const name = runName(mode, vmm, i);
      const r = results.get(name);
      if (!r) throw new Error(`${name} never ran`);
      return parseRun(r, phases);
    }),
  ])) as Record<Vmm, Record<Phase, PhaseMeasure>[]>;
  console.log(
    `\n[${mode}] ${
      SETTINGS[mode]
    }\nL2: 1 vCPU, 256 MiB (one queue), guest O_DIRECT, queue depth 1 ` +
      `${mode === "direct" ? "(pread/pwrite) and at depth (native AIO)" : "(pread/pwrite)"}; ` +
      `${SEQ_MIB} MiB per sequential phase, ${RAND_OPS} random reads over a ` +
      `${DISK_MIB} MiB disk; median of ${ROUNDS} alternating runs in one L1, host-timed ` +
      `(ratios: median of each round's)`,
  );
  console.log(
    `                                QEMU    jailed  unjailed  jailed/unjailed  jailed/QEMU` +
      `  (guest clock: QEMU   jailed unjailed)`,
  );
  for (const phase of phases) {
    const rates = (vmm: Vmm) => measured[vmm].map((m) => rate(m[phase], phase));
    const host = (vmm: Vmm) => median(rates(vmm));
    const guest = (vmm: Vmm) => median(measured[vmm].map((m) => guestRate(m[phase], phase)));
    // Ratios within each round (its runs are next to each other in time), then their median:
    // the host's speed drifts more between rounds than between neighbours.
    const ratio = (a: Vmm, b: Vmm) => median(rates(a).map((x, i) => x / rates(b)[i]));
    console.log(
      `  ${label(phase).padEnd(18)} ${unit(phase).padEnd(5)} ${num(host("qemu"))}  ` +
        `${num(host("jailed"))}  ${num(host("unjailed"))}` +
        `         ${num(ratio("jailed", "unjailed"), 3)}     ${num(ratio("jailed", "qemu"), 3)}` +
        `               ${num(guest("qemu"))} ${num(guest("jailed"))} ${num(guest("unjailed"))}`,
    );
  }
  console.log("  per guest request (medians):");
  for (const phase of phases) {
    for (const vmm of VMMS) {
      const label = `${phase.padEnd(5)} ${vmm.padEnd(8)}`;
      console.log(`    ${label} ${perRequest(measured[vmm].map((m) => m[phase]))}`);
    }
  }
}
