/**
 * virtio-net's numbers (OASIS virtio 1.2 §5.1), checked against `<linux/virtio_net.h>` by a
 * test: feature bits, the device configuration layout, the per-packet header (passed between
 * the guest and the TAP as it is: its offload flags and GSO types are the kernel's), and which TAP
 * offloads each guest receive feature allows; and what every NIC of ours, userspace or vhost, shows
 * the driver (features, configuration, queues, PCI class).
 *
 * @module
 */

import { TunOffload } from "../../../ffi/tap.ts";
import { featureBit, VirtioDeviceType } from "../spec.ts";

/** §5.1.3 feature bits. */
export const NetFeature = {
  /** The device takes packets with a partial checksum. */
  CSUM: 0,
  /** The driver takes packets with a partial checksum. */
  GUEST_CSUM: 1,
  /** The driver may change the receive offloads it takes, on the control queue. */
  CTRL_GUEST_OFFLOADS: 2,
  /** The configuration's `mtu` is the largest frame the device takes and sends. */
  MTU: 3,
  /** The device has a MAC address, in the configuration. */
  MAC: 5,
  /** The driver takes TSOv4, TSOv6 and TSO with ECN (UFO is not offered: Linux TAPs dropped it). */
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_ECN: 9,
  /** The device takes TSOv4, TSOv6 and TSO with ECN. */
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_ECN: 13,
  /** The driver merges receive buffers (`num_buffers`). */
  MRG_RXBUF: 15,
  /** The configuration's `status` is valid. */
  STATUS: 16,
  /** There is a control queue (the last queue). */
  CTRL_VQ: 17,
  /** Several queue pairs, chosen with VIRTIO_NET_CTRL_MQ (needs CTRL_VQ). */
  MQ: 22,
} as const;

/** §5.1.4 device configuration: offsets and its size up to `mtu`. */
export const NetConfig = {
  MAC: 0,
  STATUS: 6,
  MAX_VIRTQUEUE_PAIRS: 8,
  MTU: 10,
  SIZE: 12,
} as const;

/** §5.1.4: `status` bit 0, the link is up. */
export const VIRTIO_NET_S_LINK_UP = 1;

/** §5.1.6 `struct virtio_net_hdr` (with `num_buffers`, as every 1.x device has it). */
export const NetHeader = {
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
  NUM_BUFFERS: 10,
  SIZE: 12,
} as const;

/** §5.1.2: queue 0 receives, queue 1 transmits: the first pair (pair N is 2N and 2N + 1). */
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;

/** §5.1.2: the receive queue of pair `pair`. */
export function rxQueue(pair: number): number {
  return 2 * pair;
}

/** §5.1.2: the queue pair a receive or transmit queue belongs to. */
export function pairOf(queue: number): number {
  return queue >> 1;
}

/**
 * §5.1.2: the control queue's index, which depends on MQ: after every pair the device has when
 * the driver took MQ, else after the first pair.
 */
export function controlQueue(driverFeatures: bigint, maxPairs: number): number {
  return (driverFeatures & featureBit(NetFeature.MQ)) !== 0n ? 2 * maxPairs : 2;
}

/** §5.1.6.5 `struct virtio_net_ctrl_hdr`: the command's class and number. */
export const NetCtrlHeader = { CLASS: 0, COMMAND: 1, SIZE: 2 } as const;

/** §5.1.6.5: the `ack` a command gets. */
export const VIRTIO_NET_OK = 0;
export const VIRTIO_NET_ERR = 1;

/** §5.1.6.5.5: the multiqueue class, its command and the bounds of its `virtqueue_pairs`. */
export const VIRTIO_NET_CTRL_MQ = 4;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET = 0;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN = 1;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX = 0x8000;

/** §5.1.6.5.6: the receive-offloads class and its command (a 64-bit feature mask follows). */
export const VIRTIO_NET_CTRL_GUEST_OFFLOADS = 5;
export const VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET = 0;

/** §5.1.6.5.6.2: the guest features VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET may turn on or off. */
export const GUEST_OFFLOAD_FEATURES = [
  NetFeature.GUEST_CSUM,
  NetFeature.GUEST_TSO4,
  NetFeature.GUEST_TSO6,
  NetFeature.GUEST_ECN,
].reduce((all, bit) => all | featureBit(bit), 0n);

/** The largest frame a TAP hands over with every offload on: 64 KiB of GSO plus an Ethernet header. */
export const MAX_PACKET = 65_550;

/**
 * The TAP offloads the driver's accepted features allow (what the TAP may then hand us, and we
 * the guest): partial checksums, then each segmentation offload the guest can take.
 */
