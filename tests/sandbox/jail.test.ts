// Device processes: spawnProcess (src/ffi/spawn.ts) with chosen descriptors, reaped through a
// pidfd, and the bubblewrap jail (src/sandbox/jail.ts) around a Deno child (jail_child.ts),
// observed from outside through /proc while the child waits on its control socket.

import { descendantPids, processStatus } from "../helpers/proc.ts";
import assert from "node:assert/strict";
import { UserError } from "../../src/errors.ts";
import { SyscallError } from "../../src/ffi/errno.ts";
import * as libc from "../../src/ffi/libc.ts";
import {
  close,
  pipe,
  readAsync,
  SOCK_SEQPACKET,
  socketpair,
  writeAll,
} from "../../src/ffi/libc.ts";
import * as spawn from "../../src/ffi/spawn.ts";
import { type ChildProcess, spawnProcess } from "../../src/ffi/spawn.ts";
import {
  bubblewrapArgs,
  checkUserNamespaces,
  DENO_JAIL_ENV,
  findBubblewrap,
  type JailSpec,
  runtimeFiles,
} from "../../src/sandbox/jail.ts";
import { assertMatchesC, claimsOf } from "../helpers/c_values.ts";
import type { ChildReport } from "./jail_child.ts";

Deno.test("posix_spawn, pidfd and waitid numbers match the C headers", async () => {
  await assertMatchesC(
    ["spawn.h", "signal.h", "sys/wait.h", "sys/syscall.h", "fcntl.h", "sys/socket.h", "unistd.h"],
    [
      ...claimsOf(spawn, {
        POSIX_SPAWN_SETSIGDEF: "POSIX_SPAWN_SETSIGDEF",
        POSIX_SPAWN_SETSIGMASK: "POSIX_SPAWN_SETSIGMASK",
        POSIX_SPAWN_FILE_ACTIONS_SIZE: "sizeof(posix_spawn_file_actions_t)",
        POSIX_SPAWNATTR_SIZE: "sizeof(posix_spawnattr_t)",
        SIGSET_SIZE: "sizeof(sigset_t)",
        FIRST_CHILD_FD: "STDERR_FILENO + 1",
        SYS_pidfd_open: "SYS_pidfd_open",
        SYS_pidfd_send_signal: "SYS_pidfd_send_signal",
        P_PID: "P_PID",
        P_PIDFD: "P_PIDFD",
        WNOHANG: "WNOHANG",
        WEXITED: "WEXITED",
        SIGINFO_SIZE: "sizeof(siginfo_t)",
        SIGINFO_PID: "offsetof(siginfo_t, si_pid)",
        SIGINFO_CODE: "offsetof(siginfo_t, si_code)",
        SIGINFO_STATUS: "offsetof(siginfo_t, si_status)",
        CLD_EXITED: "CLD_EXITED",
        CLD_KILLED: "CLD_KILLED",
        CLD_DUMPED: "CLD_DUMPED",
      }, "spawn."),
      ...claimsOf(libc, {
        SIGKILL: "SIGKILL",
        F_DUPFD_CLOEXEC: "F_DUPFD_CLOEXEC",
        AF_UNIX: "AF_UNIX",
        SOCK_SEQPACKET: "SOCK_SEQPACKET",
      }, "libc."),
    ],
  );
});

// --- spawnProcess on its own, with small host programs -----------------------------------------

const SH = "/bin/sh";
const SLEEP = "/bin/sleep";
/** How long a test waits for something that takes milliseconds. */
const DEADLINE_MS = 5000;

/** The names in a directory, in numeric order (descriptor lists). */
function fdNames(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort((a, b) => Number(a) - Number(b));
}

/** What descriptor `fd` of process `pid` (default: this one) refers to, e.g. `pipe:[1234]`. */
function fdLink(fd: number | string, pid: number | "self" = "self"): string {
  return Deno.readLinkSync(`/proc/${pid}/fd/${fd}`);
}

