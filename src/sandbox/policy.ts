/**
 * Reads seccomp policies written in minijail's syntax, as crosvm ships them
 * (`jail/seccomp/x86_64/*.policy`), into rules a libseccomp filter is built from.
 *
 * What a policy file holds, one statement a line (a line ending in `\` goes on on the next):
 *
 * - `# comment` (also after a statement) and blank lines;
 * - `name: 1` or `name: allow`: the syscall is allowed;
 * - `name: EXPR`: allowed when EXPR holds, where EXPR is alternatives joined by `||`, each a
 *   conjunction joined by `&&` of `argN OP VALUE` (N from 0 to 5). OP is `==`, `!=`, `<`, `<=`,
 *   `>`, `>=` (unsigned 64-bit), `&` (at least one bit of VALUE is set) or `in` (no bit outside
 *   VALUE is set). VALUE is a number (decimal, `0x` hex, `0` octal; negative numbers wrap to 64
 *   bits) or a name from `constants.ts`, combined with `|`, `~` (64-bit complement) and
 *   parentheses, e.g. `arg2 in ~PROT_EXEC`, `arg1 == O_RDWR|O_CLOEXEC`;
 * - `name: return ERRNO`: the call fails with ERRNO (a name such as `EPERM` or a number up to
 *   4095) without running;
 * - `name: EXPR; return ERRNO`: the call fails with ERRNO when EXPR holds (minijail's policy
 *   compiler, `tools/parser.py`, which crosvm builds its filters with, reads it so); otherwise
 *   the default action applies;
 * - `@include PATH`: the rules of another file. crosvm writes install paths
 *   (`@include /usr/share/policy/crosvm/common_device.policy`) and its build rewrites them to the
 *   policy's own directory; here an include is always the file of that name in the including
 *   file's directory. Includes may nest; a cycle is an error;
 * - `@frequency PATH`: an optimisation hint for minijail's compiler, accepted and ignored.
 *
 * A syscall named again (in another line or an included file) adds its alternatives, as
 * minijail's compiler merges them. As there, nothing may follow an unconditional rule for the
 * same syscall. Unlike minijail, whose filters are ordered, all of one syscall's rules must take
 * the same action (libseccomp has no order between rules). Every malformed line is a
 * {@link PolicyError} naming the file and line.
 *
 * Not supported (an error, not silently ignored): minijail's other actions (`kill`, `trap`,
 * `log`, ...), `@default`, `@denylist`, syscall lists and groups (`{read, write}: 1`), filter
 * lists (`name: {EXPR, return ERRNO}`) and architecture metadata (`name[arch=...]`).
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { errnoName } from "../ffi/errno.ts";
import { resolveSyscallName } from "../ffi/seccomp.ts";
import { POLICY_CONSTANTS } from "./constants.ts";

/**
 * One comparison of a syscall argument with a constant; `masked_eq` means
 * `(arg & mask) == value`. Comparisons are unsigned and 64 bits wide.
 */
export interface ArgCondition {
  /** The argument's index, 0 to 5. */
  readonly arg: number;
  /** How the argument is compared. */
  readonly op: "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "masked_eq";
  /** The constant compared with (for `masked_eq`, what the masked argument must equal). */
  readonly value: bigint;
  /** For `masked_eq`: the bits of the argument that are compared. */
  readonly mask?: bigint;
}

/** What a matching call gets: it runs, or it fails with an errno without running. */
export type RuleAction = { readonly kind: "allow" } | {
  readonly kind: "errno";
  readonly errno: number;
};

/** One rule: a syscall, the conditions that must all hold, and the action then taken. */
export interface SeccompRule {
  /** The syscall's name, as the policy spells it. */
  readonly syscall: string;
  /** Its number on x86_64. */
  readonly nr: number;
  /** Conditions that must all hold; empty for an unconditional rule. At most one per argument. */
  readonly conditions: readonly ArgCondition[];
  /** The action for a call that matches. */
  readonly action: RuleAction;
  /** Where the rule was written: `file:line`. */
  readonly source: string;
}

