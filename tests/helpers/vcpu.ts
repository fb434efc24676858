/**
 * A bare KVM vCPU for tests of per-vCPU state (registers, CPUID, MSRs), ignored with a
 * note on hosts without /dev/kvm.
 *
 * @module
 */

import { Kvm, type VcpuFd } from "../../src/ffi/kvm.ts";
import { HAVE_KVM, NO_KVM } from "./run_guest.ts";

/** What a {@link kvmTest} body gets: the system fd and vCPU `id` of a fresh VM. */
export interface VcpuFixture {
  kvm: Kvm;
  vcpu: VcpuFd;
}

/** Runs `fn` on vCPU `id` of a fresh VM, closing the vCPU, VM and /dev/kvm afterwards. */
export function withVcpu<T>(fn: (t: VcpuFixture) => T, id = 0): T {
  const kvm = Kvm.open();
  try {
    const vm = kvm.createVm();
    try {
      const vcpu = vm.createVcpu(id);
      try {
        return fn({ kvm, vcpu });
      } finally {
        vcpu.close();
      }
    } finally {
      vm.close();
    }
  } finally {
    kvm.close();
  }
}

/** Declares a test that needs /dev/kvm; where there is none it is ignored, saying why. */
export function kvmTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name: HAVE_KVM ? name : `${name} [ignored: ${NO_KVM}]`, ignore: !HAVE_KVM, fn });
}