export function tapOffloadsFor(driverFeatures: bigint): number {
  const has = (bit: number) => (driverFeatures & featureBit(bit)) !== 0n;
  if (!has(NetFeature.GUEST_CSUM)) return 0;
  let offloads = TunOffload.TUN_F_CSUM;
  if (has(NetFeature.GUEST_TSO4)) offloads |= TunOffload.TUN_F_TSO4;
  if (has(NetFeature.GUEST_TSO6)) offloads |= TunOffload.TUN_F_TSO6;
  if (has(NetFeature.GUEST_ECN)) offloads |= TunOffload.TUN_F_TSO_ECN;
  return offloads;
}

/** Entries in each queue (crosvm's and QEMU's default). */
const NET_QUEUE_SIZE = 256;
/** Entries in the control queue (Linux waits for each command before the next). */
const CONTROL_QUEUE_SIZE = 64;
/** PCI class 02h (network controller), sub-class 00h (Ethernet). */
const PCI_CLASS_ETHERNET = 0x02_0000;
/** Bytes in a MAC address. */
const MAC_LENGTH = 6;
/** The largest MTU the configuration's 16-bit field holds. */
const MAX_MTU = 0xffff;

/**
 * The features every NIC of ours offers; MAC, MTU, the control queue and MQ are added when they
 * apply. The offloads are the TAP's (the header crosses untouched), MRG_RXBUF the back end's:
 * ours and vhost-net both merge.
 */
const NET_FEATURES = [
  NetFeature.CSUM,
  NetFeature.GUEST_CSUM,
  NetFeature.GUEST_TSO4,
  NetFeature.GUEST_TSO6,
  NetFeature.GUEST_ECN,
  NetFeature.HOST_TSO4,
  NetFeature.HOST_TSO6,
  NetFeature.HOST_ECN,
  NetFeature.MRG_RXBUF,
  NetFeature.STATUS,
].reduce((all, bit) => all | featureBit(bit), 0n);
/** What a control queue adds: the queue, and the receive offloads changed on it. */
const CONTROL_FEATURES = featureBit(NetFeature.CTRL_VQ) |
  featureBit(NetFeature.CTRL_GUEST_OFFLOADS);

/** What a NIC shows the driver. */
export interface NetShape {
  /** The guest's MAC (six bytes), or undefined to let the driver pick one. */
  readonly mac?: readonly number[];
  /** Queue pairs (several need the control queue). */
  readonly pairs: number;
  /** Whether the device has a control queue (CTRL_VQ, CTRL_GUEST_OFFLOADS; MQ with pairs). */
  readonly control: boolean;
  /** The MTU offered (VIRTIO_NET_F_MTU); none when undefined. */
  readonly mtu?: number;
}

/**
 * What every NIC of ours shows the driver, whichever back end moves its frames: virtio-net with
 * its queue pairs and control queue, its feature bits, and its configuration (link up, the
 * number of pairs, the guest's MAC and the MTU if given).
 */
export abstract class NetIdentity {
  /** §5.1.1. */
  readonly deviceType: number = VirtioDeviceType.NET;
  readonly features: bigint;
  /** §5.1.2: receiveq1, transmitq1, …, receiveqN, transmitqN[, controlq]. */
  readonly queueSizes: readonly number[];
  readonly configBytes: Uint8Array = new Uint8Array(NetConfig.SIZE);
  readonly pciClass: number = PCI_CLASS_ETHERNET;

  /**
   * A NIC of `shape`.
   * @throws RangeError for a MAC that is not six bytes, no pair, pairs without a control queue,
   *   or an MTU out of range
   */
  constructor(shape: NetShape) {
    const { mac, pairs, control, mtu } = shape;
    if (!Number.isInteger(pairs) || pairs < 1 || (pairs > 1 && !control)) {
      throw new RangeError(`virtio-net: ${pairs} queue pairs (several need a control queue)`);
    }
    const view = new DataView(this.configBytes.buffer);
    view.setUint16(NetConfig.STATUS, VIRTIO_NET_S_LINK_UP, true);
    view.setUint16(NetConfig.MAX_VIRTQUEUE_PAIRS, pairs, true);
    let features = NET_FEATURES | (control ? CONTROL_FEATURES : 0n);
    if (pairs > 1) features |= featureBit(NetFeature.MQ);
    if (mac !== undefined) {
      if (mac.length !== MAC_LENGTH || mac.some((b) => !(b >= 0 && b <= 0xff))) {
        throw new RangeError(`virtio-net: MAC ${mac.join(":")} is not six bytes`);
      }
      this.configBytes.set(mac, NetConfig.MAC);
      features |= featureBit(NetFeature.MAC);
    }
    if (mtu !== undefined) {
      if (!Number.isInteger(mtu) || mtu < 1 || mtu > MAX_MTU) {
        throw new RangeError(`virtio-net: MTU ${mtu} is out of range`);
      }
      view.setUint16(NetConfig.MTU, mtu, true);
      features |= featureBit(NetFeature.MTU);
    }
    this.features = features;
    this.queueSizes = [
      ...Array(2 * pairs).fill(NET_QUEUE_SIZE),
      ...(control ? [CONTROL_QUEUE_SIZE] : []),
    ];
  }
}
