/**
 * Per-vCPU CPU setup: CPUID shaped for each vCPU, FPU defaults, and the local
 * APIC's LINT0/LINT1 wiring.
 *
 * @module
 */

import type { CpuidEntry, MsrEntry, VcpuFd } from "../../ffi/kvm.ts";

/** CPUID leaf 1 (Intel SDM vol. 2A, CPUID): EBX[31:24] initial APIC ID. */
const LEAF_FEATURES = 0x1;
const EBX_APIC_ID_SHIFT = 24;
/** Leaf 1 EBX[23:16]: addressable logical processor IDs in the package. */
const EBX_LOGICAL_COUNT_SHIFT = 16;
/** Leaf 1 EDX bit 28: HTT, the EBX[23:16] count is valid. */
const EDX_HTT = 1 << 28;
/** Leaf 1 ECX bit 31: running under a hypervisor. */
const ECX_HYPERVISOR = 1 << 31;
/** Leaf 0xB / 0x1F (extended topology): one subleaf per level, EDX the x2APIC ID. */
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;
/** Topology level types in ECX[15:8]: SMT (threads) and core. */
const LEVEL_SMT = 1;
const LEVEL_CORE = 2;
/** `kvm_cpuid_entry2.flags`: the subleaf index matters (`KVM_CPUID_FLAG_SIGNIFCANT_INDEX`). */
const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;

/** FPU control word after FNINIT (Intel SDM vol. 1 §8.1.5). */
const FCW_DEFAULT = 0x37f;

/** Local APIC registers (Intel SDM vol. 3A §10.5.1): LVT LINT0 and LINT1. */
const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
/** LVT delivery-mode field, bits 8–10. */
const APIC_DELIVERY_MODE_MASK = 0x700;
const APIC_MODE_EXTINT = 0x7 << 8;
const APIC_MODE_NMI = 0x4 << 8;

/** CPUID leaf 0 EAX: the highest basic leaf the CPU answers. */
const LEAF_MAX_BASIC = 0x0;

/**
 * The supported CPUID table shaped for vCPU `id` of `cpus`: its APIC ID, the hypervisor
 * bit, and a topology of one package with `cpus` single-threaded cores.
 *
 * The extended topology leaves 0xB and 0x1F are written whole, whatever subleaves KVM listed
 * (recent kernels list subleaf 0 only, zeroed; older ones the host's levels): subleaf 0 the SMT
 * level, 1 the core level, 2 the invalid level that ends the enumeration. Linux's
 * `detect_extended_topology` reads subleaf 0 and then walks up until that invalid level: without
 * subleaf 1 it finds no core level and puts every vCPU in a package of its own. Each leaf is
 * written where KVM lists any subleaf of it, or where leaf 0 lets the guest ask for it (highest
 * basic leaf ≥ the leaf).
 */
export function cpuidForVcpu(
  supported: readonly CpuidEntry[],
  id: number,
  cpus: number,
): CpuidEntry[] {
  const shaped: CpuidEntry[] = [];
  const hasLeaf = (fn: number) => shaped.some((e) => e.function === fn);
  for (const leaf of supported) {
    if (leaf.function === LEAF_TOPOLOGY || leaf.function === LEAF_TOPOLOGY_V2) {
      // Written whole in place of the first subleaf KVM lists, whichever it is; the rest go.
      if (!hasLeaf(leaf.function)) shaped.push(...topologyLeaves(leaf.function, id, cpus));
      continue;
    }
    const e = { ...leaf };
    if (e.function === LEAF_FEATURES) {
      e.ebx = (e.ebx & 0x0000_ffff) | (id << EBX_APIC_ID_SHIFT) |
        (cpus << EBX_LOGICAL_COUNT_SHIFT);
      e.ecx |= ECX_HYPERVISOR;
      e.edx = cpus > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT;
    }
    shaped.push(e);
  }
  // A topology leaf KVM does not list at all, though leaf 0 lets the guest ask for it.
  const maxBasic = supported.find((e) => e.function === LEAF_MAX_BASIC && e.index === 0)?.eax ?? 0;
  for (const fn of [LEAF_TOPOLOGY, LEAF_TOPOLOGY_V2]) {
    if (fn <= maxBasic && !hasLeaf(fn)) shaped.push(...topologyLeaves(fn, id, cpus));
  }
  return shaped;
}

