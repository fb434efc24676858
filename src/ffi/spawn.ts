/**
 * Starting a program as a child process that gets exactly the descriptors we choose, and
 * reaping it without blocking the event loop: `posix_spawn(3)` (Deno cannot fork), a pidfd
 * (`pidfd_open(2)`) to signal it and `waitid(2)` on Deno's blocking pool to learn how it ended.
 * Where no pidfd can be had (a kernel before 5.3, or no descriptor left), the child is signalled
 * and reaped by its pid, which is as safe for our own child: its pid cannot be reused before we
 * reap it.
 *
 * glibc's `posix_spawn` clones with `CLONE_VM | CLONE_VFORK`, which is safe from a process with
 * many threads: nothing of ours runs in the child before it executes the program. Needs Linux 5.4
 * (`waitid` on a pidfd) and glibc 2.34 (`posix_spawn_file_actions_addclosefrom_np`).
 *
 * @module
 */

import { SyscallError } from "./errno.ts";
import {
  addressOf,
  close,
  cString,
  dupAtLeast,
  lastError,
  libc,
  SIGKILL,
  syscallError,
} from "./libc.ts";

/** `posix_spawnattr_setflags(3)` flag from `<spawn.h>`: reset the signals in the set to SIG_DFL. */
export const POSIX_SPAWN_SETSIGDEF = 0x04;
/** `posix_spawnattr_setflags(3)` flag from `<spawn.h>`: give the child the attribute's mask. */
export const POSIX_SPAWN_SETSIGMASK = 0x08;

/** `sizeof(posix_spawn_file_actions_t)` from glibc's `<spawn.h>` (x86_64). */
export const POSIX_SPAWN_FILE_ACTIONS_SIZE = 80;
/** `sizeof(posix_spawnattr_t)` from glibc's `<spawn.h>` (x86_64). */
export const POSIX_SPAWNATTR_SIZE = 336;
/** `sizeof(sigset_t)` from glibc's `<bits/types/__sigset_t.h>`: 1024 signal bits. */
export const SIGSET_SIZE = 128;

/** `STDERR_FILENO` + 1 (`<unistd.h>`): the child's first chosen descriptor. */
export const FIRST_CHILD_FD = 3;
/**
 * Sources are first copied to descriptors at or above this, and above every target, so that no
 * `dup2` onto a target closes a source still to be copied.
 */
const MOVED_FD_FLOOR = 100;

/** `__NR_pidfd_send_signal` from `<asm/unistd_64.h>` (Linux 5.1). */
export const SYS_pidfd_send_signal = 424;
/** `__NR_pidfd_open` from `<asm/unistd_64.h>` (Linux 5.3). */
export const SYS_pidfd_open = 434;

/** `waitid(2)` id types from `<linux/wait.h>`: the id is a pid; a pidfd (Linux 5.4). */
export const P_PID = 1;
export const P_PIDFD = 3;
/** `waitid(2)` option from `<linux/wait.h>`: return immediately if no child has changed state. */
export const WNOHANG = 0x1;
/** `waitid(2)` option from `<linux/wait.h>`: wait for children that have ended. */
export const WEXITED = 0x4;

/** `sizeof(siginfo_t)` from `<asm-generic/siginfo.h>` (`SI_MAX_SIZE`). */
export const SIGINFO_SIZE = 128;
/** `offsetof(siginfo_t, si_pid)` (x86_64): 0 after `WNOHANG` when no child had ended. */
export const SIGINFO_PID = 16;
/** `offsetof(siginfo_t, si_code)` (x86_64): how the child changed state (`CLD_*`). */
export const SIGINFO_CODE = 8;
/** `offsetof(siginfo_t, si_status)` (x86_64): the exit code, or the signal that ended it. */
export const SIGINFO_STATUS = 24;

/** `si_code` from `<asm-generic/siginfo.h>`: the child called `exit`. */
export const CLD_EXITED = 1;
/** `si_code` from `<asm-generic/siginfo.h>`: the child was killed by a signal. */
export const CLD_KILLED = 2;
/** `si_code` from `<asm-generic/siginfo.h>`: the child was killed by a signal and dumped core. */
export const CLD_DUMPED = 3;

/** What the child gets besides its argv. */
export interface SpawnOptions {
  /** Parent descriptors to hand over: `fds[i]` becomes the child's descriptor `3 + i`. */
  readonly fds: readonly number[];
  /** The child's whole environment (nothing of ours is inherited). */
  readonly env: Readonly<Record<string, string>>;
  /** Parent descriptors to become the child's 0, 1 and 2 (default: ours). */
  readonly stdio?: readonly [number, number, number];
}

