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

/** §5.1.2: queue 0 receives, queue 1 transmits (one pair; no control queue). */
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;

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
/** PCI class 02h (network controller), sub-class 00h (Ethernet). */
const PCI_CLASS_ETHERNET = 0x02_0000;
/** Bytes in a MAC address. */
const MAC_LENGTH = 6;

/**
 * The features every NIC of ours offers; MAC is added when there is one. The offloads are the
 * TAP's (the header crosses untouched), MRG_RXBUF the back end's: ours and vhost-net both merge.
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

/**
 * What every NIC of ours shows the driver, whichever back end moves its frames: virtio-net with
 * one queue pair, its feature bits, and its configuration (link up, and the guest's MAC if given).
 */
export abstract class NetIdentity {
  /** §5.1.1. */
  readonly deviceType: number = VirtioDeviceType.NET;
  readonly features: bigint;
  /** §5.1.2: receiveq1, transmitq1. */
  readonly queueSizes: readonly number[] = [NET_QUEUE_SIZE, NET_QUEUE_SIZE];
  readonly configBytes: Uint8Array = new Uint8Array(NetConfig.SIZE);
  readonly pciClass: number = PCI_CLASS_ETHERNET;

  /**
   * @param mac the guest's MAC (six bytes), or undefined to let the driver pick one
   * @throws RangeError for a MAC that is not six bytes
   */
  constructor(mac: readonly number[] | undefined) {
    const view = new DataView(this.configBytes.buffer);
    view.setUint16(NetConfig.STATUS, VIRTIO_NET_S_LINK_UP, true);
    view.setUint16(NetConfig.MAX_VIRTQUEUE_PAIRS, 1, true);
    if (mac === undefined) {
      this.features = NET_FEATURES;
      return;
    }
    if (mac.length !== MAC_LENGTH || mac.some((b) => !(b >= 0 && b <= 0xff))) {
      throw new RangeError(`virtio-net: MAC ${mac.join(":")} is not six bytes`);
    }
    this.configBytes.set(mac, NetConfig.MAC);
    this.features = NET_FEATURES | featureBit(NetFeature.MAC);
  }
}
