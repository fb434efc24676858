/**
 * A typed wrapper over the KVM ioctl API: the system fd (`/dev/kvm`), VM fds and vCPU fds.
 *
 * Every call throws a {@link SyscallError} naming the ioctl on failure.
 *
 * @module
 */

import { UserError } from "../errors.ts";
import {
  Cap,
  Ioctl,
  KVM_API_VERSION,
  KVM_CLOCK_DATA,
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_DTABLE,
  KVM_FPU,
  KVM_IOEVENTFD_ARGS,
  KVM_IOEVENTFD_FLAG_DATAMATCH,
  KVM_IOEVENTFD_FLAG_DEASSIGN,
  KVM_IOEVENTFD_FLAG_PIO,
  KVM_IRQ_LEVEL,
  KVM_LAPIC_STATE,
  KVM_MP_STATE_ARGS,
  KVM_MSR_ENTRY,
  KVM_MSRS,
  KVM_PIT_CONFIG,
  KVM_PIT_SPEAKER_DUMMY,
  KVM_REGS,
  KVM_SEGMENT,
  KVM_SREGS,
  KVM_USERSPACE_MEMORY_REGION,
  type StructLayout,
} from "./kvm_abi.ts";
import { irqfd } from "./kvm_irq_routing.ts";
import {
  close,
  errno,
  ioctl,
  ioctlBuf,
  libc,
  MAP_SHARED,
  mmap,
  O_RDWR,
  open,
  PROT_READ,
  PROT_WRITE,
} from "./libc.ts";
import { StructBuffer } from "./struct.ts";

/** `struct kvm_regs` as a buffer with typed accessors. */
export type Regs = StructBuffer<typeof KVM_REGS.fields>;
/** `struct kvm_sregs` as a buffer with typed accessors. */
export type Sregs = StructBuffer<typeof KVM_SREGS.fields>;
/** `struct kvm_fpu` as a buffer with typed accessors. */
export type Fpu = StructBuffer<typeof KVM_FPU.fields>;

/** Segment register names in `struct kvm_sregs`. */
export type SegmentName = "cs" | "ds" | "es" | "fs" | "gs" | "ss" | "tr" | "ldt";

/** One segment register (`struct kvm_segment`). */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** Reads segment register `name` out of `sregs`. */
export function getSegment(sregs: Sregs, name: SegmentName): Segment {
  const at = (f: keyof typeof KVM_SEGMENT.fields) => KVM_SEGMENT.fields[f];
  return {
    base: sregs.u64(name, at("base")),
    limit: sregs.u32(name, at("limit")),
    selector: sregs.u16(name, at("selector")),
    type: sregs.u8(name, at("type")),
    present: sregs.u8(name, at("present")),
    dpl: sregs.u8(name, at("dpl")),
    db: sregs.u8(name, at("db")),
    s: sregs.u8(name, at("s")),
    l: sregs.u8(name, at("l")),
    g: sregs.u8(name, at("g")),
    avl: sregs.u8(name, at("avl")),
    unusable: sregs.u8(name, at("unusable")),
  };
}

/** Writes segment register `name` into `sregs`. */
export function setSegment(sregs: Sregs, name: SegmentName, seg: Segment): void {
  const at = (f: keyof typeof KVM_SEGMENT.fields) => KVM_SEGMENT.fields[f];
  sregs.setU64(name, seg.base, at("base"));
  sregs.setU32(name, seg.limit, at("limit"));
  sregs.setU16(name, seg.selector, at("selector"));
  for (const f of ["type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable"] as const) {
    sregs.setU8(name, seg[f], at(f));
  }
}

/** Writes a descriptor-table register (`gdt` or `idt`) into `sregs`. */
export function setDtable(sregs: Sregs, name: "gdt" | "idt", base: bigint, limit: number): void {
  sregs.setU64(name, base, KVM_DTABLE.fields.base);
  sregs.setU16(name, limit, KVM_DTABLE.fields.limit);
}

/** One CPUID leaf as KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2 exchange it. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** One model-specific register. */
export interface MsrEntry {
  index: number;
  data: bigint;
}

/** How many CPUID entries we ask KVM for (KVM's own limit is `KVM_MAX_CPUID_ENTRIES` = 256). */
const MAX_CPUID_ENTRIES = 256;

function encodeCpuid(entries: readonly CpuidEntry[]): Uint8Array {
  const buf = new StructBuffer(KVM_CPUID2, entries.length * KVM_CPUID_ENTRY2.size);
  buf.setU32("nent", entries.length);
  entries.forEach((e, i) => {
    const base = KVM_CPUID2.fields.entries + i * KVM_CPUID_ENTRY2.size;
    for (const f of ["function", "index", "flags", "eax", "ebx", "ecx", "edx"] as const) {
      buf.view.setUint32(base + KVM_CPUID_ENTRY2.fields[f], e[f] >>> 0, true);
    }
  });
  return buf.bytes;
}

