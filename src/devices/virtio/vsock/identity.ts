/**
 * What every vsock device of ours shows the driver, whichever back end moves its packets (the
 * userspace device on Unix sockets, or vhost-vsock): virtio-vsock's three queues, no feature
 * bits of its own (stream sockets only), the guest's CID in the configuration, and its PCI class.
 *
 * @module
 */

import { VirtioDeviceType } from "../spec.ts";
import { MIN_GUEST_CID, VsockConfig } from "./spec.ts";

/** Entries in the receive and transmit queues, and in the event queue (which we never fill). */
const VSOCK_QUEUE_SIZE = 256;
const EVENT_QUEUE_SIZE = 16;
/** PCI class 07h (communication controller), sub-class 80h (other), as QEMU's vhost-vsock-pci. */
const PCI_CLASS_COMMUNICATION_OTHER = 0x07_8000;

/** A vsock device's description. */
export abstract class VsockIdentity {
  /** §5.10.1. */
  readonly deviceType: number = VirtioDeviceType.VSOCK;
  /** Stream sockets only (no SEQPACKET). */
  readonly features: bigint = 0n;
  /** §5.10.2: rx, tx, event. */
  readonly queueSizes: readonly number[] = [VSOCK_QUEUE_SIZE, VSOCK_QUEUE_SIZE, EVENT_QUEUE_SIZE];
  readonly configBytes: Uint8Array = new Uint8Array(VsockConfig.SIZE);
  readonly pciClass: number = PCI_CLASS_COMMUNICATION_OTHER;
  /** The guest's CID. */
  readonly cid: bigint;

  /**
   * The device of guest CID `cid`.
   * @throws RangeError for a CID below 3
   */
  constructor(cid: number) {
    if (!Number.isSafeInteger(cid) || cid < MIN_GUEST_CID) {
      throw new RangeError(
        `vsock: CID ${cid} is reserved (guests have ${MIN_GUEST_CID} and above)`,
      );
    }
    this.cid = BigInt(cid);
    new DataView(this.configBytes.buffer).setBigUint64(VsockConfig.GUEST_CID, this.cid, true);
  }
}
