/**
 * The in-kernel irqchip's state, as tests program and observe it: the IOAPIC through
 * KVM_GET_IRQCHIP / KVM_SET_IRQCHIP (`struct kvm_irqchip`, `struct kvm_ioapic_state` in
 * <asm/kvm.h>), and the local APIC's registers through KVM_GET_LAPIC / KVM_SET_LAPIC (Intel SDM
 * vol. 3A §11.4.1, "Local APIC Register Address Map"). {@link IRQCHIP_C_CLAIMS} lists the ioctl
 * numbers and offsets used here, for a test to hold against <linux/kvm.h>.
 *
 * @module
 */

import type { VcpuFd, VmFd } from "../../src/ffi/kvm.ts";
import { ioctlBuf } from "../../src/ffi/libc.ts";
import type { CClaim } from "./c_values.ts";

/** `sizeof(struct kvm_irqchip)`: chip_id, pad, then a 512-byte union of the chips' states. */
const KVM_IRQCHIP_SIZE = 520;
/** `KVMIO` and the `_IOC` directions (`<asm-generic/ioctl.h>`). */
const KVMIO = 0xae;
const IOC_WRITE = 1;
const IOC_READ = 2;
const ioc = (dir: number, nr: number, size: number) =>
  ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
/** `KVM_GET_IRQCHIP`: `_IOWR(KVMIO, 0x62, struct kvm_irqchip)`. */
export const KVM_GET_IRQCHIP = ioc(IOC_READ | IOC_WRITE, 0x62, KVM_IRQCHIP_SIZE);
/** `KVM_SET_IRQCHIP`: `_IOR(KVMIO, 0x63, struct kvm_irqchip)` (sic: the header says read). */
export const KVM_SET_IRQCHIP = ioc(IOC_READ, 0x63, KVM_IRQCHIP_SIZE);
/** `kvm_irqchip.chip_id` of the IOAPIC (`KVM_IRQCHIP_IOAPIC`). */
const CHIP_IOAPIC = 2;
/** Offsets in `struct kvm_irqchip` of the IOAPIC's `irr` (its pins' levels) and `redirtbl`. */
const IOAPIC_IRR = 24;
const IOAPIC_REDIRTBL = 32;
/** `KVM_IOAPIC_NUM_PINS`. */
const IOAPIC_PINS = 24;

/** The ioctl numbers, sizes and offsets above, each with the C expression it must equal. */
export const IRQCHIP_C_CLAIMS: readonly CClaim[] = [
  { name: "KVM_GET_IRQCHIP", value: KVM_GET_IRQCHIP, c: ["KVM_GET_IRQCHIP"] },
  { name: "KVM_SET_IRQCHIP", value: KVM_SET_IRQCHIP, c: ["KVM_SET_IRQCHIP"] },
  { name: "KVM_IRQCHIP_SIZE", value: KVM_IRQCHIP_SIZE, c: ["sizeof(struct kvm_irqchip)"] },
  { name: "CHIP_IOAPIC", value: CHIP_IOAPIC, c: ["KVM_IRQCHIP_IOAPIC"] },
  { name: "IOAPIC_IRR", value: IOAPIC_IRR, c: ["offsetof(struct kvm_irqchip, chip.ioapic.irr)"] },
  {
    name: "IOAPIC_REDIRTBL",
    value: IOAPIC_REDIRTBL,
    c: ["offsetof(struct kvm_irqchip, chip.ioapic.redirtbl)"],
  },
  {
    name: "redirection entry size",
    value: 8,
    c: ["sizeof(((struct kvm_irqchip *)0)->chip.ioapic.redirtbl[0])"],
  },
  { name: "IOAPIC_PINS", value: IOAPIC_PINS, c: ["KVM_IOAPIC_NUM_PINS"] },
];

