/**
 * The configuration space of a virtio-pci function (OASIS virtio 1.2 §4.1.2 and §4.1.4): its
 * header, its one 32-bit memory BAR, and the capability list: MSI-X, then one vendor-specific
 * capability per region (common, notify, ISR, device) and the PCI configuration access window.
 *
 * Built the same way in every thread; only the thread creating the device stores its bytes.
 *
 * @module
 */

import { ConfigImage } from "../../../pci/config_regs.ts";
import {
  BAR0,
  CLASS_BASE,
  CLASS_PROG_IF,
  CLASS_SUBCLASS,
  COMMAND,
  DEVICE_ID,
  HEADER_TYPE,
  HEADER_TYPE_DEVICE,
  INTERRUPT_LINE,
  INTERRUPT_PIN,
  REVISION_ID,
  SUBSYSTEM_ID,
  SUBSYSTEM_VENDOR_ID,
  VENDOR_ID,
} from "../../../pci/config_space.ts";
import {
  BAR_MEMORY_ADDRESS_MASK,
  BAR_MEMORY_TYPE_32,
  CAP_ID_VENDOR_SPECIFIC,
  COMMAND_BUS_MASTER,
  COMMAND_INTX_DISABLE,
  COMMAND_MEMORY_SPACE,
  INTERRUPT_PIN_INTA,
} from "../../../pci/header_bits.ts";
import { addMsixCapability } from "../../../pci/msix.ts";
import {
  type BarLayout,
  CAP_BAR,
  CAP_CFG_TYPE,
  CAP_LEN,
  CAP_LENGTH,
  CAP_NOTIFY_OFF_MULTIPLIER,
  CAP_OFFSET,
  COMMON_CFG_SIZE,
  ISR_SIZE,
  NOTIFY_OFF_MULTIPLIER,
  VIRTIO_BAR,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_CFG_CAP_SIZE,
  VIRTIO_PCI_DEVICE_ID_BASE,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
  VIRTIO_PCI_REVISION,
  VIRTIO_PCI_VENDOR_ID,
} from "./layout.ts";

/** What a virtio-pci header says about the device. */
export interface VirtioPciIdentity {
  /** §5 device ID. */
  readonly deviceType: number;
  /** 24-bit class code: base class << 16 | sub-class << 8 | programming interface. */
  readonly pciClass: number;
  /** Whether the function has an INTx pin (INTA#), and the line to report in Interrupt Line. */
  readonly intxLine: number | null;
  /** MSI-X vectors. */
  readonly vectors: number;
}

/** The built image and where its variable parts landed. */
export interface VirtioConfigImage {
  /** Reset values and write masks. */
  readonly image: ConfigImage;
  /** Offset of the MSI-X capability. */
  readonly msixCapability: number;
  /** Offset of the PCI configuration access capability (§4.1.4.9). */
  readonly pciCfgCapability: number;
}

/** Writable parts of the command register: memory decoding, bus mastering, INTx disable. */
const COMMAND_WRITABLE = COMMAND_MEMORY_SPACE | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE;
/** Interrupt Line is a scratch byte for the OS (§6.2.4). */
const INTERRUPT_LINE_WRITABLE = 0xff;
/** Bytes of a vendor capability's body after the ID and next bytes. */
const capBody = (size: number) => new DataView(new ArrayBuffer(size - 2));
/** Body offsets are capability offsets less the ID and next bytes. */
const at = (field: number) => field - 2;

