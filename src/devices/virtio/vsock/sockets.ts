/**
 * The VMM's side of the userspace vsock: it makes the device's listening socket at `uds-path`
 * and opens that path's directory, which the device (jailed, opening nothing itself) uses to
 * reach `<uds-path>_P` for the guest's connections to host port P. Both are closed, and the
 * socket file removed, by the VM's cleanup stack.
 *
 * @module
 */

import type { VsockConfig } from "../../../config.ts";
import { UserError } from "../../../errors.ts";
import { SyscallError } from "../../../ffi/errno.ts";
import { close, O_CLOEXEC, O_DIRECTORY, O_PATH, open } from "../../../ffi/libc.ts";
import { connectStream, listenStream } from "../../../ffi/unix_socket.ts";
import { clearStaleSocket, isDenoError, SocketPathError } from "../../../socket_path.ts";
import type { VsockSpec } from "./device.ts";
import { MIN_GUEST_CID } from "./spec.ts";

/** The largest guest CID: 2^32 - 1 is VMADDR_CID_ANY (`<linux/vm_sockets.h>`). */
export const MAX_GUEST_CID = 0xffff_fffe;
/** Who may connect to the device's socket: its owner, as the control socket. */
const SOCKET_MODE = 0o600;
/**
 * The longest `uds-path` file name: the device reaches `<name>_<port>` as
 * `/proc/self/fd/<dir>/<name>_<port>`, which must fit `sun_path` (107 bytes and a NUL) with a
 * five-digit descriptor and a ten-digit port.
 */
export const MAX_PORT_PREFIX = 107 - "/proc/self/fd/".length - 5 - "/".length - "_".length - 10;

/** A vsock configuration that cannot work: one line. */
export class VsockConfigError extends UserError {}

/**
 * The device's sockets for `config`.
 * @throws VsockConfigError naming the CID or path and what is wrong
 */
export function openVsock(config: VsockConfig, cleanup: DisposableStack): VsockSpec {
  const { cid } = config;
  if (!Number.isInteger(cid) || cid < MIN_GUEST_CID || cid > MAX_GUEST_CID) {
    throw new VsockConfigError(`vsock: CID ${cid} is not ${MIN_GUEST_CID} to ${MAX_GUEST_CID}`);
  }
  const path = config.udsPath.startsWith("/") ? config.udsPath : `${Deno.cwd()}/${config.udsPath}`;
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash) || "/";
  const name = path.slice(slash + 1);
  const fail = (why: string) => new VsockConfigError(`vsock uds-path ${config.udsPath}: ${why}`);
  if (name === "") throw fail("names a directory, not a socket");
  if (new TextEncoder().encode(name).length > MAX_PORT_PREFIX) {
    throw fail(`its file name is longer than ${MAX_PORT_PREFIX} bytes`);
  }
  try {
    const dirFd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cleanup.defer(() => close(dirFd));
    clearStaleSocket(path, connectStream);
    const listenFd = listenStream(path, SOCKET_MODE);
    cleanup.defer(() => {
      close(listenFd);
      Deno.removeSync(path);
    });
    return { kind: "vsock", cid, listenFd, dirFd, portPrefix: name };
  } catch (e) {
    if (
      e instanceof SyscallError || e instanceof SocketPathError || e instanceof RangeError ||
      isDenoError(e)
    ) {
      throw fail((e as Error).message);
    }
    throw e;
  }
}
