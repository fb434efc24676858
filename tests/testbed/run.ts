/**
 * Boots the test bed once with the demonstration scenarios and prints a timing report:
 * `deno run --allow-all tests/testbed/run.ts [NAME...]` (as root; TESTBED_VERBOSE=1 shows
 * the console live). With names, only those scenarios run.
 *
 * @module
 */

import { ensureAssets } from "./assets.ts";
import { type Scenario, Testbed, typeAfterAgentReport } from "./harness.ts";

const L2_APPEND = "console=ttyS0 quiet reboot=t panic=-1";
/**
 * QEMU as the L2 VMM. `rtc=on`: microvm leaves the RTC out under KVM by default, and the
 * kernel then spends 10 s probing for it.
 */
const L2_QEMU = `qemu-system-x86_64 -accel kvm -M microvm,rtc=on -cpu host -m 256 -smp 1 \\
  -nodefaults -no-user-config -display none -serial stdio -no-reboot \\
  -kernel "$L2_VMLINUX" -initrd "$L2_INITRD"`;

/** The scenarios that prove the bed: L1 facts, QEMU as the L2 VMM, and our VMM. */
export const DEMO_SCENARIOS: readonly Scenario[] = [
  {
    name: "l1-facts",
    command: 'uname -r; ls -l /dev/kvm; "$DENO" --version | head -1',
    timeoutSeconds: 30,
  },
  {
    name: "deno-offline",
    command: '"$DENO" run --allow-all "$PROJECT/main.ts" version',
    timeoutSeconds: 60,
  },
  {
    name: "qemu-microvm",
    command: `${L2_QEMU} -append "${L2_APPEND} agent.action=poweroff"`,
    timeoutSeconds: 120,
  },
  {
    // Console input: wait for the agent's report, then type a line.
    name: "qemu-echo",
    command: typeAfterAgentReport(`${L2_QEMU} -append "${L2_APPEND} agent.action=echo"`, [
      "hello from L1",
    ]),
    timeoutSeconds: 120,
  },
  {
    name: "crosvm-deno",
    command: `"$DENO" run --allow-all "$PROJECT/main.ts" run --mem 256 \\
  -p "quiet reboot=t panic=-1 agent.action=reboot" -i "$L2_INITRD" "$L2_VMLINUX"`,
    timeoutSeconds: 180,
  },
];

if (import.meta.main) {
  const t0 = performance.now();
  const assets = await ensureAssets();
  const assetsMs = performance.now() - t0;
  const wanted = Deno.args;
  const scenarios = wanted.length
    ? DEMO_SCENARIOS.filter((s) => wanted.includes(s.name))
    : DEMO_SCENARIOS;
  const bed = new Testbed({ assets });
  const results = await bed.boot(scenarios);
  const boot = bed.lastBoot!;
  const s = (ms: number | undefined) => ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`;
  for (const r of results.values()) {
    console.log(`===== ${r.name}: status=${r.status} timedOut=${r.timedOut} ${s(r.durationMs)}`);
    for (const l of r.lines) console.log(`[+${s(l.ms - r.startMs)}] ${l.text}`);
  }
  console.log(
    `assets ${s(assetsMs)}; L1 /init ${s(boot.initMs)}, runner ready ${s(boot.readyMs)}` +
      ` (kvm=${boot.kvm}), done ${s(boot.doneMs)}, qemu exit ${s(boot.totalMs)}` +
      ` status=${boot.qemuStatus}`,
  );
  if (boot.stderr) console.log(`qemu stderr: ${boot.stderr}`);
  const missing = scenarios.filter((sc) => !results.has(sc.name)).map((sc) => sc.name);
  if (missing.length) {
    console.log(`never ran: ${missing.join(" ")}; console:`);
    for (const l of boot.lines) console.log(`[${s(l.ms)}] ${l.text}`);
  }
}
