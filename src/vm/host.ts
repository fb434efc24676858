/**
 * The host resources a VM needs before anything is built, each failure said in one line: the KVM
 * device, and the kernel and initrd files.
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { SyscallError } from "../ffi/errno.ts";
import { Kvm } from "../ffi/kvm.ts";

/** A problem with the VM's configuration or host that the user can fix. */
export class VmSetupError extends UserError {}

/**
 * Opens the KVM device at `path`.
 * @throws VmSetupError saying why it cannot be used (missing, no permission, not KVM)
 */
export function openKvm(path: string): Kvm {
  try {
    return Kvm.open(path);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    if (e.is("ENOENT")) {
      throw new VmSetupError(
        `${path} does not exist: this host has no KVM (is the module loaded?)`,
      );
    }
    if (e.is("EACCES") || e.is("EPERM")) {
      throw new VmSetupError(`no permission to open ${path} (join the 'kvm' group or run as root)`);
    }
    if (e.is("ENOTTY") || e.is("EINVAL")) throw new VmSetupError(`${path} is not a KVM device`);
    throw new VmSetupError(`cannot open ${path}: ${e.message}`);
  }
}

/**
 * Reads the whole file at `path`; `what` names it in errors (`kernel`, `initrd`).
 * @throws VmSetupError for a missing, unreadable or directory path
 */
export async function readImage(what: string, path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new VmSetupError(`${what} ${path}: no such file`);
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new VmSetupError(`${what} ${path}: permission denied`);
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new VmSetupError(`${what} ${path}: is a directory`);
    }
    throw new VmSetupError(`${what} ${path}: cannot read it (${(e as Error).message})`);
  }
}
