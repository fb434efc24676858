/**
 * `deno task demo`: boots a small Linux guest (Debian's cloud kernel and a busybox
 * initramfs, fetched on first use) with our VMM, to a shell on the serial console.
 *
 * Where /dev/kvm can boot stock Linux (hardware virtualization), the guest runs directly;
 * where it cannot (our PVM machines), it runs inside the nested QEMU test bed. With a
 * terminal the shell is interactive (`poweroff -f` ends it); without one (CI), the demo runs
 * one command in the guest, prints the result, and exits 0.
 *
 * @module
 */

import { ensureAssets, PROJECT_ROOT } from "../tests/testbed/assets.ts";
import { Testbed, typeAfterAgentReport } from "../tests/testbed/harness.ts";

/** The guest: quiet (each console byte is a VM exit), reboot and panic end the VM. */
const PARAMS = "quiet reboot=t panic=-1 agent.action=shell";
/** What the demo types into the guest's shell when nobody is at a terminal. */
const DEMO_COMMAND = "uname -a";
const VMM = `"$DENO" run --allow-all "$PROJECT/main.ts" run -p "${PARAMS}" -i "$L2_INITRD"`;

/** Boots the guest, types `command` and then `poweroff -f` into its shell, prints it all. */
function scriptedSession(command: string): string {
  return typeAfterAgentReport(`${VMM} "$L2_VMLINUX"`, [command, "poweroff -f"]);
}

/** True when /dev/kvm has hardware virtualization behind it (not PVM, not absent). */
async function kvmBootsLinux(): Promise<boolean> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const hardware = /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
  const pvm = await Deno.stat("/sys/module/kvm_pvm").then(() => true, () => false);
  const kvm = await Deno.stat("/dev/kvm").then(() => true, () => false);
  return kvm && hardware && !pvm;
}

const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
const direct = await kvmBootsLinux();
console.log(
  direct
    ? "demo: /dev/kvm has hardware virtualization: booting the guest directly."
    : "demo: this /dev/kvm cannot boot stock Linux (PVM or no VMX/SVM): booting the guest " +
      "inside the nested QEMU test bed (L1 under TCG, our VMM and the guest inside it).",
);
console.log("demo: fetching Debian's kernels and busybox on first use (needs root)...");
const assets = await ensureAssets();
console.log(
  interactive
    ? "demo: a shell on the guest's serial console follows; `poweroff -f` ends it."
    : `demo: no terminal: running \`${DEMO_COMMAND}\` in the guest.`,
);

let status: number;
if (direct) {
  const env = {
    DENO: Deno.execPath(),
    PROJECT: PROJECT_ROOT,
    L2_VMLINUX: assets.l2Vmlinux,
    L2_INITRD: assets.l2Initrd,
  };
  const script = interactive ? `exec ${VMM} "$L2_VMLINUX"` : scriptedSession(DEMO_COMMAND);
  const shell = new Deno.Command("sh", { args: ["-c", script], env, stdin: "inherit" });
  status = (await shell.output()).code;
} else {
  const bed = new Testbed({ assets });
  if (interactive) {
    status = await bed.attach({
      name: "demo",
      command: `exec ${VMM} "$L2_VMLINUX"`,
      timeoutSeconds: 0,
    });
  } else {
    const results = await bed.boot([
      { name: "demo", command: scriptedSession(DEMO_COMMAND), timeoutSeconds: 300 },
    ]);
    const demo = results.get("demo");
    console.log(demo?.output ?? bed.lastBoot?.lines.map((l) => l.text).join("\n"));
    status = demo?.status ?? 1;
  }
}
console.log(`demo: the VMM exited with status ${status}`);
Deno.exit(status);
