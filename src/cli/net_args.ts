/**
 * `crosvm run --net`: a NIC on a TAP, with crosvm's keys (its `NetParameters`): `tap-name=NAME`,
 * `tap-fd=N`, or `host-ip=IP,netmask=MASK,mac=MAC` (a TAP the VMM creates), each with an
 * optional `mac=` for the guest, `vq-pairs=N` (a multiqueue TAP) and `vhost-net` or
 * `vhost-net=[device=PATH]` (the kernel moves the frames). Repeatable: NICs are numbered in the
 * order given. Also crosvm's older spellings, each taken with a warning naming its `--net` form:
 * `--tap-name NAME` and `--tap-fd N` (a NIC each), `--host-ip`/`--host_ip`, `--netmask` and
 * `--mac` (one NIC, all three together), with `--net-vq-pairs N` and `--vhost-net` applying to
 * each of them, as crosvm's. `vq-pairs` above the vCPU count falls back to one pair with a
 * warning, as crosvm does ({@link fitQueuePairs}); vhost-net takes one pair for now.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import type { NetConfig } from "../config.ts";
import { isNetmask, parseIpv4, parseMac } from "../devices/virtio/net/address.ts";
import { VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX } from "../devices/virtio/net/spec.ts";
import { VHOST_NET_DEVICE } from "../ffi/vhost.ts";
import { UsageError } from "./errors.ts";
import { type KeySchema, type KeyValues, parseKeyValues } from "./key_values.ts";
import type { OptionValue } from "./scan_args.ts";

/** crosvm's `--net` keys; `mrg-rxbuf` is taken (always offered). */
const NET_KEYS: KeySchema = [
  "tap-name",
  "tap-fd",
  "host-ip",
  "netmask",
  "mac",
  "vhost-net",
  "vq-pairs",
  "mrg-rxbuf",
];
/** The keys of `vhost-net=[...]`. */
const VHOST_NET_KEYS: KeySchema = ["device"];
/** Largest descriptor number a `tap-fd` may name. */
const MAX_FD = 2 ** 31 - 1;

/** The NIC options, for `parseArgs`. */
export const NET_OPTIONS: ParseArgsOptionsConfig = {
  net: { type: "string", multiple: true },
  "tap-name": { type: "string", multiple: true },
  "tap-fd": { type: "string", multiple: true },
  "host-ip": { type: "string" },
  host_ip: { type: "string" },
  netmask: { type: "string" },
  mac: { type: "string" },
  "vhost-net": { type: "boolean" },
  "net-vq-pairs": { type: "string" },
};

/** The NICs the options ask for, and a warning for each older spelling used. */
export interface NetOptions {
  readonly nets: NetConfig[];
  readonly warnings: string[];
}

/** Help text for `--net`. */
export const NET_USAGE = `  --net <tap-name=NAME|tap-fd=N|host-ip=IP,netmask=MASK>[,mac=MAC]
                    add a virtio-net NIC on a TAP (may be given more than once):
                      tap-name=NAME - the TAP of that name, created if missing
                        (needs CAP_NET_ADMIN)
                      tap-fd=N - a TAP descriptor this process was given
                        (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR)
                      host-ip=IP,netmask=MASK - a new TAP vmtapN with this
                        host address, brought up (mac is then required)
                      mac=MAC - the guest's MAC, e.g. 52:54:00:12:34:56
                      vq-pairs=N - N queue pairs on a multiqueue TAP
                        (default 1; at most the vCPU count)
                      vhost-net[=[device=PATH]] - the kernel moves the frames
                        (vhost-net, through PATH, default ${VHOST_NET_DEVICE})`;

/**
 * The NICs of every `--net` and older spelling, in the order given.
 * @throws UsageError for a bad or conflicting key
 */
export function parseNets(options: ReadonlyMap<string, readonly OptionValue[]>): NetOptions {
  const given = (name: string) => options.get(name) ?? [];
  const warned: { index: number; text: string }[] = [];
  const [pairs] = given("net-vq-pairs");
  const pairsKey = pairs === undefined ? "" : `,vq-pairs=${pairs.value}`;
  // Each older spelling is its --net value: parsed, and checked, as that.
  const legacy = (option: OptionValue, net: string): OptionValue => {
    const value = `${net}${pairsKey}`;
    warned.push({ index: option.index, text: `${option.flag} is deprecated; use --net ${value}` });
    return { flag: option.flag, value, index: option.index };
  };
  // crosvm's --vhost-net applies to the NICs of the older spellings.
  const [vhost] = given("vhost-net");
  if (vhost !== undefined) {
    warned.push({
      index: vhost.index,
      text: `${vhost.flag} is deprecated; use --net ...,vhost-net`,
    });
  }
  const older = (net: string) => vhost === undefined ? net : `${net},vhost-net`;
  const values = [
    ...given("net"),
    ...given("tap-name").map((o) => legacy(o, older(`tap-name=${o.value}`))),
    ...given("tap-fd").map((o) => legacy(o, older(`tap-fd=${o.value}`))),
    ...legacyHostIp(options, (o, net) => legacy(o, older(net))),
  ];
  if (vhost !== undefined && values.length === given("net").length) {
    throw new UsageError(
      `${vhost.flag} applies to --tap-name, --tap-fd or --host-ip; use --net ...,vhost-net`,
    );
  }
  const nets = values.sort((a, b) => a.index - b.index).map(parseNet);
  return { nets, warnings: warned.sort((a, b) => a.index - b.index).map((w) => w.text) };
}

