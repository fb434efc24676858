/**
 * Runs a test guest from tests/guests/ in a real VM on /dev/kvm, collecting its
 * COM1 output through the library's serial stream. Declare such tests with `kvmTest` from
 * ./kvm.ts, which ignores them, saying why, where KVM is unusable.
 *
 * @module
 */

import { type GuestMemory, Vm, type VmConfig, type VmResult } from "../../mod.ts";
import { buildGuest } from "./guests.ts";

/** What a guest run produced. */
export interface GuestRun {
  result: VmResult;
  /** Everything the guest wrote to COM1. */
  output: string;
  /** Guest RAM, still readable after the VM ended. */
  memory: GuestMemory;
}

/** Options for {@link runGuest}. */
export interface RunGuestOptions {
  /** Linker script name in tests/guests/ (default `guest`). */
  script?: string;
  /** Configuration overrides. */
  config?: Partial<VmConfig>;
  /** Called once the VM is built, before it runs (to seed memory or schedule a stop). */
  before?: (vm: Vm) => void;
}

/**
 * The configuration a test guest runs with: 64 MiB, one vCPU, COM1 as a stream, no disks, no
 * virtio-rng, no balloon, then `overrides`.
 */
export function testGuestConfig(kernel: string, overrides: Partial<VmConfig> = {}): VmConfig {
  return {
    kernel,
    memMiB: 64,
    cpus: 1,
    params: [],
    serials: [{ num: 1, type: "stream", console: false, stdin: false }],
    disks: [],
    rng: false,
    logLevel: "warn",
    ...overrides,
  };
}

/** Builds `tests/guests/NAME.S`, boots it, and waits for the VM to end. */
export async function runGuest(name: string, options: RunGuestOptions = {}): Promise<GuestRun> {
  const kernel = await buildGuest(name, options.script);
  const vm = await Vm.create(testGuestConfig(kernel, options.config));
  options.before?.(vm);
  const output = new Response(vm.serialOutput).text();
  const result = await vm.run();
  return { result, output: await output, memory: vm.memory };
}
