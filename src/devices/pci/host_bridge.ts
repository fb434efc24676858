/**
 * The host bridge at 00:00.0: a read-only configuration header naming the root complex.
 *
 * @module
 */

import { DWORD } from "../access.ts";
import {
  CLASS_BASE,
  CLASS_BRIDGE,
  CLASS_SUBCLASS,
  DEVICE_ID,
  HEADER_SIZE,
  HEADER_TYPE,
  HEADER_TYPE_DEVICE,
  type PciDevice,
  SUBCLASS_HOST_BRIDGE,
  VENDOR_ID,
  VENDOR_ID_INTEL,
} from "./config_space.ts";

/**
 * Intel 0D57h, the virtual PCIe host bridge ID of Cloud Hypervisor and Firecracker. Linux
 * has no quirk and no driver for it (crosvm's 8086:1237, the i440FX, gets two quirks).
 */
const DEVICE_ID_VIRT_HOST_BRIDGE = 0x0d57;

/** A host bridge with a fixed header; guest writes are ignored. */
export class PciHostBridge implements PciDevice {
  readonly #header = new DataView(new ArrayBuffer(HEADER_SIZE));

  constructor() {
    this.#header.setUint16(VENDOR_ID, VENDOR_ID_INTEL, true);
    this.#header.setUint16(DEVICE_ID, DEVICE_ID_VIRT_HOST_BRIDGE, true);
    this.#header.setUint8(CLASS_BASE, CLASS_BRIDGE);
    this.#header.setUint8(CLASS_SUBCLASS, SUBCLASS_HOST_BRIDGE);
    this.#header.setUint8(HEADER_TYPE, HEADER_TYPE_DEVICE);
  }

  /** The header's registers; everything past the header reads 0. */
  readConfigDword(register: number): number {
    const offset = register * DWORD;
    return offset < HEADER_SIZE ? this.#header.getUint32(offset, true) : 0;
  }

  /** Read-only: writes are dropped. */
  writeConfig(): void {}
}
