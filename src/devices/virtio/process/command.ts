/**
 * The hidden command that makes this program a jailed device process (`main.ts` dispatches on
 * it before loading anything else), so the single-file build can start its own devices.
 *
 * @module
 */

/** The first argument of a device process. Not a user command: the VMM starts it. */
export const DEVICE_PROCESS_COMMAND = "__device-process";
