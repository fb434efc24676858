/**
 * The libc calls the VMM needs, opened with `Deno.dlopen`, with every failure
 * turned into a {@link SyscallError} that names the call and the errno.
 *
 * Each isolate (the main thread and every Worker) opens its own handle on first use.
 *
 * @module
 */

import { SyscallError } from "./errno.ts";
import { U32_RANGE } from "./struct.ts";

/** `open(2)` flags from `<asm-generic/fcntl.h>`. */
export const O_RDONLY = 0o0;
/** Open for writing only. */
export const O_WRONLY = 0o1;
/** Open for reading and writing. */
export const O_RDWR = 0o2;
/** Create the file if it does not exist. */
export const O_CREAT = 0o100;
/** Truncate the file to length 0. */
export const O_TRUNC = 0o1000;
/** Non-blocking I/O. */
export const O_NONBLOCK = 0o4000;
/** Close the descriptor on exec. */
export const O_CLOEXEC = 0o2000000;
/** Bypass the page cache (`<asm-generic/fcntl.h>`, x86 value). */
export const O_DIRECT = 0o40000;
/** `open(2)` flag: fail unless the path is a directory. */
export const O_DIRECTORY = 0o200000;
/** `open(2)` flag: a descriptor that names the file without opening it for I/O. */
export const O_PATH = 0o10000000;

/** `flock(2)` operations from `<sys/file.h>`: a shared lock. */
export const LOCK_SH = 1;
/** An exclusive lock. */
export const LOCK_EX = 2;
/** Fail with EWOULDBLOCK instead of waiting. */
export const LOCK_NB = 4;

/** `fallocate(2)` modes from `<linux/falloc.h>`: do not change the file size. */
export const FALLOC_FL_KEEP_SIZE = 0x01;
/** Deallocate the range (must be combined with FALLOC_FL_KEEP_SIZE). */
export const FALLOC_FL_PUNCH_HOLE = 0x02;
/** Make the range read as zeros, keeping it allocated. */
export const FALLOC_FL_ZERO_RANGE = 0x10;

/** `mmap(2)` protections and flags from `<asm-generic/mman-common.h>`. */
export const PROT_READ = 0x1;
/** Pages may be written. */
export const PROT_WRITE = 0x2;
/** Share the mapping with other mappers of the object. */
export const MAP_SHARED = 0x01;
/** Private copy-on-write mapping. */
export const MAP_PRIVATE = 0x02;
/** Place the mapping exactly at the given address, replacing what was there. */
export const MAP_FIXED = 0x10;
/** `madvise(2)`: back the range with transparent huge pages. */
export const MADV_HUGEPAGE = 14;
/** `madvise(2)` advice from `<bits/mman-linux.h>`: drop private pages; they read as zero again. */
export const MADV_DONTNEED = 4;
/** `madvise(2)` advice from `<bits/mman-linux.h>`: free a shared mapping's backing store. */
export const MADV_REMOVE = 9;
/** `mmap(2)` returns `(void *)-1` on failure. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** `eventfd(2)` flags from `<sys/eventfd.h>`. */
const EFD_CLOEXEC = O_CLOEXEC;
/** Non-blocking eventfd. */
export const EFD_NONBLOCK = O_NONBLOCK;
/** `memfd_create(2)` flag (`<linux/memfd.h>`): close on exec. */
export const MFD_CLOEXEC = 0x1;
/** `memfd_create(2)` flag: the memfd accepts seals (`fcntl(F_ADD_SEALS)`). */
export const MFD_ALLOW_SEALING = 0x2;
/** `fcntl(2)` command (`<linux/fcntl.h>`, `F_LINUX_SPECIFIC_BASE` + 9): add seals to a memfd. */
export const F_ADD_SEALS = 1033;
/** Seal (`<linux/fcntl.h>`): the file may not shrink. */
export const F_SEAL_SHRINK = 0x2;
/** Seal: the file may not grow. */
export const F_SEAL_GROW = 0x4;

