/**
 * Opens the TAPs a configuration's NICs use, in the VMM (a jailed device is handed its TAP's
 * descriptor; it opens nothing): by name, from a descriptor the VMM was given, or created and
 * configured from a host address; for a vhost-net NIC also its vhost device (checked to answer
 * VHOST_GET_FEATURES) and the eventfds the kernel signals its interrupts on. Everything opened is
 * closed by the VM's cleanup stack.
 *
 * @module
 */

import type { NetConfig } from "../../../config.ts";
import { UserError } from "../../../errors.ts";
import { errnoName, SyscallError } from "../../../ffi/errno.ts";
import {
  adoptTapFd,
  configureInterface,
  interfaceMtu,
  openTap,
  type Tap,
  TapError,
} from "../../../ffi/tap.ts";
import { VhostDevice } from "../../../ffi/vhost.ts";
import { close, EFD_NONBLOCK, eventfd, O_RDWR, open } from "../../../ffi/libc.ts";
import type { NetSpec } from "./device.ts";
import type { VhostNetSpec } from "./vhost.ts";
import { isNetmask, parseIpv4, parseMac } from "./address.ts";
import { VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX } from "./spec.ts";

/** The name the VMM gives a TAP it creates for a host address (the kernel fills in `%d`). */
const CREATED_TAP_NAME = "vmtap%d";

/** A NIC's configuration that cannot work: one line. */
export class NetConfigError extends UserError {}

/**
 * The NICs' backends, their TAPs open (a descriptor per queue pair) and their MTUs read. A TAP
 * opened here is closed by `cleanup`; a `tap-fd` is the caller's and stays open.
 * @throws NetConfigError (or TapError) naming the NIC and what is wrong
 */
export function openTaps(
  nets: readonly NetConfig[],
  cleanup: DisposableStack,
): (NetSpec | VhostNetSpec)[] {
  return nets.map((net, i) => {
    const mac = net.mac === undefined ? undefined : parseMac(net.mac);
    if (net.mac !== undefined && mac === undefined) {
      throw new NetConfigError(`NIC ${i}: MAC '${net.mac}' is not six hex bytes with colons`);
    }
    const pairs = net.queuePairs ?? 1;
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX) {
      throw new NetConfigError(
        `NIC ${i}: ${pairs} queue pairs is not 1 to ${VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX}`,
      );
    }
    if (net.vhostNet !== undefined && pairs > 1) {
      throw new NetConfigError(`NIC ${i}: only one queue pair is supported yet with vhost-net`);
    }
    try {
      const macKey = mac === undefined ? {} : { mac };
      if (net.vhostNet !== undefined) {
        // The vhost device first: a host without one is told so whatever its TAPs.
        const vhostFd = openVhost(net.vhostNet.device, cleanup);
        const tap = openNetTap(net, pairs, mac, cleanup);
        // Non-blocking: the runner drains them as it does its doorbells.
        const call = () => owned(eventfd(0, EFD_NONBLOCK), cleanup);
        return { kind: "vhost-net", fd: tap.fd, vhostFd, callFds: [call(), call()], ...macKey };
      }
      const first = openNetTap(net, pairs, mac, cleanup);
      const more = Array.from(
        { length: pairs - 1 },
        () => owned(openTap(first.name, true), cleanup),
      );
      const mtu = visibleMtu(first.name);
      return {
        kind: "net",
        taps: [first, ...more].map((tap) => tap.fd),
        ...(mtu === undefined ? {} : { mtu }),
        ...macKey,
      };
    } catch (e) {
      if (e instanceof TapError || e instanceof NetConfigError) {
        throw new NetConfigError(`NIC ${i}: ${e.message}`);
      }
      throw e;
    }
  });
}

/**
 * Opens the vhost-net device `path` and checks that it is one.
 * @throws NetConfigError naming the path and why
 */
function openVhost(path: string, cleanup: DisposableStack): number {
  let fd: number;
  try {
    fd = owned(open(path, O_RDWR), cleanup);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    throw new NetConfigError(
      `cannot open vhost-net device ${path}: ${errnoName(e.errno)}`,
    );
  }
  try {
    new VhostDevice(fd).features();
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    throw new NetConfigError(
      `${path} is not a vhost device (VHOST_GET_FEATURES: ${errnoName(e.errno)})`,
    );
  }
  return fd;
}

/** The NIC's first TAP queue: named, handed over, or made for a host address. */
function openNetTap(
  net: NetConfig,
  pairs: number,
  mac: number[] | undefined,
  cleanup: DisposableStack,
): Tap {
  const { tap } = net;
  const multiQueue = pairs > 1;
  if ("fd" in tap) {
    if (multiQueue) {
      throw new NetConfigError(
        `tap-fd gives one queue; ${pairs} queue pairs need tap-name or host-ip`,
      );
    }
    return adoptTapFd(tap.fd);
  }
  if ("name" in tap) return owned(openTap(tap.name, multiQueue), cleanup);
  const address = parseIpv4(tap.hostIp);
  const netmask = parseIpv4(tap.netmask);
  if (address === undefined) throw new NetConfigError(`host-ip '${tap.hostIp}' is not IPv4`);
  if (netmask === undefined || !isNetmask(netmask)) {
    throw new NetConfigError(`netmask '${tap.netmask}' is not an IPv4 netmask`);
  }
  if (mac === undefined) throw new NetConfigError("host-ip needs the guest's mac too");
  const created = owned(openTap(CREATED_TAP_NAME, multiQueue), cleanup);
  configureInterface(created.name, { address, netmask });
  return created;
}

/**
 * The TAP interface's MTU, or undefined where the VMM cannot see the interface (a `tap-fd` whose
 * interface was moved to another network namespace still passes frames; its guest is then not
 * told an MTU and keeps Ethernet's default).
 */
function visibleMtu(name: string): number | undefined {
  try {
    return interfaceMtu(name);
  } catch (e) {
    if (e instanceof TapError) return undefined;
    throw e;
  }
}

/** `opened` (a TAP or a descriptor), closed by `cleanup`. */
function owned<T extends Tap | number>(opened: T, cleanup: DisposableStack): T {
  const fd = typeof opened === "number" ? opened : opened.fd;
  cleanup.defer(() => close(fd));
  return opened;
}
