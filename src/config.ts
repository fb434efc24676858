/**
 * The VM configuration the CLI builds and the library runs, with crosvm's defaults.
 *
 * @module
 */

import type { LogLevel } from "./log.ts";

/** crosvm's default guest memory: 256 MiB. */
export const DEFAULT_MEM_MIB = 256;
/** crosvm's default vCPU count. */
export const DEFAULT_CPUS = 1;
/** The KVM device crosvm opens unless `--kvm-device` says otherwise. */
export const DEFAULT_KVM_DEVICE = "/dev/kvm";
/** Legacy COM ports: COM1–COM4, as crosvm's `--serial num=1..4`. */
export const COM_PORT_COUNT = 4;

/** crosvm's default `block-size`: 512-byte logical blocks (`block_option_block_size_default`). */
export const DEFAULT_BLOCK_SIZE = 512;
/** Disks a VM may have: /dev/vda to /dev/vdz. */
export const MAX_DISKS = 26;

/** One virtio-blk disk (crosvm's `--block path=…,ro,root,sparse,direct,id=…,block-size=…`). */
export interface DiskConfig {
  /** The raw image: a regular file or a block device. */
  path: string;
  /** The guest may not write it; the image is opened read-only. */
  readOnly: boolean;
  /** It is the root file system: the kernel gets `root=/dev/vdX` and `ro` or `rw`. */
  root: boolean;
  /** Discard punches holes in the image (crosvm's default: true). */
  sparse: boolean;
  /** Open the image with O_DIRECT, bypassing the host's page cache. */
  direct: boolean;
  /** The ID the guest reads (virtio-blk GET_ID, at most 20 bytes); default none. */
  id?: string;
  /** The logical block size the guest is told, a power of two from 512 (default 512). */
  blockSize: number;
  /** Request queues (virtio-blk `num_queues`); absent: one per vCPU, at most {@link MAX_BLOCK_QUEUES}. */
  numQueues?: number;
  /**
   * crosvm's `async-executor`: `uring` (the default) does I/O on an io_uring where the host
   * allows it, many requests in flight; `epoll` serves each request synchronously.
   */
  asyncExecutor?: "uring" | "epoll";
}

/** The most request queues one disk may have (crosvm's default `num_queues` for virtio-blk). */
export const MAX_BLOCK_QUEUES = 16;

/** Where a serial port's output goes. */
export type SerialType = "stdout" | "file" | "sink" | "stream";

/** One serial port (crosvm's `--serial type=…,num=…,path=…,console,stdin`). */
export interface SerialConfig {
  /** COM port number, 1–4. */
  num: number;
  /** Output destination: stdout, a file, nowhere, or the library's `serialOutput` stream. */
  type: SerialType;
  /** The output file for `type: "file"`. */
  path?: string;
  /** The guest kernel's console is on this port (`console=ttySN`). */
  console: boolean;
  /** This port reads the VMM's standard input. */
  stdin: boolean;
}

/** How the virtio devices are jailed (crosvm's sandbox: on unless `--disable-sandbox`). */
export interface SandboxConfig {
  /** Run each virtio device in a jailed process of its own (else in a Worker of the VMM). */
  enabled: boolean;
  /** Directory of the seccomp policies (default: the shipped `seccomp/x86_64/`). */
  policyDir?: string;
  /** Log seccomp violations instead of killing the device (`--seccomp-log-failures`). */
  logFailures: boolean;
}

/** The memory balloon's options. */
export interface BalloonConfig {
  /** Free page reporting: the guest hands its free pages back (`--balloon-page-reporting`). */
  pageReporting: boolean;
}

/**
 * A network interface (crosvm's `--net`): the TAP its frames cross, and the guest's MAC.
 * - `{ name }`: the TAP of that name, created if missing (CAP_NET_ADMIN);
 * - `{ fd }`: a TAP descriptor this process was given (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR);
 * - `{ hostIp, netmask }`: a new TAP `vmtap%d` the VMM gives this address and netmask and brings
 *   up (the guest's MAC is required then, as crosvm requires it).
 */
export interface NetConfig {
  /** Where the TAP comes from (see above). */
  tap: { name: string } | { fd: number } | { hostIp: string; netmask: string };
  /** The guest's MAC, `52:54:00:12:34:56`; without it the guest's driver makes one up. */
  mac?: string;
  /**
   * Queue pairs (crosvm's `vq-pairs`, default 1): several make the TAP a multiqueue one, a
   * descriptor per pair (so not with `{ fd }`).
   */
  queuePairs?: number;
  /**
   * The kernel moves the frames (vhost-net) through this vhost device, `/dev/vhost-net` unless
   * told otherwise; without it the device's runner does.
   */
  vhostNet?: { device: string };
}

/**
 * virtio-vsock (crosvm's `--vsock`): the guest's CID, and which back end moves its packets:
 * - `udsPath`: the userspace device on Unix sockets. Host programs connect to that socket and
 *   ask for a guest port; the guest's connections to the host's port P go to `<udsPath>_P`;
 * - otherwise the kernel's vhost-vsock through `vhostDevice` (`/dev/vhost-vsock` by default):
 *   host programs use AF_VSOCK sockets to the CID.
 */
export interface VsockConfig {
  /** The guest's context ID, 3 to 2^32 - 2. */
  cid: number;
  /** The userspace device's listening socket, created by the VMM (a stale one is replaced). */
  udsPath?: string;
  /** The vhost-vsock device, without `udsPath` (default `/dev/vhost-vsock`). */
  vhostDevice?: string;
}

/** Everything needed to build and run one VM. */
export interface VmConfig {
  /** Path of the kernel (ELF vmlinux or bzImage). */
  kernel: string;
  /** Path of an initial ramdisk. */
  initrd?: string;
  /** Guest RAM in MiB. */
  memMiB: number;
  /** Number of vCPUs. */
  cpus: number;
  /** Extra kernel command-line parameters, appended in order. */
  params: string[];
  /** Serial ports; ports not listed are sinks. */
  serials: SerialConfig[];
  /** The KVM device (default {@link DEFAULT_KVM_DEVICE}). */
  kvmDevice?: string;
  /** Disks, in order: /dev/vda, /dev/vdb, … (virtio-pci functions from 00:01.0 on). */
  disks: DiskConfig[];
  /** Network interfaces, after the disks (none by default). */
  nets?: NetConfig[];
  /** A virtio-vsock device, after the NICs (none by default). */
  vsock?: VsockConfig;
  /** Give the guest a virtio-rng device, after the NICs and vsock (crosvm: on unless `--no-rng`). */
  rng: boolean;
  /**
   * A virtio-balloon device, after virtio-rng (crosvm: on unless `--no-balloon`; the CLI and
   * `defaultConfig` give one). Absent: no balloon.
   */
  balloon?: BalloonConfig;
  /** Log level for the VMM and its Workers. */
  logLevel: LogLevel;
  /** The device sandbox (default {@link defaultSandbox}: on, shipped policies, kill on violation). */
  sandbox?: SandboxConfig;
}

/** crosvm's default sandbox: every device jailed, the shipped policies, violations kill. */
export function defaultSandbox(): SandboxConfig {
  return { enabled: true, logFailures: false };
}

/** The serial ports crosvm configures when no `--serial` is given: COM1 on stdout, console and stdin. */
export function defaultSerials(): SerialConfig[] {
  return [{ num: 1, type: "stdout", console: true, stdin: true }];
}
