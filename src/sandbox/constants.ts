/**
 * The named constants a seccomp policy may compare syscall arguments with, as minijail lets
 * policies write `arg2 in ~PROT_EXEC` or `arg0 & CLONE_THREAD`. Each value is the kernel's
 * (the raw syscall argument a filter sees, e.g. `O_LARGEFILE` is set on x86_64 even where glibc
 * defines it as 0), checked against the Linux and glibc headers by
 * `tests/sandbox/constants.test.ts`. errno names come from `src/ffi/errno.ts`.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { IORING_REGISTER_EVENTFD } from "../ffi/io_uring.ts";
import { TunIoctl } from "../ffi/tap.ts";
import { VhostIoctl } from "../ffi/vhost.ts";
import {
  AF_UNIX,
  EFD_NONBLOCK,
  F_ADD_SEALS,
  F_DUPFD_CLOEXEC,
  F_GETFL,
  F_SEAL_GROW,
  F_SEAL_SHRINK,
  F_SETFL,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  MADV_HUGEPAGE,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECT,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  PROT_READ,
  PROT_WRITE,
  SIGKILL,
  SIGUSR2,
  SOCK_SEQPACKET,
} from "../ffi/libc.ts";

/** `clone(2)` flags and `sched_setscheduler(2)` policies, `<linux/sched.h>`. */
export const SCHED_CONSTANTS = {
  CLONE_VM: 0x100,
  CLONE_FS: 0x200,
  CLONE_FILES: 0x400,
  CLONE_SIGHAND: 0x800,
  CLONE_PIDFD: 0x1000,
  CLONE_PTRACE: 0x2000,
  CLONE_VFORK: 0x4000,
  CLONE_PARENT: 0x8000,
  CLONE_THREAD: 0x1_0000,
  CLONE_NEWNS: 0x2_0000,
  CLONE_SYSVSEM: 0x4_0000,
  CLONE_SETTLS: 0x8_0000,
  CLONE_PARENT_SETTID: 0x10_0000,
  CLONE_CHILD_CLEARTID: 0x20_0000,
  CLONE_DETACHED: 0x40_0000,
  CLONE_UNTRACED: 0x80_0000,
  CLONE_CHILD_SETTID: 0x100_0000,
  CLONE_NEWCGROUP: 0x200_0000,
  CLONE_NEWUTS: 0x400_0000,
  CLONE_NEWIPC: 0x800_0000,
  CLONE_NEWUSER: 0x1000_0000,
  CLONE_NEWPID: 0x2000_0000,
  CLONE_NEWNET: 0x4000_0000,
  CLONE_IO: 0x8000_0000,
  SCHED_NORMAL: 0,
  SCHED_FIFO: 1,
  SCHED_RR: 2,
  SCHED_BATCH: 3,
  SCHED_IDLE: 5,
} as const;

/** `mmap(2)`, `mprotect(2)` and `madvise(2)` numbers, `<linux/mman.h>` (asm-generic). */
export const MMAN_CONSTANTS = {
  PROT_NONE: 0x0,
  PROT_READ,
  PROT_WRITE,
  PROT_EXEC: 0x4,
  MAP_SHARED,
  MAP_PRIVATE,
  MAP_SHARED_VALIDATE: 0x03,
  MAP_FIXED,
  MAP_ANONYMOUS: 0x20,
  MAP_GROWSDOWN: 0x100,
  MAP_NORESERVE: 0x4000,
  MAP_POPULATE: 0x8000,
  MAP_NONBLOCK: 0x1_0000,
  MAP_STACK: 0x2_0000,
  MAP_HUGETLB: 0x4_0000,
  MAP_FIXED_NOREPLACE: 0x10_0000,
  MADV_NORMAL: 0,
  MADV_RANDOM: 1,
  MADV_SEQUENTIAL: 2,
  MADV_WILLNEED: 3,
  MADV_DONTNEED: 4,
  MADV_FREE: 8,
  MADV_REMOVE: 9,
  MADV_DONTFORK: 10,
  MADV_DOFORK: 11,
  MADV_MERGEABLE: 12,
  MADV_UNMERGEABLE: 13,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE: 15,
  MADV_DONTDUMP: 16,
  MADV_DODUMP: 17,
} as const;

