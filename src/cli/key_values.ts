/**
 * crosvm's `key=value,key,key=value` option syntax (its `serde_keyvalue` crate), as in
 * `--serial type=file,path=/tmp/x,num=2,console`.
 *
 * The rules follow serde_keyvalue/src/key_values.rs:
 * - entries are separated by commas; a key is a letter, digit or `_`, then letters,
 *   digits, `_` or `-`;
 * - `key=value` gives a string; a bare `key` is boolean `true`;
 * - an unquoted value runs to the next comma, may contain `=`, and may not be empty or
 *   contain a quote or a bracket;
 * - a value in double quotes may contain anything, with `\"` and `\\` as its only escapes;
 *   a value in single quotes may contain anything but `'`, with no escapes;
 * - a value in brackets is a nested struct (`vhost-net=[device=/dev/vhost-net]`): its text
 *   between the brackets, for the caller to parse as key-values in turn;
 * - with a schema (the option's keys), the first entry may omit its key when it is not one
 *   of the keys: `-m 512` means `-m size=512`.
 *
 * Stricter than crosvm: an empty option value, an empty entry and a trailing comma are
 * refused (crosvm takes them as "all defaults"); brackets do not nest, and are not lists.
 *
 * @module
 */

import { invalidValue, type UsageError } from "./errors.ts";

/** One value: the text after `=`, or `true` for a bare key. */
export type KeyValue = string | true;

/** The keys an option accepts; the first is the one that may be given without its name. */
export type KeySchema = readonly [string, ...string[]];

/** Inclusive bounds for {@link KeyValues.integer}, with the unit shown in messages. */
export interface IntegerRange {
  /** Smallest accepted value. */
  readonly min: number;
  /** Largest accepted value (at most `Number.MAX_SAFE_INTEGER`). */
  readonly max: number;
  /** Unit named after the bounds in messages, e.g. "MiB". */
  readonly unit?: string;
}

/** A key as serde_keyvalue's `any_identifier` accepts it (sticky: matched at a position). */
const KEY_PATTERN = /[A-Za-z0-9_][A-Za-z0-9_-]*/y;
/** serde_keyvalue's integers: optional `-`, then decimal or `0x`/`0o`/`0b` digits. */
const INTEGER_PATTERN = /^(-?)(0x[0-9a-fA-F]+|0o[0-7]+|0b[01]+|[0-9]+)$/;
/** What a parsed boolean value may be spelled as, besides a bare key. */
const BOOLEAN_SPELLINGS: ReadonlyMap<string, boolean> = new Map([["true", true], ["false", false]]);

/**
 * The entries of one option value, in the order given, with typed accessors whose
 * errors are {@link UsageError}s naming the option, its value and the key.
 */
export class KeyValues extends Map<string, KeyValue> {
  /**
   * @param option the option as the user wrote it, e.g. `--serial`
   * @param text the option's value
   */
  constructor(readonly option: string, readonly text: string) {
    super();
  }

  /** A {@link UsageError} for this option value: `invalid OPTION value "TEXT": REASON`. */
  error(reason: string): UsageError {
    return invalidValue(this.option, this.text, reason);
  }

  /** The string value of `key`, or `undefined` when absent; a bare key is an error. */
  string(key: string): string | undefined {
    const value = this.get(key);
    if (value === true) throw this.error(`${key} needs a value (${key}=...)`);
    return value;
  }

  /** `key` as a boolean: absent is false, bare is true, or it is spelled `true`/`false`. */
  flag(key: string): boolean {
    const value = this.get(key);
    if (value === undefined || value === true) return value === true;
    const flag = BOOLEAN_SPELLINGS.get(value);
    if (flag === undefined) throw this.error(`${key} must be true or false, not "${value}"`);
    return flag;
  }

  /** `key` as one of `choices`, or `undefined` when absent. */
  choice<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const found = choices.find((choice) => choice === value);
    if (found === undefined) {
      throw this.error(`${key} must be one of ${choices.join(", ")}, not "${value}"`);
    }
    return found;
  }

  /** `key` as an integer within `range`, or `undefined` when absent. */
  integer(key: string, range: IntegerRange): number | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const match = INTEGER_PATTERN.exec(value);
    if (match === null) throw this.error(`${key} must be an integer, not "${value}"`);
    const magnitude = BigInt(match[2]);
    const number = match[1] === "-" ? -magnitude : magnitude;
    if (number < BigInt(range.min) || number > BigInt(range.max)) {
      const unit = range.unit === undefined ? "" : ` ${range.unit}`;
      throw this.error(`${key} must be from ${range.min} to ${range.max}${unit}, not ${value}`);
    }
    return Number(number);
  }
}

/** Refuses any key of `values` that is not in `known`, naming the option and the key. */
export function rejectUnknownKeys(values: KeyValues, known: readonly string[]): void {
  for (const key of values.keys()) {
    if (!known.includes(key)) {
      throw values.error(`unknown key "${key}" (expected ${known.join(", ")})`);
    }
  }
}

