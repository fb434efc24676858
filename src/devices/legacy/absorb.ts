/**
 * A sink for ports the guest probes or pokes but no device of ours implements, such as the
 * POST diagnostic port 0x80 that Linux writes to as an I/O delay.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";

/**
 * What a read returns: 0xFF, as on an ISA bus where no device drives the data lines and the
 * pull-ups read as ones. On a PC port 0x80 goes to a POST code display, which is write-only
 * (QEMU's port 0x80 reads 0xFF too); nothing relies on reading it.
 */
const FLOATING_BUS = 0xff;

/** Reads float high, writes vanish. Stateless. */
export class AbsorbDevice implements BusDevice {
  /** @param name for logs, e.g. `post@0x80` */
  constructor(readonly name: string) {}

  /** Fills `data` with 0xFF. */
  read(_offset: number, data: Uint8Array): void {
    data.fill(FLOATING_BUS);
  }

  /** Ignores the write. */
  write(): void {}
}
