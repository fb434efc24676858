/**
 * Control-plane benchmark (runs in the nested test bed): our VMM (jailed devices, the default)
 * and QEMU (`-M microvm,pcie=on`, KVM, `-device virtio-balloon-pci`, QMP) boot the same L2
 * kernel with 512 MiB and the agent's balloon turns (tests/testbed/agent/balloon.sh: the guest
 * first touches nearly all its memory, then frees it), inside the same L1, alternating runs.
 * Each run measures from L1, with one Python client for both (bench/control_client.py):
 *
 * - the round trip of a control request that does nothing: crosvm's `"ResumeVcpus"` on a running
 *   VM, QMP's `query-status` (median and 90th percentile of 200);
 * - the VMM's resident memory (VmRSS) before and after a 256 MiB balloon inflate, and how long
 *   the inflate took from the request until the guest held it all.
 *
 * Prints each VMM's medians over the rounds and ours/QEMU.
 *
 * Run: `deno run --allow-all bench/control.ts [ROUNDS]` (root; builds the bed on first use).
 *
 * @module
 */

import { PROJECT_ROOT } from "../tests/testbed/assets.ts";
import {
  onConsoleLines,
  type ScenarioResult,
  Testbed,
  typeLines,
} from "../tests/testbed/harness.ts";
import { median } from "./stats.ts";

const ROUNDS = Number(Deno.args[0] ?? 2);
if (!(ROUNDS >= 1)) {
  console.error("usage: control.ts [ROUNDS]");
  Deno.exit(2);
}
const RAM_MIB = 512;
const BALLOON_BYTES = 256 << 20;
const RTT_REQUESTS = 200;
const PARAMS = "quiet reboot=t panic=-1 agent.action=balloon";
const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
const CLIENT = `python3 "$PROJECT/${HERE.slice(PROJECT_ROOT.length + 1)}control_client.py"`;
const SOCK = "/tmp/bench-control.sock";

/** Each VMM: how it boots, and the shell commands of its measured steps. */
const VMMS = {
  ours: {
    command: `"$DENO" run --allow-all "$PROJECT/main.ts" run -m ${RAM_MIB} -s ${SOCK} \\
  -p "${PARAMS}" -i "$L2_INITRD" "$L2_VMLINUX"`,
    rtt: `${CLIENT} rtt ours ${SOCK} ${RTT_REQUESTS}`,
    inflate: `${CLIENT} balloon ours ${SOCK} ${RAM_MIB << 20} ${BALLOON_BYTES}`,
    deflate: `${CLIENT} balloon ours ${SOCK} ${RAM_MIB << 20} 0`,
  },
  qemu: {
    command: `qemu-system-x86_64 -accel kvm -M microvm,pcie=on,rtc=on -cpu host -m ${RAM_MIB} \\
  -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot \\
  -device virtio-balloon-pci -qmp unix:${SOCK},server=on,wait=off \\
  -kernel "$L2_VMLINUX" -initrd "$L2_INITRD" -append "console=ttyS0 ${PARAMS}"`,
    rtt: `${CLIENT} rtt qemu ${SOCK} ${RTT_REQUESTS}`,
    inflate: `${CLIENT} balloon qemu ${SOCK} ${RAM_MIB << 20} ${BALLOON_BYTES}`,
    deflate: `${CLIENT} balloon qemu ${SOCK} ${RAM_MIB << 20} 0`,
  },
} as const;
type Vmm = keyof typeof VMMS;

const rss = (name: string) =>
  `echo "${name}=$(awk '$1 == "VmRSS:" { print $2 }' /proc/$vmm/status)"`;

/** One run of `vmm`: the balloon turns with the measurements between them. */
function scenario(vmm: Vmm): string {
  const v = VMMS[vmm];
  return `rm -f ${SOCK}
${
    onConsoleLines(v.command, [
      [
        "balloon_step=1",
        `${v.rtt} | sed 's/^/bench_/'
    ${rss("bench_rss_before_kb")}
    ${v.inflate} | sed 's/^/bench_/'
    ${rss("bench_rss_inflated_kb")}
    ${typeLines(["inflated"])}`,
      ],
      [
        "balloon_step=2",
        `${v.deflate} >/dev/null
    ${typeLines(["deflated"])}`,
      ],
      ["balloon_step=3", typeLines(["done"])],
    ])
  }`;
}

/** The `bench_KEY=` values of a run. */
function values(r: ScenarioResult): Map<string, string> {
  return new Map(
    r.lines.filter((l) => l.text.startsWith("bench_")).map((l) => {
      const at = l.text.indexOf("=");
      return [l.text.slice("bench_".length, at), l.text.slice(at + 1)];
    }),
  );
}

const names = Array.from({ length: ROUNDS }, (_, i) => ["ours", "qemu"].map((v) => `${v}-${i}`))
  .flat();
const bed = new Testbed({ memMiB: 4096, cpus: 4 });
const results = await bed.boot(names.map((name) => ({
  name,
  command: scenario(name.split("-")[0] as Vmm),
  timeoutSeconds: 300,
})));

type Figures = { rtt: number; rttP90: number; before: number; after: number; inflateMs: number };
const figures: Record<Vmm, Figures[]> = { ours: [], qemu: [] };
for (const name of names) {
  const r = results.get(name);
  const vmm = name.split("-")[0] as Vmm;
  const v = r === undefined ? new Map() : values(r);
  if (r?.status !== 0 || !v.has("balloon_s")) {
    console.error(`${name}: no figures (status ${r?.status})\n${r?.output ?? ""}`);
    continue;
  }
  const [rtt, rttP90] = v.get("rtt_us")!.split(" ").map(Number);
  figures[vmm].push({
    rtt,
    rttP90,
    before: Number(v.get("rss_before_kb")),
    after: Number(v.get("rss_inflated_kb")),
    inflateMs: Math.round(1000 * Number(v.get("balloon_s"))),
  });
}

const row = (label: string, pick: (f: Figures) => number, unit: string) => {
  const [ours, qemu] = (["ours", "qemu"] as const).map((v) => median(figures[v].map(pick)));
  console.log(
    `${label.padEnd(34)}${`${ours} ${unit}`.padStart(14)}${`${qemu} ${unit}`.padStart(14)}` +
      `${(ours / qemu).toFixed(2).padStart(12)}`,
  );
};
console.log(
  `control plane, ${RAM_MIB} MiB guest, ${BALLOON_BYTES >> 20} MiB balloon, ` +
    `medians of ${ROUNDS} rounds\n${"".padEnd(34)}${"ours".padStart(14)}${"QEMU".padStart(14)}` +
    `${"ours/QEMU".padStart(12)}`,
);
row("control round trip, median", (f) => f.rtt, "µs");
row("control round trip, 90th pct", (f) => f.rttP90, "µs");
row("VmRSS before the inflate", (f) => f.before, "KiB");
row("VmRSS after the inflate", (f) => f.after, "KiB");
row("RSS given back", (f) => f.before - f.after, "KiB");
row("inflate, request to held", (f) => f.inflateMs, "ms");
