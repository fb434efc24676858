/**
 * The MC146818 CMOS real-time clock and its 128 bytes of battery-backed RAM. The clock reads
 * the host's wall-clock time (UTC) at every access; the rest is RAM in a SharedArrayBuffer.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";
import { NO_DEVICE_BYTE } from "../access.ts";
import { LockedRegisters } from "../locked_registers.ts";

/** The MC146818's index port (IBM PC/AT port map). */
export const CMOS_PORT = 0x70;
/** Mapped as one device over ports 0x70 (index) and 0x71 (data). */
export const CMOS_PORT_COUNT = 2;

const INDEX_PORT = 0; // port 0x70, write-only
const DATA_PORT = 1; // port 0x71
const INDEX_MASK = 0x7f; // PC/AT: bit 7 of the index port gates NMI, which we ignore
/** Size of the CMOS RAM (MC146818A datasheet: 64 bytes; PC/AT chipsets: 128 on ports 0x70/0x71). */
const CMOS_SIZE = 128;

// Register indices (MC146818A datasheet, "Address Map").
const SECONDS = 0x00;
const MINUTES = 0x02;
const HOURS = 0x04;
const WEEKDAY = 0x06; // 1 = Sunday
const DAY_OF_MONTH = 0x07;
const MONTH = 0x08;
const YEAR = 0x09; // two digits
const STATUS_A = 0x0a;
const STATUS_B = 0x0b;
const STATUS_C = 0x0c;
const STATUS_D = 0x0d;
const CENTURY = 0x32; // IBM PC AT BIOS convention, the usual ACPI FADT CENTURY index

// Status register bits (MC146818A datasheet, "Register A" to "Register D").
const STATUS_A_UPDATE_IN_PROGRESS = 0x80; // UIP: read-only, never set here
const STATUS_A_POWER_ON = 0x26; // DV = 010 (32.768 kHz time base), RS = 0110 (1.024 kHz)
const STATUS_B_24_HOUR = 0x02;
const STATUS_B_BINARY = 0x04; // DM: 1 = binary, 0 = BCD
const STATUS_B_POWER_ON = STATUS_B_24_HOUR; // BCD, 24-hour, as PC BIOSes and crosvm set it
const STATUS_D_VALID_TIME = 0x80; // VRT: RAM and time are valid
const HOUR_PM = 0x80; // MC146818A datasheet: in 12-hour mode bit 7 of the hour means PM
const NO_INTERRUPT_FLAGS = 0; // register C: we raise no RTC interrupts, so no flags are ever set

// Memory size bytes as crosvm and SeaBIOS read them (QEMU/crosvm CMOS layout).
const EXT_MEM_LOW = 0x34; // RAM from 16 MiB up to the top of low memory, in 64 KiB units
const EXT_MEM_HIGH = 0x35;
const HIGH_MEM = 0x5b; // 0x5b-0x5d: RAM above 4 GiB, in 64 KiB units
const EXT_MEM_START = 16 << 20;
const MEM_UNIT = 64 << 10;
const EXT_MEM_MAX_UNITS = 0xffff; // two bytes
const HIGH_MEM_MAX_UNITS = 0xff_ffff; // three bytes

/** How each time register other than the hour derives from the UTC date. */
const TIME_FIELDS: ReadonlyMap<number, (now: Date) => number> = new Map([
  [SECONDS, (now: Date) => now.getUTCSeconds()],
  [MINUTES, (now: Date) => now.getUTCMinutes()],
  [WEEKDAY, (now: Date) => now.getUTCDay() + 1],
  [DAY_OF_MONTH, (now: Date) => now.getUTCDate()],
  [MONTH, (now: Date) => now.getUTCMonth() + 1],
  [YEAR, (now: Date) => now.getUTCFullYear() % 100],
  [CENTURY, (now: Date) => Math.floor(now.getUTCFullYear() / 100)],
]);

// Offsets of the state in its shared register bytes: the latched index, then the RAM.
const INDEX = 0;
const RAM = 1;
const STATE_BYTES = RAM + CMOS_SIZE;

