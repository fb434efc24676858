/**
 * TAP network interfaces through `/dev/net/tun` (Documentation/networking/tuntap.rst): open
 * one by name (created if missing) or check one handed over as a descriptor, set its virtio-net
 * header size and offloads, and give the host side an address and a netmask and bring it
 * up (the `SIOCSIF*` ioctls on an `AF_INET` socket, as `ip addr`/`ip link` do). Every ioctl
 * number is checked against `<linux/if_tun.h>` and `<linux/sockios.h>` by a test.
 *
 * @module
 */

import { Errno, errnoName, SyscallError } from "./errno.ts";
import {
  close,
  ioctl,
  ioctlBuf,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  open,
  setNonBlocking,
  SOCK_CLOEXEC,
} from "./libc.ts";
import { UserError } from "../errors.ts";

/** The TUN/TAP clone device. */
export const TUN_DEVICE = "/dev/net/tun";

/** `ioctl(2)` requests on a TUN/TAP descriptor, `<linux/if_tun.h>`. */
export const TunIoctl = {
  /** `_IOW('T', 202, int)`: attach to (or create) the interface `ifr_name` with `ifr_flags`. */
  TUNSETIFF: 0x4004_54ca,
  /** `_IOW('T', 208, unsigned int)`: the TUN_F_* offloads the reader can take. */
  TUNSETOFFLOAD: 0x4004_54d0,
  /** `_IOR('T', 210, struct ifreq)`: the attached interface's name and flags. */
  TUNGETIFF: 0x8004_54d2,
  /** `_IOW('T', 216, int)`: the size of the virtio-net header in front of each frame. */
  TUNSETVNETHDRSZ: 0x4004_54d8,
  /** `_IOW('T', 217, int)`: attach or detach this queue of a multiqueue TAP (`ifr_flags`). */
  TUNSETQUEUE: 0x4004_54d9,
} as const;

/** `ifr_flags` for TUNSETIFF, `<linux/if_tun.h>`. */
export const TunFlags = {
  IFF_TAP: 0x0002,
  IFF_MULTI_QUEUE: 0x0100,
  /** For TUNSETQUEUE: the queue takes part in the interface again, or no longer. */
  IFF_ATTACH_QUEUE: 0x0200,
  IFF_DETACH_QUEUE: 0x0400,
  IFF_NO_PI: 0x1000,
  IFF_VNET_HDR: 0x4000,
} as const;

/** TUNSETOFFLOAD bits, `<linux/if_tun.h>`. */
export const TunOffload = {
  TUN_F_CSUM: 0x01,
  TUN_F_TSO4: 0x02,
  TUN_F_TSO6: 0x04,
  TUN_F_TSO_ECN: 0x08,
} as const;

/** Interface ioctls on a socket, `<linux/sockios.h>`. */
export const SockIoctl = {
  SIOCGIFFLAGS: 0x8913,
  SIOCSIFFLAGS: 0x8914,
  SIOCSIFADDR: 0x8916,
  SIOCSIFNETMASK: 0x891c,
  SIOCGIFMTU: 0x8921,
} as const;

/** `IFF_UP`, `<linux/if.h>`. */
const IFF_UP = 0x1;
/** `AF_INET` and `SOCK_DGRAM`, `<sys/socket.h>`. */
const AF_INET = 2;
const SOCK_DGRAM = 2;

/** `struct ifreq` (`<linux/if.h>`): the name, then a union (flags, a sockaddr, …). */
const IFREQ = { size: 40, name: 0, union: 16 } as const;
/** `IFNAMSIZ`, with the terminating NUL. */
export const IFNAMSIZ = 16;
/** `struct sockaddr_in`'s address field, in the ifreq union. */
const SOCKADDR_IN_ADDR = 4;

/** The virtio-net header a TAP puts in front of each frame (virtio 1.x with num_buffers). */
export const VNET_HDR_SIZE = 12;

/** A TAP interface cannot be opened or set up: one line saying why. */
export class TapError extends UserError {}

