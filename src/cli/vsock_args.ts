/**
 * `crosvm run --vsock`: crosvm's `cid=N` (or just `N`) and `device=PATH`, the kernel's
 * vhost-vsock (through `/dev/vhost-vsock` unless told otherwise), or our `uds-path=PATH`, the
 * userspace device on Unix sockets; and crosvm's older `--cid N`, taken with a warning naming
 * its `--vsock` form.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import type { VsockConfig } from "../config.ts";
import { MIN_GUEST_CID } from "../devices/virtio/vsock/spec.ts";
import { MAX_GUEST_CID } from "../devices/virtio/vsock/sockets.ts";
import { VHOST_VSOCK_DEVICE } from "../ffi/vhost.ts";
import { UsageError } from "./errors.ts";
import { type KeySchema, parseKeyValues } from "./key_values.ts";
import type { OptionValue } from "./scan_args.ts";

/** `--vsock`'s keys: `cid` may be given without its name. */
const VSOCK_KEYS: KeySchema = ["cid", "uds-path", "device"];

/** The vsock options, for `parseArgs`. */
export const VSOCK_OPTIONS: ParseArgsOptionsConfig = {
  vsock: { type: "string" },
  cid: { type: "string" },
};

/** Help text for `--vsock`. */
export const VSOCK_USAGE = `  --vsock <cid=N[,device=PATH]|cid=N,uds-path=PATH>
                    a virtio-vsock device for guest CID N (${MIN_GUEST_CID} to ${MAX_GUEST_CID}):
                      device=PATH - the kernel's vhost-vsock moves the
                        packets (default ${VHOST_VSOCK_DEVICE}); host programs
                        use AF_VSOCK to CID N
                      uds-path=PATH - in userspace: host programs connect to
                        the Unix socket PATH and write "CONNECT <port>\\n";
                        the guest's connections to the host's port P go to
                        PATH_P
                    (default: none)`;

/** The vsock device the options ask for (if any), and a warning for `--cid`. */
export interface VsockOptions {
  readonly vsock?: VsockConfig;
  readonly warnings: string[];
}

/**
 * The vsock device of `--vsock` or `--cid`.
 * @throws UsageError for a bad key, a CID out of range, both spellings, or vhost-vsock
 */
export function parseVsock(options: ReadonlyMap<string, readonly OptionValue[]>): VsockOptions {
  const [given] = options.get("vsock") ?? [];
  const [cid] = options.get("cid") ?? [];
  if (given !== undefined && cid !== undefined) {
    throw new UsageError("--cid and --vsock both give the CID: use --vsock");
  }
  // `--cid N` reads as `--vsock N` (cid is the key that may go unnamed).
  const option = given ?? cid;
  if (option === undefined) return { warnings: [] };
  const warnings = cid === undefined ? [] : [`--cid is deprecated; use --vsock cid=${cid.value}`];
  const values = parseKeyValues(option.flag, option.value, VSOCK_KEYS);
  const number = values.integer("cid", { min: MIN_GUEST_CID, max: MAX_GUEST_CID });
  if (number === undefined) throw values.error("cid is required");
  const udsPath = values.string("uds-path");
  const device = values.string("device");
  if (udsPath !== undefined && device !== undefined) {
    throw values.error("give uds-path (the userspace device) or device (vhost-vsock), not both");
  }
  if (udsPath === "") throw values.error("uds-path is empty");
  if (udsPath !== undefined) return { vsock: { cid: number, udsPath }, warnings };
  const vhostDevice = device === undefined ? {} : { vhostDevice: device };
  return { vsock: { cid: number, ...vhostDevice }, warnings };
}
