/**
 * PCI Express enhanced configuration access (ECAM, "MMCONFIG"): each function's 4 KiB of
 * configuration space mapped in MMIO. Stateless: every thread's PciEcam routes to its own root.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";
import { DWORD, NO_DEVICE_BYTE } from "../access.ts";
import { type ConfigAddressLayout, decodeConfigAddress, type PciRoot } from "./root.ts";

// ECAM address bits (PCI Express Base Spec 7.2.2, Table 7-1).
const LAYOUT: ConfigAddressLayout = {
  busShift: 20, // bits 27-20
  deviceShift: 15, // bits 19-15
  functionShift: 12, // bits 14-12
  registerMask: 0xfff, // bits 11-0
};
/** PCI Express Base Spec 7.2.2: configuration accesses are at most a dword wide. */
const MAX_ACCESS = DWORD;

/** The ECAM window, mapped at PCIE_ECAM_BASE over PCIE_ECAM_SIZE (1 MiB per bus). */
export class PciEcam implements BusDevice {
  /**
   * @param name for logs, e.g. `pci-ecam`
   * @param root this thread's PCI root
   */
  constructor(readonly name: string, private readonly root: PciRoot) {}

  /** Reads 1, 2 or 4 bytes of configuration space. */
  read(offset: number, data: Uint8Array): void {
    if (data.length > MAX_ACCESS) {
      data.fill(NO_DEVICE_BYTE);
      return;
    }
    const value = this.root.readConfig(...decodeConfigAddress(offset, LAYOUT), data.length);
    for (let i = 0; i < data.length; i++) data[i] = value >>> (8 * i);
  }

  /** Writes 1, 2 or 4 bytes of configuration space. */
  write(offset: number, data: Uint8Array): void {
    this.root.writeConfig(...decodeConfigAddress(offset, LAYOUT), data);
  }
}
