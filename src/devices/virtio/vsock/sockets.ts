/**
 * The VMM's side of a vsock device. For the userspace device it makes the listening socket at
 * `uds-path` and opens that path's directory, which the device (jailed, opening nothing itself)
 * uses to reach `<uds-path>_P` for the guest's connections to host port P. For vhost-vsock it
 * opens the vhost device and sets the guest's CID on it, which is where the kernel refuses a CID
 * another VM has. Everything is closed, and the socket file removed, by the VM's cleanup stack.
 *
 * @module
 */

import type { VsockConfig } from "../../../config.ts";
import { UserError } from "../../../errors.ts";
import { SyscallError } from "../../../ffi/errno.ts";
import { errnoName } from "../../../ffi/errno.ts";
import {
  close,
  EFD_NONBLOCK,
  eventfd,
  O_CLOEXEC,
  O_DIRECTORY,
  O_PATH,
  O_RDWR,
  open,
} from "../../../ffi/libc.ts";
import { VHOST_VSOCK_DEVICE, VhostDevice } from "../../../ffi/vhost.ts";
import { connectStream, listenStream } from "../../../ffi/unix_socket.ts";
import { clearStaleSocket, isDenoError, SocketPathError } from "../../../socket_path.ts";
import type { VsockSpec } from "./device.ts";
import type { VhostVsockSpec } from "./vhost.ts";
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
 * The device's sockets (userspace) or vhost device (vhost-vsock) for `config`.
 * @throws VsockConfigError naming the CID, path or device and what is wrong
 */
export function openVsock(
  config: VsockConfig & { udsPath: string },
  cleanup: DisposableStack,
): VsockSpec;
export function openVsock(
  config: VsockConfig,
  cleanup: DisposableStack,
): VsockSpec | VhostVsockSpec;
export function openVsock(
  config: VsockConfig,
  cleanup: DisposableStack,
): VsockSpec | VhostVsockSpec {
  const { cid } = config;
  if (!Number.isInteger(cid) || cid < MIN_GUEST_CID || cid > MAX_GUEST_CID) {
    throw new VsockConfigError(`vsock: CID ${cid} is not ${MIN_GUEST_CID} to ${MAX_GUEST_CID}`);
  }
  return config.udsPath === undefined
    ? openVhostVsock(cid, config.vhostDevice ?? VHOST_VSOCK_DEVICE, cleanup)
    : openUnixSockets(cid, config.udsPath, cleanup);
}

function openUnixSockets(cid: number, udsPath: string, cleanup: DisposableStack): VsockSpec {
  const path = udsPath.startsWith("/") ? udsPath : `${Deno.cwd()}/${udsPath}`;
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash) || "/";
  const name = path.slice(slash + 1);
  const fail = (why: string) => new VsockConfigError(`vsock uds-path ${udsPath}: ${why}`);
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

/** The errno the kernel gives VHOST_VSOCK_SET_GUEST_CID for a CID another VM holds. */
const CID_IN_USE = "EADDRINUSE";

function openVhostVsock(cid: number, device: string, cleanup: DisposableStack): VhostVsockSpec {
  let fd: number;
  try {
    fd = open(device, O_RDWR | O_CLOEXEC);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    const hint = e.is("ENOENT")
      ? " (load vhost_vsock, or give uds-path=PATH for the userspace device)"
      : "";
    throw new VsockConfigError(
      `vsock: cannot open vhost-vsock device ${device}: ${errnoName(e.errno)}${hint}`,
    );
  }
  cleanup.defer(() => close(fd));
  try {
    new VhostDevice(fd).setGuestCid(BigInt(cid));
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    throw new VsockConfigError(
      e.is(CID_IN_USE)
        ? `vsock: CID ${cid} is in use by another VM on this host`
        : `vsock: ${device} refused CID ${cid} (VHOST_VSOCK_SET_GUEST_CID: ${errnoName(e.errno)})`,
    );
  }
  // Non-blocking: the runner drains them as it does its doorbells.
  const call = () => {
    const efd = eventfd(0, EFD_NONBLOCK);
    cleanup.defer(() => close(efd));
    return efd;
  };
  return { kind: "vhost-vsock", cid, vhostFd: fd, callFds: [call(), call()] };
}