/** `futex(2)` operations, `<linux/futex.h>`. */
export const FUTEX_CONSTANTS = {
  FUTEX_WAIT: 0,
  FUTEX_WAKE: 1,
  FUTEX_REQUEUE: 3,
  FUTEX_CMP_REQUEUE: 4,
  FUTEX_WAKE_OP: 5,
  FUTEX_WAIT_BITSET: 9,
  FUTEX_WAKE_BITSET: 10,
  FUTEX_PRIVATE_FLAG: 128,
  FUTEX_CLOCK_REALTIME: 256,
  FUTEX_WAIT_PRIVATE: 128,
  FUTEX_WAKE_PRIVATE: 129,
  FUTEX_REQUEUE_PRIVATE: 131,
  FUTEX_CMP_REQUEUE_PRIVATE: 132,
  FUTEX_WAKE_OP_PRIVATE: 133,
  FUTEX_WAIT_BITSET_PRIVATE: 137,
  FUTEX_WAKE_BITSET_PRIVATE: 138,
} as const;

/** `O_DSYNC`: data integrity on every write (part of `O_SYNC`). */
const O_DSYNC = 0o1_0000;
/** `O_DIRECTORY`: fail unless a directory (part of `O_TMPFILE`). */
const O_DIRECTORY = 0o20_0000;
/** `__O_SYNC`: the bit `O_SYNC` adds to `O_DSYNC`. */
const O_SYNC_BIT = 0o400_0000;
/** `__O_TMPFILE`: the bit `O_TMPFILE` adds to `O_DIRECTORY`. */
const O_TMPFILE_BIT = 0o2000_0000;

/** `fcntl(2)` commands and `open(2)` flags, `<linux/fcntl.h>` (x86_64 asm-generic values). */
export const FCNTL_CONSTANTS = {
  F_DUPFD: 0,
  F_GETFD: 1,
  F_SETFD: 2,
  F_GETFL,
  F_SETFL,
  F_GETLK: 5,
  F_SETLK: 6,
  F_SETLKW: 7,
  F_DUPFD_CLOEXEC,
  F_ADD_SEALS,
  F_GET_SEALS: 1034,
  F_SEAL_SHRINK,
  F_SEAL_GROW,
  FD_CLOEXEC: 1,
  O_RDONLY,
  O_WRONLY,
  O_RDWR,
  O_CREAT,
  O_EXCL: 0o200,
  O_NOCTTY: 0o400,
  O_TRUNC,
  O_APPEND: 0o2000,
  O_NONBLOCK,
  O_DSYNC,
  O_DIRECT,
  O_LARGEFILE: 0o10_0000,
  O_DIRECTORY,
  O_NOFOLLOW: 0o40_0000,
  O_NOATIME: 0o100_0000,
  O_CLOEXEC,
  O_SYNC: O_SYNC_BIT | O_DSYNC,
  O_PATH: 0o1000_0000,
  O_TMPFILE: O_TMPFILE_BIT | O_DIRECTORY,
} as const;

/** `fallocate(2)` modes, `<linux/falloc.h>`. */
export const FALLOC_CONSTANTS = {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_COLLAPSE_RANGE: 0x08,
  FALLOC_FL_ZERO_RANGE,
  FALLOC_FL_INSERT_RANGE: 0x20,
  FALLOC_FL_UNSHARE_RANGE: 0x40,
} as const;

/** `io_uring_register(2)` opcodes, `<linux/io_uring.h>`. */
export const IO_URING_CONSTANTS = {
  IORING_REGISTER_EVENTFD,
  IORING_UNREGISTER_EVENTFD: 5,
} as const;

/** `ioctl(2)` requests on files and terminals, `<asm-generic/ioctls.h>`. */
export const IOCTL_CONSTANTS = {
  TCGETS: 0x5401,
  TCSETS: 0x5402,
  TCGETS2: 0x802c_542a,
  TCSETS2: 0x402c_542b,
  FIONREAD: 0x541b,
  FIONBIO: 0x5421,
  FIONCLEX: 0x5450,
  FIOCLEX: 0x5451,
} as const;