/** Polls `probe` until it returns a value `done` accepts, or the deadline passes; returns it. */
async function settle<T>(probe: () => T, done: (value: T) => boolean): Promise<T> {
  const end = Date.now() + DEADLINE_MS;
  let value = probe();
  while (!done(value) && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = probe();
  }
  return value;
}

/** Kills a child (if it still runs), waits for it and closes its pidfd. */
async function finish(child: ChildProcess): Promise<spawn.ChildExit> {
  child.kill();
  const exit = await child.exited;
  child.close();
  return exit;
}

Deno.test("fds[i] becomes the child's 3 + i, also where a source is a target, and nothing else", async () => {
  const [sockA, sockB] = socketpair(SOCK_SEQPACKET);
  const [pipeRead, pipeWrite] = pipe();
  const sources = [pipeRead, sockB, sockA];
  // Enough targets that they cover the sources' own numbers: a dup2 onto 3 + i must not clobber
  // a source still to be copied.
  const count = Math.max(...sources) - 1;
  const fds = Array.from({ length: count }, (_, i) => sources[i % sources.length]);
  try {
    const child = spawnProcess(SLEEP, ["sleep", "60"], { fds, env: {} });
    const expected = ["0", "1", "2", ...fds.map((_, i) => String(3 + i))];
    const seen = await settle(
      () => fdNames(`/proc/${child.pid}/fd`),
      (names) => names.join() === expected.join(),
    );
    try {
      assert.deepEqual(seen, expected);
      fds.forEach((fd, i) => assert.equal(fdLink(3 + i, child.pid), fdLink(fd), `fd ${3 + i}`));
    } finally {
      assert.deepEqual(await finish(child), { code: null, signal: libc.SIGKILL });
    }
  } finally {
    [sockA, sockB, pipeRead, pipeWrite].forEach(close);
  }
});

Deno.test("without pidfds (pidfd_open fails, as before Linux 5.3) children are signalled and reaped by pid", async () => {
  const child = new URL("./no_pidfd_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", child],
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "the child ran to its end");
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
    pidfd: [null, null],
    exited: { code: 3, signal: null },
    killed: { code: null, signal: libc.SIGKILL },
  });
});

Deno.test("the environment given is the child's whole environment", async () => {
  const env = { CROSVM_TEST: "one two", EMPTY: "" };
  const child = spawnProcess(SLEEP, ["sleep", "60"], { fds: [], env });
  try {
    const environ = await settle(
      () => Deno.readTextFileSync(`/proc/${child.pid}/environ`),
      (text) => text !== "",
    );
    assert.equal(environ, "CROSVM_TEST=one two\0EMPTY=\0");
  } finally {
    await finish(child);
  }
});

Deno.test("exited gives the exit code, or the signal, of the child", async () => {
  const exits = spawnProcess(SH, ["sh", "-c", "exit 3"], { fds: [], env: {} });
  assert.deepEqual(await exits.exited, { code: 3, signal: null });
  exits.close();
  const terminated = spawnProcess(SLEEP, ["sleep", "60"], { fds: [], env: {} });
  terminated.kill(15); // SIGTERM, <asm-generic/signal.h>
  assert.deepEqual(await terminated.exited, { code: null, signal: 15 });
  terminated.kill(); // ended: does nothing
  terminated.close();
});

Deno.test("a missing program is a SyscallError naming posix_spawn, ENOENT", () => {
  const path = "/nonexistent-crosvm-test/program";
  assert.throws(() => spawnProcess(path, ["program"], { fds: [0], env: {} }), (e: unknown) => {
    assert.ok(e instanceof SyscallError, String(e));
    assert.ok(e.is("ENOENT"));
    assert.equal(e.call, `posix_spawn(${path})`);
    assert.equal(e.message, `posix_spawn(${path}) failed: ENOENT (No such file or directory)`);
    return true;
  });
});