function decodeCpuid(bytes: Uint8Array): CpuidEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(KVM_CPUID2.fields.nent, true);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < count; i++) {
    const base = KVM_CPUID2.fields.entries + i * KVM_CPUID_ENTRY2.size;
    const get = (f: keyof typeof KVM_CPUID_ENTRY2.fields) =>
      view.getUint32(base + KVM_CPUID_ENTRY2.fields[f], true);
    out.push({
      function: get("function"),
      index: get("index"),
      flags: get("flags"),
      eax: get("eax"),
      ebx: get("ebx"),
      ecx: get("ecx"),
      edx: get("edx"),
    });
  }
  return out;
}

function encodeMsrs(entries: readonly MsrEntry[]): StructBuffer<typeof KVM_MSRS.fields> {
  const buf = new StructBuffer(KVM_MSRS, entries.length * KVM_MSR_ENTRY.size);
  buf.setU32("nmsrs", entries.length);
  entries.forEach((e, i) => {
    const base = KVM_MSRS.fields.entries + i * KVM_MSR_ENTRY.size;
    buf.view.setUint32(base + KVM_MSR_ENTRY.fields.index, e.index, true);
    buf.view.setBigUint64(base + KVM_MSR_ENTRY.fields.data, e.data, true);
  });
  return buf;
}

/** The name of a KVM ioctl, a key of {@link Ioctl}. */
type IoctlName = keyof typeof Ioctl;

/** KVM ioctl `name` on `fd` with an integer argument; a failure names the request. */
function kvmIoctl(fd: number, name: IoctlName, arg = 0n): number {
  return ioctl(fd, Ioctl[name], arg, name);
}

/** KVM ioctl `name` on `fd` with a pointer to `buf`; a failure names the request. */
function kvmIoctlBuf(fd: number, name: IoctlName, buf: Uint8Array): number {
  return ioctlBuf(fd, Ioctl[name], buf, name);
}

/** The KVM system fd (`/dev/kvm`). */
export class Kvm {
  private constructor(readonly fd: number) {}

  /**
   * Opens `/dev/kvm` and checks the API version.
   * @throws SyscallError when the device is missing (ENOENT) or not permitted (EACCES)
   * @throws UserError when it speaks another KVM API version
   */
  static open(path = "/dev/kvm"): Kvm {
    const kvm = new Kvm(open(path, O_RDWR));
    const version = kvmIoctl(kvm.fd, "KVM_GET_API_VERSION");
    if (version !== KVM_API_VERSION) {
      kvm.close();
      throw new UserError(
        `${path}: KVM API version ${version}, this VMM needs ${KVM_API_VERSION}`,
      );
    }
    return kvm;
  }

  /** KVM_CHECK_EXTENSION: 0 when unsupported, else a capability-specific value. */
  checkExtension(cap: number): number {
    return kvmIoctl(this.fd, "KVM_CHECK_EXTENSION", BigInt(cap));
  }

  /** The size of each vCPU's `kvm_run` mapping (KVM_GET_VCPU_MMAP_SIZE). */
  vcpuMmapSize(): number {
    return kvmIoctl(this.fd, "KVM_GET_VCPU_MMAP_SIZE");
  }

  /** The most vCPUs a VM may have (KVM_CAP_MAX_VCPUS, falling back to KVM_CAP_NR_VCPUS). */
  maxVcpus(): number {
    return this.checkExtension(Cap.KVM_CAP_MAX_VCPUS) ||
      this.checkExtension(Cap.KVM_CAP_NR_VCPUS) || 4;
  }

  /** KVM_GET_SUPPORTED_CPUID: every leaf KVM can virtualise, with the bits it supports. */
  supportedCpuid(): CpuidEntry[] {
    const bytes = new Uint8Array(KVM_CPUID2.size + MAX_CPUID_ENTRIES * KVM_CPUID_ENTRY2.size);
    new DataView(bytes.buffer).setUint32(KVM_CPUID2.fields.nent, MAX_CPUID_ENTRIES, true);
    kvmIoctlBuf(this.fd, "KVM_GET_SUPPORTED_CPUID", bytes);
    return decodeCpuid(bytes);
  }

  /** KVM_CREATE_VM. */
  createVm(): VmFd {
    return new VmFd(kvmIoctl(this.fd, "KVM_CREATE_VM"));
  }

  /** Closes the system fd. */
  close(): void {
    close(this.fd);
  }
}

/** A VM fd. */
export class VmFd {
  /** @param fd the descriptor KVM_CREATE_VM returned */
  constructor(readonly fd: number) {}

