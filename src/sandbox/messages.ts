/**
 * Messages between the VMM and a jailed process: one JSON document per datagram of a
 * SOCK_SEQPACKET socket (the socket keeps message boundaries), with the two kinds of value JSON
 * lacks tagged: a bigint as `{"$bigint": "<decimal>"}` and a Uint8Array as
 * `{"$bytes": "<base64>"}`.
 *
 * @module
 */

import { SyscallError } from "../ffi/errno.ts";
import { read, readAsync, writeAll } from "../ffi/libc.ts";

/**
 * The largest message either side sends (a device's start-up message with its seccomp rules). A
 * SOCK_SEQPACKET datagram must fit the socket's send buffer (`net.core.wmem_default`, 208 KiB by
 * default), so stay well below it.
 */
export const MAX_MESSAGE_BYTES = 128 * 1024;

/** What a receive gives: a message, the peer gone, or bytes that are not a message. */
export type Received =
  | { readonly kind: "message"; readonly value: unknown }
  | { readonly kind: "closed" }
  | { readonly kind: "malformed" };

const BIGINT_TAG = "$bigint";
const BYTES_TAG = "$bytes";

/** `value` as the bytes of one message. */
export function encodeMessage(value: unknown): Uint8Array {
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v === "bigint") return { [BIGINT_TAG]: v.toString() };
    if (v instanceof Uint8Array) return { [BYTES_TAG]: btoa(String.fromCharCode(...v)) };
    return v;
  });
  return new TextEncoder().encode(text);
}

/**
 * The value one message holds.
 * @throws SyntaxError for bytes that are not such a message
 */
export function decodeMessage(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes), (_key, v) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === BIGINT_TAG) return BigInt(v[BIGINT_TAG]);
      if (keys.length === 1 && keys[0] === BYTES_TAG) {
        return Uint8Array.from(atob(v[BYTES_TAG]), (c) => c.charCodeAt(0));
      }
    }
    return v;
  });
}

/** Sends `value` as one datagram on the SEQPACKET socket `fd`. */
export function sendMessage(fd: number, value: unknown): void {
  const bytes = encodeMessage(value);
  if (bytes.length > MAX_MESSAGE_BYTES) {
    throw new RangeError(`message of ${bytes.length} bytes: at most ${MAX_MESSAGE_BYTES}`);
  }
  writeAll(fd, bytes);
}

/**
 * Waits (blocking the thread) for the next datagram on `fd`. The peer is gone at end of file, or
 * at ECONNRESET when it closed its end with messages of ours still unread.
 */
export function receiveMessage(fd: number): Received {
  const buf = new Uint8Array(MAX_MESSAGE_BYTES + 1);
  let n: number;
  try {
    n = read(fd, buf);
  } catch (e) {
    if (e instanceof SyscallError && e.is("ECONNRESET")) return { kind: "closed" };
    throw e;
  }
  return received(buf, n);
}

/**
 * {@link receiveMessage} without blocking the event loop (the read runs on Deno's pool, where
 * errno cannot be read: any failed read counts as the peer gone). Never rejects.
 */
export async function receiveMessageAsync(fd: number): Promise<Received> {
  const buf = new Uint8Array(MAX_MESSAGE_BYTES + 1);
  return received(buf, await readAsync(fd, buf).catch(() => 0));
}

/** The datagram of `n` bytes in `buf`: too long (cut short by the read) or not JSON is malformed. */
function received(buf: Uint8Array, n: number): Received {
  if (n === 0) return { kind: "closed" };
  if (n > MAX_MESSAGE_BYTES) return { kind: "malformed" };
  try {
    return { kind: "message", value: decodeMessage(buf.subarray(0, n)) };
  } catch {
    return { kind: "malformed" };
  }
}
