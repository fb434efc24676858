// Per-vCPU CPUID and boot MSRs, checked against the CPUID table and vCPUs of the real
// /dev/kvm. Bit positions from Intel SDM vol. 2A, "CPUID—CPU Identification".

import assert from "node:assert/strict";
import { bootMsrs, cpuidForVcpu } from "../../src/arch/x86_64/cpu.ts";
import { type CpuidEntry, Kvm } from "../../src/ffi/kvm.ts";
import { Exit } from "../../src/ffi/kvm_abi.ts";
import { withFlatGuest } from "../helpers/flat_guest.ts";
import { HAVE_KVM, kvmTest } from "../helpers/kvm.ts";
import { withVcpu } from "../helpers/vcpu.ts";

/** KVM_GET_SUPPORTED_CPUID of this host, or an empty table where KVM is unusable. */
const SUPPORTED: readonly CpuidEntry[] = HAVE_KVM
  ? (() => {
    const kvm = Kvm.open();
    try {
      return kvm.supportedCpuid();
    } finally {
      kvm.close();
    }
  })()
  : [];

/** What CPUID returns: EAX, EBX, ECX and EDX. */
type CpuidResult = Pick<CpuidEntry, "eax" | "ebx" | "ecx" | "edx">;

/** Leaf 1 bits: EBX[31:24] initial APIC ID, EBX[23:16] logical processor count. */
const apicId = (leaf1: CpuidResult) => leaf1.ebx >>> 24;
const logicalCount = (leaf1: CpuidResult) => (leaf1.ebx >>> 16) & 0xff;
/** Leaf 1 EDX[28]: HTT. */
const htt = (leaf1: CpuidResult) => (leaf1.edx >>> 28) & 1;
/** Leaf 1 ECX[31]: hypervisor present. */
const hypervisor = (leaf1: CpuidResult) => leaf1.ecx >>> 31;
/** Leaf 0xB ECX[15:8]: level type (0 invalid, 1 SMT, 2 core). */
const levelType = (level: CpuidResult) => (level.ecx >>> 8) & 0xff;

function find(table: readonly CpuidEntry[], fn: number, index = 0): CpuidEntry {
  const entry = table.find((e) => e.function === fn && e.index === index);
  assert.ok(entry, `CPUID leaf 0x${fn.toString(16)} subleaf ${index} is in the table`);
  return entry;
}

kvmTest("cpuidForVcpu, vCPU 2 of 4: leaf 1 has APIC ID 2, 4 logical CPUs, HTT, hypervisor", () => {
  const table = cpuidForVcpu(SUPPORTED, 2, 4);
  const leaf1 = find(table, 1);
  assert.equal(apicId(leaf1), 2);
  assert.equal(logicalCount(leaf1), 4);
  assert.equal(htt(leaf1), 1, "EDX.HTT: EBX[23:16] is valid");
  assert.equal(hypervisor(leaf1), 1, "ECX[31]: running under a hypervisor");
  const host = find(SUPPORTED, 1);
  assert.equal(leaf1.ebx & 0xffff, host.ebx & 0xffff, "CLFLUSH size and brand index kept");
  assert.equal(leaf1.eax, host.eax, "family/model/stepping kept");
  assert.equal(leaf1.ecx & 0x7fff_ffff, host.ecx & 0x7fff_ffff, "other feature bits kept");
  assert.equal(leaf1.edx & ~(1 << 28), host.edx & ~(1 << 28), "other feature bits kept");
});

kvmTest("cpuidForVcpu, vCPU 2 of 4: leaf 0xB subleaf 0 is the SMT level, EDX the x2APIC ID", () => {
  const smt = find(cpuidForVcpu(SUPPORTED, 2, 4), 0xb, 0);
  assert.equal(levelType(smt), 1, "ECX[15:8] = 1: SMT");
  assert.equal(smt.ecx & 0xff, 0, "ECX[7:0] echoes the subleaf");
  assert.equal(smt.ebx & 0xffff, 1, "one thread per core");
  assert.equal(smt.eax & 0x1f, 0, "no x2APIC ID bits for threads");
  assert.equal(smt.edx, 2);
});

kvmTest("cpuidForVcpu, vCPU 2 of 4: leaf 0xB subleaf 1 is the core level of 4 cores", () => {
  const table = cpuidForVcpu(SUPPORTED, 2, 4);
  const core = find(table, 0xb, 1);
  assert.equal(levelType(core), 2, "ECX[15:8] = 2: core");
  assert.equal(core.ecx & 0xff, 1);
  assert.equal(core.ebx & 0xffff, 4, "four logical processors in the package");
  assert.equal(core.eax & 0x1f, 2, "shift the x2APIC ID by 2 bits for the package ID");
  assert.equal(core.edx, 2);
});