/** A parsed policy: the files read (the policy first, then its includes) and its rules. */
export interface SeccompPolicy {
  /** Every file read, the top one first. */
  readonly files: readonly string[];
  /** The rules, grouped by syscall in order of first mention. */
  readonly rules: readonly SeccompRule[];
}

/** A malformed policy line, said as `<file>:<line>: <what is wrong>`. */
export class PolicyError extends UserError {
  /**
   * @param where the offending statement, `file:line`
   * @param what what is wrong with it
   */
  constructor(readonly where: string, what: string) {
    super(`${where}: ${what}`);
  }
}

/** Syscall arguments a rule may compare: `arg0` to `arg5` (`struct seccomp_data`, `args[6]`). */
export const SYSCALL_ARGUMENTS = 6;
/** The largest errno a syscall returns (`MAX_ERRNO`, `<linux/err.h>`). */
export const MAX_ERRNO = 4095;
/**
 * The most rules one statement may expand to: `&` with an n-bit mask becomes n alternatives
 * (one per bit), and a conjunction multiplies them.
 */
export const MAX_RULES_PER_STATEMENT = 1024;

/** Syscall arguments are 64 bits on x86_64. */
const WORD_BITS = 64n;
const WORD_MASK = (1n << WORD_BITS) - 1n;
const SIGNED_MIN = -(1n << (WORD_BITS - 1n));

/**
 * Reads the policy at `path` and, recursively, the files it `@include`s.
 * @throws UserError when the file cannot be read; PolicyError for a malformed line
 */