/** How a child ended: exactly one of `code` and `signal` is set. */
export interface ChildExit {
  /** The exit status it passed to `exit`, or null when a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it, or null when it exited. */
  readonly signal: number | null;
}

/** A process started by {@link spawnProcess}. */
export interface ChildProcess {
  /** Its process id (in our pid namespace). */
  readonly pid: number;
  /** A pidfd that refers to it (close-on-exec) until {@link close}; null where none could be had. */
  readonly pidfd: number | null;
  /** Resolves once, when the child ends; the child is reaped by then. */
  readonly exited: Promise<ChildExit>;
  /**
   * Sends `signal` (default SIGKILL) through the pidfd (`pidfd_send_signal(2)`, or `kill(2)`
   * without one); does nothing once the child has ended.
   */
  kill(signal?: number): void;
  /** Closes the pidfd: at once if the child has ended, otherwise as soon as it ends. */
  close(): void;
}

/**
 * Starts `path` with `argv` (`argv[0]` included) and `options.env` as its whole environment. The
 * child gets `options.stdio` (or our own 0, 1 and 2) as descriptors 0–2, `options.fds[i]` as
 * descriptor `3 + i` and no other descriptor of ours; every signal starts at its default disposition, none blocked.
 *
 * Call it from the main thread: a child asking for a parent-death signal (`PR_SET_PDEATHSIG`, as
 * bubblewrap's `--die-with-parent` does) gets it when the *thread* that spawned it ends, so a
 * Worker's child would be killed with its Worker.
 *
 * @throws SyscallError naming `posix_spawn(path)` when the program cannot be started (ENOENT for
 * a missing one, EACCES for one that is not executable), or the failing call before it
 */
export function spawnProcess(
  path: string,
  argv: readonly string[],
  options: SpawnOptions,
): ChildProcess {
  const moved: number[] = [];
  try {
    const lowest = Math.max(MOVED_FD_FLOOR, FIRST_CHILD_FD + options.fds.length);
    for (const fd of [...options.stdio ?? [], ...options.fds]) moved.push(dupAtLeast(fd, lowest));
    const firstTarget = options.stdio === undefined ? FIRST_CHILD_FD : 0;
    const pid = posixSpawn(path, argv, environment(options.env), moved, firstTarget);
    return new SpawnedChild(pid, pidfdOpen(pid));
  } finally {
    for (const fd of moved) close(fd);
  }
}

/** `KEY=value` strings for `envp`. */
function environment(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([key, value]) => {
    if (key === "" || key.includes("=")) throw new TypeError(`bad environment name: ${key}`);
    return `${key}=${value}`;
  });
}

/** A NULL-terminated `char *[]` over C copies of `strings`, which it keeps alive. */
class CStringArray {
  readonly #strings: Uint8Array[];
  /** The pointer array's bytes, to pass as a `buffer` parameter. */
  readonly bytes: Uint8Array;

  constructor(strings: readonly string[]) {
    this.#strings = strings.map((s) => {
      if (s.includes("\0")) throw new TypeError(`NUL in a spawn argument: ${JSON.stringify(s)}`);
      return cString(s);
    });
    const pointers = new BigUint64Array(this.#strings.length + 1);
    this.#strings.forEach((s, i) => pointers[i] = addressOf(s));
    this.bytes = new Uint8Array(pointers.buffer);
  }
}

/** Throws for a nonzero errno value returned by a `posix_spawn*` call. */
function checkReturned(code: number, call: string): void {
  if (code !== 0) throw syscallError(call, code);
}

