/**
 * The base class of every failure the user causes and can fix: a bad option, a missing or
 * corrupt image, a host without KVM, a file that cannot be opened. The CLI catches it once and
 * prints its message as one line, with no stack trace; anything else is a bug and keeps its
 * stack.
 *
 * @module
 */

/** A failure the user can fix, said in one line. */
export class UserError extends Error {
  /**
   * A failure with one line to show.
   * @param message one line saying what is wrong (and, where it helps, what to do); control
   *   characters in it (from a path or an option the user gave) are shown escaped
   */
  constructor(message: string) {
    super(oneLine(message));
    this.name = new.target.name;
  }
}

/** The C0 control characters and DEL (matching them is the point, hence the lint exception). */
// deno-lint-ignore no-control-regex
const CONTROL_CHARACTERS = /[\x00-\x1f\x7f]/g;
/** How the commonest ones are written. */
const ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with every control character escaped (`\n`, `\x1b`, …), so it prints as one line. */
export function oneLine(text: string): string {
  return text.replace(
    CONTROL_CHARACTERS,
    (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}
