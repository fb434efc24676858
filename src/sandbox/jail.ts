/**
 * The jail a device process runs in, built by bubblewrap (`bwrap`, Debian package bubblewrap):
 * new user, pid, mount, IPC, UTS, network and (where the kernel allows) cgroup namespaces, no
 * capabilities, a new session, death with its parent, and an empty read-only root that holds
 * only the files we bind into it read-only: the Deno runtime ({@link runtimeFiles}) and the
 * modules it runs. Start it with `spawnProcess` (`src/ffi/spawn.ts`) from the main thread:
 *
 * ```ts
 * spawnProcess(findBubblewrap(), ["bwrap", ...bubblewrapArgs(spec)], { fds, env: {} });
 * ```
 *
 * @module
 */

import { UserError } from "../errors.ts";

/** What runs in the jail and what it sees. */
export interface JailSpec {
  /** The program and its arguments, as seen inside, e.g. `[Deno.execPath(), "run", ...]`. */
  readonly command: readonly string[];
  /** Absolute host paths (files or directories) bound read-only at the same path inside. */
  readonly readOnlyPaths: readonly string[];
  /** Host directories bound read-only elsewhere inside: on the jail's /tmp, for example. */
  readonly readOnlyBinds?: readonly { readonly source: string; readonly target: string }[];
  /** The whole environment of the command (a Deno command needs {@link DENO_JAIL_ENV}). */
  readonly env: Readonly<Record<string, string>>;
}

/** The bubblewrap executable's name. */
const BUBBLEWRAP = "bwrap";
/** Where to look for bubblewrap when PATH is unset (the `confstr(_CS_PATH)` default). */
const DEFAULT_PATH = "/usr/bin:/bin";

/**
 * The environment a jailed `deno run` needs: a cache directory on the jail's private /tmp (Deno
 * will not start without one, and where it cannot write there it retries writing each transpiled
 * module with back-off, ~150 ms), and no update check (there is no network).
 */
export const DENO_JAIL_ENV: Readonly<Record<string, string>> = {
  DENO_DIR: "/tmp/deno",
  DENO_NO_UPDATE_CHECK: "1",
};

/**
 * The path of the bubblewrap executable, found on `searchPath` (default: PATH).
 * @throws UserError when it is not installed
 */
export function findBubblewrap(searchPath = Deno.env.get("PATH") ?? DEFAULT_PATH): string {
  for (const dir of searchPath.split(":")) {
    if (!dir.startsWith("/")) continue; // a relative PATH entry would depend on our cwd
    const candidate = `${dir}/${BUBBLEWRAP}`;
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new UserError(
    "bubblewrap (Debian package bubblewrap) is not installed; install it or run with --disable-sandbox",
  );
}

/** Whether `path` is a regular file with an execute bit. */
function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * The arguments after `bwrap` that jail `spec.command`: every namespace bubblewrap can make
 * (cgroup where possible), no capabilities (bubblewrap also sets no-new-privileges), a new
 * session (no access to our terminal), SIGKILL when we die, a private /proc (Deno.execPath reads
 * /proc/self/exe), an empty /tmp, each of `spec.readOnlyPaths` bound read-only (a path under
 * another one is already inside it and is left out) and `spec.readOnlyBinds` at their targets,
 * then the root itself read-only, the
 * environment replaced by `spec.env` and `/` as the working directory. There is no /dev: the
 * runtime starts without it.
 * @throws TypeError for a relative path
 */
export function bubblewrapArgs(spec: JailSpec): string[] {
  return [
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    // Mounts happen in order: /tmp first so a bind under it lands on the tmpfs, and the root
    // read-only last, once every bind has created its mount point.
    "--tmpfs",
    "/tmp",
    "--proc",
    "/proc",
    ...outermost(spec.readOnlyPaths).flatMap((path) => ["--ro-bind", path, path]),
    ...(spec.readOnlyBinds ?? []).flatMap(({ source, target }) => [
      "--ro-bind",
      normalized(source),
      normalized(target),
    ]),
    "--remount-ro",
    "/",
    "--clearenv",
    ...Object.entries(spec.env).flatMap(([name, value]) => ["--setenv", name, value]),
    "--chdir",
    "/",
    "--",
    ...spec.command,
  ];
}

/** `paths` without trailing slashes, sorted, without duplicates or paths inside another one. */
function outermost(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths.map(normalized))].sort();
  return sorted.filter((path) =>
    !sorted.some((other) => other !== path && (other === "/" || path.startsWith(`${other}/`)))
  );
}

