/**
 * The `crosvm` command line: a thin layer over {@link Vm} (mod.ts). Every user error ends as one
 * line and an exit status; anything else is a bug and keeps its stack trace.
 *
 * @module
 */

import manifest from "../../deno.json" with { type: "json" };
import { ExitStatus, UsageError } from "./errors.ts";
import { parseMainArgs } from "./main_args.ts";
import type { VmConfig } from "../config.ts";
import { UserError } from "../errors.ts";
import * as log from "../log.ts";
import { Vm } from "../vm/vm.ts";

/** Signals that stop the VM cleanly (the terminal is in raw mode, so ^C goes to the guest). */
const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

async function run(config: VmConfig): Promise<number> {
  log.setLogLevel(config.logLevel);
  log.debug("crosvm: starting");
  const vm = await Vm.create(config, { attachStdin: true });
  const stop = () => vm.stop();
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, stop);
  try {
    const result = await vm.run();
    log.info(`vm ended: ${result.reason}`);
    if (result.reason === "error") {
      log.error(result.error ?? "the VM failed");
      return ExitStatus.failure;
    }
    return ExitStatus.success;
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, stop);
  }
}

/** Runs the CLI on `argv` (without the program name); returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const args = parseMainArgs(argv);
    switch (args.command) {
      case "help":
        console.log(args.text);
        return ExitStatus.success;
      case "version":
        console.log(`crosvm ${manifest.version}`);
        return ExitStatus.success;
      case "run":
        return await run(args.config);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`crosvm: ${e.message}`);
      return ExitStatus.invalidArgs;
    }
    if (e instanceof UserError) {
      console.error(`crosvm: error: ${e.message}`);
      return ExitStatus.failure;
    }
    throw e;
  }
}
