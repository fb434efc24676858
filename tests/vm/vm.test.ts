import { settledFdCount } from "../helpers/fds.ts";
import assert from "node:assert/strict";
import { ImageError, VmSetupError } from "../../mod.ts";
import { kvmTest } from "../helpers/kvm.ts";
import { runGuest } from "../helpers/run_guest.ts";

kvmTest(
  "a guest's COM1 writes reach the serial output and an i8042 reset ends the VM",
  async () => {
    const { result, output } = await runGuest("hello");
    assert.equal(output, "Hello from the guest\n");
    assert.equal(result.reason, "reset");
    assert.equal(result.error, undefined);
  },
);

kvmTest(
  "an ELF linked like vmlinux loads by p_paddr and enters at the physical e_entry",
  async () => {
    // The same program as above, linked at 0xffffffff81000000 virtual, 16 MiB physical.
    const { result, output } = await runGuest("hello", { script: "high" });
    assert.equal(output, "Hello from the guest\n");
    assert.equal(result.reason, "reset");
  },
);

kvmTest("PIO and MMIO reads return device data to the guest", async () => {
  const RESULTS = 0x300000;
  const HOST_VALUE = 0x300100;
  const { result, output, memory } = await runGuest("dispatch", {
    before: (vm) => vm.memory.writeU64(HOST_VALUE, 0x1122_3344_5566_7788n),
  });
  assert.equal(result.reason, "reset");
  assert.equal(output, "D");
  const hostBridgeId = memory.readU32(RESULTS);
  assert.notEqual(hostBridgeId, 0xffff_ffff, "host bridge present at 00:00.0");
  assert.equal(memory.readU32(RESULTS + 4), hostBridgeId, "ECAM agrees with 0xCF8/0xCFC");
  assert.equal(memory.readU32(RESULTS + 8), 0x8000_0000, "CONFIG_ADDRESS reads back");
  assert.equal(memory.readU32(RESULTS + 12), 0x80, "CMOS status D: valid RAM and time");
  assert.equal(memory.readU32(RESULTS + 16), 0xffff_ffff, "absent device reads all-ones");
  assert.equal(memory.readU32(RESULTS + 20), 0xff, "unclaimed port floats high");
  assert.equal(memory.readU32(RESULTS + 24), 0x5a, "COM1 scratch register round trip");
  assert.equal(memory.readU64(RESULTS + 32), 0x1122_3344_5566_7788n, "host write seen by guest");
  assert.ok(result.stats[0].pioExits >= 8 && result.stats[0].mmioExits >= 2);
});

kvmTest("two vCPUs run at once and share guest memory with each other and the host", async () => {
  const MAILBOX = 0x11000;
  const { result, output, memory } = await runGuest("smp", {
    config: { cpus: 2 },
    before: (vm) => vm.memory.writeU32(MAILBOX, 0x1234),
  });
  assert.equal(result.reason, "reset", result.error);
  assert.equal(output, "A1B", "the AP reports APIC ID 1 before the BSP finishes");
  assert.equal(memory.readU32(MAILBOX + 8), 0x1235, "AP read the host's value and answered");
  assert.equal(memory.readU32(MAILBOX + 16), 0x5678, "BSP's write is visible to the host");
  assert.equal(result.stats.length, 2);
});

kvmTest("a triple fault ends the VM cleanly", async () => {
  const { result, output } = await runGuest("triple_fault");
  assert.equal(output, "T");
  assert.equal(result.reason, "triple-fault");
  assert.equal(result.error, undefined);
});

for (const [guest, marker] of [["spin", "R"], ["halt", "H"]] as const) {
  kvmTest(
    `stop() ends a ${guest === "spin" ? "spinning" : "halted"} guest on every vCPU`,
    async () => {
      const { result, output } = await runGuest(guest, {
        config: { cpus: 2 },
        before: (vm) => setTimeout(() => vm.stop(), 500),
      });
      assert.equal(output, marker);
      assert.equal(result.reason, "stop");
      assert.equal(result.stats.length, 2, "both vCPU Workers joined");
    },
  );
}

kvmTest("no file descriptor outlives the VM", async () => {
  await runGuest("hello"); // warm up: Deno opens its own descriptors lazily on first use
  const before = await settledFdCount();
  await runGuest("hello", { config: { cpus: 2 } });
  assert.equal(await settledFdCount(), before);
});

kvmTest("more vCPUs than KVM allows is a setup error that leaves nothing open", async () => {
  const before = await settledFdCount();
  await assert.rejects(
    runGuest("hello", { config: { cpus: 100_000 } }),
    (e: Error) => e instanceof VmSetupError && /KVM allows at most \d+/.test(e.message),
  );
  assert.equal(await settledFdCount(), before);
});

kvmTest("a kernel that does not fit in guest memory is an image error", async () => {
  await assert.rejects(
    runGuest("hello", { script: "high", config: { memMiB: 8 } }),
    (e: Error) => e instanceof ImageError && /does not fit in guest memory/.test(e.message),
  );
});