/**
 * IOAPIC redirection-table entry bits (82093AA datasheet §3.2.4): the vector is bits 0-7, the
 * destination APIC ID bits 56-63; delivery mode 0 (fixed) and destination mode 0 (physical)
 * are the zero defaults.
 */
export const Redirection = {
  /** Bit 14, read-only: a level interrupt was delivered and awaits its EOI. */
  REMOTE_IRR: 1n << 14n,
  /** Bit 15: level-triggered (clear: edge). */
  LEVEL: 1n << 15n,
  /** Bit 16: masked. */
  MASKED: 1n << 16n,
} as const;

/** The IOAPIC as KVM_GET_IRQCHIP reports it. */
export interface IoapicState {
  /** Bit n: the level of pin n as the IOAPIC sees it. */
  irr: number;
  /** The 24 redirection-table entries. */
  redirection: bigint[];
}

function readIoapic(vm: VmFd): DataView {
  const chip = new Uint8Array(KVM_IRQCHIP_SIZE);
  const view = new DataView(chip.buffer);
  view.setUint32(0, CHIP_IOAPIC, true);
  ioctlBuf(vm.fd, KVM_GET_IRQCHIP, chip, "KVM_GET_IRQCHIP");
  return view;
}

/** KVM_GET_IRQCHIP of the IOAPIC. */
export function getIoapic(vm: VmFd): IoapicState {
  const view = readIoapic(vm);
  return {
    irr: view.getUint32(IOAPIC_IRR, true),
    redirection: Array.from(
      { length: IOAPIC_PINS },
      (_, pin) => view.getBigUint64(IOAPIC_REDIRTBL + 8 * pin, true),
    ),
  };
}

/** Writes IOAPIC redirection entry `pin` (KVM_GET_IRQCHIP, then KVM_SET_IRQCHIP). */
export function setIoapicRedirection(vm: VmFd, pin: number, entry: bigint): void {
  const view = readIoapic(vm);
  view.setBigUint64(IOAPIC_REDIRTBL + 8 * pin, entry, true);
  ioctlBuf(vm.fd, KVM_SET_IRQCHIP, new Uint8Array(view.buffer), "KVM_SET_IRQCHIP");
}

/** Local APIC register offsets (SDM vol. 3A Table 11-1). */
export const Lapic = {
  /** Spurious-interrupt vector register; bit 8 is the APIC software enable. */
  SVR: 0xf0,
  /** In-service register: 256 bits, one per vector, in eight 32-bit registers 16 bytes apart. */
  ISR: 0x100,
  /** Trigger-mode register: the vector's interrupt is level-triggered. */
  TMR: 0x180,
  /** Interrupt request register: the vector is pending. */
  IRR: 0x200,
} as const;
const SVR_APIC_ENABLED = 1 << 8;

/** Software-enables vCPU `vcpu`'s local APIC, which drops fixed interrupts until then. */
export function enableLapic(vcpu: VcpuFd): void {
  const lapic = vcpu.getLapic();
  const view = new DataView(lapic.buffer);
  view.setUint32(Lapic.SVR, view.getUint32(Lapic.SVR, true) | SVR_APIC_ENABLED, true);
  vcpu.setLapic(lapic);
}

/** Bit `vector` of the 256-bit local APIC register at `base` (ISR, TMR or IRR). */
export function lapicBit(lapic: Uint8Array, base: number, vector: number): boolean {
  const word = new DataView(lapic.buffer).getUint32(base + 0x10 * (vector >>> 5), true);
  return ((word >>> (vector & 31)) & 1) === 1;
}

/**
 * Waits (up to `timeoutMs`) until `vector` is pending in `vcpu`'s local APIC. An irqfd on an
 * irqchip pin injects from a kernel work item, so the interrupt lands a moment after the write.
 */
export async function waitForLapicIrr(
  vcpu: VcpuFd,
  vector: number,
  timeoutMs = 2000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!lapicBit(vcpu.getLapic(), Lapic.IRR, vector)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return true;
}
