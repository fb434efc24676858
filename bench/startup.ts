/**
 * Start-up benchmark: the trivial guest (tests/guests/first_byte.S: one byte to COM1, then a
 * triple fault) started, run and ended by our VMM from the source tree, by the single-file
 * bundle (scripts/bundle.ts), and by QEMU microvm (`-kernel`, KVM, 256 MiB), alternating, each
 * round in another order. Per case it prints the median wall time from spawning the process to
 * the guest's first serial byte and to the process's exit, the peak RSS of the VMM's process
 * (`/usr/bin/time`'s maximum resident set; a jailed device process is not in it), and the median
 * of each round's ratio to QEMU.
 *
 * Cases: no virtio devices (`--no-rng --no-balloon`) on 1 and 4 vCPUs, and the default devices
 * (virtio-rng and virtio-balloon; QEMU gets the same two) jailed and unjailed.
 *
 * Then the footprint of a running VM (tests/guests/spin.S, which runs until stopped) with the
 * default devices, from the source tree, jailed and unjailed: the VMM's and each jailed device
 * process's resident and private memory (`/proc/PID/smaps_rollup`), and how long each device
 * process took to be ready (the VMM's `--log-level debug` lines).
 *
 * Run: `deno task bench:startup [ROUNDS]` (needs /dev/kvm, binutils, qemu-system-x86_64; ten
 * rounds by default).
 *
 * @module
 */

import { buildGuest } from "../tests/helpers/guests.ts";
import { descendantPids } from "../src/sandbox/jail.ts";
import { buildBundle } from "../scripts/bundle.ts";
import { median } from "./stats.ts";

const ROUNDS = Number(Deno.args[0] ?? 10);
if (!(ROUNDS >= 1)) {
  console.error("usage: startup.ts [ROUNDS]");
  Deno.exit(2);
}
const MAIN = decodeURIComponent(new URL("../main.ts", import.meta.url).pathname);
const BUNDLE = decodeURIComponent(new URL(".build/crosvm.js", import.meta.url).pathname);
const GUEST_MIB = 256;
/** GNU time's `-f` for the peak RSS in KiB, the only thing it writes to its `-o` file. */
const TIME = ["/usr/bin/time", "-f", "%M"];
const KIB_PER_MIB = 1024;

/** One VM configuration, as each VMM spells it. */
interface Case {
  readonly name: string;
  readonly cpus: number;
  /** Our `run` options beyond the memory, the vCPUs and the kernel. */
  readonly ours: readonly string[];
  /** QEMU's options for the same devices. */
  readonly qemu: readonly string[];
}

const NO_DEVICES = ["--no-rng", "--no-balloon"];
const QEMU_DEVICES = ["-device", "virtio-rng-device", "-device", "virtio-balloon-device"];
const CASES: readonly Case[] = [
  { name: "1 vCPU, no virtio devices", cpus: 1, ours: NO_DEVICES, qemu: [] },
  { name: "4 vCPUs, no virtio devices", cpus: 4, ours: NO_DEVICES, qemu: [] },
  { name: "1 vCPU, rng + balloon, jailed", cpus: 1, ours: [], qemu: QEMU_DEVICES },
  {
    name: "1 vCPU, rng + balloon, --disable-sandbox",
    cpus: 1,
    ours: ["--disable-sandbox"],
    qemu: QEMU_DEVICES,
  },
];

const VMMS = ["qemu", "source", "bundle"] as const;
type Vmm = typeof VMMS[number];

/** The command line of `vmm` for `c` on `guest`. */
function commandLine(vmm: Vmm, c: Case, guest: string): string[] {
  if (vmm === "qemu") {
    return [
      "qemu-system-x86_64",
      ...["-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", `${GUEST_MIB}`],
      ...["-smp", `${c.cpus}`, "-nodefaults", "-no-user-config", "-display", "none"],
      ...["-serial", "stdio", "-no-reboot", ...c.qemu, "-kernel", guest],
    ];
  }
  const program = vmm === "source" ? MAIN : BUNDLE;
  return [
    Deno.execPath(),
    ...["run", "--allow-all", program, "run", "-m", `${GUEST_MIB}`, "-c", `${c.cpus}`],
    ...c.ours,
    guest,
  ];
}

/** What one run measured. */
interface Measured {
  readonly firstByteMs: number;
  readonly exitMs: number;
  readonly rssMiB: number;
}

