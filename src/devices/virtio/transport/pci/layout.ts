/**
 * The shape of a virtio-pci function (OASIS virtio 1.2 §4.1 Virtio Over PCI Bus): its IDs, the
 * vendor-specific capabilities that point into its BAR, the common configuration structure's
 * register offsets, and where each region sits in our single memory BAR.
 *
 * @module
 */

import { MSIX_ENTRY_SIZE, pbaSize } from "../../../pci/msix.ts";

/** §4.1.2: every virtio function has PCI Vendor ID 1AF4h. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** §4.1.2: a non-transitional function's Device ID is 1040h plus the virtio device ID. */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** §4.1.2.1: non-transitional devices SHOULD have a Revision ID of 1 or higher. */
export const VIRTIO_PCI_REVISION = 1;

/** §4.1.4 `cfg_type`: common configuration. */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
/** §4.1.4 `cfg_type`: notifications. */
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
/** §4.1.4 `cfg_type`: ISR status. */
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
/** §4.1.4 `cfg_type`: device-specific configuration. */
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
/** §4.1.4 `cfg_type`: the PCI configuration access window. */
export const VIRTIO_PCI_CAP_PCI_CFG = 5;

// §4.1.4 struct virtio_pci_cap, offsets from the capability's start (ID at 0, next at 1).
/** `cap_len`: length of this capability structure. */
export const CAP_LEN = 2;
/** `cfg_type`. */
export const CAP_CFG_TYPE = 3;
/** `bar`: which BAR the structure is in. */
export const CAP_BAR = 4;
/** `id`: tells apart several capabilities of one type. */
export const CAP_INSTANCE = 5;
/** `offset` (le32) within the BAR. */
export const CAP_OFFSET = 8;
/** `length` (le32) of the structure in the BAR. */
export const CAP_LENGTH = 12;
/** sizeof(struct virtio_pci_cap). */
export const VIRTIO_PCI_CAP_SIZE = 16;
/** §4.1.4.4 struct virtio_pci_notify_cap: `notify_off_multiplier` (le32). */
export const CAP_NOTIFY_OFF_MULTIPLIER = 16;
/** sizeof(struct virtio_pci_notify_cap). */
export const VIRTIO_PCI_NOTIFY_CAP_SIZE = 20;
/** §4.1.4.9 struct virtio_pci_cfg_cap: `pci_cfg_data` (4 bytes). */
export const CAP_PCI_CFG_DATA = 16;
/** sizeof(struct virtio_pci_cfg_cap). */
export const VIRTIO_PCI_CFG_CAP_SIZE = 20;

/** §4.1.4.3 struct virtio_pci_common_cfg: register offsets and sizes. */
export const CommonCfg = {
  DEVICE_FEATURE_SELECT: 0x00, // le32 RW
  DEVICE_FEATURE: 0x04, // le32 RO
  DRIVER_FEATURE_SELECT: 0x08, // le32 RW
  DRIVER_FEATURE: 0x0c, // le32 RW
  CONFIG_MSIX_VECTOR: 0x10, // le16 RW
  NUM_QUEUES: 0x12, // le16 RO
  DEVICE_STATUS: 0x14, // u8 RW
  CONFIG_GENERATION: 0x15, // u8 RO
  QUEUE_SELECT: 0x16, // le16 RW
  QUEUE_SIZE: 0x18, // le16 RW
  QUEUE_MSIX_VECTOR: 0x1a, // le16 RW
  QUEUE_ENABLE: 0x1c, // le16 RW
  QUEUE_NOTIFY_OFF: 0x1e, // le16 RO
  QUEUE_DESC_LO: 0x20, // le64 RW, as two le32 halves
  QUEUE_DESC_HI: 0x24,
  QUEUE_DRIVER_LO: 0x28,
  QUEUE_DRIVER_HI: 0x2c,
  QUEUE_DEVICE_LO: 0x30,
  QUEUE_DEVICE_HI: 0x34,
  QUEUE_NOTIFY_DATA: 0x38, // le16 RO (VIRTIO_F_NOTIF_CONFIG_DATA; not offered)
  QUEUE_RESET: 0x3a, // le16 RW (VIRTIO_F_RING_RESET; not offered)
} as const;
/** sizeof(struct virtio_pci_common_cfg) in virtio 1.2, with queue_notify_data and queue_reset. */
export const COMMON_CFG_SIZE = 0x3c;

/** §4.1.4.4: every queue's doorbell is `queue_notify_off * 4` bytes into the notify region. */
export const NOTIFY_OFF_MULTIPLIER = 4;
/** §4.1.4.4: the driver notifies by writing the 16-bit queue index. */
export const NOTIFY_WRITE_SIZE = 2;
/** §4.1.4.5: the ISR status register is one byte. */
export const ISR_SIZE = 1;

/**
 * Every region starts on its own 4 KiB page: PCI Local Bus Spec 3.0 §6.8.2 forbids the MSI-X
 * table and PBA to share a naturally aligned 4 KiB range with other registers, and a page each
 * lets a guest map them apart.
 */
const REGION_ALIGNMENT = 0x1000;
/** The one memory BAR every region lives in. */
export const VIRTIO_BAR = 0;
/** §4.1.4.9.1: the access widths the PCI configuration access capability supports. */
export const PCI_CFG_ACCESS_SIZES: readonly number[] = [1, 2, 4];

/** Where each region sits in the BAR, for a device with a given number of queues and vectors. */
export interface BarLayout {
  /** Offset of the common configuration (§4.1.4.3). */
  readonly common: number;
  /** Offset of the ISR status byte (§4.1.4.5). */
  readonly isr: number;
  /** Offset of the device-specific configuration (§4.1.4.6). */
  readonly device: number;
  /** Bytes of device-specific configuration (0: no device region and no capability). */
  readonly deviceLength: number;
  /** Offset of the doorbells (§4.1.4.4). */
  readonly notify: number;
  /** Bytes of doorbells: one per queue, {@link NOTIFY_OFF_MULTIPLIER} apart. */
  readonly notifyLength: number;
  /** Offset of the MSI-X table. */
  readonly msixTable: number;
  /** Offset of the MSI-X PBA. */
  readonly msixPba: number;
  /** The BAR's size: a power of two covering every region. */
  readonly size: number;
}

/** Lays the regions out page by page: common, ISR, device, notify, MSI-X table, PBA. */
export function barLayout(queues: number, vectors: number, configLength: number): BarLayout {
  const page = (bytes: number) => Math.ceil(Math.max(bytes, 1) / REGION_ALIGNMENT);
  const common = 0;
  const isr = common + page(COMMON_CFG_SIZE) * REGION_ALIGNMENT;
  const device = isr + page(ISR_SIZE) * REGION_ALIGNMENT;
  const notify = device + page(configLength) * REGION_ALIGNMENT;
  const notifyLength = queues * NOTIFY_OFF_MULTIPLIER;
  const msixTable = notify + page(notifyLength) * REGION_ALIGNMENT;
  const msixPba = msixTable + page(vectors * MSIX_ENTRY_SIZE) * REGION_ALIGNMENT;
  const end = msixPba + page(pbaSize(vectors)) * REGION_ALIGNMENT;
  const size = 2 ** Math.ceil(Math.log2(end));
  return {
    common,
    isr,
    device,
    deviceLength: configLength,
    notify,
    notifyLength,
    msixTable,
    msixPba,
    size,
  };
}
