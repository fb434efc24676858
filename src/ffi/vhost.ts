/**
 * The kernel's vhost back ends (`/dev/vhost-net`, `/dev/vhost-vsock`): the ioctl ABI of
 * `<linux/vhost.h>` with the structs of `<linux/vhost_types.h>`, and {@link VhostDevice}, a thin
 * wrapper over an open vhost descriptor. The process that calls {@link VhostDevice.setOwner}
 * becomes the owner: every address handed over later (the memory table, the rings) is a virtual
 * address in that process, whose mapping of guest memory the kernel's worker then uses.
 * Every number here is checked against the headers by a test.
 *
 * @module
 */

import { _IO, _IOR, _IOW, _IOWR } from "./ioctl.ts";
import type { StructLayout } from "./kvm_abi.ts";
import { ioctl, ioctlBuf } from "./libc.ts";
import { StructBuffer } from "./struct.ts";

/** The vhost-net device a NIC uses unless told otherwise. */
export const VHOST_NET_DEVICE = "/dev/vhost-net";
/** The vhost-vsock device a vsock device uses unless told otherwise. */
export const VHOST_VSOCK_DEVICE = "/dev/vhost-vsock";

/** `VHOST_VIRTIO`, the ioctl type byte of every vhost request (`<linux/vhost.h>`). */
const VHOST_VIRTIO = 0xaf;

/** The descriptor that unbinds (a ring's eventfd, a net ring's back end), `<linux/vhost.h>`. */
export const VHOST_FILE_UNBIND = -1;

/** `struct vhost_vring_state` (`<linux/vhost_types.h>`): a ring's size or its next index. */
export const VHOST_VRING_STATE = {
  name: "vhost_vring_state",
  size: 8,
  fields: { index: 0, num: 4 },
} as const satisfies StructLayout;

/** `struct vhost_vring_file`: a ring's eventfd (kick, call, err) or a net back end's socket. */
export const VHOST_VRING_FILE = {
  name: "vhost_vring_file",
  size: 8,
  fields: { index: 0, fd: 4 },
} as const satisfies StructLayout;

/** `struct vhost_vring_addr`: where a ring's three parts are, as the owner's virtual addresses. */
export const VHOST_VRING_ADDR = {
  name: "vhost_vring_addr",
  size: 40,
  fields: {
    index: 0,
    flags: 4,
    desc_user_addr: 8,
    used_user_addr: 16,
    avail_user_addr: 24,
    log_guest_addr: 32,
  },
} as const satisfies StructLayout;

/** `struct vhost_memory`: a count, then that many {@link VHOST_MEMORY_REGION}s. */
export const VHOST_MEMORY = {
  name: "vhost_memory",
  size: 8,
  fields: { nregions: 0, padding: 4, regions: 8 },
} as const satisfies StructLayout;

/** `struct vhost_memory_region`: guest-physical range and the owner's address of its first byte. */
export const VHOST_MEMORY_REGION = {
  name: "vhost_memory_region",
  size: 32,
  fields: { guest_phys_addr: 0, memory_size: 8, userspace_addr: 16, flags_padding: 24 },
} as const satisfies StructLayout;

/** Every vhost struct layout, for the test against the headers. */
export const VHOST_LAYOUTS: readonly StructLayout[] = [
  VHOST_VRING_STATE,
  VHOST_VRING_FILE,
  VHOST_VRING_ADDR,
  VHOST_MEMORY,
  VHOST_MEMORY_REGION,
];