Deno.test("spawnProcess leaves no descriptor behind, started or failed", async () => {
  const [readEnd, writeEnd] = pipe();
  try {
    const warm = spawnProcess(SH, ["sh", "-c", "exit 0"], { fds: [writeEnd], env: {} });
    await warm.exited;
    warm.close();
    const before = fdNames("/proc/self/fd");
    const child = spawnProcess(SH, ["sh", "-c", "exit 0"], { fds: [writeEnd, readEnd], env: {} });
    child.close(); // before it ended: closes the pidfd once it has
    await child.exited;
    assert.throws(() => spawnProcess("/nonexistent", ["x"], { fds: [readEnd], env: {} }));
    assert.deepEqual(fdNames("/proc/self/fd"), before);
  } finally {
    close(readEnd);
    close(writeEnd);
  }
});

// --- the jail ------------------------------------------------------------------------------------

Deno.test("bubblewrapArgs: namespaces, no capabilities, /tmp then binds then a read-only root", () => {
  const spec: JailSpec = {
    command: ["/opt/deno", "run", "/srv/mod/main.ts"],
    readOnlyPaths: ["/srv/mod/", "/tmp/x.ts", "/opt/deno", "/srv/mod/lib/a.ts", "/opt/deno"],
    env: { DENO_DIR: "/tmp/deno", A: "b c" },
  };
  assert.deepEqual(bubblewrapArgs(spec), [
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
    "--tmpfs",
    "/tmp",
    "--proc",
    "/proc",
    "--ro-bind",
    "/opt/deno",
    "/opt/deno",
    "--ro-bind",
    "/srv/mod",
    "/srv/mod",
    "--ro-bind",
    "/tmp/x.ts",
    "/tmp/x.ts",
    "--remount-ro",
    "/",
    "--clearenv",
    "--setenv",
    "DENO_DIR",
    "/tmp/deno",
    "--setenv",
    "A",
    "b c",
    "--chdir",
    "/",
    "--",
    "/opt/deno",
    "run",
    "/srv/mod/main.ts",
  ]);
  assert.throws(() => bubblewrapArgs({ ...spec, readOnlyPaths: ["srv"] }), TypeError);
  // A bind elsewhere (a warm emit cache onto the jail's DENO_DIR) comes after the same-path ones.
  const cache = "/root/.cache/deno/gen/file/srv/mod";
  const withCache = bubblewrapArgs({
    ...spec,
    readOnlyBinds: [{ source: `${cache}/`, target: "/tmp/deno/gen/file/srv/mod" }],
  });
  const at = withCache.indexOf("--remount-ro");
  assert.deepEqual(withCache.slice(at - 6, at), [
    "--ro-bind",
    "/tmp/x.ts",
    "/tmp/x.ts",
    "--ro-bind",
    cache,
    "/tmp/deno/gen/file/srv/mod",
  ]);
});

Deno.test("runtimeFiles: the Deno executable, its ELF interpreter by its own name, libc", () => {
  const files = runtimeFiles();
  assert.equal(files[0], Deno.execPath());
  const interpreter = files[1];
  assert.match(interpreter, /^\/.*\/ld-linux-x86-64\.so\.2$/); // PT_INTERP of an x86_64 glibc binary
  assert.ok(files.some((f) => f.endsWith("/libc.so.6")), files.join(" "));
  for (const file of files) assert.ok(Deno.statSync(file).isFile, file);
  assert.equal(new Set(files).size, files.length);
});

Deno.test("findBubblewrap looks on PATH; without bwrap it is a one-line UserError", () => {
  const empty = Deno.makeTempDirSync();
  try {
    assert.throws(() => findBubblewrap(`${empty}:relative/bin`), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(
        e.message,
        "bubblewrap (Debian package bubblewrap) is not installed; install it or run with --disable-sandbox",
      );
      return true;
    });
  } finally {
    Deno.removeSync(empty);
  }
});

/** Why the jailed tests cannot run here, or undefined. */
function jailProblem(): string | undefined {
  try {
    findBubblewrap();
    checkUserNamespaces();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const NO_JAIL = jailProblem();

/** Declares a test that needs bubblewrap and user namespaces; ignored where they are missing. */
function jailTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: NO_JAIL ? `${name} [ignored: ${NO_JAIL}]` : name, ignore: !!NO_JAIL, fn });
}

