/**
 * crosvm for Deno: a KVM virtual machine monitor as a library.
 *
 * ```ts
 * import { defaultConfig, Vm } from "./mod.ts";
 *
 * const vm = await Vm.create({
 *   ...defaultConfig("vmlinux"),
 *   serials: [{ num: 1, type: "stream", console: true, stdin: false }],
 * });
 * const output = vm.serialOutput!.pipeTo(Deno.stdout.writable, { preventClose: true });
 * const result = await vm.run(); // { reason: "reset" | "shutdown" | "stop" | ... }
 * await output;
 * ```
 *
 * @module
 */

export {
  type BalloonConfig,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CPUS,
  DEFAULT_MEM_MIB,
  defaultSandbox,
  defaultSerials,
  type DiskConfig,
  type NetConfig,
  type SandboxConfig,
  type SerialConfig,
  type SerialType,
  type VmConfig,
  type VsockConfig,
} from "./src/config.ts";
export { type VmExitReason } from "./src/vcpu/control.ts";
export { type GuestExitReason } from "./src/devices/context.ts";
export { LOG_LEVELS, type LogLevel } from "./src/log.ts";
export { type VcpuStats } from "./src/vcpu/protocol.ts";
export { type SuspendOptions, Vm, type VmOptions, type VmResult } from "./src/vm/vm.ts";
export {
  VhostVsockHost,
  type VsockConn,
  VsockConnectError,
  type VsockEndpoint,
  VsockHost,
  type VsockPortListener,
} from "./src/vm/vsock.ts";
export type { BalloonStats } from "./src/devices/virtio/balloon/stats.ts";
export {
  type BalloonStatsReply,
  VmControlError,
  type VmEvent,
  type VmState,
} from "./src/vm/events.ts";
export { connect, ControlClient } from "./src/control/client.ts";
export type { ControlRequest, ControlResponse } from "./src/control/protocol.ts";
export { UserError } from "./src/errors.ts";
export { VmSetupError } from "./src/vm/host.ts";
export {
  GuestMemory,
  GuestMemoryError,
  type GuestMemoryShare,
  type MemorySlots,
  type RamRegion,
} from "./src/memory.ts";
export { ImageError } from "./src/arch/x86_64/boot/image.ts";
export { DiskImageError } from "./src/disk/image.ts";
export { Errno, type ErrnoName, SyscallError } from "./src/ffi/errno.ts";

import {
  DEFAULT_CPUS,
  DEFAULT_MEM_MIB,
  defaultSandbox,
  defaultSerials,
  type VmConfig,
} from "./src/config.ts";

/** A configuration with crosvm's defaults for booting `kernel`. */
export function defaultConfig(kernel: string): VmConfig {
  return {
    kernel,
    memMiB: DEFAULT_MEM_MIB,
    cpus: DEFAULT_CPUS,
    params: [],
    serials: defaultSerials(),
    disks: [],
    rng: true,
    balloon: { pageReporting: false },
    logLevel: "info",
    sandbox: defaultSandbox(),
  };
}
