/**
 * Opens the TAPs a configuration's NICs use, in the VMM (a jailed device is handed its TAP's
 * descriptor; it opens nothing): by name, from a descriptor the VMM was given, or created and
 * configured from a host address. Everything opened is closed by the VM's cleanup stack.
 *
 * @module
 */

import type { NetConfig } from "../../../config.ts";
import { UserError } from "../../../errors.ts";
import { adoptTapFd, configureInterface, openTap, type Tap, TapError } from "../../../ffi/tap.ts";
import { close } from "../../../ffi/libc.ts";
import type { NetSpec } from "./device.ts";
import { isNetmask, parseIpv4, parseMac } from "./address.ts";

/** The name the VMM gives a TAP it creates for a host address (the kernel fills in `%d`). */
const CREATED_TAP_NAME = "vmtap%d";

/** A NIC's configuration that cannot work: one line. */
export class NetConfigError extends UserError {}

/**
 * The NICs' backends, their TAPs open. A TAP opened here is closed by `cleanup`; a `tap-fd` is
 * the caller's and stays open.
 * @throws NetConfigError (or TapError) naming the NIC and what is wrong
 */
export function openTaps(nets: readonly NetConfig[], cleanup: DisposableStack): NetSpec[] {
  return nets.map((net, i) => {
    const mac = net.mac === undefined ? undefined : parseMac(net.mac);
    if (net.mac !== undefined && mac === undefined) {
      throw new NetConfigError(`NIC ${i}: MAC '${net.mac}' is not six hex bytes with colons`);
    }
    const tap = openNetTap(net, i, mac, cleanup);
    return { kind: "net", fd: tap.fd, ...(mac === undefined ? {} : { mac }) };
  });
}

function openNetTap(
  net: NetConfig,
  i: number,
  mac: number[] | undefined,
  cleanup: DisposableStack,
): Tap {
  const { tap } = net;
  try {
    if ("fd" in tap) return adoptTapFd(tap.fd);
    if ("name" in tap) return owned(openTap(tap.name), cleanup);
    const address = parseIpv4(tap.hostIp);
    const netmask = parseIpv4(tap.netmask);
    if (address === undefined) throw new NetConfigError(`host-ip '${tap.hostIp}' is not IPv4`);
    if (netmask === undefined || !isNetmask(netmask)) {
      throw new NetConfigError(`netmask '${tap.netmask}' is not an IPv4 netmask`);
    }
    if (mac === undefined) throw new NetConfigError("host-ip needs the guest's mac too");
    const created = owned(openTap(CREATED_TAP_NAME), cleanup);
    configureInterface(created.name, { address, netmask });
    return created;
  } catch (e) {
    if (e instanceof TapError || e instanceof NetConfigError) {
      throw new NetConfigError(`NIC ${i}: ${e.message}`);
    }
    throw e;
  }
}

function owned(tap: Tap, cleanup: DisposableStack): Tap {
  cleanup.defer(() => close(tap.fd));
  return tap;
}