  /** KVM_CHECK_EXTENSION on the VM (some capabilities are per VM). */
  checkExtension(cap: number): number {
    return kvmIoctl(this.fd, "KVM_CHECK_EXTENSION", BigInt(cap));
  }

  /** KVM_SET_USER_MEMORY_REGION: maps `size` bytes of host memory at `hostAddress` to `guestAddress`. */
  setUserMemoryRegion(
    slot: number,
    guestAddress: number,
    size: number,
    hostAddress: bigint,
    flags = 0,
  ): void {
    const r = new StructBuffer(KVM_USERSPACE_MEMORY_REGION);
    r.setU32("slot", slot);
    r.setU32("flags", flags);
    r.setU64("guest_phys_addr", guestAddress);
    r.setU64("memory_size", size);
    r.setU64("userspace_addr", hostAddress);
    kvmIoctlBuf(this.fd, "KVM_SET_USER_MEMORY_REGION", r.bytes);
  }

  /** KVM_SET_TSS_ADDR: three pages of guest-physical space Intel VMX needs for real mode. */
  setTssAddress(address: number): void {
    kvmIoctl(this.fd, "KVM_SET_TSS_ADDR", BigInt(address));
  }

  /** KVM_SET_IDENTITY_MAP_ADDR: one page for the EPT identity map Intel VMX needs. */
  setIdentityMapAddress(address: number): void {
    const arg = new Uint8Array(BigUint64Array.BYTES_PER_ELEMENT); // the ioctl takes a __u64
    new DataView(arg.buffer).setBigUint64(0, BigInt(address), true);
    kvmIoctlBuf(this.fd, "KVM_SET_IDENTITY_MAP_ADDR", arg);
  }

  /** KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and per-vCPU LAPICs. */
  createIrqchip(): void {
    kvmIoctl(this.fd, "KVM_CREATE_IRQCHIP");
  }

  /** KVM_CREATE_PIT2: in-kernel i8254 timer (with the speaker port stubbed). */
  createPit2(): void {
    const cfg = new StructBuffer(KVM_PIT_CONFIG);
    cfg.setU32("flags", KVM_PIT_SPEAKER_DUMMY);
    kvmIoctlBuf(this.fd, "KVM_CREATE_PIT2", cfg.bytes);
  }

  /** KVM_IRQ_LINE: sets interrupt line `irq` to `level`. */
  irqLine(irq: number, level: boolean): void {
    const arg = new StructBuffer(KVM_IRQ_LEVEL);
    arg.setU32("irq", irq);
    arg.setU32("level", level ? 1 : 0);
    kvmIoctlBuf(this.fd, "KVM_IRQ_LINE", arg.bytes);
  }

  /** KVM_IRQFD: a write to eventfd `fd` pulses GSI `gsi`. */
  irqfd(fd: number, gsi: number, deassign = false): void {
    irqfd(this.fd, fd, gsi, deassign);
  }

  /**
   * KVM_IOEVENTFD: a guest write of `length` bytes to `address` (a port when `pio`) signals
   * eventfd `fd` in the kernel, without an exit to userspace.
   */
  ioeventfd(
    fd: number,
    address: number | bigint,
    length: number,
    options: { pio?: boolean; datamatch?: bigint; deassign?: boolean } = {},
  ): void {
    const arg = new StructBuffer(KVM_IOEVENTFD_ARGS);
    let flags = 0;
    if (options.pio) flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (options.datamatch !== undefined) {
      flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
      arg.setU64("datamatch", options.datamatch);
    }
    if (options.deassign) flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    arg.setU64("addr", address);
    arg.setU32("len", length);
    arg.setU32("fd", fd);
    arg.setU32("flags", flags);
    kvmIoctlBuf(this.fd, "KVM_IOEVENTFD", arg.bytes);
  }

  /** KVM_GET_CLOCK: the guest's kvmclock now, in ns. */
  getClock(): bigint {
    const data = new StructBuffer(KVM_CLOCK_DATA);
    kvmIoctlBuf(this.fd, "KVM_GET_CLOCK", data.bytes);
    return data.u64("clock");
  }

  /** KVM_SET_CLOCK: sets the guest's kvmclock to `ns` (flags 0: no realtime adjustment). */
  setClock(ns: bigint): void {
    const data = new StructBuffer(KVM_CLOCK_DATA);
    data.setU64("clock", ns);
    kvmIoctlBuf(this.fd, "KVM_SET_CLOCK", data.bytes);
  }

  /** KVM_CREATE_VCPU with APIC ID `id`. */
  createVcpu(id: number): VcpuFd {
    return new VcpuFd(kvmIoctl(this.fd, "KVM_CREATE_VCPU", BigInt(id)), id);
  }

  /** Closes the VM fd. */
  close(): void {
    close(this.fd);
  }
}