const CHILD = new URL("./jail_child.ts", import.meta.url).pathname;
/** The modules the child imports (src/ffi/libc.ts and what it imports). */
const FFI_MODULES = new URL("../../src/ffi/", import.meta.url).pathname;

/**
 * The child's jail. `--allow-all`: Deno 2.9 lets a program list /proc/self/fd only with every
 * permission; a device process needs --allow-ffi anyway.
 */
const SPEC: JailSpec = {
  command: [Deno.execPath(), "run", "--no-config", "--no-code-cache", "--allow-all", CHILD],
  readOnlyPaths: [...runtimeFiles(), FFI_MODULES, CHILD],
  env: DENO_JAIL_ENV,
};

/** A jailed child that has reported and now waits on its control socket. */
interface JailedChild {
  /** bwrap, as spawned. */
  readonly child: ChildProcess;
  /** Our end of the control socket: a byte ends the child with that code, closing it with 0. */
  readonly control: number;
  /** What the child said about itself. */
  readonly report: ChildReport;
  /** What the child's descriptors 3 and 4 must refer to (the ends we handed over). */
  readonly handed: readonly [string, string];
}

/**
 * Starts jail_child.ts in the jail, waits until it is ready, runs `body` on it, closes our end
 * of its control socket and returns how it ended.
 */
async function withJailed(body: (jailed: JailedChild) => void | Promise<void>) {
  const [readyRead, readyWrite] = pipe();
  const [control, theirs] = socketpair(SOCK_SEQPACKET);
  const handed = [fdLink(readyWrite), fdLink(theirs)] as const;
  let child: ChildProcess;
  try {
    child = spawnProcess(findBubblewrap(), ["bwrap", ...bubblewrapArgs(SPEC)], {
      fds: [readyWrite, theirs],
      env: {},
    });
  } finally {
    close(readyWrite);
    close(theirs);
  }
  try {
    const ready = await readAsync(readyRead, new Uint8Array(1));
    const message = new Uint8Array(1 << 16);
    const length = ready === 1 ? await readAsync(control, message) : 0;
    if (length === 0) {
      throw new Error(`the jailed child ended: ${JSON.stringify(await child.exited)}`);
    }
    const report: ChildReport = JSON.parse(new TextDecoder().decode(message.subarray(0, length)));
    await body({ child, control, report, handed });
  } catch (e) {
    close(control);
    await finish(child);
    throw e;
  } finally {
    close(readyRead);
  }
  close(control);
  const exit = await child.exited;
  child.close();
  return exit;
}

/** The Deno process bubblewrap runs (bwrap forks once more, to be the pid namespace's init). */
function jailedDeno(bwrap: number): number {
  const pids = descendantPids(bwrap).filter((pid) =>
    Deno.readTextFileSync(`/proc/${pid}/comm`).trim() !== "bwrap"
  );
  assert.equal(pids.length, 1, `one Deno below bwrap ${bwrap}: ${pids}`);
  return pids[0];
}

