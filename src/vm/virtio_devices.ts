/**
 * Which virtio devices a configuration asks for, in the order the guest finds them: the disks
 * first (so they are /dev/vda, /dev/vdb, …), then the NICs, then vsock, then virtio-rng, then the
 * balloon. A new device type is one more entry here, built from its configuration.
 *
 * @module
 */

import type { VirtioDeviceRequest } from "../arch/machine.ts";
import type { VmConfig } from "../config.ts";
import { diskName } from "../devices/virtio/block/disks.ts";
import type { BlockSpec } from "../devices/virtio/block/device.ts";
import type { NetSpec } from "../devices/virtio/net/device.ts";
import type { VhostNetSpec } from "../devices/virtio/net/vhost.ts";
import type { VsockSpec } from "../devices/virtio/vsock/device.ts";
import type { VhostVsockSpec } from "../devices/virtio/vsock/vhost.ts";

/**
 * The virtio devices of `config`; `disks` are its disks, opened (see `openDisks`), `nets` its
 * NICs, their TAPs open (see `openTaps`), and `vsock` its vsock device's sockets (`openVsock`).
 */
export function virtioDeviceRequests(
  config: VmConfig,
  disks: readonly BlockSpec[],
  nets: readonly (NetSpec | VhostNetSpec)[] = [],
  vsock?: VsockSpec | VhostVsockSpec,
): VirtioDeviceRequest[] {
  return [
    ...disks.map((backend, i) => ({ name: `virtio-blk-${diskName(i)}`, backend })),
    ...nets.map((backend, i) => ({ name: `virtio-net-${i}`, backend })),
    ...(vsock === undefined ? [] : [{ name: "virtio-vsock", backend: vsock }]),
    ...(config.rng ? [{ name: "virtio-rng", backend: { kind: "rng" as const } }] : []),
    ...(config.balloon === undefined ? [] : [{
      name: "virtio-balloon",
      backend: { kind: "balloon" as const, pageReporting: config.balloon.pageReporting },
    }]),
  ];
}
