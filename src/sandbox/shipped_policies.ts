/**
 * The seccomp policies shipped with the VMM (seccomp/x86_64/, crosvm's layout), imported as text
 * so that they are part of the program: a bundled or compiled VMM needs no policy files beside it.
 *
 * @module
 */

import balloon from "../../seccomp/x86_64/balloon_device.policy" with { type: "text" };
import block from "../../seccomp/x86_64/block_device.policy" with { type: "text" };
import common from "../../seccomp/x86_64/common_device.policy" with { type: "text" };
import net from "../../seccomp/x86_64/net_device.policy" with { type: "text" };
import rng from "../../seccomp/x86_64/rng_device.policy" with { type: "text" };
import vhostNet from "../../seccomp/x86_64/vhost_net_device.policy" with { type: "text" };
import vhostVsock from "../../seccomp/x86_64/vhost_vsock_device.policy" with { type: "text" };
import vsock from "../../seccomp/x86_64/vsock_device.policy" with { type: "text" };

/** Each shipped policy's text, by file name. */
export const SHIPPED_POLICIES: Readonly<Record<string, string>> = {
  "balloon_device.policy": balloon,
  "block_device.policy": block,
  "common_device.policy": common,
  "net_device.policy": net,
  "rng_device.policy": rng,
  "vhost_net_device.policy": vhostNet,
  "vhost_vsock_device.policy": vhostVsock,
  "vsock_device.policy": vsock,
};