/** The PC's CMOS RTC, ports 0x70-0x71. */
export class Cmos implements BusDevice {
  /**
   * Fresh CMOS contents for a VM, to share between threads.
   * @param memBelow4G bytes of RAM below 4 GiB (from guest-physical 0)
   * @param memAbove4G bytes of RAM from 4 GiB up
   */
  static createState(memBelow4G: number, memAbove4G: number): SharedArrayBuffer {
    return LockedRegisters.createState(STATE_BYTES, (bytes) => {
      const ram = bytes.subarray(RAM);
      ram[STATUS_A] = STATUS_A_POWER_ON;
      ram[STATUS_B] = STATUS_B_POWER_ON;
      const ext = Math.min(
        EXT_MEM_MAX_UNITS,
        Math.floor(Math.max(0, memBelow4G - EXT_MEM_START) / MEM_UNIT),
      );
      ram[EXT_MEM_LOW] = ext & 0xff;
      ram[EXT_MEM_HIGH] = ext >> 8;
      const high = Math.min(HIGH_MEM_MAX_UNITS, Math.floor(memAbove4G / MEM_UNIT));
      ram.set([high & 0xff, (high >> 8) & 0xff, high >> 16], HIGH_MEM);
    });
  }

  readonly #regs: LockedRegisters;
  readonly #index: Uint8Array;
  readonly #ram: Uint8Array;

  /**
   * @param name for logs, e.g. `cmos`
   * @param state from {@link Cmos.createState}, shared by every thread's Cmos
   * @param now the wall clock the time registers show
   */
  constructor(
    readonly name: string,
    state: SharedArrayBuffer,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.#regs = new LockedRegisters(state);
    this.#index = this.#regs.bytes.subarray(INDEX, INDEX + 1);
    this.#ram = this.#regs.bytes.subarray(RAM, RAM + CMOS_SIZE);
  }

  /** Reads the data port (the indexed register); a wide access reads consecutive ports. */
  read(offset: number, data: Uint8Array): void {
    this.#regs.with(() => {
      for (let i = 0; i < data.length; i++) {
        // The index port is write-only: nothing drives the bus when it is read.
        data[i] = offset + i === DATA_PORT ? this.#readRegister(this.#index[0]) : NO_DEVICE_BYTE;
      }
    });
  }

  /** Selects a register (index port) or writes the selected one (data port). */
  write(offset: number, data: Uint8Array): void {
    this.#regs.with(() => {
      for (let i = 0; i < data.length; i++) {
        if (offset + i === INDEX_PORT) this.#index[0] = data[i] & INDEX_MASK;
        else if (offset + i === DATA_PORT) this.#writeRegister(this.#index[0], data[i]);
      }
    });
  }

  #readRegister(index: number): number {
    switch (index) {
      case HOURS:
        return this.#hours(this.now().getUTCHours());
      case STATUS_C:
        return NO_INTERRUPT_FLAGS;
      case STATUS_D:
        return STATUS_D_VALID_TIME;
    }
    const field = TIME_FIELDS.get(index);
    return field === undefined ? this.#ram[index] : this.#encode(field(this.now()));
  }

  /** Time writes are dropped: the host clock stays the time source. C and D are read-only. */
  #writeRegister(index: number, value: number): void {
    if (index === HOURS || TIME_FIELDS.has(index) || index === STATUS_C || index === STATUS_D) {
      return;
    }
    this.#ram[index] = index === STATUS_A ? value & ~STATUS_A_UPDATE_IN_PROGRESS : value;
  }

  /** The hour in the mode register B selects; in 12-hour mode 1-12 with bit 7 for PM. */
  #hours(hour: number): number {
    if (this.#ram[STATUS_B] & STATUS_B_24_HOUR) return this.#encode(hour);
    return this.#encode(hour % 12 || 12) | (hour >= 12 ? HOUR_PM : 0);
  }

  /** A time value in the data mode register B selects: binary or BCD. */
  #encode(value: number): number {
    if (this.#ram[STATUS_B] & STATUS_B_BINARY) return value;
    return (Math.floor(value / 10) << 4) | (value % 10);
  }
}
