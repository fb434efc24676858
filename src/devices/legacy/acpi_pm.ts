/**
 * The power-management registers of a hardware-reduced ACPI platform (ACPI 6.5 §4.1): the sleep
 * control and sleep status registers (§4.8.3.7) and the reset register (§4.8.3.6), which the
 * FADT points the guest at. Three one-byte I/O ports:
 *
 * | port  | register                                                          |
 * | ----- | ----------------------------------------------------------------- |
 * | 0x600 | sleep control: SLP_EN with SLP_TYP = {@link S5_SLP_TYP} powers off |
 * | 0x601 | sleep status: reads 0 (the VM never wakes from a sleep state)      |
 * | 0x602 | reset: {@link RESET_VALUE} resets the VM                           |
 *
 * Power-off and reset end the VM through the device context. The device keeps no state, so each
 * vCPU Worker simply builds its own.
 *
 * @module
 */

import type { DeviceContext } from "../context.ts";
import type { BusDevice } from "../../bus.ts";

/** First I/O port of the block (crosvm's and Cloud Hypervisor's ACPI PM port). */
export const ACPI_PM_PORT = 0x600;
/** Ports in the block: sleep control, sleep status, reset. */
export const ACPI_PM_PORT_COUNT = 3;
/** Offset of the sleep control register (FADT SLEEP_CONTROL_REG, ACPI 6.5 §4.8.3.7). */
export const SLEEP_CONTROL_OFFSET = 0;
/** Offset of the sleep status register (FADT SLEEP_STATUS_REG, ACPI 6.5 §4.8.3.7). */
export const SLEEP_STATUS_OFFSET = 1;
/** Offset of the reset register (FADT RESET_REG, ACPI 6.5 §4.8.3.6). */
export const RESET_OFFSET = 2;
/** Every register here is one byte wide. */
export const ACPI_PM_REGISTER_BITS = 8;

/** ACPI 6.5 §4.8.3.7 Sleep Control Register: SLP_TYPx in bits 2–4. */
const SLP_TYP_SHIFT = 2;
/** Three bits of SLP_TYPx. */
const SLP_TYP_MASK = 0x7;
/** ACPI 6.5 §4.8.3.7 Sleep Control Register: SLP_EN, bit 5, starts the transition. */
export const SLP_EN = 1 << 5;
/**
 * The SLP_TYP value of the S5 (soft-off) state on this platform; the DSDT's `\_S5` package
 * (ACPI 6.5 §7.4.2) hands it to the guest. 5 as in QEMU's and Cloud Hypervisor's tables.
 */
export const S5_SLP_TYP = 5;
/**
 * The value the guest writes to the reset register (FADT RESET_VALUE, ACPI 6.5 §5.2.9) to reset
 * the system: 0x06, the "hard reset" that PC chipsets take at port 0xCF9.
 */
export const RESET_VALUE = 0x06;

/** What every register reads: SLP_EN is write-only and the status's WAK_STS never sets. */
const READ_VALUE = 0;

/** The sleep control, sleep status and reset registers. Stateless. */
export class AcpiPm implements BusDevice {
  /**
   * @param name for logs, e.g. `acpi-pm`
   * @param ctx receives the shutdown and reset requests
   */
  constructor(readonly name: string, private readonly ctx: DeviceContext) {}

  /** Every register reads 0. */
  read(_offset: number, data: Uint8Array): void {
    data.fill(READ_VALUE);
  }

  /** A power-off (SLP_EN with S5) or the reset value ends the VM; other writes do nothing. */
  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const value = data[i];
      switch (offset + i) {
        case SLEEP_CONTROL_OFFSET:
          if ((value & SLP_EN) && ((value >> SLP_TYP_SHIFT) & SLP_TYP_MASK) === S5_SLP_TYP) {
            this.ctx.requestExit("shutdown");
            return;
          }
          break;
        case RESET_OFFSET:
          if (value === RESET_VALUE) {
            this.ctx.requestExit("reset");
            return;
          }
          break;
        default:
          // The sleep status register's WAK_STS is write-one-to-clear; it is never set.
          break;
      }
    }
  }
}