/**
 * The subleaves of extended-topology leaf `fn` (0xB or 0x1F): SMT, core, then the
 * invalid level that ends the list, each with the x2APIC ID in EDX.
 */
function topologyLeaves(fn: number, id: number, cpus: number): CpuidEntry[] {
  return [0, 1, 2].map((index) => ({
    function: fn,
    index,
    flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
    ...topologyLevel(index, cpus),
    edx: id,
  }));
}

/** Extended topology subleaf `index`: level 0 one thread per core, level 1 `cpus` cores. */
function topologyLevel(index: number, cpus: number): Pick<CpuidEntry, "eax" | "ebx" | "ecx"> {
  if (index === 0) return { eax: 0, ebx: 1, ecx: (LEVEL_SMT << 8) | index };
  if (index === 1) {
    return { eax: Math.ceil(Math.log2(cpus)), ebx: cpus, ecx: (LEVEL_CORE << 8) | index };
  }
  return { eax: 0, ebx: 0, ecx: index };
}

/** MSR numbers (Intel SDM vol. 4, "Model-Specific Registers"). */
const Msr = {
  IA32_TSC: 0x10,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  IA32_MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SYSCALL_MASK: 0xc000_0084,
  KERNEL_GS_BASE: 0xc000_0102,
} as const;
/** IA32_MISC_ENABLE bit 0: fast string operations. */
const MISC_ENABLE_FAST_STRING = 1n;
/** IA32_MTRR_DEF_TYPE: MTRRs enabled (bit 11), default memory type write-back (6). */
const MTRR_ENABLE_WRITE_BACK = (1n << 11n) | 6n;

/** The MSR values a vCPU starts with: syscall MSRs cleared, fast strings, write-back MTRRs. */
export function bootMsrs(): MsrEntry[] {
  return [
    { index: Msr.IA32_SYSENTER_CS, data: 0n },
    { index: Msr.IA32_SYSENTER_ESP, data: 0n },
    { index: Msr.IA32_SYSENTER_EIP, data: 0n },
    { index: Msr.STAR, data: 0n },
    { index: Msr.CSTAR, data: 0n },
    { index: Msr.KERNEL_GS_BASE, data: 0n },
    { index: Msr.SYSCALL_MASK, data: 0n },
    { index: Msr.LSTAR, data: 0n },
    { index: Msr.IA32_TSC, data: 0n },
    { index: Msr.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: Msr.IA32_MTRR_DEF_TYPE, data: MTRR_ENABLE_WRITE_BACK },
  ];
}

/**
 * Puts the x87 FPU in its FNINIT state. (KVM_SET_FPU does not carry MXCSR; a new
 * vCPU's MXCSR already has its power-up value 0x1F80, all SSE exceptions masked.)
 */
export function setDefaultFpu(vcpu: VcpuFd): void {
  const fpu = vcpu.getFpu();
  fpu.bytes.fill(0);
  fpu.setU16("fcw", FCW_DEFAULT);
  vcpu.setFpu(fpu);
}

/** Wires LINT0 as ExtINT (the 8259 PIC) and LINT1 as NMI, as a PC BIOS leaves them. */
export function setLocalInterrupts(vcpu: VcpuFd): void {
  const lapic = vcpu.getLapic();
  const view = new DataView(lapic.buffer);
  const set = (reg: number, mode: number) =>
    view.setUint32(reg, (view.getUint32(reg, true) & ~APIC_DELIVERY_MODE_MASK) | mode, true);
  set(APIC_LVT_LINT0, APIC_MODE_EXTINT);
  set(APIC_LVT_LINT1, APIC_MODE_NMI);
  vcpu.setLapic(lapic);
}
