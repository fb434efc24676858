/**
 * The top-level command line, `crosvm [--log-level LEVEL] <command> [args]`, as crosvm's
 * `CrosvmCmdlineArgs` (src/crosvm/cmdline.rs), with the commands this VMM has so far.
 *
 * To add a command: add its variant to {@link MainArgs} and its entry to `COMMANDS`.
 *
 * @module
 */

import { LOG_LEVELS, type LogLevel } from "../log.ts";
import { HelpRequested, UsageError } from "./errors.ts";
import { CONTROL_COMMANDS, type ControlCommand } from "./control_args.ts";
import {
  DEFAULT_LOG_LEVEL,
  parseLogLevel,
  parseRunCommand,
  RUN_USAGE,
  type RunArgs,
} from "./run_args.ts";
import { scanArgs } from "./scan_args.ts";

/** `crosvm run`: build and run the VM described by `config`. */
export interface RunCommand extends RunArgs {
  /** The command name. */
  readonly command: "run";
}

/** `crosvm version`: print the version. */
export interface VersionCommand {
  /** The command name. */
  readonly command: "version";
}

/** `crosvm help [COMMAND]`, `-h` or `--help` anywhere: print `text` to stdout, exit 0. */
export interface HelpCommand {
  /** The command name. */
  readonly command: "help";
  /** The usage text to print. */
  readonly text: string;
}

/** What the command line asks for, by command. */
export type MainArgs = RunCommand | ControlCommand | VersionCommand | HelpCommand;

/** One command: its one-line summary, its help text and its argument parser. */
interface CommandSpec {
  readonly summary: string;
  readonly usage: string;
  /** Parses the arguments after the command name; `logLevel` is the top-level one. */
  readonly parse: (argv: readonly string[], logLevel: LogLevel) => MainArgs;
}

/** Help text for `crosvm version`. */
const VERSION_USAGE = `Usage: crosvm version

Print the version of crosvm.

Options:
  -h, --help        print this help and exit`;

/** Help text for `crosvm help`. */
const HELP_USAGE = `Usage: crosvm help [COMMAND]

Print the help for crosvm, or for COMMAND.

Options:
  -h, --help        print this help and exit`;

/** The commands, by name. */
const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  help: {
    summary: "print the help for crosvm or for one command",
    usage: HELP_USAGE,
    parse: (argv) => {
      const [name] = scanArgs(argv, {}, { usage: HELP_USAGE, maxPositionals: 1 }).positionals;
      return { command: "help", text: name === undefined ? TOP_USAGE : commandNamed(name).usage };
    },
  },
  run: {
    summary: "start a new VM",
    usage: RUN_USAGE,
    parse: (argv, logLevel) => ({ command: "run", ...parseRunCommand(argv, logLevel) }),
  },
  ...CONTROL_COMMANDS,
  version: {
    summary: "print the version",
    usage: VERSION_USAGE,
    parse: (argv) => {
      scanArgs(argv, {}, { usage: VERSION_USAGE });
      return { command: "version" };
    },
  },
};

/** The column command summaries start at in {@link TOP_USAGE}. */
const SUMMARY_COLUMN = 20;

/**
 * Orders strings by their UTF-16 code units (ours are ASCII). Not `localeCompare`: its first call
 * builds ICU's collator, some 20 ms of every start-up.
 */
function codeUnitOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Help text for `crosvm`: its global options and its commands. */
export const TOP_USAGE = `Usage: crosvm [--log-level <LEVEL>] <command> [<args>]

crosvm: run a virtual machine under KVM.

Options:
  --log-level <LEVEL>
                    one of ${LOG_LEVELS.join(", ")} (default: ${DEFAULT_LOG_LEVEL})
  -h, --help        print this help and exit

Commands:
${
  Object.entries(COMMANDS).sort(([a], [b]) => codeUnitOrder(a, b)).map(([name, spec]) =>
    `  ${name.padEnd(SUMMARY_COLUMN - 2)}${spec.summary}`
  ).join("\n")
}`;

/** The command called `name`. */
function commandNamed(name: string): CommandSpec {
  if (Object.hasOwn(COMMANDS, name)) return COMMANDS[name];
  const known = Object.keys(COMMANDS).join(", ");
  throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${known})`);
}

/**
 * Parses crosvm's arguments (without the program name). Help requests, at the top level
 * or for a command, come back as `{ command: "help", text }`; every mistake throws a
 * {@link UsageError} with one line naming the bad option, value or command.
 */
export function parseMainArgs(argv: readonly string[]): MainArgs {
  try {
    const { options, positionals, rest } = scanArgs(argv, { "log-level": { type: "string" } }, {
      usage: TOP_USAGE,
      stopAtPositional: true,
    });
    const [name] = positionals;
    if (name === undefined) throw new UsageError('missing command (see "crosvm help")');
    const level = options.get("log-level")?.[0];
    return commandNamed(name).parse(
      rest,
      level === undefined ? DEFAULT_LOG_LEVEL : parseLogLevel(level),
    );
  } catch (error) {
    if (error instanceof HelpRequested) return { command: "help", text: error.text };
    throw error;
  }
}
