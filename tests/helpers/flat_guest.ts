/**
 * Runs a flat guest from tests/guests/ (linked with flat.ld) on a bare vCPU, with no VMM
 * around it: RAM from guest physical 0, the guest's bytes at {@link FLAT_GUEST_ENTRY}, and one
 * vCPU starting there in real mode with CS = 0. The test drives KVM itself (CPUID tables,
 * irqfds, irqchip state) and sees every exit to userspace.
 *
 * @module
 */

import { KVM_IDENTITY_MAP_ADDRESS, KVM_TSS_ADDRESS } from "../../src/arch/x86_64/layout.ts";
import { getSegment, Kvm, setSegment, type VcpuFd, type VmFd } from "../../src/ffi/kvm.ts";
import { Exit, KVM_EXIT_IO_OUT, KVM_RUN_LAYOUT } from "../../src/ffi/kvm_abi.ts";
import {
  close,
  MAP_SHARED,
  memfdCreate,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
  viewOf,
} from "../../src/ffi/libc.ts";
import { buildFlatGuest } from "./guests.ts";

/** Where flat.ld links a guest and where its vCPU starts (CS:IP = 0000:1000). */
export const FLAT_GUEST_ENTRY = 0x1000;
/** Guest RAM: the real-mode megabyte and then some. */
const RAM_BYTES = 2 << 20;

/** What one KVM_RUN ended with. */
export interface GuestExit {
  /** `kvm_run.exit_reason`: one of `Exit.KVM_EXIT_*`. */
  reason: number;
  /** For KVM_EXIT_IO: the port, the direction, and the bytes the guest wrote or will read. */
  io?: { port: number; out: boolean; data: number[] };
}

/** What a {@link withFlatGuest} body gets. */
export interface FlatGuest {
  kvm: Kvm;
  vm: VmFd;
  vcpu: VcpuFd;
  /** Guest RAM from physical address 0. */
  memory: Uint8Array;
  /** Enters the guest until its next exit to userspace. */
  run(): GuestExit;
}

/** Options for {@link withFlatGuest}. */
export interface FlatGuestOptions {
  /**
   * Create the in-kernel irqchip (PIC, IOAPIC, local APICs) first. Without it a HLT exits to
   * userspace (KVM_EXIT_HLT); with it the vCPU sleeps in the kernel until an interrupt.
   */
  irqchip?: boolean;
  /** The vCPU's id, which is also its initial APIC ID (0 by default). */
  vcpuId?: number;
}

/**
 * Builds `tests/guests/NAME.S` as a flat binary, loads it into a fresh VM and runs `fn` with the
 * vCPU ready at its entry; closes the vCPU, its `kvm_run` mapping, RAM, VM and /dev/kvm after.
 */
export async function withFlatGuest<T>(
  name: string,
  options: FlatGuestOptions,
  fn: (guest: FlatGuest) => T | Promise<T>,
): Promise<T> {
  const image = await buildFlatGuest(name);
  const releases: (() => void)[] = [];
  try {
    const kvm = Kvm.open();
    releases.push(() => kvm.close());
    const vm = kvm.createVm();
    releases.push(() => vm.close());
    if (options.irqchip) vm.createIrqchip();
    // Intel VMX without unrestricted guest runs real mode through these; harmless elsewhere.
    vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
    vm.setTssAddress(KVM_TSS_ADDRESS);

    const ramFd = memfdCreate(`flat-guest-${name}`, RAM_BYTES);
    const ram = (() => {
      try {
        return mmap(RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, ramFd);
      } finally {
        close(ramFd);
      }
    })();
    releases.push(() => munmap(ram, RAM_BYTES));
    vm.setUserMemoryRegion(0, 0, RAM_BYTES, ram);
    const memory = new Uint8Array(viewOf(ram, RAM_BYTES));
    memory.set(image, FLAT_GUEST_ENTRY);

    const vcpu = vm.createVcpu(options.vcpuId ?? 0);
    releases.push(() => vcpu.close());
    const sregs = vcpu.getSregs();
    setSegment(sregs, "cs", { ...getSegment(sregs, "cs"), base: 0n, selector: 0 });
    vcpu.setSregs(sregs);
    const regs = vcpu.getRegs();
    regs.setU64("rip", FLAT_GUEST_ENTRY);
    regs.setU64("rflags", 2); // bit 1 is reserved, always set
    vcpu.setRegs(regs);

    const runSize = kvm.vcpuMmapSize();
    const runAddress = vcpu.mapRun(runSize);
    releases.push(() => munmap(runAddress, runSize));
    const kvmRun = new DataView(viewOf(runAddress, runSize));
    const run = (): GuestExit => {
      vcpu.run();
      return readExit(kvmRun);
    };
    return await fn({ kvm, vm, vcpu, memory, run });
  } finally {
    for (const release of releases.reverse()) release();
  }
}

/** Decodes the exit `kvm_run` describes. */
function readExit(kvmRun: DataView): GuestExit {
  const f = KVM_RUN_LAYOUT.fields;
  const reason = kvmRun.getUint32(f.exit_reason, true);
  if (reason !== Exit.KVM_EXIT_IO) return { reason };
  const size = kvmRun.getUint8(f["io.size"]) * kvmRun.getUint32(f["io.count"], true);
  const offset = Number(kvmRun.getBigUint64(f["io.data_offset"], true));
  return {
    reason,
    io: {
      port: kvmRun.getUint16(f["io.port"], true),
      out: kvmRun.getUint8(f["io.direction"]) === KVM_EXIT_IO_OUT,
      data: [...new Uint8Array(kvmRun.buffer, offset, size)],
    },
  };
}
