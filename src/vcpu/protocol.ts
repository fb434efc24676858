/**
 * Messages between the main thread and a vCPU Worker.
 *
 * @module
 */

import type { DeviceSpec } from "../devices/registry.ts";
import type { LogLevel } from "../log.ts";

/** Main → Worker: everything the Worker needs to run one vCPU. */
export interface VcpuInit {
  /** vCPU index. */
  id: number;
  /** The vCPU fd (fds are shared by all threads of the process). */
  vcpuFd: number;
  /** Address of this vCPU's `kvm_run` mapping. */
  runAddress: bigint;
  /** Size of the `kvm_run` mapping. */
  runSize: number;
  /** The devices to build on this Worker's buses. */
  devices: DeviceSpec[];
  /** The VM's {@link VmControl} buffer. */
  control: SharedArrayBuffer;
  /** Log level. */
  logLevel: LogLevel;
}

/** Exit counters and timestamps of one vCPU, for metrics and benchmarks. */
export interface VcpuStats {
  /** PIO exits handled. */
  pioExits: number;
  /** MMIO exits handled. */
  mmioExits: number;
  /** `performance.timeOrigin + performance.now()` at the first KVM_RUN (ms since the epoch). */
  firstRunAt: number;
  /** The same clock when the loop ended. */
  endedAt: number;
}

/** Worker → main: the Worker is about to enter KVM_RUN; `tid` is its kernel thread id, for kicks. */
export interface VcpuReady {
  type: "ready";
  id: number;
  tid: number;
}

/** Worker → main: the vCPU loop ended (and why, if this vCPU saw an error). */
export interface VcpuExited {
  type: "exited";
  id: number;
  error?: string;
  stats: VcpuStats;
}

/** Any message a vCPU Worker posts. */
export type VcpuMessage = VcpuReady | VcpuExited;
