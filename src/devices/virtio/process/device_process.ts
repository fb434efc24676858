/**
 * The VMM's side of a jailed device process: start it in bubblewrap with exactly the descriptors
 * it needs, hand it its {@link DeviceProcessInit}, wait for `ready`, notice at once when it dies,
 * and stop it. Register accesses never come here: the vCPU Workers handle them over the device's
 * state, which the process maps from the same memfd.
 *
 * @module
 */

import { UserError } from "../../../errors.ts";
import { signalEventfd } from "../../../ffi/eventfd.ts";
import {
  close,
  O_CLOEXEC,
  O_RDWR,
  open,
  pipe,
  readAsync,
  SIGKILL,
  SOCK_SEQPACKET,
  socketpair,
} from "../../../ffi/libc.ts";
import { LIBSECCOMP_SONAME } from "../../../ffi/seccomp.ts";
import {
  type ChildExit,
  type ChildProcess,
  FIRST_CHILD_FD,
  spawnProcess,
} from "../../../ffi/spawn.ts";
import * as log from "../../../log.ts";
import type { LogLevel } from "../../../log.ts";
import type { GuestMemory } from "../../../memory.ts";
import { describeSeccompKill, findSeccompKill, SeccompKillLog } from "../../../sandbox/audit.ts";
import { SIGNAL_CONSTANTS, signalName } from "../../../sandbox/constants.ts";
import {
  bubblewrapArgs,
  DENO_JAIL_ENV,
  descendantPids,
  findBubblewrap,
  type JailSpec,
  runtimeFiles,
} from "../../../sandbox/jail.ts";
import { type Received, receiveMessageAsync, sendMessage } from "../../../sandbox/messages.ts";
import type { SeccompPolicy } from "../../../sandbox/policy.ts";
import { descriptorAllowance, remapBackendFds } from "../kinds.ts";
import type { DeviceRunner } from "../runner.ts";
import type { VirtioPciDevice } from "../transport/pci/create.ts";
import { VirtioPciState } from "../transport/pci/state.ts";
import { DEVICE_PROCESS_COMMAND } from "./command.ts";
import { BUNDLED, mainModulePath } from "../../../program.ts";
import {
  type DeviceProcessInit,
  deviceProcessMessage,
  MAX_ERROR_TEXT,
  printableLine,
} from "./protocol.ts";

/**
 * Descriptors a device process may hold beyond those it is given: Deno's own (epoll, eventfds,
 * its caches in the jail's /tmp) with room to spare. Its RLIMIT_NOFILE is the given ones plus this.
 */
const RUNTIME_FD_ALLOWANCE = 32;
/**
 * How long a device process may take to be ready: Deno starts and compiles the device's modules
 * afresh in the jail, which takes a second or more under emulation (the test bed).
 */
const READY_TIMEOUT_MS = 60_000;
/** How long a stopped (or failing) process has to end by itself before it is killed. */
const STOP_GRACE_MS = 2000;
/** bubblewrap exits with 128 + N when the command it ran was killed by signal N. */
const SIGNAL_EXIT_BASE = 128;
/** Where a device process's stdin and stdout go. */
const DEV_NULL = "/dev/null";
/** How many of a device's first stderr lines are kept, to explain a failed start. */
const START_LINES_KEPT = 4;

/** How to jail a device. */
export interface SandboxSettings {
  /** The seccomp policy of this device, parsed. */
  readonly policy: SeccompPolicy;
  /** The policy's file, for messages. */
  readonly policyFile: string;
  /** Log violations instead of killing the process. */
  readonly logFailures: boolean;
}

/** What to run. */
export interface DeviceProcessOptions {
  /** The device (its spec, backend and descriptors). */
  readonly device: VirtioPciDevice;
  /** Guest RAM (memfd-backed). */
  readonly memory: GuestMemory;
  /** The jail's seccomp side. */
  readonly sandbox: SandboxSettings;
  /** Log level. */
  readonly logLevel: LogLevel;
}

/** A running jailed device process. */
export class DeviceProcess implements DeviceRunner {
  #stopping = false;
  /** The VMM's view of the device's shared state (its stop flag, its lock). */
  readonly #state: VirtioPciState;
  /** Resolves when the process has ended: undefined after a requested stop, else what happened. */
  readonly exited: Promise<string | undefined>;

  private constructor(
    private readonly options: DeviceProcessOptions,
    private readonly child: JailedChild,
    lastMessage: Promise<Received>,
  ) {
    this.#state = new VirtioPciState(options.device.spec);
    this.exited = this.#watch(lastMessage);
  }