export function parsePolicyFile(path: string): SeccompPolicy {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read seccomp policy ${path}: ${messageOf(e)}`);
  }
  return parsePolicy(text, path, (included) => Deno.readTextFileSync(included));
}

/**
 * Parses policy `text` read from file `name`. An `@include` is resolved to the file of the same
 * name in `name`'s directory and read with `include`.
 * @throws PolicyError for a malformed line, an unreadable include or an include cycle
 */
export function parsePolicy(
  text: string,
  name: string,
  include: (path: string) => string,
): SeccompPolicy {
  const builder = new PolicyBuilder(include);
  builder.parseFile(text, name);
  return { files: builder.files, rules: builder.rules() };
}

/** The message of a thrown value. */
function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** One logical line: a statement with the number of the line it starts on. */
interface Statement {
  readonly line: number;
  readonly text: string;
}

/** Splits a file into statements: comments dropped, continued lines joined, blank ones skipped. */
function statementsOf(text: string): Statement[] {
  const out: Statement[] = [];
  let pending = "";
  let start = 0;
  text.split(/\r?\n/).forEach((raw, index) => {
    const hash = raw.indexOf("#");
    const line = (hash < 0 ? raw : raw.slice(0, hash)).trimEnd();
    if (pending === "") start = index + 1;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const statement = (pending + line).trim();
    pending = "";
    if (statement !== "") out.push({ line: start, text: statement });
  });
  if (pending.trim() !== "") out.push({ line: start, text: pending.trim() });
  return out;
}

/** What a syscall has collected so far across statements. */
interface SyscallEntry {
  readonly action: RuleAction;
  /** Where the syscall was first given. */
  readonly first: string;
  /** Where an unconditional rule for it was given, if one was. */
  unconditional?: string;
  rules: SeccompRule[];
  /** Condition lists already present, to drop repeats. */
  readonly seen: Set<string>;
}

/** The parsed filter of one statement: alternatives (none when unconditional) and the action. */
interface Filter {
  /** `undefined` for an unconditional rule. */
  readonly alternatives?: readonly (readonly ArgCondition[])[];
  readonly action: RuleAction;
}

/** Collects the statements of a policy and its includes into rules. */
class PolicyBuilder {
  readonly files: string[] = [];
  readonly #syscalls = new Map<string, SyscallEntry>();
  /** The include chain being read, outermost first. */
  readonly #chain: string[] = [];

  constructor(readonly include: (path: string) => string) {}

  /** Every syscall's rules, in order of first mention. */
  rules(): SeccompRule[] {
    return [...this.#syscalls.values()].flatMap((entry) => entry.rules);
  }

  parseFile(text: string, name: string): void {
    if (!this.files.includes(name)) this.files.push(name);
    this.#chain.push(name);
    for (const { line, text: statement } of statementsOf(text)) {
      const where = `${name}:${line}`;
      if (statement.startsWith("@")) this.#directive(statement, name, where);
      else this.#rule(statement, where);
    }
    this.#chain.pop();
  }

  #directive(statement: string, name: string, where: string): void {
    const [directive, ...args] = statement.split(/\s+/);
    if (directive !== "@include" && directive !== "@frequency") {
      throw new PolicyError(
        where,
        `unknown directive '${directive}' (only @include and @frequency are supported)`,
      );
    }
    if (args.length !== 1) throw new PolicyError(where, `${directive} takes one path`);
    if (directive === "@frequency") return;
    const path = args[0];
    const file = path.slice(path.lastIndexOf("/") + 1);
    if (file === "" || file === "." || file === "..") {
      throw new PolicyError(where, `@include ${path} names no file`);
    }
    const resolved = name.slice(0, name.lastIndexOf("/") + 1) + file;
    const cycleStart = this.#chain.indexOf(resolved);
    if (cycleStart >= 0) {
      const cycle = [...this.#chain.slice(cycleStart), resolved].join(" -> ");
      throw new PolicyError(where, `@include cycle: ${cycle}`);
    }
    let text: string;
    try {
      text = this.include(resolved);
    } catch (e) {
      throw new PolicyError(where, `cannot read @include ${resolved}: ${messageOf(e)}`);
    }
    this.parseFile(text, resolved);
  }

  #rule(statement: string, where: string): void {
    const colon = statement.indexOf(":");
    if (colon < 0) {
      throw new PolicyError(
        where,
        `expected 'syscall: filter', '@include PATH' or '@frequency PATH', found '${statement}'`,
      );
    }
    const syscall = statement.slice(0, colon).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(syscall)) {
      throw new PolicyError(where, `invalid syscall name '${syscall}'`);
    }
    const nr = resolveSyscallName(syscall);
    if (nr === undefined) throw new PolicyError(where, `unknown syscall '${syscall}' on x86_64`);
    const filterText = statement.slice(colon + 1).trim();
    if (filterText === "") throw new PolicyError(where, `missing filter after '${syscall}:'`);
    const filter = new FilterParser(filterText, where).parse();
    this.#add(syscall, nr, filter, where);
  }

  #add(syscall: string, nr: number, filter: Filter, where: string): void {
    const { action, alternatives } = filter;
    let entry = this.#syscalls.get(syscall);
    if (entry === undefined) {
      entry = { action, first: where, rules: [], seen: new Set() };
      this.#syscalls.set(syscall, entry);
    } else if (!sameAction(entry.action, action)) {
      throw new PolicyError(
        where,
        `${syscall} ${describe(action)} here but ${describe(entry.action)} at ${entry.first};` +
          " all rules of one syscall must take the same action",
      );
    } else if (entry.unconditional !== undefined) {
      throw new PolicyError(
        where,
        `${syscall} already has an unconditional rule at ${entry.unconditional}`,
      );
    }
    const rule = (conditions: readonly ArgCondition[]): SeccompRule => ({
      syscall,
      nr,
      conditions,
      action,
      source: where,
    });
    if (alternatives === undefined) {
      // An unconditional rule covers every conditional one given before it.
      entry.unconditional = where;
      entry.rules = [rule([])];
      return;
    }
    for (const conditions of alternatives) {
      const key = conditions.map(conditionKey).join("&");
      if (entry.seen.has(key)) continue;
      entry.seen.add(key);
      entry.rules.push(rule(conditions));
    }
  }
}

function sameAction(a: RuleAction, b: RuleAction): boolean {
  return a.kind === b.kind && (a.kind === "allow" || (b.kind === "errno" && a.errno === b.errno));
}

/** How an error message says what a rule does. */
function describe(action: RuleAction): string {
  return action.kind === "allow" ? "is allowed" : `returns ${errnoName(action.errno)}`;
}

function conditionKey(c: ArgCondition): string {
  return `${c.arg}:${c.op}:${c.value}:${c.mask ?? ""}`;
}

/** A token of a filter, with where it sits in the filter's text. */
interface Token {
  readonly kind: "number" | "word" | "punct";
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** Numbers (validated later), words (names, `argN`, keywords, `kill-process`), punctuation. */
const TOKEN = /\s*(?:(-?\d\w*)|([A-Za-z_][\w-]*)|(\|\||&&|==|!=|<=|>=|[<>&|~();]))/y;

/** minijail's number forms (C's `strtol` with base 0), each with its radix. */
const NUMBER_FORMS: readonly (readonly [RegExp, number])[] = [
  [/^(-?)0[xX]([0-9a-fA-F]+)$/, 16],
  [/^(-?)0([0-7]+)$/, 8],
  [/^(-?)(0|[1-9][0-9]*)$/, 10],
];

/** The comparison operators of an atom and what each becomes. */
const COMPARISONS: Readonly<Record<string, ArgCondition["op"]>> = {
  "==": "eq",
  "!=": "ne",
  "<": "lt",
  "<=": "le",
  ">": "gt",
  ">=": "ge",
};

/** minijail actions this sandbox does not take (a rule only allows or returns an errno). */
const UNSUPPORTED_ACTIONS = new Set([
  "kill",
  "kill-process",
  "kill-thread",
  "trap",
  "trace",
  "log",
  "user-notify",
]);

/** Parses the part of a statement after the colon. */
class FilterParser {
  readonly #tokens: Token[] = [];
  #next = 0;

  constructor(readonly text: string, readonly where: string) {
    TOKEN.lastIndex = 0;
    while (TOKEN.lastIndex < text.length) {
      const from = TOKEN.lastIndex;
      const match = TOKEN.exec(text);
      if (match === null) {
        const rest = text.slice(from).trimStart();
        if (rest === "") break;
        this.#fail(`unexpected '${rest[0]}'`);
      }
      const kind = match[1] !== undefined ? "number" : match[2] !== undefined ? "word" : "punct";
      const token = match[1] ?? match[2] ?? match[3];
      this.#tokens.push({
        kind,
        text: token,
        start: TOKEN.lastIndex - token.length,
        end: TOKEN.lastIndex,
      });
    }
  }

  parse(): Filter {
    const first = this.#peek();
    let filter: Filter;
    if (first !== undefined && /^arg\d+$/.test(first.text)) {
      const alternatives = this.#expression();
      const action = this.#accept(";") ? this.#action("an action") : { kind: "allow" } as const;
      filter = { alternatives, action };
    } else {
      filter = { action: this.#action("a condition (argN OP VALUE) or an action") };
    }
    const extra = this.#peek();
    if (extra !== undefined) this.#fail(`unexpected '${extra.text}' after the filter`);
    return filter;
  }

  #fail(what: string): never {
    throw new PolicyError(this.where, what);
  }

  #peek(): Token | undefined {
    return this.#tokens[this.#next];
  }

  #take(expected: string): Token {
    const token = this.#tokens[this.#next++];
    if (token === undefined) this.#fail(`missing ${expected} at the end of the filter`);
    return token;
  }

  #accept(punct: string): boolean {
    if (this.#peek()?.text !== punct) return false;
    this.#next++;
    return true;
  }

  /** `allow`, `1` or `return ERRNO`; `expected` says what else could have stood there. */
  #action(expected: string): RuleAction {
    const token = this.#take("an action");
    if (token.text === "allow") return { kind: "allow" };
    if (token.kind === "number" && this.#number(token) === 1n) return { kind: "allow" };
    if (token.text === "return") {
      const errno = this.#single();
      if (errno > BigInt(MAX_ERRNO)) {
        this.#fail(`errno ${errno} is out of range (0 to ${MAX_ERRNO})`);
      }
      return { kind: "errno", errno: Number(errno) };
    }
    if (UNSUPPORTED_ACTIONS.has(token.text)) {
      this.#fail(`action '${token.text}' is not supported (only allow, 1 or return ERRNO)`);
    }
    this.#fail(`expected ${expected} (allow, 1 or return ERRNO), found '${token.text}'`);
  }

  /** Alternatives joined by `||`, each already expanded and normalised. */
  #expression(): ArgCondition[][] {
    const out: ArgCondition[][] = [];
    do {
      const start = this.#next;
      const expanded = this.#clause();
      const text = this.text.slice(this.#tokens[start].start, this.#tokens[this.#next - 1].end);
      const satisfiable = expanded.map((c) => this.#normalize(c, text)).filter((c) => c !== null);
      if (satisfiable.length === 0) this.#fail(`'${text}' can never hold`);
      out.push(...satisfiable);
      if (out.length > MAX_RULES_PER_STATEMENT) {
        this.#fail(`the filter expands to more than ${MAX_RULES_PER_STATEMENT} rules`);
      }
    } while (this.#accept("||"));
    return out;
  }

  /** Atoms joined by `&&`, expanded into alternatives (an `&` atom has one per bit). */
  #clause(): ArgCondition[][] {
    let product: ArgCondition[][] = [[]];
    do {
      const options = this.#atom();
      product = product.flatMap((conditions) => options.map((option) => [...conditions, option]));
      if (product.length > MAX_RULES_PER_STATEMENT) {
        this.#fail(`the filter expands to more than ${MAX_RULES_PER_STATEMENT} rules`);
      }
    } while (this.#accept("&&"));
    return product;
  }

  /** `argN OP VALUE`, as the conditions of which one must hold. */
  #atom(): ArgCondition[] {
    const argument = this.#take("an argument");
    const index = /^arg(\d+)$/.exec(argument.text);
    if (index === null) this.#fail(`expected arg0 to arg5, found '${argument.text}'`);
    const arg = Number(index[1]);
    if (arg >= SYSCALL_ARGUMENTS) {
      this.#fail(`${argument.text} is out of range (a syscall has arg0 to arg5)`);
    }
    const operator = this.#take(`an operator after ${argument.text}`).text;
    const value = this.#value();
    const op = COMPARISONS[operator];
    if (op !== undefined) return [{ arg, op, value }];
    if (operator === "&") {
      return bitsOf(value).map((bit) => ({ arg, op: "masked_eq", value: bit, mask: bit }));
    }
    if (operator === "in") return [{ arg, op: "masked_eq", value: 0n, mask: ~value & WORD_MASK }];
    this.#fail(`expected an operator (==, !=, <, <=, >, >=, &, in), found '${operator}'`);
  }

  /** Constants joined by `|`. */
  #value(): bigint {
    let value = this.#constant();
    while (this.#accept("|")) value |= this.#constant();
    return value;
  }

  /** `[~] single` or `[~] ( value )`. */
  #constant(): bigint {
    const negate = this.#accept("~");
    if (negate && this.#peek()?.text === "~") this.#fail("'~~' is not allowed");
    let value: bigint;
    if (this.#accept("(")) {
      value = this.#value();
      if (!this.#accept(")")) this.#fail("missing ')'");
    } else {
      value = this.#single();
    }
    return negate ? ~value & WORD_MASK : value;
  }

  /** A number or a named constant. */
  #single(): bigint {
    const token = this.#take("a value");
    if (token.kind === "number") return this.#number(token);
    if (token.kind === "word" && Object.hasOwn(POLICY_CONSTANTS, token.text)) {
      return BigInt(POLICY_CONSTANTS[token.text]);
    }
    if (token.kind === "word") this.#fail(`unknown constant '${token.text}'`);
    this.#fail(`expected a value, found '${token.text}'`);
  }

  /** A number in one of minijail's forms, as an unsigned 64-bit word. */
  #number(token: Token): bigint {
    for (const [form, radix] of NUMBER_FORMS) {
      const match = form.exec(token.text);
      if (match === null) continue;
      const magnitude = [...match[2]].reduce(
        (n, digit) => n * BigInt(radix) + BigInt(parseInt(digit, radix)),
        0n,
      );
      const value = match[1] === "-" ? -magnitude : magnitude;
      if (value > WORD_MASK || value < SIGNED_MIN) {
        this.#fail(`${token.text} does not fit in 64 bits`);
      }
      return value & WORD_MASK;
    }
    this.#fail(`invalid number '${token.text}'`);
  }

  /**
   * One alternative with at most one condition per argument, as libseccomp wants a rule:
   * conditions on one argument are merged when they can be (an `==` decides the others; bit
   * tests combine into one masked compare), or `null` when they can never all hold.
   */
  #normalize(conditions: readonly ArgCondition[], text: string): ArgCondition[] | null {
    const byArg = new Map<number, ArgCondition[]>();
    for (const c of conditions) {
      const group = byArg.get(c.arg) ?? [];
      if (!group.some((other) => conditionKey(other) === conditionKey(c))) group.push(c);
      byArg.set(c.arg, group);
    }
    const out: ArgCondition[] = [];
    for (const [arg, group] of [...byArg].sort(([a], [b]) => a - b)) {
      const merged = mergeConditions(group);
      if (merged === "never") return null;
      if (merged === "inexpressible") {
        this.#fail(
          `'${text}' compares arg${arg} in two ways that one libseccomp rule cannot` +
            " (only == and the bit tests & and in combine)",
        );
      }
      out.push(merged);
    }
    return out;
  }
}

/** The single bits set in `value`, lowest first. */
function bitsOf(value: bigint): bigint[] {
  const bits: bigint[] = [];
  for (let bit = 1n; bit <= value; bit <<= 1n) if (value & bit) bits.push(bit);
  return bits;
}

/** Whether `c` holds for an argument equal to `x`. */
function holds(c: ArgCondition, x: bigint): boolean {
  switch (c.op) {
    case "eq":
      return x === c.value;
    case "ne":
      return x !== c.value;
    case "lt":
      return x < c.value;
    case "le":
      return x <= c.value;
    case "gt":
      return x > c.value;
    case "ge":
      return x >= c.value;
    case "masked_eq":
      return (x & (c.mask ?? WORD_MASK)) === c.value;
  }
}

/** Distinct conditions on one argument as one condition, or why they cannot be. */
function mergeConditions(
  group: readonly ArgCondition[],
): ArgCondition | "never" | "inexpressible" {
  const masked = (c: ArgCondition) => c.op === "masked_eq";
  if (group.some((c) => masked(c) && (c.value & ~(c.mask ?? WORD_MASK)) !== 0n)) return "never";
  if (group.length === 1) return group[0];
  const equal = group.find((c) => c.op === "eq");
  if (equal !== undefined) return group.every((c) => holds(c, equal.value)) ? equal : "never";
  if (!group.every(masked)) return "inexpressible";
  let mask = 0n;
  let value = 0n;
  for (const c of group) {
    const cMask = c.mask ?? WORD_MASK;
    if (((value ^ c.value) & mask & cMask) !== 0n) return "never";
    mask |= cMask;
    value |= c.value;
  }
  return { arg: group[0].arg, op: "masked_eq", value, mask };
}