/** A vCPU fd. Usable from any thread: the vCPU Worker rebuilds one from the fd number. */
export class VcpuFd {
  /**
   * @param fd the descriptor KVM_CREATE_VCPU returned
   * @param id the vCPU index (and initial APIC ID)
   */
  constructor(readonly fd: number, readonly id: number) {}

  /** Maps this vCPU's `kvm_run` page(s); returns the mapping's address. */
  mapRun(size: number): bigint {
    return mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, 0);
  }

  /** KVM_RUN. Throws a SyscallError (EINTR when kicked by a signal or `immediate_exit`). */
  run(): void {
    kvmIoctl(this.fd, "KVM_RUN");
  }

  /**
   * A KVM_RUN entry for the hot loop: no allocation and no exception per call. The
   * returned function enters the guest once and returns 0, or the errno on failure.
   */
  runner(): () => number {
    const call = libc().ioctl_val;
    const fd = this.fd;
    const request = BigInt(Ioctl.KVM_RUN);
    return () => call(fd, request, 0n) < 0 ? errno() : 0;
  }

  /** KVM_GET_REGS. */
  getRegs(): Regs {
    return this.#getStruct(KVM_REGS, "KVM_GET_REGS");
  }

  /** KVM_SET_REGS. */
  setRegs(regs: Regs): void {
    kvmIoctlBuf(this.fd, "KVM_SET_REGS", regs.bytes);
  }

  /** KVM_GET_SREGS. */
  getSregs(): Sregs {
    return this.#getStruct(KVM_SREGS, "KVM_GET_SREGS");
  }

  /** KVM_SET_SREGS. */
  setSregs(sregs: Sregs): void {
    kvmIoctlBuf(this.fd, "KVM_SET_SREGS", sregs.bytes);
  }

  /** KVM_GET_FPU. */
  getFpu(): Fpu {
    return this.#getStruct(KVM_FPU, "KVM_GET_FPU");
  }

  /** KVM_SET_FPU. */
  setFpu(fpu: Fpu): void {
    kvmIoctlBuf(this.fd, "KVM_SET_FPU", fpu.bytes);
  }

  /** KVM_GET_MSRS for the given indices. */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const buf = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = kvmIoctlBuf(this.fd, "KVM_GET_MSRS", buf.bytes);
    return indices.slice(0, n).map((index, i) => ({
      index,
      data: buf.view.getBigUint64(
        KVM_MSRS.fields.entries + i * KVM_MSR_ENTRY.size + KVM_MSR_ENTRY.fields.data,
        true,
      ),
    }));
  }

  /** KVM_SET_MSRS; throws when KVM refuses any of them. */
  setMsrs(entries: readonly MsrEntry[]): void {
    const n = kvmIoctlBuf(this.fd, "KVM_SET_MSRS", encodeMsrs(entries).bytes);
    if (n !== entries.length) {
      const msr = entries[n].index.toString(16);
      throw new Error(`KVM_SET_MSRS: KVM refused MSR 0x${msr}`);
    }
  }

  /** KVM_SET_CPUID2. */
  setCpuid(entries: readonly CpuidEntry[]): void {
    kvmIoctlBuf(this.fd, "KVM_SET_CPUID2", encodeCpuid(entries));
  }

  /** KVM_GET_LAPIC: the 1 KiB local APIC register page. */
  getLapic(): Uint8Array {
    const regs = new Uint8Array(KVM_LAPIC_STATE.size);
    kvmIoctlBuf(this.fd, "KVM_GET_LAPIC", regs);
    return regs;
  }

  /** KVM_SET_LAPIC. */
  setLapic(regs: Uint8Array): void {
    kvmIoctlBuf(this.fd, "KVM_SET_LAPIC", regs);
  }

  /** KVM_GET_MP_STATE. */
  getMpState(): number {
    const arg = new StructBuffer(KVM_MP_STATE_ARGS);
    kvmIoctlBuf(this.fd, "KVM_GET_MP_STATE", arg.bytes);
    return arg.u32("mp_state");
  }

  /** KVM_SET_MP_STATE. */
  setMpState(state: number): void {
    const arg = new StructBuffer(KVM_MP_STATE_ARGS);
    arg.setU32("mp_state", state);
    kvmIoctlBuf(this.fd, "KVM_SET_MP_STATE", arg.bytes);
  }

  /** Closes the vCPU fd. */
  close(): void {
    close(this.fd);
  }

  /** Runs the KVM_GET_* request `name`, which fills a struct of `layout`; returns the struct. */
  #getStruct<F extends Record<string, number>>(
    layout: StructLayout & { fields: F },
    name: IoctlName,
  ): StructBuffer<F> {
    const struct = new StructBuffer(layout);
    kvmIoctlBuf(this.fd, name, struct.bytes);
    return struct;
  }
}
