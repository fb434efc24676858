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
   * @param message one line saying what is wrong (and, where it helps, what to do)
   */
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
