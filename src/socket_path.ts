/**
 * Listening Unix sockets at paths the user names (the control socket, vsock's `uds-path`): a
 * socket file left by a VM that died is replaced; anything else there is left alone.
 *
 * @module
 */

import { SyscallError } from "./ffi/errno.ts";
import { close } from "./ffi/libc.ts";

/** Why a socket path cannot be used (the caller names the path). */
export class SocketPathError extends Error {}

/**
 * Makes `path` free for a new listening socket: nothing is there, or a socket nobody listens on
 * any more, which is removed. `connect` is how to reach a live one (by the socket's type).
 * @throws SocketPathError when something that is not a socket is there, or a live socket
 */
export function clearStaleSocket(path: string, connect: (path: string) => number): void {
  const existing = lstat(path);
  if (existing === null) return;
  if (!existing.isSocket) throw new SocketPathError("exists and is not a socket");
  if (listening(path, connect)) throw new SocketPathError("a running VM listens there");
  Deno.removeSync(path);
}

/** Whether a file system call's error is one of Deno's (NotFound, PermissionDenied, …). */
export function isDenoError(e: unknown): boolean {
  return Object.values(Deno.errors).some((kind) => e instanceof kind);
}

/** `path`'s own status (not its target's), or null when nothing is there. */
export function lstat(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function listening(path: string, connect: (path: string) => number): boolean {
  try {
    close(connect(path));
    return true;
  } catch (e) {
    if (e instanceof SyscallError && e.is("ECONNREFUSED")) return false;
    throw e;
  }
}
