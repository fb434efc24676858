/**
 * A bare KVM vCPU for tests of per-vCPU state (registers, CPUID, MSRs). Declare such tests
 * with {@link kvmTest}: where KVM is unusable they are ignored, saying why.
 *
 * @module
 */

import { Kvm, type VcpuFd } from "../../src/ffi/kvm.ts";

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

/** Re-exported for the vCPU tests: declares a test that needs KVM (./kvm.ts). */
export { kvmTest } from "./kvm.ts";
