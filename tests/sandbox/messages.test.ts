import assert from "node:assert/strict";
import { close, SOCK_SEQPACKET, socketpair, writeAll } from "../../src/ffi/libc.ts";
import {
  decodeMessage,
  encodeMessage,
  MAX_MESSAGE_BYTES,
  receiveMessage,
  receiveMessageAsync,
  sendMessage,
} from "../../src/sandbox/messages.ts";
import {
  deviceProcessMessage,
  MAX_ERROR_TEXT,
  printableLine,
} from "../../src/devices/virtio/process/protocol.ts";

Deno.test("messages carry bigints and byte arrays through JSON", () => {
  const value = { features: 1n << 63n, config: Uint8Array.of(0, 1, 255), list: [1, "a"] };
  assert.deepEqual(decodeMessage(encodeMessage(value)), value);
});

Deno.test("one datagram is one message; a closed peer is `closed`", async () => {
  const [a, b] = socketpair(SOCK_SEQPACKET);
  try {
    sendMessage(a, { type: "ready" });
    sendMessage(a, { n: 2n });
    assert.deepEqual(receiveMessage(b), { kind: "message", value: { type: "ready" } });
    assert.deepEqual(await receiveMessageAsync(b), { kind: "message", value: { n: 2n } });
    close(a);
    assert.deepEqual(receiveMessage(b), { kind: "closed" });
  } finally {
    close(b);
  }
});

Deno.test("bytes that are not JSON, or a datagram over the limit, are `malformed`", async () => {
  const [a, b] = socketpair(SOCK_SEQPACKET);
  try {
    writeAll(a, new TextEncoder().encode("{"));
    assert.deepEqual(await receiveMessageAsync(b), { kind: "malformed" });
    writeAll(a, new TextEncoder().encode('{"$bigint":"x"}'));
    assert.deepEqual(receiveMessage(b), { kind: "malformed" });
    writeAll(a, new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(0x20));
    assert.deepEqual(await receiveMessageAsync(b), { kind: "malformed" });
    assert.throws(() => sendMessage(a, "x".repeat(MAX_MESSAGE_BYTES)), RangeError);
  } finally {
    close(a);
    close(b);
  }
});

Deno.test("a device process's messages are checked: only ready and exited, with a string error", () => {
  assert.deepEqual(deviceProcessMessage({ type: "ready" }), { type: "ready" });
  assert.deepEqual(deviceProcessMessage({ type: "exited" }), { type: "exited" });
  assert.deepEqual(deviceProcessMessage({ type: "exited", error: "disk gone" }), {
    type: "exited",
    error: "disk gone",
  });
  for (const bad of [null, 3, "ready", [], { type: "go" }, { type: "exited", error: 5 }]) {
    assert.equal(deviceProcessMessage(bad), undefined, JSON.stringify(bad));
  }
});

Deno.test("a device's text is shown as one printable line, cut to its limit", () => {
  assert.equal(printableLine("a\nb\u001b[31mc\u007f\u0085"), "a\\u000ab\\u001b[31mc\\u007f\\u0085");
  const long = printableLine("x".repeat(MAX_ERROR_TEXT * 2));
  assert.equal(long, `${"x".repeat(MAX_ERROR_TEXT)}…`);
  assert.equal(
    deviceProcessMessage({ type: "exited", error: "[INFO] vm ended: shutdown\nfake" })?.type,
    "exited",
  );
  assert.doesNotMatch(
    (deviceProcessMessage({ type: "exited", error: "ok\n[INFO] x" }) as { error: string }).error,
    /\n/,
  );
});
