/**
 * A sink for ports the guest probes or pokes but no device of ours implements, such as the
 * POST diagnostic port 0x80 that Linux writes to as an I/O delay.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";
import { NO_DEVICE_BYTE } from "../access.ts";

/**
 * Reads float high, writes vanish. Stateless. On a PC port 0x80 goes to a POST code display,
 * which is write-only (QEMU's port 0x80 reads 0xFF too); nothing relies on reading it.
 */
export class AbsorbDevice implements BusDevice {
  /** @param name for logs, e.g. `post@0x80` */
  constructor(readonly name: string) {}

  /** Fills `data` with 0xFF. */
  read(_offset: number, data: Uint8Array): void {
    data.fill(NO_DEVICE_BYTE);
  }

  /** Ignores the write. */
  write(): void {}
}