/** An ifreq with `name` in it. */
function ifreq(name: string): Uint8Array {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0 || bytes.length >= IFNAMSIZ || bytes.includes(0)) {
    throw new TapError(`TAP name '${name}' is not 1 to ${IFNAMSIZ - 1} bytes`);
  }
  const req = new Uint8Array(IFREQ.size);
  req.set(bytes, IFREQ.name);
  return req;
}

function nameOf(req: Uint8Array): string {
  const end = req.indexOf(0);
  return new TextDecoder().decode(req.subarray(IFREQ.name, end < 0 ? IFNAMSIZ : end));
}

/** The flags every TAP of ours has: an Ethernet tap, no packet info, a virtio-net header. */
const TAP_FLAGS = TunFlags.IFF_TAP | TunFlags.IFF_NO_PI | TunFlags.IFF_VNET_HDR;

/** An open TAP: its descriptor (non-blocking, close-on-exec) and its interface's name. */
export interface Tap {
  readonly fd: number;
  readonly name: string;
}

/**
 * Opens the TAP `name` (`%d` in it picks the first free number), creating it if it does not
 * exist (CAP_NET_ADMIN), with a {@link VNET_HDR_SIZE}-byte virtio-net header. With `multiQueue`
 * the TAP is a multiqueue one (IFF_MULTI_QUEUE) and each open of it adds a queue.
 * @throws TapError saying why it cannot be had
 */