/** `ioctl(2)` requests on a vhost descriptor, `<linux/vhost.h>`. */
export const VhostIoctl = {
  /** `_IOR(VHOST_VIRTIO, 0x00, __u64)`: the feature bits the back end supports. */
  VHOST_GET_FEATURES: _IOR(VHOST_VIRTIO, 0x00, 8),
  /** `_IOW(VHOST_VIRTIO, 0x00, __u64)`: the feature bits in use. */
  VHOST_SET_FEATURES: _IOW(VHOST_VIRTIO, 0x00, 8),
  /** `_IO(VHOST_VIRTIO, 0x01)`: the calling process owns the device from now on. */
  VHOST_SET_OWNER: _IO(VHOST_VIRTIO, 0x01),
  /** `_IO(VHOST_VIRTIO, 0x02)`: forget the owner and everything set since. */
  VHOST_RESET_OWNER: _IO(VHOST_VIRTIO, 0x02),
  /** `_IOW(VHOST_VIRTIO, 0x03, struct vhost_memory)`: the guest's memory table. */
  VHOST_SET_MEM_TABLE: _IOW(VHOST_VIRTIO, 0x03, VHOST_MEMORY.size),
  /** `_IOW(VHOST_VIRTIO, 0x10, struct vhost_vring_state)`: a ring's size. */
  VHOST_SET_VRING_NUM: _IOW(VHOST_VIRTIO, 0x10, VHOST_VRING_STATE.size),
  /** `_IOW(VHOST_VIRTIO, 0x11, struct vhost_vring_addr)`: a ring's addresses. */
  VHOST_SET_VRING_ADDR: _IOW(VHOST_VIRTIO, 0x11, VHOST_VRING_ADDR.size),
  /** `_IOW(VHOST_VIRTIO, 0x12, struct vhost_vring_state)`: the next available index to read. */
  VHOST_SET_VRING_BASE: _IOW(VHOST_VIRTIO, 0x12, VHOST_VRING_STATE.size),
  /** `_IOWR(VHOST_VIRTIO, 0x12, struct vhost_vring_state)`: that index now (the ring stops). */
  VHOST_GET_VRING_BASE: _IOWR(VHOST_VIRTIO, 0x12, VHOST_VRING_STATE.size),
  /** `_IOW(VHOST_VIRTIO, 0x20, struct vhost_vring_file)`: the eventfd the driver's kick signals. */
  VHOST_SET_VRING_KICK: _IOW(VHOST_VIRTIO, 0x20, VHOST_VRING_FILE.size),
  /** `_IOW(VHOST_VIRTIO, 0x21, struct vhost_vring_file)`: the eventfd the back end signals to interrupt. */
  VHOST_SET_VRING_CALL: _IOW(VHOST_VIRTIO, 0x21, VHOST_VRING_FILE.size),
  /** `_IOW(VHOST_VIRTIO, 0x22, struct vhost_vring_file)`: the eventfd it signals on a ring error. */
  VHOST_SET_VRING_ERR: _IOW(VHOST_VIRTIO, 0x22, VHOST_VRING_FILE.size),
  /** `_IOW(VHOST_VIRTIO, 0x30, struct vhost_vring_file)`: a net ring's TAP (or -1: none). */
  VHOST_NET_SET_BACKEND: _IOW(VHOST_VIRTIO, 0x30, VHOST_VRING_FILE.size),
  /** `_IOW(VHOST_VIRTIO, 0x60, __u64)`: a vsock device's guest CID. */
  VHOST_VSOCK_SET_GUEST_CID: _IOW(VHOST_VIRTIO, 0x60, 8),
  /** `_IOW(VHOST_VIRTIO, 0x61, int)`: start (1) or stop (0) a vsock device. */
  VHOST_VSOCK_SET_RUNNING: _IOW(VHOST_VIRTIO, 0x61, 4),
} as const;

/** A ring's addresses, as virtual addresses in the owner process. */
export interface VringAddresses {
  /** The descriptor table. */
  readonly desc: bigint;
  /** The available ring. */
  readonly avail: bigint;
  /** The used ring. */
  readonly used: bigint;
}

/** One region of the memory table: guest-physical range and the owner's address of it. */
export interface VhostMemoryRegion {
  readonly guestAddress: number;
  readonly size: number;
  readonly hostAddress: bigint;
}

/**
 * An open vhost descriptor (opened by someone else; this wrapper closes nothing). Each method is
 * one ioctl; a failure is a SyscallError naming the request.
 */
export class VhostDevice {
  /** @param fd the vhost descriptor */
  constructor(readonly fd: number) {}

  /** The feature bits the back end supports. */
  features(): bigint {
    const value = new BigUint64Array(1);
    this.#ioctl("VHOST_GET_FEATURES", new Uint8Array(value.buffer));
    return value[0];
  }

  /** Sets the feature bits in use (a subset of {@link features}). */
  setFeatures(features: bigint): void {
    this.#ioctl("VHOST_SET_FEATURES", new Uint8Array(BigUint64Array.of(features).buffer));
  }

  /** Makes the calling process the owner (once per descriptor until {@link resetOwner}). */
  setOwner(): void {
    ioctl(this.fd, VhostIoctl.VHOST_SET_OWNER, 0n, "VHOST_SET_OWNER");
  }

