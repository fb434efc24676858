/**
 * Network benchmark (runs in the nested test bed): the same L2 kernel (Debian's cloud ELF
 * vmlinux) and initrd (the test agent with iperf3, `$L2_TOOLS_INITRD`, plus
 * `bench/guest/net_agent.sh`), 1 vCPU and 256 MiB, in the same L1, on the same persistent TAP
 * (`bench0`, 10.77.0.1/24 in L1, IFF_VNET_HDR), with a virtio-net NIC from each of
 * {@link VARIANTS}, alternating runs: QEMU's `virtio-net-pci` with vhost off and (where L1 has
 * /dev/vhost-net) on, our VMM jailed (the default: the device in its own bubblewrap jail under
 * its seccomp filter), unjailed (`--disable-sandbox`: the device in a Worker of the VMM) and with
 * vhost-net (jailed; where L1 has /dev/vhost-net).
 * In L2, against an iperf3 server and the kernel of L1: TCP throughput L2→L1 and L1→L2 (iperf3,
 * `--secs` each) and request/response latency (`ping -A`, the next echo sent when the last
 * reply came, for `--rr-secs`).
 *
 * Prints, per figure, the median of each variant and the ratios of {@link RATIOS} (the median of
 * each round's), then where the time goes, per MiB moved and per request: the TAP's frames
 * (their mean size shows the segmentation offloads at work), the guest's virtio-net
 * interrupts, L1's KVM exits and interrupt injections (debugfs; L1 runs nothing else), and the
 * CPU time of each thread of the VMM, of the processes below it (a jailed device's, `jail …`)
 * and of its vhost workers (`vhost …`).
 *
 * A variant is a VMM command line on the TAP: our `--net ...,vhost-net` (jailed) is `vhost`,
 * compared with `qemu-vhost`.
 *
 * Run: `deno run --allow-all bench/net.ts [ROUNDS] [--secs S] [--rr-secs S]` (root; builds the
 * bed on first use; about 3 minutes a round). README.md's Benchmarks section has a run and what
 * its costs say. Each run's results are saved in `bench/.build/net/last-run.json`;
 * `--replay FILE` prints them again without booting anything.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ensureAssets, PROJECT_ROOT } from "../tests/testbed/assets.ts";
import { type ScenarioResult, Testbed } from "../tests/testbed/harness.ts";
import {
  appendToInitrd,
  median,
  parseSnapshots,
  type PhaseCounters,
  phaseCounters,
  rotated,
  threadCpu,
  threadSyscalls,
} from "./bed_lib.ts";

const { values: opts, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    secs: { type: "string", default: "10" },
    "rr-secs": { type: "string", default: "5" },
    replay: { type: "string" },
  },
});
const ROUNDS = Number(positionals[0] ?? 2);
const SECS = Number(opts.secs);
const RR_SECS = Number(opts["rr-secs"]);
if (!(ROUNDS >= 1) || !(SECS >= 1) || !(RR_SECS >= 1)) {
  console.error("usage: net.ts [ROUNDS] [--secs S] [--rr-secs S] [--replay FILE]");
  Deno.exit(2);
}

const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
const BUILD = `${HERE}.build/net`;
const L1_SCRIPT = `sh "$PROJECT/${HERE.slice(PROJECT_ROOT.length + 1)}net_l1.sh"`;
/** The TAP in L1 every run uses, L1's address on it and the guest's. */
const TAP = "bench0";
const HOST_CIDR = "10.77.0.1/24";
const HOST_IP = HOST_CIDR.split("/")[0];
const GUEST_CIDR = "10.77.0.2/24";
const GUEST_MAC = "52:54:00:12:34:56";
const INITRD = `${BUILD}/initrd.cpio`;
const GUEST_PARAMS = `quiet reboot=t panic=-1 agent.action=netbench agent.net=${GUEST_CIDR} ` +
  `agent.peer=${HOST_IP} agent.net_secs=${SECS} agent.rr_secs=${RR_SECS}`;
const MEM_MIB = 256;
const MiB = 1 << 20;

/** One VMM set-up: its command line in L1 (busybox sh; no single quotes). */
interface Variant {
  readonly name: string;
  readonly command: string;
  /** A path in L1 the command needs: without it the variant is left out. */
  readonly needs?: string;
}
/** Our VMM with `flags`, its NIC on the TAP with `netOptions` appended to `--net`. */
const ours = (flags: string, netOptions = "") =>
  [
    `"$DENO" run --allow-all "$PROJECT/main.ts" run --mem ${MEM_MIB} --cpus 1`,
    `--no-rng --no-balloon ${flags} --net tap-name=${TAP},mac=${GUEST_MAC}${netOptions}`,
    `-p "${GUEST_PARAMS}" -i "${INITRD}" "$L2_VMLINUX"`,
  ].join(" ");
