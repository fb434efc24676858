/**
 * PIO and MMIO buses: address ranges mapped to devices, with offsets passed
 * relative to the range base. Overlapping ranges are refused when they are added.
 *
 * @module
 */

/** A device on the PIO or MMIO bus. Offsets are relative to the start of the range it was mapped at. */
export interface BusDevice {
  /** A short name for logs, e.g. `serial@0x3f8`. */
  readonly name: string;
  /** Fills `data` (1, 2, 4 or 8 bytes) with the value read at `offset`. */
  read(offset: number, data: Uint8Array): void;
  /** Handles a guest write of `data` at `offset`. */
  write(offset: number, data: Uint8Array): void;
}

/** A device's place on a bus. */
export interface BusRange {
  /** First address of the range. */
  readonly base: number;
  /** Length in bytes. */
  readonly length: number;
  /** The device that answers there. */
  readonly device: BusDevice;
}

/** Adding a range that overlaps one already on the bus. */
export class BusOverlapError extends Error {
  /** @param added the range refused; @param existing the range it overlaps */
  constructor(added: BusRange, existing: BusRange) {
    const show = (r: BusRange) =>
      `${r.device.name} [0x${r.base.toString(16)}, 0x${(r.base + r.length).toString(16)})`;
    super(`bus range ${show(added)} overlaps ${show(existing)}`);
    this.name = "BusOverlapError";
  }
}

/** An address space of devices (the PIO bus or the MMIO bus). */
export class Bus {
  readonly #ranges: BusRange[] = [];
  /** The range the last lookup hit: guests tend to hammer one device at a time. */
  #last: BusRange | undefined;

  /** @param name `pio` or `mmio`, for messages */
  constructor(readonly name: string) {}

  /** Maps `device` at `[base, base + length)`. Throws BusOverlapError on overlap. */
  insert(device: BusDevice, base: number, length: number): void {
    if (length <= 0) throw new RangeError(`${device.name}: empty bus range`);
    const added = { base, length, device };
    for (const r of this.#ranges) {
      if (base < r.base + r.length && r.base < base + length) throw new BusOverlapError(added, r);
    }
    this.#ranges.push(added);
    this.#ranges.sort((a, b) => a.base - b.base);
  }

  /** Every range on the bus, in address order. */
  get ranges(): readonly BusRange[] {
    return this.#ranges;
  }

  /** The range containing `address`, or undefined. */
  find(address: number): BusRange | undefined {
    const last = this.#last;
    if (last !== undefined && address >= last.base && address < last.base + last.length) {
      return last;
    }
    const ranges = this.#ranges;
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = ranges[mid];
      if (address < r.base) hi = mid - 1;
      else if (address >= r.base + r.length) lo = mid + 1;
      else {
        this.#last = r;
        return r;
      }
    }
    return undefined;
  }

  /** Dispatches a read; returns false when no device claims `address`. */
  read(address: number, data: Uint8Array): boolean {
    const r = this.find(address);
    if (r === undefined) return false;
    r.device.read(address - r.base, data);
    return true;
  }

  /** Dispatches a write; returns false when no device claims `address`. */
  write(address: number, data: Uint8Array): boolean {
    const r = this.find(address);
    if (r === undefined) return false;
    r.device.write(address - r.base, data);
    return true;
  }
}