/** `--host-ip IP --netmask MASK --mac MAC` as one `--net` value; all three or none. */
function legacyHostIp(
  options: ReadonlyMap<string, readonly OptionValue[]>,
  legacy: (option: OptionValue, net: string) => OptionValue,
): OptionValue[] {
  const [ip] = [...options.get("host-ip") ?? [], ...options.get("host_ip") ?? []];
  const [netmask] = options.get("netmask") ?? [];
  const [mac] = options.get("mac") ?? [];
  const parts = [ip, netmask, mac];
  if (parts.every((p) => p === undefined)) return [];
  if (ip === undefined || netmask === undefined || mac === undefined) {
    throw new UsageError("--host-ip, --netmask and --mac go together (or use --net)");
  }
  return [legacy(ip, `host-ip=${ip.value},netmask=${netmask.value},mac=${mac.value}`)];
}

function parseNet({ flag, value }: OptionValue): NetConfig {
  const values = parseKeyValues(flag, value, NET_KEYS);
  const vhostNet = vhostNetOf(values);
  const pairs = values.integer("vq-pairs", { min: 1, max: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX }) ?? 1;
  if (pairs > 1 && vhostNet !== undefined) {
    throw values.error("only one queue pair is supported yet with vhost-net");
  }
  values.flag("mrg-rxbuf"); // always offered; the key is taken for crosvm's sake
  const mac = values.string("mac");
  if (mac !== undefined && parseMac(mac) === undefined) {
    throw values.error(`mac ${mac} is not six hex bytes with colons`);
  }
  const net: NetConfig = { tap: tapOf(values, mac) };
  if (mac !== undefined) net.mac = mac;
  if (pairs > 1) {
    if ("fd" in net.tap) {
      throw values.error("tap-fd is one queue; vq-pairs needs tap-name or host-ip");
    }
    net.queuePairs = pairs;
  }
  if (vhostNet !== undefined) net.vhostNet = vhostNet;
  return net;
}

/**
 * crosvm's rule: a NIC never has more queue pairs than the VM has vCPUs; one that asks for more
 * gets one pair, and a warning.
 * @returns the warnings, one per NIC changed
 */
export function fitQueuePairs(nets: NetConfig[], cpus: number): string[] {
  const warnings: string[] = [];
  nets.forEach((net, i) => {
    if ((net.queuePairs ?? 1) <= cpus) return;
    warnings.push(
      `NIC ${i}: vq-pairs=${net.queuePairs} is more than the ${cpus} vCPU(s); using one queue pair`,
    );
    delete net.queuePairs;
  });
  return warnings;
}

/** `vhost-net`, `vhost-net=true|false` or `vhost-net=[device=PATH]`: the vhost device, if any. */
function vhostNetOf(values: KeyValues): NetConfig["vhostNet"] {
  const value = values.get("vhost-net");
  if (value === undefined || value === "false") return undefined;
  if (value === true || value === "true") return { device: VHOST_NET_DEVICE };
  const nested = parseKeyValues(`${values.option} vhost-net`, value, VHOST_NET_KEYS);
  return { device: nested.string("device") ?? VHOST_NET_DEVICE };
}

/** The one way of getting a TAP the value names. */
function tapOf(values: KeyValues, mac: string | undefined): NetConfig["tap"] {
  const name = values.string("tap-name");
  const fd = values.integer("tap-fd", { min: 0, max: MAX_FD });
  const hostIp = values.string("host-ip");
  const netmask = values.string("netmask");
  const ways = [
    name !== undefined,
    fd !== undefined,
    hostIp !== undefined || netmask !== undefined,
  ];
  if (ways.filter(Boolean).length !== 1) {
    throw values.error("give exactly one of tap-name, tap-fd, or host-ip with netmask");
  }
  if (name !== undefined) return { name };
  if (fd !== undefined) return { fd };
  if (hostIp === undefined) throw values.error("netmask needs host-ip");
  if (parseIpv4(hostIp) === undefined) throw values.error(`host-ip ${hostIp} is not IPv4`);
  if (netmask === undefined) throw values.error("host-ip needs netmask");
  const mask = parseIpv4(netmask);
  if (mask === undefined || !isNetmask(mask)) {
    throw values.error(`netmask ${netmask} is not an IPv4 netmask`);
  }
  if (mac === undefined) throw values.error("host-ip needs mac, the guest's MAC");
  return { hostIp, netmask };
}