/** QEMU (`-M microvm` with PCIe, KVM) with virtio-net-pci on the TAP, `vhost=on|off`. */
const qemu = (vhost: "on" | "off") =>
  [
    `qemu-system-x86_64 -accel kvm -M microvm,rtc=on,pcie=on -cpu host -m ${MEM_MIB} -smp 1`,
    "-name net,debug-threads=on -nodefaults -no-user-config -display none -serial stdio",
    `-no-reboot -netdev tap,id=n0,ifname=${TAP},script=no,downscript=no,vhost=${vhost}`,
    `-device virtio-net-pci,netdev=n0,mac=${GUEST_MAC} -kernel "$L2_VMLINUX" -initrd "${INITRD}"`,
    `-append "console=ttyS0 ${GUEST_PARAMS}"`,
  ].join(" ");
/** What each round runs, in this order rotated by the round. */
const VARIANTS: readonly Variant[] = [
  { name: "qemu", command: qemu("off") },
  { name: "qemu-vhost", command: qemu("on"), needs: "/dev/vhost-net" },
  { name: "jailed", command: ours("") },
  { name: "unjailed", command: ours("--disable-sandbox") },
  { name: "vhost", command: ours("", ",vhost-net"), needs: "/dev/vhost-net" },
];
/** The ratios printed, `[a, b]` for a/b, where both variants ran. */
const RATIOS: readonly (readonly [string, string])[] = [
  ["jailed", "qemu"],
  ["unjailed", "qemu"],
  ["jailed", "unjailed"],
  ["jailed", "qemu-vhost"],
  ["vhost", "qemu-vhost"],
];

const PHASES = ["tx", "rx", "rr"] as const;
type Phase = typeof PHASES[number];
const LABEL: Record<Phase, string> = {
  tx: "TCP L2→L1 Mbit/s",
  rx: "TCP L1→L2 Mbit/s",
  rr: "ping -A RTT µs",
};
/** The TAP's counters that carry a phase's data frames (the TAP's rx is what the guest sent). */
const DATA_FRAMES: Record<Phase, string> = { tx: "tap_rx", rx: "tap_tx", rr: "tap_rx" };

/** What one run measured in one phase. */
interface PhaseMeasure extends PhaseCounters {
  /** Mbit/s for tx and rx, the mean round trip in µs for rr. */
  figure: number;
  /** MiB moved (tx, rx) or requests answered (rr): what the costs are divided by. */
  units: number;
  /** The guest's virtio-net interrupts: receive queue, transmit queue. */
  irqs: [number, number];
}

function parseRun(r: ScenarioResult): Record<Phase, PhaseMeasure> {
  const fail = (why: string) => new Error(`${r.name}: ${why}\n${r.output}`);
  if (r.status !== 0) throw fail(`status ${r.status}`);
  const marks = new Map<string, number[]>();
  for (const { text } of r.lines) {
    const m = /@([BE]) (\w+) ([\d. ]+)$/.exec(text);
    if (m) marks.set(`${m[1]}${m[2]}`, m[3].trim().split(/\s+/).map(Number));
  }
  const snaps = parseSnapshots(r.lines);
  const out = {} as Record<Phase, PhaseMeasure>;
  for (const phase of PHASES) {
    const begin = marks.get(`B${phase}`);
    const end = marks.get(`E${phase}`);
    const counters = phaseCounters(snaps, phase);
    if (!begin || !end || !counters) throw fail(`no ${phase} phase`);
    const [rxIrqs, txIrqs, ...result] = end;
    if (result.length !== 2) throw fail(`${phase}: ${result.length} results, not 2`);
    const irqs: [number, number] = [rxIrqs - begin[0], txIrqs - begin[1]];
    if (phase === "rr") {
      const [replies, averageMs] = result;
      out[phase] = { ...counters, figure: averageMs * 1000, units: replies, irqs };
    } else {
      const [seconds, kbits] = result;
      const mib = kbits * 1000 / 8 * seconds / MiB;
      out[phase] = { ...counters, figure: kbits / 1000, units: mib, irqs };
    }
  }
  return out;
}

const scenarios = [
  { name: "setup", command: `${L1_SCRIPT} setup ${TAP} ${HOST_CIDR}`, timeoutSeconds: 60 },
  // Rotate which VMM goes first, so slow drift in L1 weighs on all alike.
  ...Array.from({ length: ROUNDS }, (_, i) =>
    rotated(VARIANTS, i).map((v) => ({
      name: `${v.name}-${i}`,
      command: `${L1_SCRIPT} run ${TAP} ${v.needs ?? "-"} '${v.command}'`,
      timeoutSeconds: 240,
      needs: ["setup"],
    }))).flat(),
];