kvmTest("cpuidForVcpu, vCPU 2 of 4: leaf 0xB subleaf 2 ends the enumeration, none after it", () => {
  const table = cpuidForVcpu(SUPPORTED, 2, 4);
  const end = find(table, 0xb, 2);
  assert.equal(levelType(end), 0, "ECX[15:8] = 0: invalid level");
  assert.deepEqual([end.eax, end.ebx, end.ecx & 0xff, end.edx], [0, 0, 2, 2]);
  assert.deepEqual(
    table.filter((e) => e.function === 0xb).map((e) => e.index),
    [0, 1, 2],
    "exactly subleaves 0-2",
  );
});

/** A supported table holding leaf 0 (highest basic leaf `maxBasic`) plus `entries`. */
function supportedWith(maxBasic: number, ...entries: CpuidEntry[]): CpuidEntry[] {
  return [{ function: 0, index: 0, flags: 0, eax: maxBasic, ebx: 0, ecx: 0, edx: 0 }, ...entries];
}

Deno.test("cpuidForVcpu writes leaf 0xB whole even where KVM lists only a later subleaf", () => {
  const onlySubleaf1 = { function: 0xb, index: 1, flags: 1, eax: 9, ebx: 9, ecx: 0x209, edx: 9 };
  const table = cpuidForVcpu(supportedWith(0xd, onlySubleaf1), 3, 4);
  const [smt, core, end] = [0, 1, 2].map((i) => find(table, 0xb, i));
  assert.deepEqual([smt.eax, smt.ebx, smt.ecx, smt.edx], [0, 1, 0x100, 3]);
  assert.deepEqual([core.eax, core.ebx, core.ecx, core.edx], [2, 4, 0x201, 3]);
  assert.deepEqual([end.eax, end.ebx, end.ecx, end.edx], [0, 0, 2, 3]);
  assert.equal(table.filter((e) => e.function === 0xb).length, 3);
});

Deno.test("cpuidForVcpu adds leaf 0xB where KVM lists none but leaf 0 reaches it", () => {
  const table = cpuidForVcpu(supportedWith(0xd), 1, 2);
  assert.deepEqual(
    [0, 1, 2].map((i) => levelType(find(table, 0xb, i))),
    [1, 2, 0],
    "SMT, core, invalid",
  );
  assert.deepEqual(find(table, 0xb, 1), {
    function: 0xb,
    index: 1,
    flags: 1,
    eax: 1,
    ebx: 2,
    ecx: 0x201,
    edx: 1,
  }, "two cores: one bit of core ID, x2APIC ID 1");
  assert.equal(table.some((e) => e.function === 0x1f), false, "leaf 0 stops short of 0x1F");
});

Deno.test("cpuidForVcpu adds no topology leaf a guest cannot ask for, and 0x1F where it can", () => {
  assert.deepEqual(cpuidForVcpu(supportedWith(0xa), 0, 1), supportedWith(0xa), "0xB > leaf 0");
  const v2 = cpuidForVcpu(supportedWith(0x1f), 2, 3);
  for (const fn of [0xb, 0x1f]) {
    const core = find(v2, fn, 1);
    assert.deepEqual([core.eax, core.ebx, core.ecx, core.edx], [2, 3, 0x201, 2], "ceil(log2 3)");
  }
});

Deno.test("cpuidForVcpu rewrites every 0xB/0x1F subleaf it is given: SMT, core, then invalid", () => {
  // The shape older KVMs report: subleaves 0-2 of both topology leaves, with host values.
  const host = (fn: number, index: number): CpuidEntry => ({
    function: fn,
    index,
    flags: 1,
    eax: 0x1f,
    ebx: 0xffff,
    ecx: 0xffff,
    edx: 0xffff_ffff,
  });
  const supported = [0xb, 0x1f].flatMap((fn) => [0, 1, 2].map((i) => host(fn, i)));
  const table = cpuidForVcpu(supported, 5, 6);
  for (const fn of [0xb, 0x1f]) {
    const [smt, core, end] = [0, 1, 2].map((i) => find(table, fn, i));
    assert.deepEqual([smt.eax, smt.ebx, smt.ecx, smt.edx], [0, 1, 0x100, 5]);
    assert.deepEqual([core.eax, core.ebx, core.ecx, core.edx], [3, 6, 0x201, 5], "ceil(log2 6)");
    assert.equal(levelType(end), 0, "level type 0 ends the enumeration");
    assert.deepEqual([end.eax, end.ebx, end.ecx & 0xff], [0, 0, 2]);
    assert.equal(smt.flags, 1, "KVM_CPUID_FLAG_SIGNIFCANT_INDEX kept");
  }
  assert.deepEqual(supported[0], host(0xb, 0), "the supported table is not modified");
});

