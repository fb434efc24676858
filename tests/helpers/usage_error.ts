/**
 * The assertion every command-line test makes of a mistake: a one-line {@link UsageError}
 * naming the culprit.
 *
 * @module
 */

import assert from "node:assert/strict";
import { UsageError } from "../../src/cli/errors.ts";

/** Asserts that `parse` throws a one-line UsageError whose message contains every part. */
export function assertUsageError(parse: () => unknown, ...parts: string[]): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
    assert.doesNotMatch(error.message, /\n/);
    for (const part of parts) assert.ok(error.message.includes(part), error.message);
    return true;
  });
}
