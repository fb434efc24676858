import assert from "node:assert/strict";
import {
  RESET_VECTOR_ADDRESS,
  resetVectorStub,
} from "../../../src/arch/x86_64/boot/reset_vector.ts";
import { MIB, ramRegions } from "../../../src/arch/x86_64/layout.ts";
import { Bus } from "../../../src/bus.ts";
import { ACPI_PM_PORT, ACPI_PM_PORT_COUNT, AcpiPm } from "../../../src/devices/legacy/acpi_pm.ts";
import type { GuestExitReason } from "../../../src/devices/context.ts";
import { getSegment, Kvm, setSegment } from "../../../src/ffi/kvm.ts";
import { Exit, KVM_EXIT_IO_OUT, KVM_RUN_LAYOUT } from "../../../src/ffi/kvm_abi.ts";
import { munmap, viewOf } from "../../../src/ffi/libc.ts";
import { GuestMemory } from "../../../src/memory.ts";
import { kvmTest } from "../../helpers/vcpu.ts";

/** The reset vector as a real-mode far pointer: F000:FFF0. */
const RESET_SEGMENT = 0xf000;
const RESET_OFFSET = 0xfff0;
/** The FADT's reset register and value (see tests/arch/acpi.test.ts). */
const RESET_PORT = 0x602;
const RESET_VALUE = 0x06;

Deno.test("the stub sits at F000:FFF0 and fits below 1 MiB", () => {
  assert.equal(RESET_VECTOR_ADDRESS, RESET_SEGMENT * 16 + RESET_OFFSET);
  assert.ok(RESET_VECTOR_ADDRESS + resetVectorStub().length <= 0x10_0000);
});

Deno.test("objdump reads the stub as: write the reset value to the reset port, then halt", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/stub.bin`, resetVectorStub());
    const args = ["-D", "-b", "binary", "-m", "i8086", "--adjust-vma=0xfff0", `${dir}/stub.bin`];
    const out = await new Deno.Command("objdump", { args, stdout: "piped" }).output();
    assert.ok(out.success);
    const instructions = [
      ...new TextDecoder().decode(out.stdout).matchAll(/^\s*[0-9a-f]+:\t[^\t]+\t(.*)$/gm),
    ]
      .map((m) => m[1].replace(/\s+/g, " ").trim());
    assert.deepEqual(instructions, [
      "mov $0x6,%al",
      "mov $0x602,%dx",
      "out %al,(%dx)",
      "cli",
      "hlt",
      "jmp 0xfff7", // back to the hlt
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

kvmTest("run in real mode from F000:FFF0, the stub makes the ACPI PM device reset the VM", () => {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const memory = GuestMemory.allocate(ramRegions(2 * MIB));
  const vcpu = vm.createVcpu(0);
  const runSize = kvm.vcpuMmapSize();
  const runAddress = vcpu.mapRun(runSize);
  try {
    memory.register(vm);
    memory.write(RESET_VECTOR_ADDRESS, resetVectorStub());
    // Where Linux's `ljmpw $0xf000, $0xfff0` leaves the vCPU: real mode, CS base 0xF0000.
    const sregs = vcpu.getSregs();
    setSegment(sregs, "cs", {
      ...getSegment(sregs, "cs"),
      selector: RESET_SEGMENT,
      base: BigInt(RESET_SEGMENT * 16),
    });
    vcpu.setSregs(sregs);
    const regs = vcpu.getRegs();
    regs.setU64("rip", BigInt(RESET_OFFSET));
    vcpu.setRegs(regs);

    vcpu.run();
    const run = new Uint8Array(viewOf(runAddress, runSize));
    const view = new DataView(run.buffer);
    const f = KVM_RUN_LAYOUT.fields;
    assert.equal(view.getUint32(f.exit_reason, true), Exit.KVM_EXIT_IO);
    assert.equal(run[f["io.direction"]], KVM_EXIT_IO_OUT);
    assert.equal(view.getUint16(f["io.port"], true), RESET_PORT);
    assert.equal(run[f["io.size"]], 1);
    const data = run.subarray(Number(view.getBigUint64(f["io.data_offset"], true))).subarray(0, 1);
    assert.deepEqual([...data], [RESET_VALUE]);

    const exits: GuestExitReason[] = [];
    const bus = new Bus("pio");
    const pm = new AcpiPm("acpi-pm", { requestExit: (r) => exits.push(r) });
    bus.insert(pm, ACPI_PM_PORT, ACPI_PM_PORT_COUNT);
    assert.ok(bus.write(RESET_PORT, data));
    assert.deepEqual(exits, ["reset"]);
  } finally {
    munmap(runAddress, runSize);
    vcpu.close();
    vm.close();
    kvm.close();
  }
});