/** `SIGKILL` from `<asm-generic/signal.h>`: ends a process; it cannot be caught. */
export const SIGKILL = 9;
/** `SIGUSR2` from `<asm-generic/signal.h>`: our vCPU kick signal (Deno's inspector owns SIGUSR1). */
export const SIGUSR2 = 12;

/**
 * `fcntl(2)` command from `<linux/fcntl.h>` (`F_LINUX_SPECIFIC_BASE` 1024 + 6): duplicate onto
 * the lowest free descriptor at or above the argument, close-on-exec.
 */
export const F_DUPFD_CLOEXEC = 1030;
/** `fcntl(2)` commands from `<asm-generic/fcntl.h>`: get and set the file status flags. */
export const F_GETFL = 3;
export const F_SETFL = 4;

/** `socket(2)` address family from `<bits/socket.h>`: local (Unix domain) sockets. */
export const AF_UNIX = 1;
/** `socket(2)` type from `<bits/socket_type.h>`: connected, reliable, message boundaries kept. */
export const SOCK_SEQPACKET = 5;
/** `socket(2)` type flag from `<bits/socket_type.h>`: close on exec (the value of O_CLOEXEC). */
export const SOCK_CLOEXEC = O_CLOEXEC;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl_val: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  ioctl_buf: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  mmap: { parameters: ["u64", "usize", "i32", "i32", "i32", "i64"], result: "u64" },
  munmap: { parameters: ["u64", "usize"], result: "i32" },
  madvise: { parameters: ["u64", "usize", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read_async: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write_async: {
    name: "write",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  preadv: { parameters: ["i32", "buffer", "i32", "i64"], result: "isize" },
  pwritev: { parameters: ["i32", "buffer", "i32", "i64"], result: "isize" },
  writev: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  fdatasync: { parameters: ["i32"], result: "i32" },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  getpid: { parameters: [], result: "i32" },
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // fcntl(2) is variadic; every command we use takes one int, passed in a register as if fixed.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect_async: {
    name: "connect",
    parameters: ["i32", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  accept4_async: {
    name: "accept4",
    parameters: ["i32", "pointer", "pointer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  timerfd_create: { parameters: ["i32", "i32"], result: "i32" },
  timerfd_settime: { parameters: ["i32", "i32", "buffer", "pointer"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  poll_async: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // posix_spawn(3) and its attribute and file-action objects: each returns an errno value.
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // glibc 2.34 and later; optional so that an older glibc still opens the rest of this table.
  posix_spawn_file_actions_addclosefrom_np: {
    parameters: ["buffer", "i32"],
    result: "i32",
    optional: true,
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  // syscall(2) is variadic; integer arguments travel in the same registers as fixed ones. Calls
  // with no glibc wrapper before 2.36: pidfd_open(pid, flags), pidfd_send_signal(pidfd, sig,
  // info, flags).
  syscall_pidfd_open: { name: "syscall", parameters: ["i64", "i64", "i64"], result: "i64" },
  syscall_pidfd_send_signal: {
    name: "syscall",
    parameters: ["i64", "i64", "i64", "pointer", "i64"],
    result: "i64",
  },
  // io_uring_setup(entries, params), io_uring_enter(fd, to_submit, min_complete, flags, sig,
  // sigsz), io_uring_register(fd, opcode, arg, nr_args): no glibc wrappers (src/ffi/io_uring.ts).
  syscall_io_uring_setup: { name: "syscall", parameters: ["i64", "u32", "buffer"], result: "i64" },
  syscall_io_uring_enter: {
    name: "syscall",
    parameters: ["i64", "i32", "u32", "u32", "u32", "pointer", "usize"],
    result: "i64",
  },
  syscall_io_uring_register: {
    name: "syscall",
    parameters: ["i64", "i32", "u32", "buffer", "u32"],
    result: "i64",
  },
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },
  waitid_async: {
    name: "waitid",
    parameters: ["i32", "u32", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const LIBC_SONAME = "libc.so.6";
let symbols: LibcSymbols | undefined;

/**
 * The raw libc symbols of this isolate. Prefer the checked wrappers. Each symbol is bound on its
 * first use: binding all of them at once costs every isolate some 6 ms (about 0.1 ms a symbol),
 * and a vCPU Worker uses a handful.
 */
export function libc(): LibcSymbols {
  symbols ??= lazySymbols();
  return symbols;
}

/**
 * Binds every symbol now. A process about to load a seccomp filter calls it first: binding a
 * symbol (`dlopen` and the runtime's bookkeeping, which may seed a hash with `getrandom`) must
 * not happen under a filter that allows none of it.
 */
export function bindAllLibcSymbols(): void {
  const table = libc();
  for (const name of Object.keys(SYMBOLS) as (keyof typeof SYMBOLS)[]) void table[name];
}

/** A table whose every property binds its symbol when first read, then holds it. */
function lazySymbols(): LibcSymbols {
  const table = {};
  for (const name of Object.keys(SYMBOLS) as (keyof typeof SYMBOLS)[]) {
    Object.defineProperty(table, name, {
      configurable: true,
      enumerable: true,
      get() {
        const bound = Deno.dlopen(LIBC_SONAME, { [name]: SYMBOLS[name] }).symbols[name];
        Object.defineProperty(table, name, { value: bound, enumerable: true });
        return bound;
      },
    });
  }
  return table as LibcSymbols;
}

/** Reads `errno` of the calling thread. Call it right after the failing call. */
export function errno(): number {
  const ptr = libc().__errno_location();
  return ptr === null ? 0 : new Deno.UnsafePointerView(ptr).getInt32(0);
}

/** The C library's description of an errno value. */
function strerror(code: number): string {
  const ptr = libc().strerror(code);
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
}

/** Builds the {@link SyscallError} for the errno the last call on this thread set. */
export function lastError(call: string): SyscallError {
  return syscallError(call, errno());
}

/** Builds the {@link SyscallError} for an errno value a call returned (the `posix_spawn` family). */
export function syscallError(call: string, code: number): SyscallError {
  return new SyscallError(call, code, strerror(code));
}

/** `result` of a call that sets errno, or its {@link SyscallError} when negative (`call` names it). */
export function check(result: number, call: () => string): number {
  if (result < 0) throw lastError(call());
  return result;
}

function checkBig(result: bigint, call: () => string): number {
  if (result < 0n) throw lastError(call());
  return Number(result);
}

const encoder = new TextEncoder();

/** A NUL-terminated copy of a string, for `const char *` parameters. */
export function cString(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** `open(2)`; returns the new descriptor. */
export function open(path: string, flags: number, mode = 0): number {
  return check(libc().open(cString(path), flags | O_CLOEXEC, mode), () => `open(${path})`);
}

/** `close(2)`. */
export function close(fd: number): void {
  check(libc().close(fd), () => `close(${fd})`);
}

/** `ioctl(2)` with an integer argument; returns the ioctl's non-negative result. */
export function ioctl(fd: number, request: number, arg: bigint = 0n, name = hex(request)): number {
  return check(libc().ioctl_val(fd, BigInt(request), arg), () => `ioctl(${name})`);
}

/** `ioctl(2)` with a pointer to `buf`; the kernel reads and/or writes the buffer in place. */
export function ioctlBuf(
  fd: number,
  request: number,
  buf: Uint8Array,
  name = hex(request),
): number {
  return check(libc().ioctl_buf(fd, BigInt(request), buf), () => `ioctl(${name})`);
}

/** `mmap(2)` of `length` bytes of `fd` at `offset`; returns the mapping's address. */
export function mmap(
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset = 0,
  address = 0n,
): bigint {
  const addr = libc().mmap(address, BigInt(length), prot, flags, fd, BigInt(offset));
  if (addr === MAP_FAILED) throw lastError(`mmap(fd ${fd}, ${length} bytes)`);
  return addr;
}

/** `munmap(2)`. */
export function munmap(address: bigint, length: number): void {
  check(libc().munmap(address, BigInt(length)), () => `munmap(${length} bytes)`);
}

/** `madvise(2)`. */
export function madvise(address: bigint, length: number, advice: number): void {
  check(libc().madvise(address, BigInt(length), advice), () => `madvise(${advice})`);
}

/** `eventfd(2)`; always close-on-exec. */
export function eventfd(initial = 0, flags = 0): number {
  return check(libc().eventfd(initial, flags | EFD_CLOEXEC), () => "eventfd");
}

/** `read(2)` into `buf`; returns the byte count (0 at end of file). */
export function read(fd: number, buf: Uint8Array): number {
  return checkBig(libc().read(fd, buf, BigInt(buf.length)), () => `read(${fd})`);
}

/**
 * `read(2)` on a libc worker thread, for descriptors that may block (pipes, terminals).
 * errno is not available for non-blocking FFI calls, so a failure reports the return value only.
 */
export async function readAsync(fd: number, buf: Uint8Array): Promise<number> {
  const n = await libc().read_async(fd, buf, BigInt(buf.length));
  if (n < 0n) throw new Error(`read(${fd}) failed`);
  return Number(n);
}

/** `write(2)` of the whole of `buf`, retrying short writes. */
export function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.length) {
    const rest = done === 0 ? buf : buf.subarray(done);
    done += checkBig(libc().write(fd, rest, BigInt(rest.length)), () => `write(${fd})`);
  }
}

/** `struct iovec` (`<bits/types/struct_iovec.h>`): `iov_base` and `iov_len`, 8 bytes each. */
export const IOVEC_WORDS = 2;

/**
 * Writes iovec `index` (`iov_base`, `iov_len`) into `halves`, the 32-bit halves of a
 * little-endian iovec array: filled from Numbers (a user address is below 2^47), no BigInt per
 * buffer on the I/O path.
 */
export function setIovec(halves: Uint32Array, index: number, base: number, length: number): void {
  const at = index * IOVEC_WORDS * 2;
  halves[at] = base % U32_RANGE;
  halves[at + 1] = Math.floor(base / U32_RANGE);
  halves[at + 2] = length;
  halves[at + 3] = 0;
}

/** `lseek(2)` whence: from the end (`<unistd.h>`). */
export const SEEK_END = 2;

/** `lseek(2)`: moves `fd`'s file offset; returns the new offset. */
export function lseek(fd: number, offset: number, whence: number): number {
  return checkBig(libc().lseek(fd, BigInt(offset), whence), () => `lseek(${fd})`);
}

/** `IOV_MAX` (`<limits.h>`): the most buffers one `preadv`/`pwritev` takes. */
export const IOV_MAX = 1024;

/**
 * `preadv(2)` into the `count` buffers described by `iovecs` (pairs of address and length),
 * from file offset `offset`; returns the byte count (short at end of file).
 */
export function preadv(fd: number, iovecs: BigUint64Array, count: number, offset: number): number {
  return checkBig(libc().preadv(fd, iovecs, count, BigInt(offset)), () => `preadv(${fd})`);
}

/** `pwritev(2)`: the write counterpart of {@link preadv}; returns the byte count. */
export function pwritev(fd: number, iovecs: BigUint64Array, count: number, offset: number): number {
  return checkBig(libc().pwritev(fd, iovecs, count, BigInt(offset)), () => `pwritev(${fd})`);
}

/** `writev(2)` of the `count` buffers described by `iovecs`; returns the byte count. */
export function writev(fd: number, iovecs: BigUint64Array, count: number): number {
  return checkBig(libc().writev(fd, iovecs, count), () => `writev(${fd})`);
}

/** `fdatasync(2)`: the file's data (and the metadata needed to read it) reaches the disk. */
export function fdatasync(fd: number): void {
  check(libc().fdatasync(fd), () => `fdatasync(${fd})`);
}

/** `fallocate(2)` with `mode` over `[offset, offset + length)`. */
export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  check(
    libc().fallocate(fd, mode, BigInt(offset), BigInt(length)),
    () => `fallocate(${fd}, 0x${mode.toString(16)})`,
  );
}

/** `flock(2)`. */
export function flock(fd: number, operation: number): void {
  check(libc().flock(fd, operation), () => `flock(${fd})`);
}

/** `pipe2(2)`; returns `[readEnd, writeEnd]`, both close-on-exec. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check(libc().pipe2(new Uint8Array(fds.buffer), O_CLOEXEC), () => "pipe2");
  return [fds[0], fds[1]];
}

/** `socketpair(2)` of `AF_UNIX` sockets of `type`; returns both ends, close-on-exec. */
export function socketpair(type: number): [number, number] {
  const fds = new Int32Array(2);
  check(
    libc().socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, new Uint8Array(fds.buffer)),
    () => "socketpair",
  );
  return [fds[0], fds[1]];
}

/**
 * `fcntl(fd, F_DUPFD_CLOEXEC, lowest)`: a close-on-exec duplicate of `fd` on the lowest free
 * descriptor at or above `lowest`.
 */
export function dupAtLeast(fd: number, lowest: number): number {
  return check(libc().fcntl(fd, F_DUPFD_CLOEXEC, lowest), () => `fcntl(${fd}, F_DUPFD_CLOEXEC)`);
}

/** Adds O_NONBLOCK to `fd`'s file status flags (shared with every descriptor of its open file). */
export function setNonBlocking(fd: number): void {
  const flags = check(libc().fcntl(fd, F_GETFL, 0), () => `fcntl(${fd}, F_GETFL)`);
  check(libc().fcntl(fd, F_SETFL, flags | O_NONBLOCK), () => `fcntl(${fd}, F_SETFL)`);
}

/** `ftruncate(2)`: `fd`'s file is now `size` bytes long. */
export function ftruncate(fd: number, size: number): void {
  check(libc().ftruncate(fd, BigInt(size)), () => `ftruncate(${fd}, ${size})`);
}

/** `memfd_create(2)`, sized with `ftruncate(2)`. */
export function memfdCreate(name: string, size: number): number {
  const flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  const fd = check(libc().memfd_create(cString(name), flags), () => "memfd_create");
  try {
    check(libc().ftruncate(fd, BigInt(size)), () => "ftruncate(memfd)");
    // Its size is fixed from here on: nobody it is shared with (a jailed device) can shrink it
    // under our mappings (a SIGBUS in the VMM) or grow it.
    check(libc().fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), () => "fcntl(F_ADD_SEALS)");
  } catch (e) {
    close(fd);
    throw e;
  }
  return fd;
}

/** `setrlimit(2)` resource (`<asm-generic/resource.h>`): the number of open descriptors. */
export const RLIMIT_NOFILE = 7;

/** `setrlimit(2)` with soft and hard limit both `limit` (`struct rlimit`: two u64). */
export function setrlimit(resource: number, limit: number): void {
  const rlimit = new BigUint64Array([BigInt(limit), BigInt(limit)]);
  check(libc().setrlimit(resource, new Uint8Array(rlimit.buffer)), () => `setrlimit(${resource})`);
}

/** `gettid(2)`: the kernel thread id of the calling thread (Worker). */
export function gettid(): number {
  return libc().gettid();
}

/** `getpid(2)`. */
function getpid(): number {
  return libc().getpid();
}

/** `tgkill(2)`: sends `signal` to one thread of this process. */
export function tgkill(tid: number, signal: number): void {
  check(libc().tgkill(getpid(), tid, signal), () => `tgkill(${tid})`);
}

/** A pointer-sized address as a `Deno.PointerValue`. */
export function pointer(address: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(address);
}

/** The address of a buffer's first byte (SharedArrayBuffer included). */
export function addressOf(buf: ArrayBufferLike | ArrayBufferView): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as BufferSource));
}

/** An `ArrayBuffer` over `length` bytes of native memory at `address` (for example an mmap). */
export function viewOf(address: bigint, length: number): ArrayBuffer {
  const ptr = pointer(address);
  if (ptr === null) throw new Error("viewOf: null address");
  return new Deno.UnsafePointerView(ptr).getArrayBuffer(length);
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
