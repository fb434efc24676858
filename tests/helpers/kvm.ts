/**
 * Whether this host can run the tests that need KVM, probed once and the way the VMM itself
 * opens KVM (`Kvm.open`: /dev/kvm read-write, then KVM_GET_API_VERSION must be 12), and the one
 * way to declare such a test: where KVM is unusable it is ignored, its name saying why.
 *
 * @module
 */

import { Kvm } from "../../src/ffi/kvm.ts";

/** Opens and closes /dev/kvm as the VMM does; returns why that failed, or undefined. */
function probeKvm(): string | undefined {
  try {
    Kvm.open().close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const PROBLEM = probeKvm();

/** True when /dev/kvm opens read-write and speaks KVM API version 12, as the VMM needs. */
export const HAVE_KVM: boolean = PROBLEM === undefined;

/**
 * Why the KVM tests are ignored on this host, e.g. `no usable /dev/kvm: open(/dev/kvm) failed:
 * ENOENT (No such file or directory)`; empty where {@link HAVE_KVM}.
 */
export const NO_KVM: string = PROBLEM === undefined ? "" : `no usable /dev/kvm: ${PROBLEM}`;

/** Declares a test that needs KVM; where KVM is unusable it is ignored, its name saying why. */
export function kvmTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name: HAVE_KVM ? name : `${name} [ignored: ${NO_KVM}]`, ignore: !HAVE_KVM, fn });
}
