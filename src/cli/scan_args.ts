/**
 * Tokenising one command's arguments against its option table: each option's occurrences with
 * their spellings and positions, the positional arguments, and `-h`/`--help`.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { HelpRequested, UsageError } from "./errors.ts";

/** `-h`/`--help`, which every command accepts. */
const HELP_OPTION: ParseArgsOptionsConfig = { help: { type: "boolean", short: "h" } };

/** One occurrence of an option: as the user spelled it (`-m`, `--mem`) and its value. */
export interface OptionValue {
  /** The option as written, for messages. */
  readonly flag: string;
  /** Its value (empty for a boolean option). */
  readonly value: string;
  /** Where it appeared in argv, to order occurrences of different options. */
  readonly index: number;
}

/** What {@link scanArgs} does besides tokenising. */
export interface ScanRules {
  /** Help text thrown in a {@link HelpRequested} on `-h`/`--help`. */
  readonly usage: string;
  /** Stop at the first positional argument (a command name) and return the rest unread. */
  readonly stopAtPositional?: boolean;
  /** How many positional arguments are allowed (default: none). */
  readonly maxPositionals?: number;
}

/** The arguments of one command, checked against its option table. */
export interface ScannedArgs {
  /** Every option given, by its long name, in order of appearance. */
  readonly options: ReadonlyMap<string, readonly OptionValue[]>;
  /** The positional arguments. */
  readonly positionals: readonly string[];
  /** With `stopAtPositional`: the arguments after the first positional one. */
  readonly rest: readonly string[];
}

/**
 * Splits `argv` into options (declared in `table`: string-valued, or boolean flags) and positional
 * arguments. Throws {@link HelpRequested} with `rules.usage` at `-h`/`--help`, and a
 * {@link UsageError} naming the option for an unknown option, a missing value, or a
 * second use of an option not declared `multiple`.
 */
export function scanArgs(
  argv: readonly string[],
  table: ParseArgsOptionsConfig,
  rules: ScanRules,
): ScannedArgs {
  const options = new Map<string, OptionValue[]>();
  const positionals: string[] = [];
  const { tokens } = parseArgs({
    args: [...argv],
    options: { ...table, ...HELP_OPTION },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind === "positional") {
      positionals.push(token.value);
      if (rules.stopAtPositional) {
        return { options, positionals, rest: argv.slice(token.index + 1) };
      }
      if (positionals.length > (rules.maxPositionals ?? 0)) {
        throw new UsageError(`unexpected argument ${JSON.stringify(token.value)}`);
      }
    } else if (token.kind === "option") {
      if (token.name === "help") throw new HelpRequested(rules.usage);
      const spec = Object.hasOwn(table, token.name) ? table[token.name] : undefined;
      if (spec === undefined) throw new UsageError(`unknown option ${token.rawName}`);
      const boolean = spec.type === "boolean";
      if (boolean && token.value !== undefined) {
        throw new UsageError(`option ${token.rawName} takes no value`);
      }
      if (!boolean && token.value === undefined) {
        throw new UsageError(`option ${token.rawName} needs a value`);
      }
      const seen = options.get(token.name) ?? [];
      if (seen.length > 0 && !spec.multiple) {
        throw new UsageError(`option ${token.rawName} given more than once`);
      }
      const value = token.value ?? "";
      options.set(token.name, [...seen, { flag: token.rawName, value, index: token.index }]);
    }
  }
  return { options, positionals, rest: [] };
}
