/**
 * Boot benchmark (runs in the nested test bed): the same L2 kernel (Debian's cloud ELF
 * vmlinux) and initrd booted to the agent's first marker by our VMM and by QEMU
 * (`-M microvm`, KVM) inside the same L1, alternating runs. Prints the median time to the
 * marker and to exit for each, their ratio, and where our time goes (Deno start-up and VM
 * set-up until the vCPUs enter KVM_RUN, then the guest).
 *
 * Run: `deno run --allow-all bench/boot.ts [ROUNDS]` (root; builds the bed on first use).
 *
 * @module
 */

import { type ScenarioResult, Testbed } from "../tests/testbed/harness.ts";

const ROUNDS = Number(Deno.args[0] ?? 3);
const PARAMS = "console=ttyS0 quiet reboot=t panic=-1 agent.action=reboot";
const OURS = `"$DENO" run --allow-all "$PROJECT/main.ts" run --log-level debug --mem 256 \\
  -p "quiet reboot=t panic=-1 agent.action=reboot" -i "$L2_INITRD" "$L2_VMLINUX"`;
const QEMU = `qemu-system-x86_64 -accel kvm -M microvm,rtc=on -cpu host -m 256 -smp 1 \\
  -nodefaults -no-user-config -display none -serial stdio -no-reboot \\
  -kernel "$L2_VMLINUX" -initrd "$L2_INITRD" -append "${PARAMS}"`;
const MARKER = "@@AGENT BEGIN";
const VCPUS_RUNNING = /vCPUs in KVM_RUN/;

/** Seconds from the scenario's start to the first line matching `pattern`. */
function secondsTo(result: ScenarioResult, pattern: string | RegExp): number {
  const line = result.lines.find((l) =>
    typeof pattern === "string" ? l.text.includes(pattern) : pattern.test(l.text)
  );
  if (!line) throw new Error(`${result.name}: no ${pattern} in:\n${result.output}`);
  return (line.ms - result.startMs) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const scenarios = Array.from({ length: ROUNDS }, (_, i) => [
  { name: `qemu-${i}`, command: QEMU, timeoutSeconds: 120 },
  { name: `ours-${i}`, command: OURS, timeoutSeconds: 120 },
]).flat();
const results = await new Testbed().boot(scenarios);
const runs = (prefix: string) =>
  scenarios.filter((s) => s.name.startsWith(prefix)).map((s) => {
    const r = results.get(s.name);
    if (!r || r.status !== 0) throw new Error(`${s.name} failed:\n${r?.output}`);
    return r;
  });
const ours = runs("ours-");
const qemu = runs("qemu-");
const stat = (rs: ScenarioResult[], f: (r: ScenarioResult) => number) => median(rs.map(f));
const toMarker = (r: ScenarioResult) => secondsTo(r, MARKER);
const toExit = (r: ScenarioResult) => r.durationMs / 1000;
const setup = (r: ScenarioResult) => secondsTo(r, VCPUS_RUNNING);

const s = (n: number) => `${n.toFixed(2)} s`;
console.log(`L2 boot to "${MARKER}", median of ${ROUNDS} alternating runs in one L1:`);
console.log(`  QEMU microvm  marker ${s(stat(qemu, toMarker))}  exit ${s(stat(qemu, toExit))}`);
console.log(`  ours          marker ${s(stat(ours, toMarker))}  exit ${s(stat(ours, toExit))}`);
console.log(
  `  ratio (ours/QEMU)  marker ${(stat(ours, toMarker) / stat(qemu, toMarker)).toFixed(2)}` +
    `  exit ${(stat(ours, toExit) / stat(qemu, toExit)).toFixed(2)}`,
);
console.log(
  `  ours: ${s(stat(ours, setup))} from exec to vCPUs in KVM_RUN (Deno start-up, module` +
    ` loading, VM set-up), ${s(stat(ours, (r) => toMarker(r) - setup(r)))} guest boot`,
);
