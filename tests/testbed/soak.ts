/**
 * The soak in the test bed (issue 13): one L2 guest does virtio-blk and virtio-rng work for a
 * fixed time (agent/soak.sh) while L1 samples, every {@link SAMPLE_SECONDS} s, the VMM's and its
 * jailed device processes' private memory (RssAnon: guest RAM is a shared mapping, counted apart,
 * and grows with what the guest touches) and open descriptors. After a warm-up, neither may grow.
 *
 * @module
 */

import { onConsoleLine } from "./harness.ts";
import { VMM_PROCESS_FUNCTIONS } from "./l1_processes.ts";

/** How often L1 samples the VMM's processes. */
export const SAMPLE_SECONDS = 5;
/** The first part of the samples is warm-up (JIT, heaps and caches filling): 1 in this many. */
const WARM_UP_FRACTION = 3;

/** One sample: seconds since the guest started its work, KiB and descriptors. */
export interface SoakSample {
  seconds: number;
  vmmAnonKiB: number;
  vmmFds: number;
  /** Over every jailed device process. */
  deviceAnonKiB: number;
  deviceFds: number;
  devices: number;
}

/**
 * The scenario's script: runs `boot` (a VMM booting the agent with `agent.action=soak`) and,
 * once the guest says `soak_started`, prints a `soak_sample=` line every {@link SAMPLE_SECONDS} s
 * until the VMM is gone.
 */
export function soakScript(boot: string): string {
  return `${VMM_PROCESS_FUNCTIONS}
anon_kib() { awk '$1 == "RssAnon:" { print $2 }' /proc/$1/status 2>/dev/null; }
fd_count() { ls /proc/$1/fd 2>/dev/null | wc -l; }
sample() {
  t0=$(cut -d. -f1 /proc/uptime)
  while vmm_kib=$(anon_kib $1) && [ -n "$vmm_kib" ]; do
    vmm_fds=$(fd_count $1) dev_kib=0 dev_fds=0 devices=0
    for p in $(device_pids $1); do
      # The device processes themselves, not the bubblewrap processes that hold their jails.
      [ "$(cat /proc/$p/comm 2>/dev/null)" = deno ] || continue
      kib=$(anon_kib $p) && [ -n "$kib" ] || continue
      dev_kib=$((dev_kib + kib)) dev_fds=$((dev_fds + $(fd_count $p))) devices=$((devices + 1))
    done
    echo "soak_sample=$(($(cut -d. -f1 /proc/uptime) - t0)) $vmm_kib $vmm_fds $dev_kib $dev_fds $devices"
    sleep ${SAMPLE_SECONDS}
  done
}
${onConsoleLine(boot, "soak_started", "(sample $vmm &)")}`;
}

/** The `soak_sample=` lines of a scenario's output (a VMM that went mid-sample is left out). */
export function soakSamples(output: string): SoakSample[] {
  return [...output.matchAll(/^soak_sample=((?:\d+ ){5}\d+)$/gm)].map((m) => {
    const [seconds, vmmAnonKiB, vmmFds, deviceAnonKiB, deviceFds, devices] = m[1].split(" ")
      .map(Number);
    return { seconds, vmmAnonKiB, vmmFds, deviceAnonKiB, deviceFds, devices };
  });
}

/** What the samples after the warm-up show. */
export interface SoakDrift {
  /** The last sample of the warm-up, what the rest is held to. */
  warm: SoakSample;
  /** The samples after it. */
  after: SoakSample[];
  /** The most private memory grew above `warm`'s, KiB: the VMM, the device processes. */
  vmmGrowthKiB: number;
  deviceGrowthKiB: number;
  /** Least-squares slope of private memory after the warm-up, KiB a minute. */
  vmmKiBPerMinute: number;
  deviceKiBPerMinute: number;
}

/** The drift of `samples` after their warm-up (the first third, at least two). */
export function soakDrift(samples: readonly SoakSample[]): SoakDrift {
  const warmEnd = Math.max(1, Math.floor(samples.length / WARM_UP_FRACTION));
  const warm = samples[warmEnd];
  const after = samples.slice(warmEnd + 1);
  const growth = (kib: (s: SoakSample) => number) =>
    Math.max(0, ...after.map((s) => kib(s) - kib(warm)));
  return {
    warm,
    after,
    vmmGrowthKiB: growth((s) => s.vmmAnonKiB),
    deviceGrowthKiB: growth((s) => s.deviceAnonKiB),
    vmmKiBPerMinute: 60 * slope([warm, ...after], (s) => s.vmmAnonKiB),
    deviceKiBPerMinute: 60 * slope([warm, ...after], (s) => s.deviceAnonKiB),
  };
}

/** Least-squares slope of `y` over the samples' seconds (0 for fewer than two). */
function slope(samples: readonly SoakSample[], y: (s: SoakSample) => number): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mx = samples.reduce((t, s) => t + s.seconds, 0) / n;
  const my = samples.reduce((t, s) => t + y(s), 0) / n;
  const sxy = samples.reduce((t, s) => t + (s.seconds - mx) * (y(s) - my), 0);
  const sxx = samples.reduce((t, s) => t + (s.seconds - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/** One line: the soak's length, its rounds, and what memory and descriptors did. */
export function soakSummary(seconds: number, rounds: number, drift: SoakDrift): string {
  const last = drift.after.at(-1) ?? drift.warm;
  const kib = (n: number) => `${Math.round(n)} KiB`;
  return `soak of ${seconds} s: ${rounds} rounds (1 MiB written, read back and compared, 4 KiB ` +
    `of virtio-rng each); after ${drift.warm.seconds} s of warm-up, VMM private memory ` +
    `${kib(drift.warm.vmmAnonKiB)} -> ${kib(last.vmmAnonKiB)} (at most +${
      kib(drift.vmmGrowthKiB)
    }, ${drift.vmmKiBPerMinute.toFixed(1)} KiB/min), ${drift.warm.devices} device processes ` +
    `${kib(drift.warm.deviceAnonKiB)} -> ${kib(last.deviceAnonKiB)} (at most +${
      kib(drift.deviceGrowthKiB)
    }, ${drift.deviceKiBPerMinute.toFixed(1)} KiB/min), descriptors ` +
    `${drift.warm.vmmFds}+${drift.warm.deviceFds} -> ${last.vmmFds}+${last.deviceFds}`;
}
