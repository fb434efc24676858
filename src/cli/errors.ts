/**
 * What the command-line layer throws, and the exit statuses the CLI ends with.
 *
 * @module
 */

import { UserError } from "../errors.ts";

/**
 * Exit statuses, numbered as crosvm's `CommandStatus` (src/main.rs) plus the plain
 * failure status its Linux `error_to_exit_code` (src/sys/linux/main.rs) gives any other error.
 * crosvm reports the VM-outcome statuses only under `--extended-status`; otherwise a run
 * that ends without an error exits with {@link ExitStatus.success}.
 */
export const ExitStatus = {
  /** The command succeeded, or the VM stopped normally (`SuccessOrVmStop`). */
  success: 0,
  /** Any error other than a usage error. */
  failure: 1,
  /** The guest asked for a reset (`VmReset`). */
  vmReset: 32,
  /** The VM crashed (`VmCrash`). */
  vmCrash: 33,
  /** The guest kernel panicked (`GuestPanic`). */
  guestPanic: 34,
  /** The command line was invalid (`InvalidArgs`): the status for a {@link UsageError}. */
  invalidArgs: 35,
  /** The vCPU stall watchdog reset the VM (`WatchdogReset`). */
  watchdogReset: 36,
} as const;

/** One of the {@link ExitStatus} values. */
export type ExitStatus = typeof ExitStatus[keyof typeof ExitStatus];

/**
 * A mistake on the command line. The CLI prints the one-line message (no stack trace)
 * and exits with {@link ExitStatus.invalidArgs}.
 */
export class UsageError extends UserError {
  /** @param message one line naming the bad option or value and what is wrong with it */
  constructor(message: string) {
    super(message);
  }
}

/**
 * Thrown by a parser when it meets `-h`/`--help`: not a failure. The CLI prints
 * {@link HelpRequested.text} to stdout and exits with {@link ExitStatus.success}.
 */
export class HelpRequested extends Error {
  /** @param text the usage text to print */
  constructor(readonly text: string) {
    super("help requested");
    this.name = "HelpRequested";
  }
}

/** The {@link UsageError} for a bad option value: `invalid OPTION value "VALUE": REASON`. */
export function invalidValue(option: string, value: string, reason: string): UsageError {
  return new UsageError(`invalid ${option} value ${JSON.stringify(value)}: ${reason}`);
}