/** File system `ioctl(2)` requests, `<linux/fs.h>` (`_IOR`/`_IOW('X', n, struct fsxattr)`). */
export const FS_CONSTANTS = {
  FS_IOC_FSGETXATTR: 0x801c_581f,
  FS_IOC_FSSETXATTR: 0x401c_5820,
} as const;

/** TUN/TAP `ioctl(2)` requests, `<linux/if_tun.h>` (`_IOW('T', n, ...)`). */
export const TUN_CONSTANTS = {
  TUNSETIFF: TunIoctl.TUNSETIFF,
  TUNSETOFFLOAD: TunIoctl.TUNSETOFFLOAD,
  TUNSETQUEUE: TunIoctl.TUNSETQUEUE,
  TUNSETVNETHDRSZ: TunIoctl.TUNSETVNETHDRSZ,
  TUNGETIFF: TunIoctl.TUNGETIFF,
} as const;

/** vhost `ioctl(2)` requests, `<linux/vhost.h>` (`_IO*(VHOST_VIRTIO, n, ...)`). */
export const VHOST_CONSTANTS = { ...VhostIoctl } as const;

/** Socket families, types and message flags, `<sys/socket.h>` (glibc, the kernel's values). */
export const SOCKET_CONSTANTS = {
  AF_UNIX,
  AF_INET: 2,
  AF_INET6: 10,
  AF_NETLINK: 16,
  AF_VSOCK: 40,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_RAW: 3,
  SOCK_SEQPACKET,
  SOCK_NONBLOCK: O_NONBLOCK,
  SOCK_CLOEXEC: O_CLOEXEC,
  MSG_OOB: 0x1,
  MSG_PEEK: 0x2,
  MSG_CTRUNC: 0x8,
  MSG_TRUNC: 0x20,
  MSG_DONTWAIT: 0x40,
  MSG_WAITALL: 0x100,
  MSG_NOSIGNAL: 0x4000,
  MSG_CMSG_CLOEXEC: 0x4000_0000,
} as const;

/** `eventfd(2)` flags, `<sys/eventfd.h>`. */
export const EVENTFD_CONSTANTS = {
  EFD_SEMAPHORE: 1,
  EFD_CLOEXEC: O_CLOEXEC,
  EFD_NONBLOCK,
} as const;

/** `memfd_create(2)` flags, `<linux/memfd.h>`. */
export const MEMFD_CONSTANTS = {
  MFD_CLOEXEC,
  MFD_ALLOW_SEALING,
} as const;

/** Signal numbers, `<signal.h>` (x86_64). */
export const SIGNAL_CONSTANTS = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGKILL,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGSYS: 31,
} as const;

/** The name of signal `signal` (`SIGSYS`), or `signal N` for one without a name here. */
export function signalName(signal: number): string {
  const found = Object.entries(SIGNAL_CONSTANTS).find(([, value]) => value === signal);
  return found?.[0] ?? `signal ${signal}`;
}

/** `prctl(2)` options, `<linux/prctl.h>`. */
export const PRCTL_CONSTANTS = {
  PR_SET_PDEATHSIG: 1,
  PR_SET_NAME: 15,
  PR_GET_NAME: 16,
  PR_SET_SECCOMP: 22,
  PR_GET_SECUREBITS: 27,
  PR_SET_SECUREBITS: 28,
  PR_SET_NO_NEW_PRIVS: 38,
  PR_SET_VMA: 0x5356_4d41,
} as const;

/**
 * Every name a policy may use as a value, with its value: the groups above and the errno names
 * (which `return` takes, as minijail's do).
 */
export const POLICY_CONSTANTS: Readonly<Record<string, number>> = {
  ...SCHED_CONSTANTS,
  ...MMAN_CONSTANTS,
  ...FUTEX_CONSTANTS,
  ...FCNTL_CONSTANTS,
  ...FALLOC_CONSTANTS,
  ...IO_URING_CONSTANTS,
  ...IOCTL_CONSTANTS,
  ...FS_CONSTANTS,
  ...TUN_CONSTANTS,
  ...VHOST_CONSTANTS,
  ...SOCKET_CONSTANTS,
  ...EVENTFD_CONSTANTS,
  ...MEMFD_CONSTANTS,
  ...SIGNAL_CONSTANTS,
  ...PRCTL_CONSTANTS,
  ...Errno,
};