/** Whether a symbolic link exists at `path`. */
function linkExists(path: string): boolean {
  try {
    Deno.readLinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The namespaces the jail makes, as /proc/PID/ns names; cgroup where this kernel has one. */
const NAMESPACES = [
  ...["pid", "user", "mnt", "net", "ipc", "uts"],
  ...(linkExists("/proc/self/ns/cgroup") ? ["cgroup"] : []),
];

jailTest(
  "the jailed child is in new namespaces, with no capabilities and no new privileges",
  async () => {
    const exit = await withJailed(({ child, report }) => {
      const deno = jailedDeno(child.pid);
      for (const ns of NAMESPACES) {
        assert.notEqual(
          Deno.readLinkSync(`/proc/${deno}/ns/${ns}`),
          Deno.readLinkSync(`/proc/self/ns/${ns}`),
          `${ns} namespace`,
        );
      }
      const fields = processStatus(deno);
      assert.equal(fields.get("NoNewPrivs"), "1", "bubblewrap sets no-new-privileges");
      for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) {
        assert.equal(fields.get(set), "0000000000000000", set);
      }
      assert.equal(report.pid, 2, "pid 1 is bubblewrap's init");
      assert.equal(report.uid, Deno.uid(), "bubblewrap maps our uid to itself");
    });
    assert.deepEqual(exit, { code: 0, signal: null }, "closing our end ends it");
  },
);

jailTest("the jailed child's root holds only what was bound; no /etc/passwd; only lo", async () => {
  const exit = await withJailed(({ control, report }) => {
    const top = SPEC.readOnlyPaths.map((path) => path.split("/")[1]);
    assert.deepEqual(report.root, [...new Set([...top, "proc", "tmp"])].sort());
    assert.equal(report.etcPasswd, false);
    assert.deepEqual(report.interfaces, ["lo"]);
    writeAll(control, new Uint8Array([7]));
  });
  assert.deepEqual(exit, { code: 7, signal: null }, "the code it chose");
});

/**
 * Whether a descriptor is one the Deno runtime opens for itself: tokio's epoll instance (and
 * its duplicate) and the eventfd that wakes it, the Unix socket pair of tokio's signal driver
 * (one end duplicated), Deno's duplicates of stdout and stderr, and its module-analysis caches
 * (SQLite files with -wal and -shm) in DENO_DIR. `ours` holds what our own descriptors refer to.
 */
function isRuntimeOwn(link: string, stdio: readonly string[], ours: ReadonlySet<string>): boolean {
  return /^anon_inode:\[(eventpoll|eventfd)\]$/.test(link) ||
    (/^socket:\[\d+\]$/.test(link) && !ours.has(link)) ||
    stdio.includes(link) ||
    link.startsWith(`${DENO_JAIL_ENV.DENO_DIR}/`);
}

/** What this process's descriptors refer to. */
function ownLinks(): Set<string> {
  return new Set(
    fdNames("/proc/self/fd").flatMap((fd) => {
      try {
        return [fdLink(fd)];
      } catch {
        return []; // the listing's own descriptor, closed by now
      }
    }),
  );
}

jailTest("the jailed child holds 0-4 and, beyond them, only what Deno opened itself", async () => {
  const exit = await withJailed(({ child, report, handed }) => {
    const deno = jailedDeno(child.pid);
    const names = fdNames(`/proc/${deno}/fd`);
    const links = new Map(names.map((name) => [name, fdLink(name, deno)]));
    assert.deepEqual(names.slice(0, 5), ["0", "1", "2", "3", "4"]);
    const stdio = [0, 1, 2].map((fd) => fdLink(fd));
    assert.deepEqual(names.slice(0, 3).map((fd) => links.get(fd)), stdio, "inherited stdio");
    assert.deepEqual([links.get("3"), links.get("4")], handed);
    const ours = ownLinks();
    const strays = names.slice(5).filter((fd) => !isRuntimeOwn(links.get(fd)!, stdio, ours));
    assert.deepEqual(strays.map((fd) => `${fd} ${links.get(fd)}`), []);
    for (const fd of ["0", "1", "2", "3", "4"]) assert.ok(report.fds.includes(fd), fd);
  });
  assert.deepEqual(exit, { code: 0, signal: null });
});

/** A process's state letter from /proc/PID/stat (`Z` for a zombie), or "gone". */
function processState(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/stat`).replace(/^.*\) /, "")[0];
  } catch {
    return "gone";
  }
}

jailTest("SIGKILL to bwrap leaves nothing of the jail running", async () => {
  let below: number[] = [];
  const exit = await withJailed(({ child }) => {
    below = descendantPids(child.pid);
    assert.equal(below.length, 2, "bwrap's init and the Deno child");
    child.kill(libc.SIGKILL);
  });
  assert.deepEqual(exit, { code: null, signal: libc.SIGKILL });
  // Orphans go to an init outside, which reaps them when it will: dead is gone or a zombie.
  const dead = (states: string[]) => states.every((s) => s === "gone" || s === "Z");
  const states = await settle(() => below.map(processState), dead);
  assert.ok(dead(states), `${below} are ${states}`);
});
