// A user error is one line whatever it quotes: control characters from paths or options are
// shown escaped.

import assert from "node:assert/strict";
import { oneLine, UserError } from "../src/errors.ts";

Deno.test("a UserError's message is one line: control characters it quotes are escaped", () => {
  assert.equal(oneLine("tap-name=a\nb\tc\r\x1b[31m\x7f"), "tap-name=a\\nb\\tc\\r\\x1b[31m\\x7f");
  assert.equal(new UserError("unknown option --x\ny").message, "unknown option --x\\ny");
  assert.equal(oneLine("plain text, ünïcode ✓"), "plain text, ünïcode ✓");
});
