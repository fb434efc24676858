/**
 * The KVM userspace ABI for x86_64, from `<linux/kvm.h>` and `<asm/kvm.h>`:
 * ioctl numbers, capability and exit codes, and one layout (field offsets and size)
 * per struct. Field keys are the C member paths, so tests can check every one
 * against the real header with `offsetof`.
 *
 * @module
 */

import { _IO, _IOR, _IOW, _IOWR } from "./ioctl.ts";

/** `KVMIO`, the ioctl type byte of every KVM ioctl (`<linux/kvm.h>`). */
export const KVMIO = 0xae;

/** A C struct: its size and the byte offset of each member path we use. */
export interface StructLayout {
  /** The struct's tag in `<linux/kvm.h>`, e.g. `kvm_regs`. */
  readonly name: string;
  /** `sizeof(struct name)`. */
  readonly size: number;
  /** `offsetof(struct name, path)` for each member path. */
  readonly fields: Readonly<Record<string, number>>;
}

function layout<const F extends Record<string, number>>(
  name: string,
  size: number,
  fields: F,
): { name: string; size: number; fields: F } {
  return { name, size, fields };
}

/** `struct kvm_regs`: general-purpose registers. */
export const KVM_REGS = layout("kvm_regs", 144, {
  rax: 0,
  rbx: 8,
  rcx: 16,
  rdx: 24,
  rsi: 32,
  rdi: 40,
  rsp: 48,
  rbp: 56,
  r8: 64,
  r9: 72,
  r10: 80,
  r11: 88,
  r12: 96,
  r13: 104,
  r14: 112,
  r15: 120,
  rip: 128,
  rflags: 136,
});

/** `struct kvm_segment`: one segment register as KVM sees it. */
export const KVM_SEGMENT = layout("kvm_segment", 24, {
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22,
});

/** `struct kvm_dtable`: GDTR/IDTR. */
export const KVM_DTABLE = layout("kvm_dtable", 16, { base: 0, limit: 8 });

/** `struct kvm_sregs`: segment, descriptor-table and control registers. */
export const KVM_SREGS = layout("kvm_sregs", 312, {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apic_base: 272,
  interrupt_bitmap: 280,
});

/** `struct kvm_fpu`: x87 and SSE state. */
export const KVM_FPU = layout("kvm_fpu", 416, {
  fpr: 0,
  fcw: 128,
  fsw: 130,
  ftwx: 132,
  last_opcode: 134,
  last_ip: 136,
  last_dp: 144,
  xmm: 152,
  mxcsr: 408,
});

/** `struct kvm_msrs`: header of a variable-length MSR list. */
export const KVM_MSRS = layout("kvm_msrs", 8, { nmsrs: 0, entries: 8 });
/** `struct kvm_msr_entry`: one MSR. */
export const KVM_MSR_ENTRY = layout("kvm_msr_entry", 16, { index: 0, reserved: 4, data: 8 });

/** `struct kvm_cpuid2`: header of a variable-length CPUID table. */
export const KVM_CPUID2 = layout("kvm_cpuid2", 8, { nent: 0, entries: 8 });
/** `struct kvm_cpuid_entry2`: one CPUID leaf/subleaf. */
export const KVM_CPUID_ENTRY2 = layout("kvm_cpuid_entry2", 40, {
  function: 0,
  index: 4,
  flags: 8,
  eax: 12,
  ebx: 16,
  ecx: 20,
  edx: 24,
});

/** `struct kvm_lapic_state`: the local APIC register page. */
export const KVM_LAPIC_STATE = layout("kvm_lapic_state", 1024, { regs: 0 });

/** `struct kvm_pit_config`: argument of KVM_CREATE_PIT2. */
export const KVM_PIT_CONFIG = layout("kvm_pit_config", 64, { flags: 0 });

/** `struct kvm_userspace_memory_region`: one memory slot. */
export const KVM_USERSPACE_MEMORY_REGION = layout("kvm_userspace_memory_region", 32, {
  slot: 0,
  flags: 4,
  guest_phys_addr: 8,
  memory_size: 16,
  userspace_addr: 24,
});

/** `struct kvm_irq_level`: argument of KVM_IRQ_LINE. */
export const KVM_IRQ_LEVEL = layout("kvm_irq_level", 8, { irq: 0, level: 4 });

/** `struct kvm_irqfd`: binds an eventfd to a GSI. */
export const KVM_IRQFD_ARGS = layout("kvm_irqfd", 32, {
  fd: 0,
  gsi: 4,
  flags: 8,
  resamplefd: 12,
});

