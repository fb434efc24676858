/**
 * What the test-bed benchmarks (bench/blk.ts, bench/net.ts, bench/boot.ts) share: medians and
 * round rotation, the L2 initramfs with a benchmark's files appended, and the reading of the
 * snapshots their L1 scripts print around each phase ({@link ./l1_lib.sh}'s `snapshot`: L1's
 * KVM counters and other counters as `@@ST TAG name=value…`, the CPU ticks of every thread of
 * the VMM and the processes below it as `@@TH TAG tid utime stime guest_time comm`, and their
 * read- and write-type syscall counts as `@@IO TAG tid syscr syscw`).
 *
 * @module
 */

import { buildCpio, type CpioEntry } from "../tests/testbed/cpio.ts";
import type { TimedLine } from "../tests/testbed/harness.ts";
import { median } from "./stats.ts";

export { median } from "./stats.ts";

/** `items` rotated left by `n` places: each round starts with another VMM. */
export const rotated = <T>(items: readonly T[], n: number): T[] =>
  items.map((_, i) => items[(i + n) % items.length]);

/**
 * Writes to `out` the initramfs `base` with a second newc archive of `entries` appended (the
 * kernel unpacks both, the second over the first), and returns `out`.
 */
export async function appendToInitrd(
  base: string,
  entries: readonly CpioEntry[],
  out: string,
): Promise<string> {
  const first = await Deno.readFile(base);
  const extra = buildCpio(entries);
  const start = Math.ceil(first.length / 4) * 4;
  const initrd = new Uint8Array(start + extra.length);
  initrd.set(first);
  initrd.set(extra, start);
  await Deno.writeFile(out, initrd);
  return out;
}

/** What a thread used over a phase: CPU time in ticks ({@link TICK_US}), syscalls. */
export interface ThreadUse {
  /** User time, less guest time (the VMM's own code). */
  readonly user: number;
  readonly system: number;
  /** Time running the guest (KVM_RUN): nonzero only for vCPU threads. */
  readonly guest: number;
  /** Read-type syscalls (read, readv, recvmsg, …: the kernel's syscr). */
  readonly reads: number;
  /** Write-type syscalls (write, writev, sendmsg, …: syscw). */
  readonly writes: number;
}
const NOTHING: ThreadUse = { user: 0, system: 0, guest: 0, reads: 0, writes: 0 };
/** CPU ticks (USER_HZ) are 10 ms. */
export const TICK_US = 10_000;

/** What L1 saw over one phase of a run: the difference of two snapshots. */
export interface PhaseCounters {
  /** Counter deltas by name (L1's KVM counters and the script's extra ones). */
  readonly counters: Readonly<Record<string, number>>;
  /** Use per thread name (threads of one name summed; vCPU threads get ` [vCPU]`). */
  readonly threads: ReadonlyMap<string, ThreadUse>;
}

interface Snapshot {
  counters: Map<string, number>;
  threads: Map<string, { -readonly [K in keyof ThreadUse]: ThreadUse[K] } & { name: string }>;
}

/** The snapshots among `lines`, by tag (`B<phase>` and `E<phase>`). */
export function parseSnapshots(lines: readonly TimedLine[]): Map<string, Snapshot> {
  const snaps = new Map<string, Snapshot>();
  const snap = (tag: string) => {
    if (!snaps.has(tag)) snaps.set(tag, { counters: new Map(), threads: new Map() });
    return snaps.get(tag)!;
  };
  for (const { text } of lines) {
    const s = /^@@ST (\w+) ?(.*)$/.exec(text);
    if (s) {
      for (const pair of s[2].split(" ").filter(Boolean)) {
        const [name, value] = pair.split("=");
        snap(s[1]).counters.set(name, Number(value));
      }
    }
    const thread = (tag: string, tid: string) => {
      const threads = snap(tag).threads;
      if (!threads.has(tid)) threads.set(tid, { ...NOTHING, name: "" });
      return threads.get(tid)!;
    };
    const t = /^@@TH (\w+) (\d+) (\d+) (\d+) (\d+) (.*)$/.exec(text);
    if (t) {
      const [user, system, guest] = [Number(t[3]), Number(t[4]), Number(t[5])];
      Object.assign(thread(t[1], t[2]), { user: user - guest, system, guest, name: t[6] });
    }
    const io = /^@@IO (\w+) (\d+) (\d+) (\d+)$/.exec(text);
    if (io) Object.assign(thread(io[1], io[2]), { reads: Number(io[3]), writes: Number(io[4]) });
  }
  return snaps;
}

