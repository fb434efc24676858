/**
 * What every bus device implements, and the per-thread context devices act through.
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

/** Why the guest asked the VM to end. */
export type GuestExitReason = "reset" | "shutdown" | "triple-fault" | "crash";

/** How a device reaches the VMM from whichever thread runs it. */
export interface DeviceContext {
  /** Asks the VMM to end the VM (for example the i8042 reset command). */
  requestExit(reason: GuestExitReason): void;
}

/** Something that raises a guest interrupt line. Safe to call from any thread. */
export interface InterruptLine {
  /** Raises the line as an edge (assert, then deassert). */
  trigger(): void;
}
