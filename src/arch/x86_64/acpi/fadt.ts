/**
 * The FADT (ACPI 6.5 §5.2.9, signature "FACP"), revision 6.5, for a hardware-reduced platform
 * (§4.1): no PM1/GPE blocks, no SCI and no FACS; sleep and reset go through the registers of
 * `devices/acpi_pm.ts`, and the power button is a device in the DSDT.
 *
 * @module
 */

import {
  ACPI_PM_PORT,
  ACPI_PM_REGISTER_BITS,
  RESET_OFFSET,
  RESET_VALUE,
  SLEEP_CONTROL_OFFSET,
  SLEEP_STATUS_OFFSET,
} from "../../../devices/legacy/acpi_pm.ts";
import { sdt, SDT_HEADER_SIZE, writeIoGas } from "./sdt.ts";

/** FADT Major Version 6 (ACPI 6.0 on). */
export const FADT_REVISION = 6;
/** FADT Minor Version 5: ACPI 6.5. */
export const FADT_MINOR_REVISION = 5;
/** A revision 6 FADT is 276 bytes (ACPI 6.5 §5.2.9). */
export const FADT_SIZE = 276;

/** Field offsets from the start of the table (ACPI 6.5 §5.2.9). */
export const FadtField = {
  IAPC_BOOT_ARCH: 109,
  FLAGS: 112,
  RESET_REG: 116,
  RESET_VALUE: 128,
  FADT_MINOR_VERSION: 131,
  X_DSDT: 140,
  SLEEP_CONTROL_REG: 244,
  SLEEP_STATUS_REG: 256,
} as const;

/** Fixed Feature Flags (ACPI 6.5 §5.2.9). */
export const FadtFlag = {
  /** Bit 0: WBINVD works; "must" be set on new systems. */
  WBINVD: 1 << 0,
  /** Bit 4: the power button, if any, is a control method device (required when HW-reduced). */
  PWR_BUTTON: 1 << 4,
  /** Bit 5: likewise the sleep button; we have none. */
  SLP_BUTTON: 1 << 5,
  /** Bit 10: RESET_REG is supported. */
  RESET_REG_SUP: 1 << 10,
  /** Bit 20: hardware-reduced ACPI (§4.1). */
  HW_REDUCED_ACPI: 1 << 20,
} as const;

/** IA-PC Boot Architecture Flags (ACPI 6.5 §5.2.9.3). */
export const IapcBootArch = {
  /** Bit 0: legacy (ISA) devices exist: the COM ports, the RTC. */
  LEGACY_DEVICES: 1 << 0,
  /** Bit 1: an 8042 at ports 0x60/0x64; Linux probes it only when this is set. */
  I8042: 1 << 1,
  /** Bit 2: no VGA; spares the guest's VGA console probing the ports (each a VM exit). */
  VGA_NOT_PRESENT: 1 << 2,
} as const;

/** The flags our FADT sets. */
export const FADT_FLAGS = FadtFlag.WBINVD | FadtFlag.PWR_BUTTON | FadtFlag.SLP_BUTTON |
  FadtFlag.RESET_REG_SUP | FadtFlag.HW_REDUCED_ACPI;
/** The boot architecture flags our FADT sets. */
export const FADT_IAPC_BOOT_ARCH = IapcBootArch.LEGACY_DEVICES | IapcBootArch.I8042 |
  IapcBootArch.VGA_NOT_PRESENT;

/** Builds the FADT pointing at the DSDT at `dsdtAddress` (64-bit X_DSDT only). */
export function buildFadt(dsdtAddress: number): Uint8Array {
  const body = new Uint8Array(FADT_SIZE - SDT_HEADER_SIZE);
  const view = new DataView(body.buffer);
  const at = (field: number) => field - SDT_HEADER_SIZE;
  const register = (offset: number) => ({
    port: ACPI_PM_PORT + offset,
    bitWidth: ACPI_PM_REGISTER_BITS,
  });
  view.setUint16(at(FadtField.IAPC_BOOT_ARCH), FADT_IAPC_BOOT_ARCH, true);
  view.setUint32(at(FadtField.FLAGS), FADT_FLAGS, true);
  writeIoGas(view, at(FadtField.RESET_REG), register(RESET_OFFSET));
  view.setUint8(at(FadtField.RESET_VALUE), RESET_VALUE);
  view.setUint8(at(FadtField.FADT_MINOR_VERSION), FADT_MINOR_REVISION);
  view.setBigUint64(at(FadtField.X_DSDT), BigInt(dsdtAddress), true);
  writeIoGas(view, at(FadtField.SLEEP_CONTROL_REG), register(SLEEP_CONTROL_OFFSET));
  writeIoGas(view, at(FadtField.SLEEP_STATUS_REG), register(SLEEP_STATUS_OFFSET));
  return sdt("FACP", FADT_REVISION, body);
}
