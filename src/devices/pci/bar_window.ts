/**
 * Memory BARs that move. The guest may program a BAR anywhere in the host bridge's 32-bit window
 * (and turn decoding on and off), and it does so from any vCPU. Rather than re-map the MMIO bus in
 * every vCPU Worker, one {@link PciBarWindow} covers the whole window on each Worker's bus and,
 * per access, asks the functions whose BAR addresses it knows (each reads its own BAR register
 * and command register from shared state) which one decodes the address. A function that is not
 * decoding, or whose BAR lies outside the window, claims nothing.
 *
 * Also hands out BAR addresses at VM build time ({@link PciBarAllocator}), so the guest finds its
 * functions already placed, as firmware would leave them.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";
import { NO_DEVICE_BYTE } from "../access.ts";

/** A function with one memory BAR, as the window sees it. */
export interface PciBarClaim {
  /** For logs. */
  readonly name: string;
  /**
   * The offset of `[address, address + length)` inside the function's BAR when the function
   * decodes it now (memory space enabled, BAR programmed there), else -1.
   */
  claim(address: number, length: number): number;
  /** Reads `data.length` bytes at `offset` of the BAR. */
  readBar(offset: number, data: Uint8Array): void;
  /** Writes `data` at `offset` of the BAR. */
  writeBar(offset: number, data: Uint8Array): void;
}

/** The MMIO bus device covering a BAR window, dispatching each access to the BAR that decodes it. */
export class PciBarWindow implements BusDevice {
  readonly #functions: PciBarClaim[] = [];

  /**
   * A window with no functions yet.
   * @param name for logs, e.g. `pci-bars`
   * @param base guest-physical address the window is mapped at on the MMIO bus
   */
  constructor(readonly name: string, private readonly base: number) {}

  /** Adds a function whose BAR may lie in the window. */
  add(fn: PciBarClaim): void {
    this.#functions.push(fn);
  }

  /** Reads from the BAR that decodes the address; all ones where none does. */
  read(offset: number, data: Uint8Array): void {
    const address = this.base + offset;
    for (const fn of this.#functions) {
      const at = fn.claim(address, data.length);
      if (at >= 0) return fn.readBar(at, data);
    }
    data.fill(NO_DEVICE_BYTE);
  }

  /** Writes to the BAR that decodes the address; dropped where none does. */
  write(offset: number, data: Uint8Array): void {
    const address = this.base + offset;
    for (const fn of this.#functions) {
      const at = fn.claim(address, data.length);
      if (at >= 0) return fn.writeBar(at, data);
    }
  }
}

/** Hands out naturally aligned BAR addresses from a window, lowest first. */
export class PciBarAllocator {
  #next: number;

  /**
   * An allocator starting at the bottom of the window.
   * @param base first address of the window
   * @param size bytes in the window
   */
  constructor(private readonly base: number, private readonly size: number) {
    this.#next = base;
  }

  /**
   * The address for a BAR of `size` bytes (a power of two, so the BAR is naturally aligned as
   * PCI Local Bus Spec 3.0 §6.2.5.1 requires).
   * @throws RangeError when the window is full or `size` is not a power of two
   */
  allocate(size: number): number {
    if (!Number.isInteger(size) || size <= 0 || (size & (size - 1)) !== 0) {
      throw new RangeError(`BAR size ${size} is not a power of two`);
    }
    const address = Math.ceil(this.#next / size) * size;
    if (address + size > this.base + this.size) {
      throw new RangeError(`no room for a ${size}-byte BAR in the PCI window`);
    }
    this.#next = address + size;
    return address;
  }
}
