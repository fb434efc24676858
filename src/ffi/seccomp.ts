/**
 * libseccomp (Debian `libseccomp2`) through `Deno.dlopen`: the filter context calls, syscall
 * name resolution, and the `<seccomp.h>` numbers they take.
 *
 * The library is opened on first use, so a host without it fails only when a sandbox is asked
 * for, with a {@link UserError} saying what to install. Only non-variadic entry points are bound
 * (`seccomp_rule_add` is variadic; `seccomp_rule_add_array` takes the same comparisons as an
 * array of {@link SCMP_ARG_CMP}).
 *
 * @module
 */

import { UserError } from "../errors.ts";
import type { StructLayout } from "./kvm_abi.ts";

/** `SCMP_ACT_KILL_PROCESS` (`<seccomp.h>`): kill the whole process (it dies of SIGSYS). */
export const SCMP_ACT_KILL_PROCESS = 0x8000_0000;
/** `SCMP_ACT_LOG` (`<seccomp.h>`): allow the call and log it to the kernel's audit log. */
export const SCMP_ACT_LOG = 0x7ffc_0000;
/** `SCMP_ACT_ALLOW` (`<seccomp.h>`): allow the call. */
export const SCMP_ACT_ALLOW = 0x7fff_0000;
/** The action word of `SCMP_ACT_ERRNO(x)` (`<seccomp.h>`), before the errno is or-ed in. */
export const SCMP_ACT_ERRNO_BASE = 0x0005_0000;
/** `SCMP_ACT_ERRNO(x)` keeps the low 16 bits of `x` (`<seccomp.h>`). */
export const SCMP_ACT_ERRNO_MASK = 0xffff;

/** `SCMP_ACT_ERRNO(errno)` (`<seccomp.h>`): fail the call with `errno`, without running it. */
export function scmpActErrno(errno: number): number {
  return SCMP_ACT_ERRNO_BASE | (errno & SCMP_ACT_ERRNO_MASK);
}

/** `enum scmp_compare` (`<seccomp.h>`): argument != datum_a. */
export const SCMP_CMP_NE = 1;
/** argument < datum_a (unsigned). */
export const SCMP_CMP_LT = 2;
/** argument <= datum_a (unsigned). */
export const SCMP_CMP_LE = 3;
/** argument == datum_a. */
export const SCMP_CMP_EQ = 4;
/** argument >= datum_a (unsigned). */
export const SCMP_CMP_GE = 5;
/** argument > datum_a (unsigned). */
export const SCMP_CMP_GT = 6;
/** (argument & datum_a) == datum_b. */
export const SCMP_CMP_MASKED_EQ = 7;

/** `enum scmp_filter_attr` (`<seccomp.h>`): the action for a call from another architecture. */
export const SCMP_FLTATR_ACT_BADARCH = 2;
/** Load the filter into every thread of the process at once (seccomp's TSYNC flag). */
export const SCMP_FLTATR_CTL_TSYNC = 4;

/** `SCMP_ARCH_NATIVE` (`<seccomp.h>`): the architecture libseccomp was built for. */
export const SCMP_ARCH_NATIVE = 0;
/** `__NR_SCMP_ERROR` (`<seccomp.h>`): what name resolution returns for an unknown syscall. */
export const NR_SCMP_ERROR = -1;

/** `struct scmp_arg_cmp` (`<seccomp.h>`): one argument comparison of a rule. */
export const SCMP_ARG_CMP = {
  name: "scmp_arg_cmp",
  size: 24,
  fields: { arg: 0, op: 4, datum_a: 8, datum_b: 16 },
} as const satisfies StructLayout;

/** What to tell a user whose host lacks the library. */
const NOT_INSTALLED =
  "libseccomp (Debian package libseccomp2) is not installed; install it or run with --disable-sandbox";

/**
 * The shared object's name with its ABI version, as Debian's libseccomp2 installs it: the soname
 * `Deno.dlopen` opens (the dynamic linker finds it in its default directories).
 */
export const LIBSECCOMP_SONAME = "libseccomp.so.2";

const SYMBOLS = {
  seccomp_init: { parameters: ["u32"], result: "pointer" },
  seccomp_release: { parameters: ["pointer"], result: "void" },
  seccomp_attr_set: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  seccomp_rule_add_array: {
    parameters: ["pointer", "u32", "i32", "u32", "buffer"],
    result: "i32",
  },
  seccomp_load: { parameters: ["pointer"], result: "i32" },
  seccomp_syscall_resolve_name: { parameters: ["buffer"], result: "i32" },
  seccomp_syscall_resolve_num_arch: { parameters: ["u32", "i32"], result: "pointer" },
  // libseccomp's dependency libc, found through the library's handle: frees resolved names.
  free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

type SeccompSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/**
 * The raw libseccomp symbols of this isolate, opened on first use.
 * @throws UserError when libseccomp cannot be opened
 */
export function libseccomp(): SeccompSymbols {
  if (lib === undefined) {
    try {
      lib = Deno.dlopen(LIBSECCOMP_SONAME, SYMBOLS);
    } catch (cause) {
      const error = new UserError(NOT_INSTALLED);
      error.cause = cause;
      throw error;
    }
  }
  return lib.symbols;
}

const encoder = new TextEncoder();

/**
 * The native syscall number of `name`, or `undefined` when the native architecture (x86_64)
 * has no such syscall. libseccomp answers names of other architectures' syscalls with negative
 * pseudo numbers; those count as unknown here.
 */
export function resolveSyscallName(name: string): number | undefined {
  const bytes = encoder.encode(name);
  const cName = new Uint8Array(bytes.length + 1);
  cName.set(bytes);
  const nr = libseccomp().seccomp_syscall_resolve_name(cName);
  // NR_SCMP_ERROR (-1) for an unknown name, below it a pseudo number of another architecture.
  return nr < 0 ? undefined : nr;
}

/** The name of native syscall `nr`, or `undefined` when libseccomp knows no such number. */
export function resolveSyscallNumber(nr: number): string | undefined {
  const symbols = libseccomp();
  const ptr = symbols.seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  if (ptr === null) return undefined;
  try {
    return Deno.UnsafePointerView.getCString(ptr);
  } finally {
    symbols.free(ptr);
  }
}