  /**
   * Starts the process; resolves once it is ready (filter loaded, loop waiting).
   * @throws UserError when the host cannot jail it (bubblewrap fails, the process never gets
   *   ready); Error for a device that fails to set itself up
   */
  static async start(options: DeviceProcessOptions): Promise<DeviceProcess> {
    const began = performance.now();
    // Its pid is known only once it is ready: a seccomp kill before then is found by time.
    const kills = SeccompKillLog.fromNow();
    try {
      return await DeviceProcess.#start(options, began, kills);
    } finally {
      kills.close();
    }
  }

  static async #start(
    options: DeviceProcessOptions,
    began: number,
    kills: SeccompKillLog,
  ): Promise<DeviceProcess> {
    const child = JailedChild.spawn(options);
    const name = options.device.spec.name;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS);
    });
    const first = receiveMessageAsync(child.socket);
    const hello = await Promise.race([first, child.process.exited.then(() => "ended"), timeout]);
    clearTimeout(timer);
    if (hello === "ended") {
      // It may have said `ready` and died at once, on the first request a running guest had
      // waiting: then it started, and its death is a running device's, said the same way.
      const late = await first;
      if (late.kind === "message" && deviceProcessMessage(late.value)?.type === "ready") {
        const exit = await child.process.exited;
        await child.close();
        const syscall = exitSignal(exit) === SIGNAL_CONSTANTS.SIGSYS
          ? await kills.find()
          : undefined;
        throw new UserError(
          `${name}: device process ${child.process.pid} ${
            deathText(exit, syscall, options.sandbox.policyFile)
          }`,
        );
      }
    }
    const message = typeof hello === "string" || hello.kind !== "message"
      ? undefined
      : deviceProcessMessage(hello.value);
    if (message?.type === "ready") {
      child.findJailed();
      log.debug(
        `${name}: device process ${child.pid} ready in ${
          (performance.now() - began).toFixed(1)
        } ms`,
      );
      return new DeviceProcess(options, child, receiveMessageAsync(child.socket));
    }
    // One that is ending by itself (it said why, or its socket closed) may finish, so that its
    // own death (a seccomp kill, say) is what bubblewrap reports; one that says nothing is killed.
    const killer = setTimeout(
      () => child.process.kill(SIGKILL),
      hello === "timeout" ? 0 : STOP_GRACE_MS,
    );
    const exit = await child.process.exited;
    clearTimeout(killer);
    await first; // the read ends with the process: only then may its socket close
    const said = await child.close();
    if (message?.type === "exited" && message.error !== undefined) {
      throw new Error(`${name}: ${message.error}`);
    }
    const why = hello === "timeout"
      ? `it was not ready after ${READY_TIMEOUT_MS / 1000} s`
      : said.length > 0
      ? said.join("; ")
      : exitSignal(exit) === SIGNAL_CONSTANTS.SIGSYS
      ? `killed by SIGSYS: ${describeSeccompKill(await kills.find(), options.sandbox.policyFile)}`
      : exitText(exit);
    throw new UserError(
      `${name}: the jailed device process did not start (${why}); run with --disable-sandbox to ` +
        `run the devices unjailed`,
    );
  }

  /** Asks the loop to end, waits for it (killing it after a grace period), frees everything. */
  async stop(): Promise<string | undefined> {
    this.#stopping = true;
    const { spec } = this.options.device;
    this.#state.regs.requestStop();
    signalEventfd(spec.controlFd);
    const timer = setTimeout(() => this.child.process.kill(SIGKILL), STOP_GRACE_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the last message and the end of the process, then says how it ended. Never rejects. */
  async #watch(lastMessage: Promise<Received>): Promise<string | undefined> {
    const received = await lastMessage;
    const message = received.kind === "message" ? deviceProcessMessage(received.value) : undefined;
    const protocolBroken = received.kind === "malformed" ||
      (received.kind === "message" && message === undefined);
    // A process that breaks the protocol is not waited for.
    if (protocolBroken) this.child.process.kill(SIGKILL);
    const exit = await this.child.process.exited;
    // A holder of the device's lock that died cannot release it: the vCPUs must not wait forever.
    this.#state.lock.forceUnlock();
    await this.child.close();
    const who = `${this.options.device.spec.name}: device process ${this.child.pid}`;
    const signal = exitSignal(exit);
    // The kernel's story (a signal) comes before the process's own.
    if (signal !== null && !protocolBroken) {
      const syscall = signal === SIGNAL_CONSTANTS.SIGSYS
        ? await findSeccompKill(this.child.jailed)
        : undefined;
      return `${who} ${deathText(exit, syscall, this.options.sandbox.policyFile)}`;
    }
    if (protocolBroken) return `${who} broke the control protocol and was killed`;
    if (message?.type === "exited" && message.error !== undefined) {
      return `${this.options.device.spec.name}: ${message.error}`;
    }
    if (this.#stopping && exit.code === 0) return undefined;
    return `${who} exited with status ${exit.code}`;
  }
}

/**
 * How a device process ended, after its name: the signal that killed it and, for a seccomp kill,
 * the syscall (from the kernel's record) and the policy that does not allow it; or its status.
 */
function deathText(exit: ChildExit, syscall: number | undefined, policyFile: string): string {
  const signal = exitSignal(exit);
  if (signal === null) return `exited with status ${exit.code}`;
  const died = `was killed by ${signalName(signal)}`;
  return signal === SIGNAL_CONSTANTS.SIGSYS
    ? `${died}: ${describeSeccompKill(syscall, policyFile)}`
    : died;
}

/** A spawned jail: bubblewrap, its descendants, the control socket and the stderr relay. */
class JailedChild {
  /** Every process of the jail once it is ready (bubblewrap, its init, the device's Deno). */
  jailed: number[] = [];
  readonly #stderr: Promise<string[]>;

  private constructor(
    readonly process: ChildProcess,
    readonly socket: number,
    stderr: number,
    name: string,
  ) {
    this.jailed = [process.pid];
    this.#stderr = relayStderr(stderr, name);
  }

  /** Spawns the jail for `options`' device and sends it its start-up message. */
  static spawn(options: DeviceProcessOptions): JailedChild {
    const { device, memory } = options;
    if (memory.fd === undefined || device.stateFd === undefined) {
      throw new Error(`${device.spec.name}: a jailed device needs memfd-backed memory and state`);
    }
    const bwrap = findBubblewrap();
    const [ours, theirs] = socketpair(SOCK_SEQPACKET);
    const opened = [theirs];
    try {
      const [errRead, errWrite] = pipe();
      opened.push(errWrite);
      const devNull = open(DEV_NULL, O_RDWR | O_CLOEXEC);
      opened.push(devNull);
      const { init, fds } = initMessage(options, theirs, memory.fd, device.stateFd);
      let process: ChildProcess;
      try {
        process = spawnProcess(bwrap, ["bwrap", ...bubblewrapArgs(jailSpec())], {
          fds,
          env: {},
          // Nothing to read, nothing to print but its log lines, which we relay: our stdin and
          // stderr may be a terminal.
          stdio: [devNull, devNull, errWrite],
        });
      } catch (e) {
        close(errRead);
        throw e;
      }
      const child = new JailedChild(process, ours, errRead, device.spec.name);
      sendMessage(ours, init);
      return child;
    } catch (e) {
      close(ours);
      throw e;
    } finally {
      for (const fd of opened) close(fd);
    }
  }

  /** The jailed processes' pids, while they run (for the kernel's seccomp records). */
  findJailed(): void {
    this.jailed = [this.process.pid, ...descendantPids(this.process.pid)];
  }

  /** The pid of the device's own process (the jail's innermost), or bubblewrap's. */
  get pid(): number {
    return this.jailed[this.jailed.length - 1];
  }

  /** After the process has ended: closes the socket and pidfd; the first stderr lines it wrote. */
  async close(): Promise<string[]> {
    close(this.socket);
    this.process.close();
    return await this.#stderr;
  }
}

/**
 * Relays a device process's stderr to ours, a line at a time, each prefixed with the device's name
 * and shown as printable text (the process may be hostile: no terminal escapes, no fake lines of
 * ours). Resolves at end of file (the process and all its own children have ended) with its first
 * lines, to explain a failed start.
 */
async function relayStderr(fd: number, name: string): Promise<string[]> {
  const first: string[] = [];
  const decoder = new TextDecoder();
  const buf = new Uint8Array(4096);
  let pending = "";
  const emit = (line: string) => {
    const shown = printableLine(line);
    if (first.length < START_LINES_KEPT) first.push(shown);
    console.error(`${name}| ${shown}`);
  };
  try {
    for (;;) {
      const n = await readAsync(fd, buf).catch(() => 0);
      if (n <= 0) break;
      pending += decoder.decode(buf.subarray(0, n), { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) emit(line);
      if (pending.length > MAX_ERROR_TEXT) {
        emit(pending);
        pending = "";
      }
    }
    if (pending !== "") emit(pending);
  } finally {
    close(fd);
  }
  return first;
}

/**
 * The start-up message for `options`' device and the descriptors to hand over, in order (the
 * socket first): every descriptor in the message is renumbered to where the process finds it.
 */
function initMessage(
  options: DeviceProcessOptions,
  socket: number,
  memoryFd: number,
  stateFd: number,
): { init: DeviceProcessInit; fds: number[] } {
  const { device, memory, sandbox, logLevel } = options;
  const { spec } = device;
  const fds = [socket];
  const number = (fd: number) => {
    const at = fds.indexOf(fd);
    return FIRST_CHILD_FD + (at < 0 ? fds.push(fd) - 1 : at);
  };
  const init = {
    spec: {
      kind: spec.kind,
      name: spec.name,
      devfn: spec.devfn,
      device: spec.device,
      msiGsiBase: spec.msiGsiBase,
      vectorFds: spec.vectorFds.map(number),
      queueFds: spec.queueFds.map(number),
      controlFd: number(spec.controlFd),
      intx: spec.intx && {
        gsi: spec.intx.gsi,
        irqfd: number(spec.intx.irqfd),
        resampleFd: number(spec.intx.resampleFd),
      },
    },
    state: { fd: number(stateFd), size: spec.state.size },
    memory: { fd: number(memoryFd), regions: memory.regions },
    backend: remapBackendFds(device.backend, number),
    seccomp: { policy: sandbox.policy, logFailures: sandbox.logFailures },
    logLevel,
  };
  const maxFds = FIRST_CHILD_FD + fds.length + RUNTIME_FD_ALLOWANCE +
    descriptorAllowance(device.backend);
  return { init: { ...init, maxFds }, fds };
}

/** The signal that ended the process: its own, or the one bubblewrap reports as 128 + N. */
function exitSignal(exit: ChildExit): number | null {
  return exit.signal ??
    (exit.code !== null && exit.code > SIGNAL_EXIT_BASE ? exit.code - SIGNAL_EXIT_BASE : null);
}

/** How a child ended, in words. */
function exitText(exit: ChildExit): string {
  const signal = exitSignal(exit);
  return signal !== null ? `killed by ${signalName(signal)}` : `status ${exit.code}`;
}

/** `deno run`'s options for a device process: quiet, no network, only what the device needs. */
const DENO_RUN_OPTIONS = [
  "run",
  "--quiet",
  "--no-config",
  "--no-code-cache",
  "--allow-ffi",
  "--allow-read",
  "--allow-env",
];

/**
 * What runs in the jail: this same program as a device process. A compiled program is just
 * itself with the device-process command; a bundle, Deno with the bundle and the command (the
 * bundle is bound read-only, with the binary and the libraries it loads). From the source tree it
 * is Deno with the device process's own entry module (the tree's `src/` bound read-only), not the
 * program's main module: Deno reads and analyses every module a main module can import, dynamic
 * imports included, and the command line's are twice the device's (0.7 s more per device process
 * in the nested test bed). The command's word stays on the command line, so that `ps` tells a
 * device process from its VMM.
 */
function jailSpec(): JailSpec {
  const files = runtimeFiles([LIBSECCOMP_SONAME]);
  if (Deno.build.standalone) {
    return { command: [Deno.execPath(), DEVICE_PROCESS_COMMAND], readOnlyPaths: files, env: {} };
  }
  const main = mainModulePath();
  const module = BUNDLED
    ? main
    : decodeURIComponent(new URL("./entry.ts", import.meta.url).pathname);
  const command = [Deno.execPath(), ...DENO_RUN_OPTIONS, module, DEVICE_PROCESS_COMMAND];
  const env = { ...DENO_JAIL_ENV };
  // A bundle is one JavaScript file: nothing else to show, nothing to transpile.
  if (BUNDLED) return { command, readOnlyPaths: [...files, main], env };
  const src = decodeURIComponent(new URL("../../../", import.meta.url).pathname);
  const root = main.slice(0, main.lastIndexOf("/"));
  const warm = warmEmitCache(root);
  return {
    readOnlyBinds: warm === undefined
      ? []
      : [{ source: warm, target: `${DENO_JAIL_ENV.DENO_DIR}/${EMIT_CACHE}${root}` }],
    command,
    readOnlyPaths: [...files, src],
    env,
  };
}

/** Where Deno keeps the JavaScript it transpiled a local module to: `gen/file/<its path>.js`. */
const EMIT_CACHE = "gen/file";
/** The module whose transpiled form says a cache was warmed for the device process. */
const DEVICE_ENTRY = "src/devices/virtio/process/entry.ts";

/**
 * This VMM's transpiled modules of the project at `root`, when its Deno cache holds those of
 * the device process too (`deno cache` of the entry point; the test bed warms every module): the
 * jail gets them read-only and starts without transpiling the module tree again (seconds under
 * emulation). Only our own modules' JavaScript is shown to the jail, nothing else of the cache.
 * A partial cache is not used: each module the jail then had to transpile would cost it a
 * failed write and its retries.
 */
function warmEmitCache(root: string): string | undefined {
  const cache = `${denoDir()}/${EMIT_CACHE}${root}`;
  try {
    return Deno.statSync(`${cache}/${DEVICE_ENTRY}.js`).isFile ? cache : undefined;
  } catch {
    return undefined;
  }
}

/** Deno's cache directory: DENO_DIR, else its default under the user's cache directory. */
function denoDir(): string {
  const dir = Deno.env.get("DENO_DIR");
  if (dir !== undefined && dir !== "") return dir;
  const cache = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache`;
  return `${cache}/deno`;
}