/**
 * Parses `text`, the value of `option`, into its entries. With a `schema`, the first
 * entry may omit its key (see the module notes) and keys outside the schema are refused.
 */
export function parseKeyValues(option: string, text: string, schema?: KeySchema): KeyValues {
  const values = new KeyValues(option, text);
  if (text === "") throw values.error("it is empty");
  const reader = new Reader(values);
  let implicitKey = schema !== undefined && !startsWithKey(text, schema) ? schema[0] : undefined;
  for (;;) {
    const key = implicitKey ?? reader.key();
    if (values.has(key)) throw values.error(`duplicate key "${key}"`);
    values.set(key, implicitKey !== undefined || reader.skip("=") ? reader.value(key) : true);
    implicitKey = undefined;
    if (reader.atEnd()) break;
    if (!reader.skip(",")) throw reader.unexpected(`after ${key}`);
    if (reader.atEnd()) throw values.error("trailing comma");
  }
  if (schema !== undefined) rejectUnknownKeys(values, schema);
  return values;
}

/** crosvm's test for an omitted first key: the text does not start with `key=` or a known `key`. */
function startsWithKey(text: string, schema: KeySchema): boolean {
  KEY_PATTERN.lastIndex = 0;
  const key = KEY_PATTERN.exec(text)?.[0];
  if (key === undefined) return false;
  const next = text.charAt(key.length);
  return next === "=" || ((next === "," || next === "") && schema.includes(key));
}

/** A cursor over one option value. */
class Reader {
  #pos = 0;
  readonly #text: string;

  constructor(readonly values: KeyValues) {
    this.#text = values.text;
  }

  atEnd(): boolean {
    return this.#pos >= this.#text.length;
  }

  /** Consumes `char` if it is next. */
  skip(char: string): boolean {
    if (this.#text.charAt(this.#pos) !== char) return false;
    this.#pos++;
    return true;
  }

  /** An error for the character at the cursor. */
  unexpected(where: string): UsageError {
    const char = this.#text.charAt(this.#pos);
    return this.values.error(`unexpected "${char}" at position ${this.#pos} ${where}`);
  }

  /** Reads a key, which must be followed by `=`, `,` or the end. */
  key(): string {
    KEY_PATTERN.lastIndex = this.#pos;
    const key = KEY_PATTERN.exec(this.#text)?.[0];
    const next = this.#text.charAt(this.#pos);
    if (key === undefined) {
      if (next === "," || next === "=") {
        throw this.values.error(`empty key at position ${this.#pos}`);
      }
      throw this.unexpected("where a key should start");
    }
    this.#pos += key.length;
    if (!/^[=,]?$/.test(this.#text.charAt(this.#pos))) throw this.unexpected(`in key ${key}`);
    return key;
  }

  /** Reads the value of `key`: quoted or up to the next comma. */
  value(key: string): string {
    const quote = this.#text.charAt(this.#pos);
    if (quote === '"') return this.#doubleQuoted(key);
    if (quote === "'") return this.#singleQuoted(key);
    if (quote === "[") return this.#bracketed(key);
    const end = this.#text.indexOf(",", this.#pos);
    const value = this.#text.slice(this.#pos, end === -1 ? undefined : end);
    if (value === "") throw this.values.error(`${key} has an empty value (write ${key}="")`);
    if (/["']/.test(value)) throw this.values.error(`quote inside the value of ${key}`);
    if (/[[\]]/.test(value)) {
      throw this.values.error(`a bracket inside the value of ${key} (nested: ${key}=[...])`);
    }
    this.#pos += value.length;
    return value;
  }

  #doubleQuoted(key: string): string {
    let value = "";
    for (let pos = this.#pos + 1; pos < this.#text.length; pos++) {
      const char = this.#text.charAt(pos);
      if (char === '"') {
        this.#pos = pos + 1;
        return value;
      }
      if (char === "\\") {
        const escaped = this.#text.charAt(++pos);
        if (escaped !== '"' && escaped !== "\\") {
          throw this.values.error(`only \\" and \\\\ may be escaped (${key})`);
        }
        value += escaped;
      } else {
        value += char;
      }
    }
    throw this.values.error(`unterminated quote in the value of ${key}`);
  }

  #bracketed(key: string): string {
    const end = this.#text.indexOf("]", this.#pos + 1);
    if (end === -1) throw this.values.error(`unterminated [ in the value of ${key}`);
    const value = this.#text.slice(this.#pos + 1, end);
    if (value.includes("[")) throw this.values.error(`nested [ in the value of ${key}`);
    this.#pos = end + 1;
    return value;
  }

  #singleQuoted(key: string): string {
    const end = this.#text.indexOf("'", this.#pos + 1);
    if (end === -1) throw this.values.error(`unterminated quote in the value of ${key}`);
    const value = this.#text.slice(this.#pos + 1, end);
    this.#pos = end + 1;
    return value;
  }
}