/** `struct kvm_ioeventfd`: binds a PIO/MMIO write to an eventfd. */
export const KVM_IOEVENTFD_ARGS = layout("kvm_ioeventfd", 64, {
  datamatch: 0,
  addr: 8,
  len: 16,
  fd: 20,
  flags: 24,
});

/** `struct kvm_mp_state`: a vCPU's multiprocessing state. */
export const KVM_MP_STATE_ARGS = layout("kvm_mp_state", 4, { mp_state: 0 });

/** `struct kvm_clock_data`: the VM's kvmclock, in ns (KVM_GET_CLOCK, KVM_SET_CLOCK). */
export const KVM_CLOCK_DATA = layout("kvm_clock_data", 48, {
  clock: 0,
  flags: 8,
  realtime: 16,
  host_tsc: 24,
});

/** `struct kvm_run`: the per-vCPU shared page mapped from the vCPU fd (only the members we use). */
export const KVM_RUN_LAYOUT = layout("kvm_run", 0x130, {
  request_interrupt_window: 0,
  immediate_exit: 1,
  exit_reason: 8,
  ready_for_interrupt_injection: 12,
  if_flag: 13,
  "io.direction": 32,
  "io.size": 33,
  "io.port": 34,
  "io.count": 36,
  "io.data_offset": 40,
  "mmio.phys_addr": 32,
  "mmio.data": 40,
  "mmio.len": 48,
  "mmio.is_write": 52,
  "fail_entry.hardware_entry_failure_reason": 32,
  "fail_entry.cpu": 40,
  "internal.suberror": 32,
  "internal.ndata": 36,
  "internal.data": 40,
  "system_event.type": 32,
  "system_event.ndata": 36,
  "system_event.data": 40,
});

/** Every layout above, for whole-ABI checks. */
export const ALL_LAYOUTS: readonly StructLayout[] = [
  KVM_REGS,
  KVM_SEGMENT,
  KVM_DTABLE,
  KVM_SREGS,
  KVM_FPU,
  KVM_MSRS,
  KVM_MSR_ENTRY,
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_LAPIC_STATE,
  KVM_PIT_CONFIG,
  KVM_USERSPACE_MEMORY_REGION,
  KVM_IRQ_LEVEL,
  KVM_IRQFD_ARGS,
  KVM_IOEVENTFD_ARGS,
  KVM_MP_STATE_ARGS,
  KVM_CLOCK_DATA,
];

/**
 * `sizeof(struct kvm_msr_list)`: its `__u32 nmsrs`, then a flexible array of MSR indices.
 */
const KVM_MSR_LIST_SIZE = Uint32Array.BYTES_PER_ELEMENT;

/** ioctl request numbers, with the `_IO*` macros and arguments of `<linux/kvm.h>`. */
export const Ioctl = {
  KVM_GET_API_VERSION: _IO(KVMIO, 0x00),
  KVM_CREATE_VM: _IO(KVMIO, 0x01),
  KVM_GET_MSR_INDEX_LIST: _IOWR(KVMIO, 0x02, KVM_MSR_LIST_SIZE),
  KVM_CHECK_EXTENSION: _IO(KVMIO, 0x03),
  KVM_GET_VCPU_MMAP_SIZE: _IO(KVMIO, 0x04),
  KVM_GET_SUPPORTED_CPUID: _IOWR(KVMIO, 0x05, KVM_CPUID2.size),
  KVM_CREATE_VCPU: _IO(KVMIO, 0x41),
  KVM_SET_USER_MEMORY_REGION: _IOW(KVMIO, 0x46, KVM_USERSPACE_MEMORY_REGION.size),
  KVM_SET_TSS_ADDR: _IO(KVMIO, 0x47),
  KVM_SET_IDENTITY_MAP_ADDR: _IOW(KVMIO, 0x48, BigUint64Array.BYTES_PER_ELEMENT),
  KVM_CREATE_IRQCHIP: _IO(KVMIO, 0x60),
  KVM_IRQ_LINE: _IOW(KVMIO, 0x61, KVM_IRQ_LEVEL.size),
  KVM_IRQFD: _IOW(KVMIO, 0x76, KVM_IRQFD_ARGS.size),
  KVM_CREATE_PIT2: _IOW(KVMIO, 0x77, KVM_PIT_CONFIG.size),
  KVM_IOEVENTFD: _IOW(KVMIO, 0x79, KVM_IOEVENTFD_ARGS.size),
  KVM_SET_CLOCK: _IOW(KVMIO, 0x7b, KVM_CLOCK_DATA.size),
  KVM_GET_CLOCK: _IOR(KVMIO, 0x7c, KVM_CLOCK_DATA.size),
  KVM_RUN: _IO(KVMIO, 0x80),
  KVM_GET_REGS: _IOR(KVMIO, 0x81, KVM_REGS.size),
  KVM_SET_REGS: _IOW(KVMIO, 0x82, KVM_REGS.size),
  KVM_GET_SREGS: _IOR(KVMIO, 0x83, KVM_SREGS.size),
  KVM_SET_SREGS: _IOW(KVMIO, 0x84, KVM_SREGS.size),
  KVM_GET_MSRS: _IOWR(KVMIO, 0x88, KVM_MSRS.size),
  KVM_SET_MSRS: _IOW(KVMIO, 0x89, KVM_MSRS.size),
  KVM_GET_FPU: _IOR(KVMIO, 0x8c, KVM_FPU.size),
  KVM_SET_FPU: _IOW(KVMIO, 0x8d, KVM_FPU.size),
  KVM_GET_LAPIC: _IOR(KVMIO, 0x8e, KVM_LAPIC_STATE.size),
  KVM_SET_LAPIC: _IOW(KVMIO, 0x8f, KVM_LAPIC_STATE.size),
  KVM_SET_CPUID2: _IOW(KVMIO, 0x90, KVM_CPUID2.size),
  KVM_GET_MP_STATE: _IOR(KVMIO, 0x98, KVM_MP_STATE_ARGS.size),
  KVM_SET_MP_STATE: _IOW(KVMIO, 0x99, KVM_MP_STATE_ARGS.size),
} as const;