export function openTap(name: string, multiQueue = false): Tap {
  const req = ifreq(name);
  let fd: number;
  try {
    fd = open(TUN_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  } catch (e) {
    if (e instanceof SyscallError) {
      throw new TapError(`cannot open ${TUN_DEVICE} for TAP ${name}: ${errnoName(e.errno)}`);
    }
    throw e;
  }
  try {
    const flags = TAP_FLAGS | (multiQueue ? TunFlags.IFF_MULTI_QUEUE : 0);
    new DataView(req.buffer).setUint16(IFREQ.union, flags, true);
    try {
      ioctlBuf(fd, TunIoctl.TUNSETIFF, req, "TUNSETIFF");
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      const why = e.errno === Errno.EPERM
        ? "not permitted (creating a TAP needs CAP_NET_ADMIN, or one made for this user)"
        : e.errno === Errno.EBUSY
        ? `it is in use, or is a TUN or ${multiQueue ? "single-queue" : "multiqueue"} device`
        : errnoName(e.errno);
      throw new TapError(`cannot open TAP ${name}: ${why}`);
    }
    setVnetHeaderSize(fd);
    return { fd, name: nameOf(req) };
  } catch (e) {
    close(fd);
    throw e;
  }
}

/**
 * Checks a descriptor handed to us (`tap-fd=N`): it must be a TAP with IFF_NO_PI and
 * IFF_VNET_HDR and no multiqueue; sets its header size and makes it non-blocking (the device
 * reads frames until EAGAIN). Returns its interface's name.
 * @throws TapError naming what does not fit
 */
export function adoptTapFd(fd: number): Tap {
  const req = new Uint8Array(IFREQ.size);
  try {
    ioctlBuf(fd, TunIoctl.TUNGETIFF, req, "TUNGETIFF");
  } catch (e) {
    if (e instanceof SyscallError) {
      throw new TapError(`tap-fd ${fd} is not a TAP descriptor (${errnoName(e.errno)})`);
    }
    throw e;
  }
  const flags = new DataView(req.buffer).getUint16(IFREQ.union, true);
  const missing = [
    ["IFF_TAP", TunFlags.IFF_TAP],
    ["IFF_NO_PI", TunFlags.IFF_NO_PI],
    ["IFF_VNET_HDR", TunFlags.IFF_VNET_HDR],
  ].filter(([, bit]) => (flags & (bit as number)) === 0).map(([name]) => name);
  if (missing.length > 0) {
    throw new TapError(`tap-fd ${fd} (${nameOf(req)}) lacks ${missing.join(", ")}`);
  }
  if (flags & TunFlags.IFF_MULTI_QUEUE) {
    throw new TapError(`tap-fd ${fd} (${nameOf(req)}) is multiqueue; one queue pair needs one`);
  }
  setVnetHeaderSize(fd);
  setNonBlocking(fd);
  return { fd, name: nameOf(req) };
}

function setVnetHeaderSize(fd: number): void {
  const size = new Int32Array([VNET_HDR_SIZE]);
  ioctlBuf(fd, TunIoctl.TUNSETVNETHDRSZ, new Uint8Array(size.buffer), "TUNSETVNETHDRSZ");
}

/** Tells the TAP which offloads (TUN_F_*) the reader takes: what the guest accepted. */
export function setTapOffload(fd: number, offloads: number): void {
  ioctl(fd, TunIoctl.TUNSETOFFLOAD, BigInt(offloads), "TUNSETOFFLOAD");
}

/**
 * Lets this queue of a multiqueue TAP take part in the interface (frames are steered to it), or
 * stops it (a detached queue neither receives nor sends).
 */
export function setTapQueueAttached(fd: number, attached: boolean): void {
  const req = new Uint8Array(IFREQ.size);
  const flags = attached ? TunFlags.IFF_ATTACH_QUEUE : TunFlags.IFF_DETACH_QUEUE;
  new DataView(req.buffer).setUint16(IFREQ.union, flags, true);
  ioctlBuf(fd, TunIoctl.TUNSETQUEUE, req, "TUNSETQUEUE");
}

/** The host side of a TAP: its IPv4 address and netmask. */
export interface HostInterface {
  /** Four bytes. */
  readonly address: Uint8Array;
  /** Four bytes. */
  readonly netmask: Uint8Array;
}

/** One interface ioctl on `name`: its description for errors, its number, and how to fill the request. */
type InterfaceStep = (
  what: string,
  request: number,
  fill?: (req: Uint8Array) => void,
) => Uint8Array;

/**
 * Runs `steps` with an `AF_INET` socket to make interface ioctls on `name` (as `ip` does); each
 * step returns its filled-in ifreq.
 * @throws TapError naming the step that failed
 */
function onInterface<T>(name: string, steps: (step: InterfaceStep) => T): T {
  const sock = libc().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) throw new TapError(`cannot configure ${name}: no AF_INET socket`);
  const step: InterfaceStep = (what, request, fill) => {
    const req = ifreq(name);
    fill?.(req);
    try {
      ioctlBuf(sock, request, req, what);
    } catch (e) {
      if (e instanceof SyscallError) {
        throw new TapError(`cannot get or set the ${what} of ${name}: ${errnoName(e.errno)}`);
      }
      throw e;
    }
    return req;
  };
  try {
    return steps(step);
  } finally {
    close(sock);
  }
}

/**
 * Gives the interface `name` an address and a netmask, and brings it up.
 * @throws TapError naming the step that failed
 */
export function configureInterface(name: string, host: HostInterface): void {
  const inet = (bytes: Uint8Array) => (req: Uint8Array) => {
    new DataView(req.buffer).setUint16(IFREQ.union, AF_INET, true);
    req.set(bytes, IFREQ.union + SOCKADDR_IN_ADDR);
  };
  onInterface(name, (step) => {
    step("address", SockIoctl.SIOCSIFADDR, inet(host.address));
    step("netmask", SockIoctl.SIOCSIFNETMASK, inet(host.netmask));
    const flags = new DataView(step("flags", SockIoctl.SIOCGIFFLAGS).buffer);
    step("flags", SockIoctl.SIOCSIFFLAGS, (req) => {
      new DataView(req.buffer).setUint16(
        IFREQ.union,
        flags.getUint16(IFREQ.union, true) | IFF_UP,
        true,
      );
    });
  });
}

/**
 * The MTU of the interface `name`.
 * @throws TapError when it cannot be read
 */
export function interfaceMtu(name: string): number {
  return onInterface(name, (step) => {
    const req = step("MTU", SockIoctl.SIOCGIFMTU);
    return new DataView(req.buffer).getInt32(IFREQ.union, true);
  });
}
