/**
 * Transport-independent numbers of the OASIS virtio 1.2 specification: device status bits
 * (§2.1), reserved feature bits (§6), ISR bits (§4.1.4.5) and device IDs (§5).
 *
 * @module
 */

export { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC } from "./queue.ts";

/** §2.1 device_status: the guest OS has found the device. */
export const STATUS_ACKNOWLEDGE = 1;
/** §2.1: the guest OS knows how to drive the device. */
export const STATUS_DRIVER = 2;
/** §2.1: the driver is set up and ready to drive the device. */
export const STATUS_DRIVER_OK = 4;
/** §2.1: the driver has acknowledged the features it understands; negotiation is complete. */
export const STATUS_FEATURES_OK = 8;
/** §2.1: the device has hit an error it cannot recover from. */
export const STATUS_DEVICE_NEEDS_RESET = 64;
/** §2.1: something went wrong in the guest; it gave up on the device. */
export const STATUS_FAILED = 128;

/** §6: the device complies with virtio 1.x (required of a non-transitional device). */
export const VIRTIO_F_VERSION_1 = 32;

/** §4.1.4.5: ISR bit 0, a virtqueue used buffer notification (INTx only). */
export const ISR_QUEUE = 1 << 0;
/** §4.1.4.5: ISR bit 1, a device configuration change notification. */
export const ISR_CONFIG = 1 << 1;

/** §4.1.4.3 / §4.1.5.1.2: the MSI-X vector value meaning "no vector". */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** §5 Device Types: the device IDs we know of. */
export const VirtioDeviceType = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
  BALLOON: 5,
  VSOCK: 19,
} as const;

/** The bit mask of feature bit `bit`. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}