  /** Forgets the owner, the memory table and the rings. */
  resetOwner(): void {
    ioctl(this.fd, VhostIoctl.VHOST_RESET_OWNER, 0n, "VHOST_RESET_OWNER");
  }

  /** Replaces the memory table with `regions`. */
  setMemTable(regions: readonly VhostMemoryRegion[]): void {
    const table = new StructBuffer(VHOST_MEMORY, regions.length * VHOST_MEMORY_REGION.size);
    table.setU32("nregions", regions.length);
    const entry = VHOST_MEMORY_REGION.fields;
    regions.forEach((r, i) => {
      const at = VHOST_MEMORY.fields.regions + i * VHOST_MEMORY_REGION.size;
      table.view.setBigUint64(at + entry.guest_phys_addr, BigInt(r.guestAddress), true);
      table.view.setBigUint64(at + entry.memory_size, BigInt(r.size), true);
      table.view.setBigUint64(at + entry.userspace_addr, r.hostAddress, true);
    });
    this.#ioctl("VHOST_SET_MEM_TABLE", table.bytes);
  }

  /** Sets ring `index`'s size. */
  setVringNum(index: number, size: number): void {
    this.#ioctl("VHOST_SET_VRING_NUM", vringState(index, size).bytes);
  }

  /** Sets where ring `index` lies. */
  setVringAddr(index: number, addresses: VringAddresses): void {
    const addr = new StructBuffer(VHOST_VRING_ADDR);
    addr.setU32("index", index);
    addr.setU64("desc_user_addr", addresses.desc);
    addr.setU64("avail_user_addr", addresses.avail);
    addr.setU64("used_user_addr", addresses.used);
    this.#ioctl("VHOST_SET_VRING_ADDR", addr.bytes);
  }

  /** Sets the available index ring `index` reads next. */
  setVringBase(index: number, base: number): void {
    this.#ioctl("VHOST_SET_VRING_BASE", vringState(index, base).bytes);
  }

  /** Stops ring `index` and returns the available index it would have read next. */
  vringBase(index: number): number {
    const state = vringState(index, 0);
    this.#ioctl("VHOST_GET_VRING_BASE", state.bytes);
    return state.u32("num");
  }

  /** The eventfd whose signal means the driver kicked ring `index`. */
  setVringKick(index: number, fd: number): void {
    this.#ioctl("VHOST_SET_VRING_KICK", vringFile(index, fd).bytes);
  }

  /** The eventfd the back end signals when ring `index`'s driver should be interrupted. */
  setVringCall(index: number, fd: number): void {
    this.#ioctl("VHOST_SET_VRING_CALL", vringFile(index, fd).bytes);
  }

  /** The eventfd the back end signals when ring `index` is malformed. */
  setVringErr(index: number, fd: number): void {
    this.#ioctl("VHOST_SET_VRING_ERR", vringFile(index, fd).bytes);
  }

  /** vhost-net: ring `index` moves frames to and from the TAP `fd` ({@link VHOST_FILE_UNBIND}: none). */
  setNetBackend(index: number, fd: number): void {
    this.#ioctl("VHOST_NET_SET_BACKEND", vringFile(index, fd).bytes);
  }

  /** vhost-vsock: the guest's context ID. */
  setGuestCid(cid: bigint): void {
    this.#ioctl("VHOST_VSOCK_SET_GUEST_CID", new Uint8Array(BigUint64Array.of(cid).buffer));
  }

  /** vhost-vsock: start or stop moving packets. */
  setRunning(running: boolean): void {
    this.#ioctl("VHOST_VSOCK_SET_RUNNING", new Uint8Array(Int32Array.of(running ? 1 : 0).buffer));
  }

  #ioctl(name: keyof typeof VhostIoctl, arg: Uint8Array): void {
    ioctlBuf(this.fd, VhostIoctl[name], arg, name);
  }
}

function vringState(index: number, num: number): StructBuffer<typeof VHOST_VRING_STATE.fields> {
  const state = new StructBuffer(VHOST_VRING_STATE);
  state.setU32("index", index);
  state.setU32("num", num);
  return state;
}

function vringFile(index: number, fd: number): StructBuffer<typeof VHOST_VRING_FILE.fields> {
  const file = new StructBuffer(VHOST_VRING_FILE);
  file.setU32("index", index);
  file.view.setInt32(VHOST_VRING_FILE.fields.fd, fd, true);
  return file;
}