/** The only KVM API version there has ever been (`KVM_API_VERSION`). */
export const KVM_API_VERSION = 12;

/** KVM_CHECK_EXTENSION capability numbers (`KVM_CAP_*`). */
export const Cap = {
  KVM_CAP_IRQCHIP: 0,
  KVM_CAP_USER_MEMORY: 3,
  KVM_CAP_SET_TSS_ADDR: 4,
  KVM_CAP_EXT_CPUID: 7,
  KVM_CAP_NR_VCPUS: 9,
  KVM_CAP_NR_MEMSLOTS: 10,
  KVM_CAP_MP_STATE: 14,
  KVM_CAP_IRQFD: 32,
  KVM_CAP_PIT2: 33,
  KVM_CAP_IOEVENTFD: 36,
  KVM_CAP_MAX_VCPUS: 66,
  KVM_CAP_IMMEDIATE_EXIT: 136,
} as const;

/** `kvm_run.exit_reason` values (`KVM_EXIT_*`). */
export const Exit = {
  KVM_EXIT_UNKNOWN: 0,
  KVM_EXIT_EXCEPTION: 1,
  KVM_EXIT_IO: 2,
  KVM_EXIT_HYPERCALL: 3,
  KVM_EXIT_DEBUG: 4,
  KVM_EXIT_HLT: 5,
  KVM_EXIT_MMIO: 6,
  KVM_EXIT_IRQ_WINDOW_OPEN: 7,
  KVM_EXIT_SHUTDOWN: 8,
  KVM_EXIT_FAIL_ENTRY: 9,
  KVM_EXIT_INTR: 10,
  KVM_EXIT_INTERNAL_ERROR: 17,
  KVM_EXIT_SYSTEM_EVENT: 24,
} as const;

/** `kvm_run.io.direction` (`KVM_EXIT_IO_IN` / `KVM_EXIT_IO_OUT`). */
export const KVM_EXIT_IO_IN = 0;
/** Port write. */
export const KVM_EXIT_IO_OUT = 1;

/** `kvm_run.system_event.type` values (`KVM_SYSTEM_EVENT_*`). */
export const SystemEvent = {
  KVM_SYSTEM_EVENT_SHUTDOWN: 1,
  KVM_SYSTEM_EVENT_RESET: 2,
  KVM_SYSTEM_EVENT_CRASH: 3,
} as const;

/** `kvm_mp_state.mp_state` values (`KVM_MP_STATE_*`). */
export const MpState = {
  KVM_MP_STATE_RUNNABLE: 0,
  KVM_MP_STATE_UNINITIALIZED: 1,
  KVM_MP_STATE_INIT_RECEIVED: 2,
  KVM_MP_STATE_HALTED: 3,
  KVM_MP_STATE_SIPI_RECEIVED: 4,
} as const;

/** `kvm_pit_config.flags`: emulate the PC speaker port too (`KVM_PIT_SPEAKER_DUMMY`). */
export const KVM_PIT_SPEAKER_DUMMY = 1;
/** `kvm_ioeventfd.flags` bits (`KVM_IOEVENTFD_FLAG_*`). */
export const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
/** The ioeventfd watches a port, not an MMIO address. */
export const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
/** Remove the ioeventfd. */
export const KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
/** `kvm_irqfd.flags`: remove the irqfd (`KVM_IRQFD_FLAG_DEASSIGN`). */
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;
