/**
 * Linux errno values (asm-generic/errno-base.h and asm-generic/errno.h) and the
 * error type every failed system call in this project throws.
 *
 * @module
 */

/** errno numbers by name, from `<asm-generic/errno-base.h>` and `<asm-generic/errno.h>`. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EPIPE: 32,
  ERANGE: 34,
  EDEADLK: 35,
  ENOSYS: 38,
  ENOTSOCK: 88,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
} as const;

/** A symbolic errno name such as `"EINVAL"`. */
export type ErrnoName = keyof typeof Errno;

const NAMES = new Map<number, ErrnoName>(
  Object.entries(Errno).map(([name, code]) => [code, name as ErrnoName]),
);

/** Returns the symbolic name of an errno value, or `errno N` for one we do not name. */
export function errnoName(code: number): string {
  return NAMES.get(code) ?? `errno ${code}`;
}

/** A failed system call: which call, on what, and the errno it set. */
export class SyscallError extends Error {
  /** The raw errno value. */
  readonly errno: number;
  /** The failing call, for example `ioctl(KVM_CREATE_VM)`. */
  readonly call: string;

  /**
   * The failure of `call` with `errno`.
   * @param call what was called, e.g. `open(/dev/kvm)`
   * @param errno the errno value read right after the call
   * @param description the C library's text for the errno, if known
   */
  constructor(call: string, errno: number, description?: string) {
    const suffix = description ? ` (${description})` : "";
    super(`${call} failed: ${errnoName(errno)}${suffix}`);
    this.name = "SyscallError";
    this.errno = errno;
    this.call = call;
  }

  /** True when this error carries the named errno. */
  is(name: ErrnoName): boolean {
    return this.errno === Errno[name];
  }
}
