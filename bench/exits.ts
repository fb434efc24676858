/**
 * Exit round-trip benchmark: the same guest loop (N PIO writes, then N MMIO writes)
 * run by our vCPU Worker loop and by a C KVM program built in the same run,
 * alternating, printing median rates and our/C ratios. Then the time from process
 * start to the guest's first serial byte, and the VMM's RSS with a 256 MiB guest.
 *
 * Run: `deno task bench` (needs /dev/kvm, gcc and binutils).
 *
 * @module
 */

import { defaultConfig, Vm } from "../mod.ts";
import { buildBenchArtifacts, type ExitRates, runCBaseline, setIterations } from "./c_baseline.ts";
import { median } from "./stats.ts";

const BUILD_DIR = new URL(".build/", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** Guest loop iterations per phase. */
const ITERATIONS = 100_000;
/** Runs of each VMM (alternating). */
const ROUNDS = 3;
/** A loop count large enough that the guest outlives the RSS measurement. */
const FOREVER = 2 ** 52;
/** Marker bytes the guest writes to COM1 (bench/guest/exits.S). */
const MARK_START = 0x53; // 'S'
const MARK_PIO_DONE = 0x50; // 'P'
const MARK_MMIO_DONE = 0x4d; // 'M'
const MS_PER_SECOND = 1000;

/** Runs the guest in our VMM, timing the markers as they arrive on the serial stream. */
async function runOurs(elf: string): Promise<ExitRates> {
  const vm = await Vm.create({
    ...defaultConfig(elf),
    serials: [{ num: 1, type: "stream", console: false, stdin: false }],
    logLevel: "warn",
  });
  const marks = new Map<number, number>();
  const reading = (async () => {
    for await (const chunk of vm.serialOutput!) {
      const now = performance.now();
      for (const byte of chunk) marks.set(byte, now);
    }
  })();
  const result = await vm.run();
  await reading;
  if (result.reason !== "reset") {
    throw new Error(`guest ended with ${result.reason}: ${result.error}`);
  }
  const seconds = (from: number, to: number) =>
    ((marks.get(to) ?? NaN) - (marks.get(from) ?? NaN)) / MS_PER_SECOND;
  const pioSeconds = seconds(MARK_START, MARK_PIO_DONE);
  const mmioSeconds = seconds(MARK_PIO_DONE, MARK_MMIO_DONE);
  const { pioExits, mmioExits } = result.stats[0];
  return {
    pioExits,
    mmioExits,
    pioSeconds,
    mmioSeconds,
    pioExitsPerSecond: ITERATIONS / pioSeconds,
    mmioExitsPerSecond: ITERATIONS / mmioSeconds,
  };
}

/** Starts the CLI on a guest that runs forever; measures time to its first byte and its RSS. */
async function startupAndRss(elf: string): Promise<{ firstByteMs: number; rssMiB: number }> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "run", "--mem", "256", elf],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  const firstByteMs = performance.now() - started;
  if (first.done) throw new Error("the VMM printed nothing");
  const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
  const rssKiB = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN);
  child.kill("SIGTERM");
  reader.releaseLock();
  await child.stdout.cancel();
  await child.status;
  return { firstByteMs, rssMiB: rssKiB / 1024 };
}

const artifacts = await buildBenchArtifacts(BUILD_DIR);
const image = await Deno.readFile(artifacts.guestElf);
const elf = `${BUILD_DIR}exits-${ITERATIONS}.elf`;
await Deno.writeFile(elf, setIterations(image, ITERATIONS));
const foreverElf = `${BUILD_DIR}exits-forever.elf`;
await Deno.writeFile(foreverElf, setIterations(image, FOREVER));

const ours: ExitRates[] = [];
const theirs: ExitRates[] = [];
for (let round = 0; round < ROUNDS; round++) {
  theirs.push(await runCBaseline(artifacts.cBaseline, elf));
  ours.push(await runOurs(elf));
}
const rate = (runs: ExitRates[], key: "pioExitsPerSecond" | "mmioExitsPerSecond") =>
  median(runs.map((r) => r[key]));
const k = (n: number) => `${(n / 1000).toFixed(1)}k/s`;
console.log(`exit round trips, ${ITERATIONS} per phase, median of ${ROUNDS} alternating runs`);
for (
  const [name, key] of [["PIO ", "pioExitsPerSecond"], ["MMIO", "mmioExitsPerSecond"]] as const
) {
  const [o, c] = [rate(ours, key), rate(theirs, key)];
  console.log(`  ${name}  ours ${k(o)}  C ${k(c)}  ratio ${(o / c).toFixed(3)}`);
}
const { firstByteMs, rssMiB } = await startupAndRss(foreverElf);
console.log(`process start to first guest serial byte: ${firstByteMs.toFixed(0)} ms`);
console.log(`VMM RSS with a 256 MiB guest: ${rssMiB.toFixed(1)} MiB`);