/** An absolute path without trailing slashes. */
function normalized(path: string): string {
  if (!path.startsWith("/")) throw new TypeError(`a jail path must be absolute: ${path}`);
  const trimmed = path.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

/**
 * Every file the running Deno needs to start again: its executable, the ELF interpreter named
 * in the executable (e.g. /lib64/ld-linux-x86-64.so.2, at that path even where it is a symlink,
 * since the kernel opens it by that name) and each shared object mapped into this process (libc,
 * libm, libgcc_s, libdl, librt, libpthread, and whatever FFI has loaded, such as libseccomp).
 * Shared objects are named by their real paths, in a directory the dynamic linker searches by
 * default (/usr/lib/x86_64-linux-gnu on Debian), so the jail needs no /etc/ld.so.cache. A library
 * the jailed program opens by soname itself (`Deno.dlopen("libseccomp.so.2")`) also needs that
 * link: name it in `sonames`.
 */
export function runtimeFiles(sonames: readonly string[] = []): string[] {
  const executable = Deno.execPath();
  const interpreter = elfInterpreter(executable);
  const links = sonames.flatMap((soname) =>
    LIBRARY_DIRS.map((dir) => `${dir}/${soname}`).filter(exists)
  );
  return [
    ...new Set([
      executable,
      ...(interpreter ? [interpreter] : []),
      ...mappedSharedObjects(),
      ...links,
    ]),
  ];
}

/** The dynamic linker's default library directories on Debian x86_64 (multiarch). */
const LIBRARY_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"];

/** `/proc/self/maps`: one mapping a line, its path (if any) from the sixth column on. */
const MAPS_LINE = /^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\/.*)$/;
/** A shared object's file name: `name.so` or `name.so.1.2`. */
const SHARED_OBJECT = /\.so(\.\d+)*$/;
/** How `/proc/self/maps` marks a mapped file that has since been removed. */
const DELETED = " (deleted)";

/** The paths of the shared objects mapped into this process. */
function mappedSharedObjects(): string[] {
  const paths = Deno.readTextFileSync("/proc/self/maps").split("\n")
    .map((line) => MAPS_LINE.exec(line)?.[1])
    .filter((path): path is string =>
      path !== undefined && !path.endsWith(DELETED) && SHARED_OBJECT.test(path)
    );
  return [...new Set(paths)];
}

/** `<elf.h>`: the identification bytes `\x7fELF`. */
const ELF_MAGIC = 0x464c457f;
/** `<elf.h>`: `e_ident[EI_CLASS]` index and its 64-bit value `ELFCLASS64`. */
const EI_CLASS = 4;
const ELFCLASS64 = 2;
/** `<elf.h>` `Elf64_Ehdr`: its size and the program-header table's offset, entry size, count. */
const Elf64Ehdr = { SIZE: 64, E_PHOFF: 32, E_PHENTSIZE: 54, E_PHNUM: 56 } as const;
/** `<elf.h>` `Elf64_Phdr`: segment type, file offset and size. */
const Elf64Phdr = { P_TYPE: 0, P_OFFSET: 8, P_FILESZ: 32 } as const;
/** `<elf.h>` `p_type`: the segment holding the interpreter's path. */
const PT_INTERP = 3;

