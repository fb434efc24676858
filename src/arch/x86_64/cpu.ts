/**
 * Per-vCPU CPU setup: CPUID shaped for each vCPU, FPU defaults, and the local
 * APIC's LINT0/LINT1 wiring.
 *
 * @module
 */

import type { CpuidEntry, VcpuFd } from "../../ffi/kvm.ts";

/** CPUID leaf 1 (Intel SDM vol. 2A, CPUID): EBX[31:24] initial APIC ID. */
const LEAF_FEATURES = 0x1;
const EBX_APIC_ID_SHIFT = 24;
/** Leaf 1 ECX bit 31: running under a hypervisor. */
const ECX_HYPERVISOR = 1 << 31;
/** Leaf 0xB / 0x1F (extended topology): EDX is the x2APIC ID. */
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;

/** FPU control word after FNINIT (Intel SDM vol. 1 §8.1.5). */
const FCW_DEFAULT = 0x37f;

/** Local APIC registers (Intel SDM vol. 3A §10.5.1): LVT LINT0 and LINT1. */
const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
/** LVT delivery-mode field, bits 8–10. */
const APIC_DELIVERY_MODE_MASK = 0x700;
const APIC_MODE_EXTINT = 0x7 << 8;
const APIC_MODE_NMI = 0x4 << 8;

/** The supported CPUID table, shaped for vCPU `id`: its APIC ID and the hypervisor bit. */
export function cpuidForVcpu(supported: readonly CpuidEntry[], id: number): CpuidEntry[] {
  return supported.map((leaf) => {
    const e = { ...leaf };
    if (e.function === LEAF_FEATURES) {
      e.ebx = (e.ebx & 0x00ff_ffff) | (id << EBX_APIC_ID_SHIFT);
      e.ecx |= ECX_HYPERVISOR;
    } else if (e.function === LEAF_TOPOLOGY || e.function === LEAF_TOPOLOGY_V2) {
      e.edx = id;
    }
    return e;
  });
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