/** `posix_spawn` with `moved[i]` duplicated onto `3 + i` and every higher descriptor closed. */
function posixSpawn(
  path: string,
  argv: readonly string[],
  envp: readonly string[],
  moved: readonly number[],
  firstTarget: number,
): number {
  const c = libc();
  const closeFrom = c.posix_spawn_file_actions_addclosefrom_np;
  if (closeFrom === null) {
    throw new Error("posix_spawn_file_actions_addclosefrom_np is missing: glibc 2.34 is needed");
  }
  const actions = new Uint8Array(POSIX_SPAWN_FILE_ACTIONS_SIZE);
  checkReturned(c.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
  const attr = new Uint8Array(POSIX_SPAWNATTR_SIZE);
  try {
    moved.forEach((fd, i) =>
      checkReturned(
        c.posix_spawn_file_actions_adddup2(actions, fd, firstTarget + i),
        `posix_spawn_file_actions_adddup2(${fd}, ${firstTarget + i})`,
      )
    );
    checkReturned(
      closeFrom(actions, firstTarget + moved.length),
      "posix_spawn_file_actions_addclosefrom_np",
    );
    checkReturned(c.posix_spawnattr_init(attr), "posix_spawnattr_init");
    const everySignal = new Uint8Array(SIGSET_SIZE);
    const noSignal = new Uint8Array(SIGSET_SIZE);
    c.sigfillset(everySignal);
    c.sigemptyset(noSignal);
    checkReturned(
      c.posix_spawnattr_setsigdefault(attr, everySignal),
      "posix_spawnattr_setsigdefault",
    );
    checkReturned(c.posix_spawnattr_setsigmask(attr, noSignal), "posix_spawnattr_setsigmask");
    checkReturned(
      c.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK),
      "posix_spawnattr_setflags",
    );
    const file = cString(path);
    const args = new CStringArray(argv);
    const env = new CStringArray(envp);
    const pid = new Int32Array(1);
    const pidBytes = new Uint8Array(pid.buffer);
    checkReturned(
      c.posix_spawn(pidBytes, file, actions, attr, args.bytes, env.bytes),
      `posix_spawn(${path})`,
    );
    return pid[0];
  } finally {
    c.posix_spawnattr_destroy(attr);
    c.posix_spawn_file_actions_destroy(actions);
  }
}

/** `pidfd_open(2)`: a close-on-exec pidfd for `pid`, or null where the kernel gives none. */
function pidfdOpen(pid: number): number | null {
  const fd = libc().syscall_pidfd_open(BigInt(SYS_pidfd_open), BigInt(pid), 0n);
  return fd < 0n ? null : Number(fd);
}

/** How a `waitid` siginfo says the child ended. */
function exitOf(info: DataView): ChildExit {
  const code = info.getInt32(SIGINFO_CODE, true);
  const status = info.getInt32(SIGINFO_STATUS, true);
  if (code === CLD_EXITED) return { code: status, signal: null };
  if (code === CLD_KILLED || code === CLD_DUMPED) return { code: null, signal: status };
  throw new Error(`waitid: unexpected si_code ${code}`);
}

class SpawnedChild implements ChildProcess {
  readonly exited: Promise<ChildExit>;
  #ended = false;
  #closeWhenEnded = false;
  #closed = false;

  constructor(readonly pid: number, readonly pidfd: number | null) {
    this.exited = this.#reap();
  }

  /**
   * Waits on the blocking pool, where errno cannot be read: a failure there (EINTR) is told
   * apart from a real one by asking again without waiting, on this thread.
   */
  async #reap(): Promise<ChildExit> {
    const info = new Uint8Array(SIGINFO_SIZE);
    const view = new DataView(info.buffer);
    const [idType, id] = this.pidfd === null ? [P_PID, this.pid] : [P_PIDFD, this.pidfd];
    try {
      for (;;) {
        if (await libc().waitid_async(idType, id, info, WEXITED) === 0) return exitOf(view);
        if (libc().waitid(idType, id, info, WEXITED | WNOHANG) < 0) {
          throw lastError(`waitid(${this.pid})`);
        }
        if (view.getInt32(SIGINFO_PID, true) !== 0) return exitOf(view);
      }
    } finally {
      this.#ended = true;
      if (this.#closeWhenEnded) this.#closePidfd();
    }
  }

  kill(signal = SIGKILL): void {
    if (this.#ended) return;
    const sent = this.pidfd === null
      ? libc().kill(this.pid, signal) === 0
      : libc().syscall_pidfd_send_signal(
        BigInt(SYS_pidfd_send_signal),
        BigInt(this.pidfd),
        BigInt(signal),
        null,
        0n,
      ) === 0n;
    if (!sent) {
      const error: SyscallError = lastError(`kill(${this.pid}, ${signal})`);
      if (!error.is("ESRCH")) throw error; // it ended and is not reaped yet
    }
  }

  close(): void {
    if (this.#ended) this.#closePidfd();
    else this.#closeWhenEnded = true;
  }

  #closePidfd(): void {
    if (this.#closed || this.pidfd === null) return;
    this.#closed = true;
    close(this.pidfd);
  }
}
