/**
 * The per-thread context devices act through: how a device asks the VMM to end the VM, from
 * whichever thread runs it.
 *
 * @module
 */

/** Why the guest asked the VM to end. */
export type GuestExitReason = "reset" | "shutdown" | "triple-fault" | "crash";

/** How a device reaches the VMM from whichever thread runs it. */
export interface DeviceContext {
  /** Asks the VMM to end the VM (for example the i8042 reset command). */
  requestExit(reason: GuestExitReason): void;
}
