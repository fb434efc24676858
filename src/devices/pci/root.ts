/**
 * The PCI root: routes configuration accesses by bus, device and function to the functions
 * present, with absent ones reading all-ones. Each thread builds its own from the same spec.
 *
 * @module
 */

import { DWORD, dwordLanes, noDeviceValue } from "../access.ts";
import type { PciDevice } from "./config_space.ts";
import { PciHostBridge } from "./host_bridge.ts";

/** Devices per bus (PCI Local Bus Spec 3.0 §3.2.2.3.2: 5-bit device number). */
export const DEVICES_PER_BUS = 32;
/** Functions per device (PCI Local Bus Spec 3.0 §3.2.2.3.2: 3-bit function number). */
const FUNCTIONS_PER_DEVICE = 8;
/** Buses per segment (PCI Local Bus Spec 3.0 §3.2.2.3.2: 8-bit bus number). */
const BUSES = 256;
/** The only bus we have: the root bus. */
const ROOT_BUS = 0;

/** A configuration address split up: [bus, device, function, register byte offset]. */
export type ConfigTarget = [bus: number, device: number, func: number, offset: number];

/** Where bus, device and function numbers and the register offset sit in an address. */
export interface ConfigAddressLayout {
  /** Bit position of the 8-bit bus number. */
  readonly busShift: number;
  /** Bit position of the 5-bit device number. */
  readonly deviceShift: number;
  /** Bit position of the 3-bit function number. */
  readonly functionShift: number;
  /** The register offset bits, from bit 0. */
  readonly registerMask: number;
}

/** Splits a CONFIG_ADDRESS value or an ECAM offset into the function and register it selects. */
export function decodeConfigAddress(address: number, layout: ConfigAddressLayout): ConfigTarget {
  return [
    (address >>> layout.busShift) % BUSES,
    (address >>> layout.deviceShift) % DEVICES_PER_BUS,
    (address >>> layout.functionShift) % FUNCTIONS_PER_DEVICE,
    address & layout.registerMask,
  ];
}

/** The 8-bit devfn of a function: device in bits 7-3, function in bits 2-0. */
export function devfn(device: number, func: number): number {
  if (!(device >= 0 && device < DEVICES_PER_BUS && func >= 0 && func < FUNCTIONS_PER_DEVICE)) {
    throw new RangeError(`no PCI function ${device}.${func}`);
  }
  return device * FUNCTIONS_PER_DEVICE + func;
}

/** PCI bus 0 with its functions; always holds the host bridge at 00:00.0. */
export class PciRoot {
  readonly #functions = new Map<number, PciDevice>([[devfn(0, 0), new PciHostBridge()]]);

  /** Puts `device` at `address` (from {@link devfn}) on bus 0. Throws if that slot is taken. */
  add(address: number, device: PciDevice): void {
    if (this.#functions.has(address)) throw new RangeError(`PCI devfn ${address} is taken`);
    this.#functions.set(address, device);
  }

  /**
   * Reads `size` (1, 2 or 4) bytes at `offset` of a function's configuration space. An absent
   * function, or an access straddling a dword, reads all ones.
   */
  readConfig(bus: number, device: number, func: number, offset: number, size: number): number {
    const target = this.#find(bus, device, func);
    if (target === undefined || (offset % DWORD) + size > DWORD) return noDeviceValue(size);
    return dwordLanes(target.readConfigDword(Math.floor(offset / DWORD)), offset, size);
  }

  /** Writes `data` at `offset` of a function's configuration space; dropped where none answers. */
  writeConfig(bus: number, device: number, func: number, offset: number, data: Uint8Array): void {
    if ((offset % DWORD) + data.length > DWORD) return;
    this.#find(bus, device, func)?.writeConfig(offset, data);
  }

  #find(bus: number, device: number, func: number): PciDevice | undefined {
    if (bus !== ROOT_BUS) return undefined;
    return this.#functions.get(devfn(device, func));
  }
}