/** Builds the configuration space of a function with BAR layout `bar`. */
export function virtioConfigImage(identity: VirtioPciIdentity, bar: BarLayout): VirtioConfigImage {
  const image = new ConfigImage();
  image.setU16(VENDOR_ID, VIRTIO_PCI_VENDOR_ID);
  image.setU16(DEVICE_ID, VIRTIO_PCI_DEVICE_ID_BASE + identity.deviceType);
  image.setU8(REVISION_ID, VIRTIO_PCI_REVISION);
  image.setU8(CLASS_PROG_IF, identity.pciClass & 0xff);
  image.setU8(CLASS_SUBCLASS, (identity.pciClass >>> 8) & 0xff);
  image.setU8(CLASS_BASE, (identity.pciClass >>> 16) & 0xff);
  image.setU8(HEADER_TYPE, HEADER_TYPE_DEVICE);
  // §4.1.2.1: the subsystem IDs MAY reflect the vendor and device ID; non-transitional devices
  // SHOULD use a subsystem device ID of 40h or higher, which 1040h + type is.
  image.setU16(SUBSYSTEM_VENDOR_ID, VIRTIO_PCI_VENDOR_ID);
  image.setU16(SUBSYSTEM_ID, VIRTIO_PCI_DEVICE_ID_BASE + identity.deviceType);
  image.allowWrite(COMMAND, 2, COMMAND_WRITABLE);
  image.setU32(BAR0, BAR_MEMORY_TYPE_32);
  image.allowWrite(BAR0, 4, BAR_MEMORY_ADDRESS_MASK & ~(bar.size - 1));
  if (identity.intxLine !== null) {
    image.setU8(INTERRUPT_PIN, INTERRUPT_PIN_INTA);
    image.setU8(INTERRUPT_LINE, identity.intxLine);
    image.allowWrite(INTERRUPT_LINE, 1, INTERRUPT_LINE_WRITABLE);
  }

  const msixCapability = addMsixCapability(image, {
    vectors: identity.vectors,
    bar: VIRTIO_BAR,
    tableOffset: bar.msixTable,
    pbaOffset: bar.msixPba,
  });
  addRegionCap(image, VIRTIO_PCI_CAP_COMMON_CFG, bar.common, COMMON_CFG_SIZE);
  const notify = regionCapBody(
    VIRTIO_PCI_NOTIFY_CAP_SIZE,
    VIRTIO_PCI_CAP_NOTIFY_CFG,
    bar.notify,
    bar.notifyLength,
  );
  notify.setUint32(at(CAP_NOTIFY_OFF_MULTIPLIER), NOTIFY_OFF_MULTIPLIER, true);
  image.addCapability(CAP_ID_VENDOR_SPECIFIC, new Uint8Array(notify.buffer));
  addRegionCap(image, VIRTIO_PCI_CAP_ISR_CFG, bar.isr, ISR_SIZE);
  // §4.1.4.6: only devices with a device-specific configuration present this capability.
  if (bar.deviceLength > 0) {
    addRegionCap(image, VIRTIO_PCI_CAP_DEVICE_CFG, bar.device, bar.deviceLength);
  }
  // §4.1.4.9: bar, offset and length of the access window are the driver's to write.
  const pciCfg = regionCapBody(VIRTIO_PCI_CFG_CAP_SIZE, VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
  const pciCfgCapability = image.addCapability(
    CAP_ID_VENDOR_SPECIFIC,
    new Uint8Array(pciCfg.buffer),
  );
  image.allowWrite(pciCfgCapability + CAP_BAR, 1, 0xff);
  image.allowWrite(pciCfgCapability + CAP_OFFSET, 4, 0xffff_ffff);
  image.allowWrite(pciCfgCapability + CAP_LENGTH, 4, 0xffff_ffff);
  return { image, msixCapability, pciCfgCapability };
}

/** A `struct virtio_pci_cap` body (§4.1.4) of `size` bytes for a region of BAR 0. */
function regionCapBody(size: number, cfgType: number, offset: number, length: number): DataView {
  const body = capBody(size);
  body.setUint8(at(CAP_LEN), size);
  body.setUint8(at(CAP_CFG_TYPE), cfgType);
  body.setUint8(at(CAP_BAR), VIRTIO_BAR);
  body.setUint32(at(CAP_OFFSET), offset, true);
  body.setUint32(at(CAP_LENGTH), length, true);
  return body;
}

function addRegionCap(image: ConfigImage, cfgType: number, offset: number, length: number): void {
  const body = regionCapBody(VIRTIO_PCI_CAP_SIZE, cfgType, offset, length);
  image.addCapability(CAP_ID_VENDOR_SPECIFIC, new Uint8Array(body.buffer));
}