kvmTest("cpuidForVcpu, a single vCPU: HTT clear, APIC ID 0, still a hypervisor", () => {
  const leaf1 = find(cpuidForVcpu(SUPPORTED, 0, 1), 1);
  assert.equal(htt(leaf1), 0);
  assert.equal(apicId(leaf1), 0);
  assert.equal(hypervisor(leaf1), 1);
});

kvmTest("cpuidForVcpu leaves the other leaves and the supported table untouched", () => {
  const before = structuredClone(SUPPORTED);
  const table = cpuidForVcpu(SUPPORTED, 3, 4);
  assert.deepEqual(SUPPORTED, before);
  for (const leaf of SUPPORTED.filter((e) => ![1, 0xb, 0x1f].includes(e.function))) {
    assert.deepEqual(find(table, leaf.function, leaf.index), leaf);
  }
});

/** MSR numbers (Intel SDM vol. 4). */
const IA32_TSC = 0x10;
const IA32_MISC_ENABLE = 0x1a0;
const IA32_MTRR_DEF_TYPE = 0x2ff;

kvmTest("bootMsrs: a real vCPU accepts them and reads back MISC_ENABLE and MTRR def type", () => {
  withVcpu(({ vcpu }) => {
    vcpu.setCpuid(cpuidForVcpu(SUPPORTED, 0, 1));
    const msrs = bootMsrs();
    vcpu.setMsrs(msrs);
    const get = (index: number) => vcpu.getMsrs([index])[0]?.data;
    assert.equal(get(IA32_MISC_ENABLE), 1n, "bit 0: fast-string operations enabled");
    assert.equal(get(IA32_MTRR_DEF_TYPE), 0x806n, "E (bit 11) set, default type 6 = WB");
    // Every other boot MSR reads back as written. Not the TSC: it runs on, and KVM applies
    // its TSC-synchronisation heuristics to a host-initiated write (arch/x86/kvm/x86.c).
    const others = msrs.filter((m) => m.index !== IA32_TSC);
    assert.ok(others.length < msrs.length, "bootMsrs sets the TSC");
    assert.deepEqual(vcpu.getMsrs(others.map((m) => m.index)), others);
  });
});

kvmTest(
  "cpuidForVcpu: KVM_SET_CPUID2 accepts the table for each vCPU of 4, and the guest reads it back",
  async () => {
    for (let id = 0; id < 4; id++) {
      const table = cpuidForVcpu(SUPPORTED, id, 4);
      // tests/guests/cpuid.S: CPUID with the host's EAX and ECX, then HLT (an exit: no irqchip).
      await withFlatGuest("cpuid", { vcpuId: id }, ({ vcpu, run }) => {
        vcpu.setCpuid(table);
        const cpuid = (fn: number, index = 0): CpuidResult => {
          const regs = vcpu.getRegs();
          regs.setU64("rax", fn);
          regs.setU64("rcx", index);
          vcpu.setRegs(regs);
          assert.equal(run().reason, Exit.KVM_EXIT_HLT, `vCPU ${id} ran CPUID and halted`);
          const out = vcpu.getRegs();
          const low32 = (name: "rax" | "rbx" | "rcx" | "rdx") =>
            Number(out.u64(name) & 0xffff_ffffn);
          return { eax: low32("rax"), ebx: low32("rbx"), ecx: low32("rcx"), edx: low32("rdx") };
        };
        const leaf1 = cpuid(1);
        assert.equal(apicId(leaf1), id, `vCPU ${id}: leaf 1 initial APIC ID`);
        assert.equal(leaf1.ebx, find(table, 1).ebx, "leaf 1 EBX as set: count, CLFLUSH, brand");
        assert.equal(htt(leaf1), 1);
        assert.equal(hypervisor(leaf1), 1);
        for (const index of [0, 1, 2]) {
          const { eax, ebx, ecx, edx } = find(table, 0xb, index);
          assert.deepEqual(cpuid(0xb, index), { eax, ebx, ecx, edx }, `leaf 0xB subleaf ${index}`);
        }
      });
    }
  },
);
