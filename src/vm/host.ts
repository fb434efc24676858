/**
 * The host resources a VM needs before anything is built, each failure said in one line: the KVM
 * device, and the kernel and initrd files (opened here, read when the machine is built).
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { SyscallError } from "../ffi/errno.ts";
import { Kvm } from "../ffi/kvm.ts";
import type { BootImage } from "../arch/machine.ts";

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

/** A boot image open for reading; closing it is the caller's. */
export interface OpenBootImage extends BootImage {
  /** Closes the file. */
  close(): void;
}

/**
 * Opens the file at `path` as a boot image, read a part at a time where each part goes; `what`
 * names it in errors (`kernel`, `initrd`).
 * @throws VmSetupError for a missing, unreadable or directory path
 */
export function openImage(what: string, path: string): OpenBootImage {
  const fail = (why: string) => new VmSetupError(`${what} ${path}: ${why}`);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path);
  } catch (e) {
    throw fail(openFailure(e));
  }
  try {
    const info = file.statSync();
    if (info.isDirectory) throw fail("is a directory");
    return {
      path,
      size: info.size,
      read: (offset, into) => readFully(file, offset, into, fail),
      close: () => file.close(),
    };
  } catch (e) {
    file.close();
    throw e;
  }
}

/** Why a file would not open, in words. */
function openFailure(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return `cannot read it (${(e as Error).message})`;
}

/** Fills `into` from `offset` of `file`. @throws VmSetupError when the file ends first or fails */
function readFully(
  file: Deno.FsFile,
  offset: number,
  into: Uint8Array,
  fail: (why: string) => Error,
): void {
  file.seekSync(offset, Deno.SeekMode.Start);
  for (let done = 0; done < into.length;) {
    let n: number | null;
    try {
      n = file.readSync(into.subarray(done));
    } catch (e) {
      throw fail(`cannot read it (${(e as Error).message})`);
    }
    if (n === null) throw fail(`ends at byte ${offset + done}, shorter than it was`);
    done += n;
  }
}