/** Runs `argv` under GNU time; times its first stdout byte and its end. */
async function measure(argv: string[]): Promise<Measured> {
  const rssFile = await Deno.makeTempFile();
  try {
    const started = performance.now();
    const child = new Deno.Command(TIME[0], {
      args: [...TIME.slice(1), "-o", rssFile, ...argv],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let firstByteMs = NaN;
    for await (const chunk of child.stdout) {
      if (chunk.length > 0 && Number.isNaN(firstByteMs)) firstByteMs = performance.now() - started;
    }
    const status = await child.status;
    const exitMs = performance.now() - started;
    const said = await stderr;
    if (!status.success || Number.isNaN(firstByteMs)) {
      throw new Error(`${argv.join(" ")}: status ${status.code}, no output or a failure:\n${said}`);
    }
    const rssKiB = Number((await Deno.readTextFile(rssFile)).trim().split("\n").pop());
    return { firstByteMs, exitMs, rssMiB: rssKiB / KIB_PER_MIB };
  } finally {
    await Deno.remove(rssFile);
  }
}

const guest = await buildGuest("first_byte", "pvh");
await buildBundle(BUNDLE);

/** measured[case][vmm][round] */
const measured = CASES.map(() =>
  Object.fromEntries(VMMS.map((v) => [v, [] as Measured[]])) as Record<Vmm, Measured[]>
);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, c] of CASES.entries()) {
    const order = [...VMMS.slice(round % VMMS.length), ...VMMS.slice(0, round % VMMS.length)];
    for (const vmm of order) measured[i][vmm].push(await measure(commandLine(vmm, c, guest)));
  }
}

const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
console.log(
  `trivial guest, ${GUEST_MIB} MiB: median of ${ROUNDS} alternating runs ` +
    `(ratios: median of each round's); load average ${load}`,
);
const METRICS = [
  ["to first serial byte", "firstByteMs", "ms"],
  ["to exit", "exitMs", "ms"],
  ["peak RSS", "rssMiB", "MiB"],
] as const;
const cell = (text: string) => text.padStart(10);
for (const [i, c] of CASES.entries()) {
  console.log(`\n${c.name}`);
  console.log(
    `  ${"".padEnd(28)}${VMMS.map(cell).join("")}${cell("src/qemu")}${cell("bnd/qemu")}`,
  );
  const runs = measured[i];
  for (const [label, key, unit] of METRICS) {
    const of = (vmm: Vmm) => runs[vmm].map((m) => m[key]);
    const ratio = (vmm: Vmm) => median(of(vmm).map((x, r) => x / of("qemu")[r])).toFixed(2);
    console.log(
      `  ${`${label} (${unit})`.padEnd(28)}` +
        VMMS.map((v) => cell(median(of(v)).toFixed(1))).join("") +
        cell(ratio("source")) + cell(ratio("bundle")),
    );
  }
}

/** What `/proc/PID/smaps_rollup` says of a process, in MiB. */
interface Footprint {
  readonly rssMiB: number;
  readonly privateMiB: number;
}

/** A line of smaps_rollup: a name and a size in kB. */
const SMAPS_LINE = /^(\w+):\s+(\d+) kB$/;

async function footprintOf(pid: number): Promise<Footprint> {
  const kib = new Map<string, number>();
  for (const line of (await Deno.readTextFile(`/proc/${pid}/smaps_rollup`)).split("\n")) {
    const m = SMAPS_LINE.exec(line);
    if (m) kib.set(m[1], Number(m[2]));
  }
  const get = (key: string) => (kib.get(key) ?? 0) / KIB_PER_MIB;
  return { rssMiB: get("Rss"), privateMiB: get("Private_Clean") + get("Private_Dirty") };
}

/** The debug line that says the VM runs, and those that say a device process is ready. */
const RUNNING_LINE = /vCPUs in KVM_RUN/;
const READY_LINE = /(\S+): device process (\d+) ready in ([\d.]+) ms/g;

/** Starts the spin guest with `options`; once it runs, measures the VMM and its device processes. */
async function runningFootprint(guest: string, options: readonly string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-all", MAIN, "run", "--log-level", "debug", "-m", `${GUEST_MIB}`],
      ...options,
      guest,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let said = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    said += decoder.decode(chunk, { stream: true });
    if (RUNNING_LINE.test(said)) break;
  }
  const vmm = await footprintOf(child.pid);
  const devices = [];
  for (const [, name, pid, ms] of said.matchAll(READY_LINE)) {
    devices.push({ name, readyMs: Number(ms), ...(await footprintOf(Number(pid))) });
  }
  const processes = descendantPids(child.pid).length;
  child.kill("SIGTERM");
  await child.status;
  return { vmm, devices, processes };
}

const spin = await buildGuest("spin");
const mib = (n: number) => `${n.toFixed(1)} MiB`;
console.log(`\nrunning VM, rng + balloon, ${GUEST_MIB} MiB (spin guest, from the source tree)`);
for (
  const [label, options] of [["jailed", []], ["--disable-sandbox", ["--disable-sandbox"]]] as const
) {
  const { vmm, devices, processes } = await runningFootprint(spin, options);
  console.log(
    `  ${label}: VMM RSS ${mib(vmm.rssMiB)}, private ${mib(vmm.privateMiB)}; ` +
      `${processes} processes under it`,
  );
  for (const d of devices) {
    console.log(
      `    ${d.name}: ready ${d.readyMs.toFixed(0)} ms after spawn, RSS ${mib(d.rssMiB)}, ` +
        `private ${mib(d.privateMiB)}`,
    );
  }
}