/** The counters of `phase`: its `E` snapshot less its `B` one; undefined when either is missing. */
export function phaseCounters(
  snaps: ReadonlyMap<string, Snapshot>,
  phase: string,
): PhaseCounters | undefined {
  const before = snaps.get(`B${phase}`);
  const after = snaps.get(`E${phase}`);
  if (!before || !after) return undefined;
  const counters: Record<string, number> = {};
  for (const [name, value] of after.counters) {
    counters[name] = value - (before.counters.get(name) ?? 0);
  }
  const threads = new Map<string, ThreadUse>();
  for (const [tid, t] of after.threads) {
    const t0 = before.threads.get(tid) ?? NOTHING;
    const name = t.guest > 0 ? `${t.name} [vCPU]` : t.name;
    const sum = threads.get(name) ?? NOTHING;
    threads.set(name, {
      user: sum.user + t.user - t0.user,
      system: sum.system + t.system - t0.system,
      guest: sum.guest + t.guest - t0.guest,
      reads: sum.reads + t.reads - t0.reads,
      writes: sum.writes + t.writes - t0.writes,
    });
  }
  return { counters, threads };
}

/**
 * For each thread name, the median over `phases` of each of `fields` of its use per unit of
 * work (`units[i]` is the work of `phases[i]`: requests, MiB…), busiest first, those whose
 * values sum to under `min` left out.
 */
function perThread(
  phases: readonly PhaseCounters[],
  units: readonly number[],
  fields: readonly (keyof ThreadUse)[],
  min: number,
): { name: string; values: number[] }[] {
  const names = new Set(phases.flatMap((p) => [...p.threads.keys()]));
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return [...names].map((name) => ({
    name,
    values: fields.map((field) =>
      median(phases.map((p, i) => (p.threads.get(name) ?? NOTHING)[field] / units[i]))
    ),
  })).filter((t) => sum(t.values) >= min).sort((a, b) => sum(b.values) - sum(a.values));
}

/**
 * The CPU each thread spent per unit of work, median over `phases` (runs of one VMM), as
 * `name [guest+]user+sys` in µs, busiest first, leaving out threads under `minUs`.
 * `units[i]` is the work of `phases[i]` (requests, MiB…).
 */
export function threadCpu(
  phases: readonly PhaseCounters[],
  units: readonly number[],
  minUs = 20,
): string {
  const ticks = perThread(phases, units, ["guest", "user", "system"], minUs / TICK_US);
  return ticks.map(({ name, values }) => {
    const [guest, user, system] = values.map((v) => v * TICK_US);
    return `${name} ${guest ? `${guest.toFixed(0)}+` : ""}` +
      `${Math.max(0, user).toFixed(0)}+${system.toFixed(0)}`;
  }).join(", ");
}

/**
 * The read- and write-type syscalls each thread made per unit of work, median over `phases`,
 * as `name reads+writes`, busiest first, leaving out threads under `min`.
 */
export function threadSyscalls(
  phases: readonly PhaseCounters[],
  units: readonly number[],
  min = 0.5,
): string {
  return perThread(phases, units, ["reads", "writes"], min)
    .map(({ name, values: [reads, writes] }) => `${name} ${reads.toFixed(1)}+${writes.toFixed(1)}`)
    .join(", ");
}
