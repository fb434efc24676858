/**
 * PCI configuration mechanism #1: CONFIG_ADDRESS at port 0xCF8 selects a register, and
 * CONFIG_DATA at ports 0xCFC-0xCFF reads or writes it. The address register lives in a
 * SharedArrayBuffer, so every vCPU sees the one the last guest write latched.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";
import { DWORD, noDeviceValue } from "../access.ts";
import {
  type ConfigAddressLayout,
  type ConfigTarget,
  decodeConfigAddress,
  type PciRoot,
} from "./root.ts";

/** Configuration mechanism #1's first port, CONFIG_ADDRESS (PCI Local Bus 3.0 §3.2.2.3.2). */
export const PCI_CONFIG_IO_PORT = 0xcf8;
/** Mapped at port 0xCF8 over 8 ports: CONFIG_ADDRESS, then CONFIG_DATA. */
export const PCI_CONFIG_IO_PORT_COUNT = 8;

const CONFIG_ADDRESS = 0; // port 0xCF8
const CONFIG_DATA = 4; // ports 0xCFC-0xCFF

// CONFIG_ADDRESS fields (PCI Local Bus Spec 3.0 §3.2.2.3.2, Figure 3-1).
const ENABLE = 0x8000_0000; // bit 31: the data port accesses configuration space
const LAYOUT: ConfigAddressLayout = {
  busShift: 16, // bits 23-16
  deviceShift: 11, // bits 15-11
  functionShift: 8, // bits 10-8
  registerMask: 0xfc, // bits 7-2: the dword
};
const ADDRESS_WRITABLE = 0x80ff_fffc; // bits 30-24 are reserved and bits 1-0 read as 0

/** Ports 0xCF8-0xCFF. */
export class PciConfigIo implements BusDevice {
  /** A zeroed CONFIG_ADDRESS, to share between threads. */
  static createState(): SharedArrayBuffer {
    return new SharedArrayBuffer(DWORD);
  }

  /**
   * CONFIG_ADDRESS: one aligned 32-bit cell, so Atomics load and store it whole and it needs no
   * lock. (Guests serialize the address-then-data pair themselves, as on hardware.)
   */
  readonly #address: Uint32Array;

  /**
   * @param name for logs, e.g. `pci-config-io`
   * @param state from {@link PciConfigIo.createState}, shared by every thread's PciConfigIo
   * @param root this thread's PCI root
   */
  constructor(readonly name: string, state: SharedArrayBuffer, private readonly root: PciRoot) {
    this.#address = new Uint32Array(state);
  }

  /** Reads CONFIG_ADDRESS (dword reads only) or the byte lanes of CONFIG_DATA. */
  read(offset: number, data: Uint8Array): void {
    const value = this.#read(offset, data.length);
    for (let i = 0; i < data.length; i++) data[i] = value >>> (8 * i);
  }

  /**
   * Only a dword write latches CONFIG_ADDRESS (PCI Local Bus Spec 3.0 §3.2.2.3.2: other sizes
   * are ordinary I/O); CONFIG_DATA writes go to the selected register's byte lanes.
   */
  write(offset: number, data: Uint8Array): void {
    if (offset === CONFIG_ADDRESS && data.length === DWORD) {
      const value = new DataView(data.buffer, data.byteOffset, DWORD).getUint32(0, true);
      Atomics.store(this.#address, 0, value & ADDRESS_WRITABLE);
      return;
    }
    const target = this.#target(offset);
    if (target !== undefined) this.root.writeConfig(...target, data);
  }

  #read(offset: number, size: number): number {
    if (offset === CONFIG_ADDRESS && size === DWORD) return Atomics.load(this.#address, 0);
    const target = this.#target(offset);
    return target === undefined ? noDeviceValue(size) : this.root.readConfig(...target, size);
  }

  /** What an access to CONFIG_DATA byte `offset` reaches; none when disabled or not data. */
  #target(offset: number): ConfigTarget | undefined {
    const address = Atomics.load(this.#address, 0);
    if (offset < CONFIG_DATA || !(address & ENABLE)) return undefined;
    const [bus, device, func, register] = decodeConfigAddress(address, LAYOUT);
    return [bus, device, func, register + offset - CONFIG_DATA];
  }
}