/** The last run's results, for `--replay` (re-analysis without booting). */
const RECORD = `${BUILD}/last-run.json`;
let results: Map<string, ScenarioResult>;
if (opts.replay) {
  results = new Map(JSON.parse(await Deno.readTextFile(opts.replay)).results);
} else {
  await Deno.mkdir(BUILD, { recursive: true });
  const assets = await ensureAssets();
  await appendToInitrd(assets.l2ToolsInitrd, [{
    kind: "file",
    path: "agent/netbench.sh",
    data: await Deno.readFile(`${HERE}guest/net_agent.sh`),
  }], INITRD);
  results = await new Testbed({ assets }).boot(scenarios);
  await Deno.writeTextFile(RECORD, JSON.stringify({ results: [...results] }));
}

const setup = results.get("setup");
if (setup?.status !== 0) throw new Error(`setup failed:\n${setup?.output}`);
const ran = VARIANTS.filter((v) => !results.get(`${v.name}-0`)?.output.includes("@@NET SKIP"));
const measured = new Map(ran.map((v) => [
  v.name,
  Array.from({ length: ROUNDS }, (_, i) => {
    const r = results.get(`${v.name}-${i}`);
    if (!r) throw new Error(`${v.name}-${i} never ran`);
    return parseRun(r);
  }),
]));
const figures = (name: string, phase: Phase) => measured.get(name)!.map((m) => m[phase].figure);
const ratios = RATIOS.filter(([a, b]) => measured.has(a) && measured.has(b));

const COLUMN = 12;
const cell = (text: string, width = COLUMN) => text.padStart(width);
console.log(
  `${setup.output.split("\n").filter((l) => l.startsWith("@@NET")).join(" ")}\n` +
    `L2: 1 vCPU, ${MEM_MIB} MiB, virtio-net on TAP ${TAP} in L1 (${HOST_CIDR}); iperf3 ${SECS} s ` +
    `per direction, ping -A ${RR_SECS} s; median of ${ROUNDS} alternating runs in one L1 ` +
    `(ratios: median of each round's; for RTT lower is better)`,
);
console.log(
  `${"".padEnd(20)}${ran.map((v) => cell(v.name)).join("")}` +
    ratios.map(([a, b]) => cell(`${a}/${b}`, `${a}/${b}`.length + 2)).join(""),
);
for (const phase of PHASES) {
  // Ratios within each round (its runs are next to each other in time), then their median.
  const ratio = (a: string, b: string) =>
    median(figures(a, phase).map((x, i) => x / figures(b, phase)[i]));
  console.log(
    `  ${LABEL[phase].padEnd(18)}` +
      ran.map((v) => cell(median(figures(v.name, phase)).toFixed(1))).join("") +
      ratios.map(([a, b]) => cell(ratio(a, b).toFixed(3), `${a}/${b}`.length + 2)).join(""),
  );
}

/** One line of where one variant's time went in one phase, per MiB or request (medians). */
function costs(ms: PhaseMeasure[], phase: Phase): string {
  const per = (f: (p: PhaseMeasure) => number) => median(ms.map((p) => f(p) / p.units));
  const count = (name: string) => per((p) => p.counters[name] ?? NaN);
  const units = ms.map((p) => p.units);
  const frames = DATA_FRAMES[phase];
  const frameKiB = median(
    ms.map((p) => p.counters[`${frames}_bytes`] / p.counters[`${frames}_packets`] / 1024),
  );
  const dropped = median(ms.map((p) => p.counters.tap_rx_dropped + p.counters.tap_tx_dropped));
  return `${count(`${frames}_packets`).toFixed(1)} data frames of ${frameKiB.toFixed(1)} KiB ` +
    `(${dropped} dropped), guest irqs ${per((p) => p.irqs[0]).toFixed(1)} rx ` +
    `${per((p) => p.irqs[1]).toFixed(1)} tx; L1 KVM ${count("exits").toFixed(1)} exits ` +
    `(${count("mmio_exits").toFixed(1)} MMIO, ${count("io_exits").toFixed(1)} PIO to the VMM), ` +
    `${count("irq_injections").toFixed(1)} irq, ${count("halt_exits").toFixed(1)} hlt; ` +
    `CPU µs ([guest+]user+sys): ${threadCpu(ms, units)}; syscalls (read+write kinds): ` +
    threadSyscalls(ms, units);
}

console.log("where the time goes, medians (tx, rx: per MiB moved; rr: per request):");
for (const phase of PHASES) {
  for (const v of ran) {
    const ms = measured.get(v.name)!.map((m) => m[phase]);
    console.log(`  ${phase} ${v.name.padEnd(10)} ${costs(ms, phase)}`);
  }
}