/** The interpreter path in an ELF executable's `PT_INTERP` segment; undefined for a static one. */
function elfInterpreter(path: string): string | undefined {
  using file = Deno.openSync(path);
  const header = readAt(file, 0, Elf64Ehdr.SIZE);
  if (header.getUint32(0, true) !== ELF_MAGIC || header.getUint8(EI_CLASS) !== ELFCLASS64) {
    throw new Error(`${path} is not a 64-bit ELF executable`);
  }
  const entrySize = header.getUint16(Elf64Ehdr.E_PHENTSIZE, true);
  const count = header.getUint16(Elf64Ehdr.E_PHNUM, true);
  const table = readAt(
    file,
    Number(header.getBigUint64(Elf64Ehdr.E_PHOFF, true)),
    entrySize * count,
  );
  for (let at = 0; at < table.byteLength; at += entrySize) {
    if (table.getUint32(at + Elf64Phdr.P_TYPE, true) !== PT_INTERP) continue;
    const offset = Number(table.getBigUint64(at + Elf64Phdr.P_OFFSET, true));
    const size = Number(table.getBigUint64(at + Elf64Phdr.P_FILESZ, true));
    const bytes = new Uint8Array(readAt(file, offset, size).buffer);
    const end = bytes.indexOf(0);
    return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
  }
  return undefined;
}

/** Exactly `length` bytes of `file` from `offset`. */
function readAt(file: Deno.FsFile, offset: number, length: number): DataView {
  const bytes = new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  for (let done = 0; done < length;) {
    const n = file.readSync(bytes.subarray(done));
    if (n === null) throw new Error(`unexpected end of file at ${offset + done}`);
    done += n;
  }
  return new DataView(bytes.buffer);
}

/** The kernel's cap on user namespaces per user (`user.max_user_namespaces`, Linux 4.9). */
const MAX_USER_NAMESPACES = "/proc/sys/user/max_user_namespaces";
/** Debian's and Ubuntu's switch for user namespaces made without privilege. */
const UNPRIVILEGED_USERNS_CLONE = "/proc/sys/kernel/unprivileged_userns_clone";
/** Present when the kernel has user namespaces (`CONFIG_USER_NS`). */
const OWN_USER_NAMESPACE = "/proc/self/ns/user";

/**
 * Checks that this process may create the user namespace the jail starts from.
 * @throws UserError naming the missing kernel feature or the sysctl that forbids it
 */
export function checkUserNamespaces(): void {
  const remedy = "enable it or run with --disable-sandbox";
  if (!exists(OWN_USER_NAMESPACE)) {
    throw new UserError(
      `the kernel has no user namespaces (no ${OWN_USER_NAMESPACE}: CONFIG_USER_NS); run with --disable-sandbox`,
    );
  }
  if (sysctl(MAX_USER_NAMESPACES) === "0") {
    throw new UserError(
      `user namespaces are disabled: ${MAX_USER_NAMESPACES} is 0 (sysctl user.max_user_namespaces); ${remedy}`,
    );
  }
  if (Deno.uid() !== 0 && sysctl(UNPRIVILEGED_USERNS_CLONE) === "0") {
    throw new UserError(
      `user namespaces need root here: ${UNPRIVILEGED_USERNS_CLONE} is 0 (sysctl kernel.unprivileged_userns_clone); ${remedy}`,
    );
  }
}

/** Whether `path` exists (a dangling symlink does not). */
function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A sysctl's value from its /proc/sys file, trimmed; undefined where the kernel has none. */
function sysctl(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Every process descended from `pid`, children before their own children. A child belongs to the
 * thread that spawned it, so every thread's children count. Processes that end meanwhile are
 * skipped.
 */
export function descendantPids(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    let children = "";
    try {
      for (const task of Deno.readDirSync(`/proc/${parent}/task`)) {
        children += ` ${Deno.readTextFileSync(`/proc/${parent}/task/${task.name}/children`)}`;
      }
    } catch {
      return; // it has gone meanwhile
    }
    for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}
