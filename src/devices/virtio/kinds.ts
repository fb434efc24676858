/**
 * The device types a device runner (a Worker, or a jailed device process) can run, by name: a
 * plain-data {@link BackendSpec} crosses to the runner, which builds the backend there. Also what
 * the sandbox needs to know of each type: the descriptors its spec carries (renumbered for a
 * jailed process), and the name of its seccomp policy.
 *
 * @module
 */

import type { VirtioBackend } from "./device.ts";
import { BlockBackend, type BlockSpec } from "./block/device.ts";
import { POOL_DESCRIPTORS } from "../../disk/pool_io.ts";
import type { VirtioDeviceInfo } from "./transport/pci/state.ts";
import { RngBackend } from "./rng/device.ts";
import { BalloonBackend, type BalloonSpec } from "./balloon/device.ts";
import { NetBackend, type NetSpec } from "./net/device.ts";
import { MAX_CONNECTIONS, VsockBackend, type VsockSpec } from "./vsock/device.ts";
import { VhostNetBackend, type VhostNetSpec } from "./net/vhost.ts";
import { VhostVsockBackend, type VhostVsockSpec } from "./vsock/vhost.ts";

/** virtio-rng. */
export interface RngSpec {
  /** Selects virtio-rng. */
  kind: "rng";
  /** Cap on the bytes served per request (default 64 KiB). */
  maxBytesPerRequest?: number;
}

export type { BalloonSpec, BlockSpec, NetSpec, VhostNetSpec, VhostVsockSpec, VsockSpec };

/** Any backend the device Worker can build. */
export type BackendSpec =
  | RngSpec
  | BlockSpec
  | BalloonSpec
  | NetSpec
  | VhostNetSpec
  | VsockSpec
  | VhostVsockSpec;

/**
 * Builds the backend `spec` names (in the device Worker, and on the main thread for its info).
 * @throws Error for a kind this build does not know
 */
export function createBackend(spec: BackendSpec): VirtioBackend {
  switch (spec.kind) {
    case "rng":
      return new RngBackend(spec.maxBytesPerRequest);
    case "block":
      return new BlockBackend(spec);
    case "balloon":
      return new BalloonBackend(spec);
    case "net":
      return new NetBackend(spec);
    case "vhost-net":
      return new VhostNetBackend(spec);
    case "vsock":
      return new VsockBackend(spec);
    case "vhost-vsock":
      return new VhostVsockBackend(spec);
    default:
      // A spec from another build (it crossed a message boundary untyped).
      throw new Error(`unknown virtio backend ${JSON.stringify(spec)}`);
  }
}

/**
 * The seccomp policy file of a device type, named as crosvm names its policies (in
 * `seccomp/x86_64/`).
 */
export function policyFileName(spec: BackendSpec): string {
  switch (spec.kind) {
    case "rng":
      return "rng_device.policy";
    case "block":
      return "block_device.policy";
    case "balloon":
      return "balloon_device.policy";
    case "net":
      return "net_device.policy";
    case "vhost-net":
      return "vhost_net_device.policy";
    case "vsock":
      return "vsock_device.policy";
    case "vhost-vsock":
      return "vhost_vsock_device.policy";
  }
}

/**
 * Descriptors a device of this type opens while it runs, beyond those it is given and the
 * runtime's own (a jailed process's RLIMIT_NOFILE makes room for them): a userspace vsock's
 * host sockets, a disk's io_uring.
 */
export function descriptorAllowance(spec: BackendSpec): number {
  switch (spec.kind) {
    case "vsock":
      return MAX_CONNECTIONS;
    case "block":
      // Its engine's: io_uring's one, or (more) the thread pool's.
      return POOL_DESCRIPTORS;
    default:
      return 0;
  }
}

/** `spec` with every descriptor it carries replaced by `remap(fd)` (its number in the runner). */
export function remapBackendFds(spec: BackendSpec, remap: (fd: number) => number): BackendSpec {
  switch (spec.kind) {
    case "block":
      return { ...spec, fd: remap(spec.fd), eventFd: remap(spec.eventFd) };
    case "net":
      return { ...spec, taps: spec.taps.map(remap) };
    case "vhost-net":
      return {
        ...spec,
        fd: remap(spec.fd),
        vhostFd: remap(spec.vhostFd),
        callFds: [remap(spec.callFds[0]), remap(spec.callFds[1])],
      };
    case "vsock":
      return { ...spec, listenFd: remap(spec.listenFd), dirFd: remap(spec.dirFd) };
    case "vhost-vsock":
      return {
        ...spec,
        vhostFd: remap(spec.vhostFd),
        callFds: [remap(spec.callFds[0]), remap(spec.callFds[1])],
      };
    default:
      return spec;
  }
}

/** What the transport needs to know of a backend. */
export function deviceInfo(backend: VirtioBackend): VirtioDeviceInfo {
  return {
    deviceType: backend.deviceType,
    features: backend.features,
    queueSizes: [...backend.queueSizes],
    config: backend.configBytes.slice(),
    pciClass: backend.pciClass,
    driverWritableConfig: backend.driverWritableConfig ?? null,
    hostCells: backend.hostCells ?? 0,
  };
}
