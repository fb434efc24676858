/**
 * The `crosvm` command line: a thin layer over {@link Vm} (mod.ts). Every user error ends as one
 * line and an exit status; anything else is a bug and keeps its stack trace.
 *
 * @module
 */

import manifest from "../../deno.json" with { type: "json" };
import { ExitStatus, UsageError } from "./errors.ts";
import { type ControlCommand } from "./control_args.ts";
import { parseMainArgs, type RunCommand } from "./main_args.ts";
import { connect, replyError } from "../control/client.ts";
import { vmRequestHandler } from "../control/handler.ts";
import { responseJson } from "../control/protocol.ts";
import { ControlServer } from "../control/server.ts";
import type { VmExitReason } from "../vcpu/control.ts";
import { UserError } from "../errors.ts";
import * as log from "../log.ts";
import { Vm } from "../vm/vm.ts";

/** Signals that stop the VM cleanly (the terminal is in raw mode, so ^C goes to the guest). */
const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/**
 * The exit status of a VM's end under `--extended-status`, as crosvm's `ExitState`s map
 * (src/crosvm/sys/linux/vcpu.rs): a reset request is `VmReset`; the guest's crash report
 * (KVM_SYSTEM_EVENT_CRASH) is `GuestPanic`; a device or vCPU that failed is `VmCrash`; a
 * shutdown, triple fault, halt or stop is success.
 */
export function extendedStatus(reason: VmExitReason): ExitStatus {
  switch (reason) {
    case "reset":
      return ExitStatus.vmReset;
    case "crash":
      return ExitStatus.guestPanic;
    case "error":
      return ExitStatus.vmCrash;
    default:
      return ExitStatus.success;
  }
}

async function run(args: RunCommand): Promise<number> {
  const { config } = args;
  log.setLogLevel(config.logLevel);
  for (const warning of args.warnings) log.warn(warning);
  log.debug("crosvm: starting (the command line parsed)");
  // The socket path is checked before anything is built; requests are served once it runs.
  const server = args.socket === undefined ? undefined : ControlServer.listen(args.socket);
  try {
    const vm = await Vm.create(config, { attachStdin: true });
    const stop = () => void vm.stop();
    for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, stop);
    try {
      if (server !== undefined) {
        vm.running.then(() => server.serve(vmRequestHandler(vm)), () => {});
        log.info(`control socket: ${server.path}`);
      }
      const result = await vm.run();
      log.info(`vm ended: ${result.reason}`);
      if (result.reason === "error") log.error(result.error ?? "the VM failed");
      if (args.extendedStatus) return extendedStatus(result.reason);
      return result.reason === "error" ? ExitStatus.failure : ExitStatus.success;
    } finally {
      for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, stop);
    }
  } finally {
    await server?.close();
  }
}

/** Sends a control command's request; prints `balloon_stats`' reply as JSON. */
async function control(args: ControlCommand): Promise<number> {
  using client = connect(args.socket);
  const reply = await client.request(args.request);
  if (args.request.kind === "balloon-stats") {
    console.log(JSON.stringify(responseJson(reply), null, 2));
  }
  if (reply.kind === "ok" || reply.kind === "balloon-stats") return ExitStatus.success;
  throw replyError(reply);
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
        return await run(args);
      case "control":
        return await control(args);
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
