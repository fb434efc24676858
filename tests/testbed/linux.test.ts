/**
 * Linux end-to-end tests: Debian's cloud kernel booted by our VMM inside the nested test
 * bed (one L1 boot shared by every scenario), checked from inside the guest by the agent.
 */
import assert from "node:assert/strict";
import { type Scenario, type ScenarioResult, Testbed, typeAfterAgentReport } from "./harness.ts";

/** The bed needs root (apt-get, QEMU) and Debian's package mirrors. */
const CAN_RUN = Deno.uid() === 0;
const SKIP = "needs root to install QEMU and Debian's kernels for the nested test bed";

/** Quiet guests: every console byte is a VM exit. reboot=t/panic=-1: reboot and panic triple-fault. */
const BASE_PARAMS = "quiet reboot=t panic=-1";
const crosvm = (args: string) => `"$DENO" run --allow-all "$PROJECT/main.ts" run ${args}`;
const boot = (action: string, args = "", kernel = "$L2_VMLINUX") =>
  crosvm(`${args} -p "${BASE_PARAMS} agent.action=${action}" -i "$L2_INITRD" "${kernel}"`);

/** A scenario with the checks to make on what it printed. */
interface LinuxTest {
  name: string;
  title: string;
  command: string;
  check: (result: ScenarioResult, agent: Map<string, string>) => void;
}

const TESTS: LinuxTest[] = [
  {
    name: "elf-reboot",
    title: "ELF vmlinux + initrd reaches userspace and `reboot` ends the VM with status 0",
    command: boot("reboot"),
    check: (r, agent) => {
      assert.equal(agent.get("cpus"), "1");
      assert.match(r.output, /vm ended: (reset|triple-fault)/);
    },
  },
  {
    name: "bzimage-poweroff",
    title: "bzImage + initrd reaches userspace and `poweroff` ends the VM with status 0",
    command: boot("poweroff", "", "$L2_KERNEL"),
    check: (r) => assert.match(r.output, /vm ended: shutdown/),
  },
  {
    name: "elf-poweroff",
    title: "ELF vmlinux: `poweroff` ends the VM with status 0",
    command: boot("poweroff"),
    check: (r) => assert.match(r.output, /vm ended: shutdown/),
  },
  {
    name: "panic",
    title: "a guest panic with panic=-1 ends the VM with status 0",
    command: boot("panic"),
    check: (r) => assert.match(r.output, /vm ended: (reset|triple-fault)/),
  },
  ...[2, 4].map((cpus) => ({
    name: `cpus-${cpus}`,
    title: `-c ${cpus}: the guest brings up ${cpus} online CPUs`,
    command: boot("reboot", `-c ${cpus}`),
    check: (_r: ScenarioResult, agent: Map<string, string>) => {
      assert.equal(agent.get("cpus"), String(cpus));
      assert.equal(agent.get("cpus_online"), `0-${cpus - 1}`);
    },
  })),
  ...[256, 1024, 4096].map((mem) => ({
    name: `mem-${mem}`,
    title: `-m ${mem}: the guest sees the memory it was given`,
    command: boot("reboot", `-m ${mem}`),
    check: (_r: ScenarioResult, agent: Map<string, string>) => {
      // The kernel's memory map holds all of it but the legacy BIOS hole (640 KiB–1 MiB).
      const mapMiB = Number(agent.get("memory_kb")) / 1024;
      assert.ok(mapMiB > mem - 1 && mapMiB <= mem, `memory map ${mapMiB} MiB of ${mem}`);
      // MemTotal also excludes what the kernel reserves for itself: its image (~36 MiB
      // here) and per-page structures (64 bytes per 4 KiB page, ~1.6%), plus slack.
      const totalMiB = Number(agent.get("memtotal_kb")) / 1024;
      const reserved = mapMiB - totalMiB;
      assert.ok(reserved > 0 && reserved < 40 + mem / 24, `MemTotal ${totalMiB} MiB of ${mem}`);
    },
  })),
  {
    name: "params-rtc",
    title: "-p parameters reach /proc/cmdline and the guest's RTC matches the host's clock",
    command: boot("reboot", "-p first=1 -p second=2"),
    check: (r, agent) => {
      assert.match(agent.get("cmdline") ?? "", /first=1 second=2 quiet reboot=t/);
      const rtcLine = r.lines.find((l) => l.text.startsWith("rtc_epoch="));
      assert.ok(rtcLine, "the agent reported the RTC");
      const drift = Number(agent.get("rtc_epoch")) - rtcLine.epochMs / 1000;
      assert.ok(Math.abs(drift) < 5, `RTC is ${drift.toFixed(1)} s off the host clock`);
    },
  },
  {
    name: "stdin",
    title: "a line typed on the serial console reaches the guest and is answered",
    command: typeAfterAgentReport(boot("echo"), ["typed into the guest"]),
    check: (r) => assert.match(r.output, /echo=typed into the guest/),
  },
];

/** key=value lines between the agent's markers. */
function agentReport(output: string): Map<string, string> {
  const report = /@@AGENT BEGIN\n([\s\S]*?)\n@@AGENT END/.exec(output);
  assert.ok(report, `no agent report in:\n${output}`);
  return new Map(
    report[1].split("\n").map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1)] as [string, string];
    }),
  );
}

let results: Promise<Map<string, ScenarioResult>> | undefined;
/** Boots L1 once, on first use, with every scenario. */
function bedResults(): Promise<Map<string, ScenarioResult>> {
  const scenarios: Scenario[] = TESTS.map((t) => ({
    name: t.name,
    command: t.command,
    timeoutSeconds: 240,
  }));
  // -m 4096 needs L1 to allow a 4 GiB SharedArrayBuffer: give L1 room to overcommit.
  // -c 4 needs 4 L1 CPUs: with 2, L1's nested SVM once kept a vCPU thread in KVM_RUN for
  // 75 s (an L1 soft lockup) while the L2 kernel waited on it.
  results ??= new Testbed({ memMiB: 6144, cpus: 4 }).boot(scenarios);
  return results;
}

for (const t of TESTS) {
  Deno.test({
    name: CAN_RUN ? `linux: ${t.title}` : `linux: ${t.title} [ignored: ${SKIP}]`,
    ignore: !CAN_RUN,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const result = (await bedResults()).get(t.name);
      assert.ok(result, `scenario ${t.name} did not run`);
      const seconds = (result.durationMs / 1000).toFixed(1);
      console.log(`  ${t.name}: status ${result.status} in ${seconds} s`);
      assert.equal(result.status, 0, `status ${result.status}:\n${result.output}`);
      t.check(result, agentReport(result.output));
    },
  });
}
