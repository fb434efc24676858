/**
 * The commands that talk to a running VM through its control socket, spelled as crosvm's
 * (src/crosvm/cmdline.rs): `stop`, `suspend [--full]`, `resume [--full]`, `powerbtn`,
 * `balloon SIZE [--wait]`, `balloon_stats` and `disk resize DISK_INDEX NEW_SIZE`, each ending
 * with `VM_SOCKET`.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import type { ControlRequest } from "../control/protocol.ts";
import { HelpRequested, UsageError } from "./errors.ts";
import { scanArgs } from "./scan_args.ts";

/** `crosvm <control command> ... VM_SOCKET`: send `request` to the VM at `socket`. */
export interface ControlCommand {
  /** The command name. */
  readonly command: "control";
  /** The control socket's path. */
  readonly socket: string;
  /** What to ask. */
  readonly request: ControlRequest;
}

/** One control command: its summary, usage and how its arguments become a request. */
export interface ControlCommandSpec {
  readonly summary: string;
  readonly usage: string;
  readonly parse: (argv: readonly string[]) => ControlCommand;
}

/** `--full` of suspend and resume. */
const FULL_OPTION: ParseArgsOptionsConfig = { full: { type: "boolean" } };

/** The usage text of a command taking `positionals` before VM_SOCKET. */
function usage(name: string, summary: string, args: string, options: string[]): string {
  return `Usage: crosvm ${name} ${args}VM_SOCKET

${summary}.

Positional Arguments:
  VM_SOCKET         the VM's control socket (crosvm run -s)

Options:
${[...options, "  -h, --help        print this help and exit"].join("\n")}`;
}

/**
 * Scans `argv` with `table` and exactly `names.length` positional arguments, VM_SOCKET last.
 * @returns the options and the positionals by name
 */
function scanControl(
  argv: readonly string[],
  table: ParseArgsOptionsConfig,
  text: string,
  names: readonly string[],
): { options: ReadonlySet<string>; values: readonly string[] } {
  const { options, positionals } = scanArgs(argv, table, {
    usage: text,
    maxPositionals: names.length,
  });
  if (positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(positionals.length).join(" ")}`);
  }
  return { options: new Set(options.keys()), values: positionals };
}

/** A byte count or index: decimal digits, at most 2^53 - 1. */
function count(name: string, text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: expected a whole number`);
  }
  return value;
}

/** A command with no arguments but the socket, sending `request`. */
function simple(name: string, summary: string, request: ControlRequest): ControlCommandSpec {
  const text = usage(name, summary, "", []);
  return {
    summary: lowerFirst(summary),
    usage: text,
    parse: (argv) => {
      const { values } = scanControl(argv, {}, text, ["VM_SOCKET"]);
      return { command: "control", socket: values[0], request };
    },
  };
}

/** suspend or resume, with `--full`. */
function suspendOrResume(kind: "suspend" | "resume"): ControlCommandSpec {
  const summary = kind === "suspend"
    ? "Suspend the VM's vCPUs until resume"
    : "Resume a suspended VM";
  const full = kind === "suspend"
    ? "  --full            also suspend every device and hold the guest's clock"
    : "  --full            resume a VM suspended with --full";
  const text = usage(kind, summary, "[--full] ", [full]);
  return {
    summary: lowerFirst(summary),
    usage: text,
    parse: (argv) => {
      const { options, values } = scanControl(argv, FULL_OPTION, text, ["VM_SOCKET"]);
      return {
        command: "control",
        socket: values[0],
        request: { kind, full: options.has("full") },
      };
    },
  };
}

const BALLOON_USAGE = usage(
  "balloon",
  "Set the balloon's size: the memory the guest gives back to the host",
  "SIZE ",
  ["  --wait            wait until the guest has reached the size"],
);

const BALLOON_STATS_USAGE = usage(
  "balloon_stats",
  "Print the guest's memory statistics and the balloon's size as JSON",
  "",
  [],
);

const DISK_USAGE = usage(
  "disk resize",
  "Resize a disk of the VM; the guest sees the new capacity",
  "DISK_INDEX NEW_SIZE ",
  [],
).replace(
  "Positional Arguments:\n",
  "Positional Arguments:\n  DISK_INDEX        the disk, 0-based in command-line order\n" +
    "  NEW_SIZE          its new size in bytes\n",
);

/** The control commands, by name. */
export const CONTROL_COMMANDS: Readonly<Record<string, ControlCommandSpec>> = {
  balloon: {
    summary: "set the balloon size of a VM",
    usage: BALLOON_USAGE,
    parse: (argv) => {
      const table: ParseArgsOptionsConfig = { wait: { type: "boolean" } };
      const { options, values } = scanControl(argv, table, BALLOON_USAGE, ["SIZE", "VM_SOCKET"]);
      return {
        command: "control",
        socket: values[1],
        request: {
          kind: "balloon-adjust",
          numBytes: count("SIZE", values[0]),
          wait: options.has("wait"),
        },
      };
    },
  },
  balloon_stats: {
    summary: "print the balloon statistics of a VM",
    usage: BALLOON_STATS_USAGE,
    parse: (argv) => {
      const { values } = scanControl(argv, {}, BALLOON_STATS_USAGE, ["VM_SOCKET"]);
      return { command: "control", socket: values[0], request: { kind: "balloon-stats" } };
    },
  },
  disk: {
    summary: "resize a disk of a VM (disk resize)",
    usage: DISK_USAGE,
    parse: (argv) => {
      const [sub, ...rest] = argv;
      if (sub === "-h" || sub === "--help") throw new HelpRequested(DISK_USAGE);
      if (sub !== "resize") {
        throw new UsageError(
          `unknown disk command ${JSON.stringify(sub ?? "")} (commands: resize)`,
        );
      }
      const names = ["DISK_INDEX", "NEW_SIZE", "VM_SOCKET"];
      const { values } = scanControl(rest, {}, DISK_USAGE, names);
      return {
        command: "control",
        socket: values[2],
        request: {
          kind: "disk-resize",
          index: count("DISK_INDEX", values[0]),
          newSize: count("NEW_SIZE", values[1]),
        },
      };
    },
  },
  powerbtn: simple("powerbtn", "Press the VM's power button", { kind: "powerbtn" }),
  resume: suspendOrResume("resume"),
  stop: simple("stop", "Stop the VM", { kind: "exit" }),
  suspend: suspendOrResume("suspend"),
};

/** `text` with its first letter in lower case, for the command list ("Stop the VM" → "stop the VM"). */
function lowerFirst(text: string): string {
  return text[0].toLowerCase() + text.slice(1);
}
