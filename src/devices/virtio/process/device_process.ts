/**
 * The VMM's side of a jailed device process: start it in bubblewrap with exactly the descriptors
 * it needs, hand it its {@link DeviceProcessInit}, wait for `ready`, notice at once when it dies,
 * and stop it. Register accesses never come here: the vCPU Workers handle them over the device's
 * state, which the process maps from the same memfd.
 *
 * @module
 */

import { close, O_CLOEXEC, O_RDWR, open, SOCK_SEQPACKET, socketpair } from "../../../ffi/libc.ts";
import { type ChildExit, type ChildProcess, spawnProcess } from "../../../ffi/spawn.ts";
import { signalEventfd } from "../../../ffi/eventfd.ts";
import type { LogLevel } from "../../../log.ts";
import type { GuestMemory } from "../../../memory.ts";
import {
  bubblewrapArgs,
  DENO_JAIL_ENV,
  findBubblewrap,
  runtimeFiles,
} from "../../../sandbox/jail.ts";
import { receiveMessageAsync, sendMessage } from "../../../sandbox/messages.ts";
import type { SeccompPolicy } from "../../../sandbox/policy.ts";
import { LIBSECCOMP_SONAME } from "../../../ffi/seccomp.ts";
import { describeSeccompKill, findSeccompKill } from "../../../sandbox/audit.ts";
import { remapBackendFds } from "../kinds.ts";
import type { VirtioPciDevice } from "../transport/pci/create.ts";
import { VirtioPciState } from "../transport/pci/state.ts";
import type { DeviceRunner } from "../runner.ts";
import { DEVICE_PROCESS_COMMAND } from "./command.ts";
import { type DeviceProcessInit, type DeviceProcessMessage, FIRST_PASSED_FD } from "./protocol.ts";

/**
 * Descriptors a device process may hold beyond those it is given: Deno's own (epoll, eventfds,
 * the V8 platform's) with room to spare. Its RLIMIT_NOFILE is the given ones plus this.
 */
const RUNTIME_FD_ALLOWANCE = 32;
/** Where a device process's stdin and stdout go. */
const DEV_NULL = "/dev/null";
/** Our stderr, which the device process logs to. */
const STDERR_FD = 2;
/** How long a stopped process has to end its loop before it is killed. */
const STOP_GRACE_MS = 2000;
/** `SIGKILL` (`<asm-generic/signal.h>`). */
const SIGKILL = 9;
/** bubblewrap exits with 128 + N when the command it ran was killed by signal N. */
const SIGNAL_EXIT_BASE = 128;
/** Signal names for messages (`<asm-generic/signal.h>`). */
const SIGNAL_NAMES: Readonly<Record<number, string>> = {
  4: "SIGILL",
  6: "SIGABRT",
  7: "SIGBUS",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
  31: "SIGSYS",
};
/** `SIGSYS`: what a seccomp KILL_PROCESS action delivers. */
const SIGSYS = 31;

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
  readonly #state: VirtioPciState;
  /** Resolves when the process has ended: undefined after a requested stop, else what happened. */
  readonly exited: Promise<string | undefined>;

  private constructor(
    private readonly options: DeviceProcessOptions,
    private readonly child: ChildProcess,
    private readonly socket: number,
    private readonly jailed: readonly number[],
    lastMessage: Promise<DeviceProcessMessage | null>,
  ) {
    this.#state = new VirtioPciState(options.device.spec);
    this.exited = this.#watch(lastMessage);
  }

  /**
   * Starts the process; resolves once it is ready (filter loaded, loop waiting).
   * @throws UserError when the host cannot jail it; Error when it ends before it is ready
   */
  static async start(options: DeviceProcessOptions): Promise<DeviceProcess> {
    const { device, memory } = options;
    const name = device.spec.name;
    if (memory.fd === undefined || device.stateFd === undefined) {
      throw new Error(`${name}: a jailed device needs memfd-backed memory and state`);
    }
    const bwrap = findBubblewrap();
    const [ours, theirs] = socketpair(SOCK_SEQPACKET);
    let child: ChildProcess | undefined;
    try {
      const { init, fds } = initMessage(options, theirs, memory.fd, device.stateFd);
      // Nothing to read and nothing to print but its log lines: our stdin may be a terminal.
      const devNull = open(DEV_NULL, O_RDWR | O_CLOEXEC);
      try {
        child = spawnProcess(bwrap, ["bwrap", ...bubblewrapArgs(jailSpec())], {
          fds,
          env: {},
          stdio: [devNull, devNull, STDERR_FD],
        });
      } finally {
        close(devNull);
      }
      close(theirs);
      sendMessage(ours, init);
      const hello = await Promise.race([
        receiveMessageAsync(ours) as Promise<DeviceProcessMessage | null>,
        child.exited.then(() => null),
      ]);
      if (hello?.type !== "ready") {
        const exit = await child.exited;
        const said = hello?.type === "exited" ? hello.error : undefined;
        throw new Error(
          said ?? `${name}: the device process ended before it was ready (${exitText(exit)})`,
        );
      }
      const last = receiveMessageAsync(ours) as Promise<DeviceProcessMessage | null>;
      return new DeviceProcess(options, child, ours, descendants(child.pid), last);
    } catch (e) {
      child?.kill(SIGKILL);
      await child?.exited;
      child?.close();
      close(ours);
      if (child === undefined) close(theirs);
      throw e;
    }
  }

  /** The process id of bubblewrap (the jail's outermost process) in our namespace. */
  get pid(): number {
    return this.child.pid;
  }

  /** Asks the loop to end, waits for it (killing it after a grace period), frees everything. */
  async stop(): Promise<string | undefined> {
    this.#stopping = true;
    this.#state.regs.requestStop();
    signalEventfd(this.options.device.spec.controlFd);
    const timer = setTimeout(() => this.child.kill(SIGKILL), STOP_GRACE_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async #watch(lastMessage: Promise<DeviceProcessMessage | null>): Promise<string | undefined> {
    const [message, exit] = await Promise.all([lastMessage, this.child.exited]);
    this.child.close();
    close(this.socket);
    const name = this.options.device.spec.name;
    if (message?.type === "exited" && message.error !== undefined) return message.error;
    if (this.#stopping && exit.code === 0) return undefined;
    return this.#death(name, exit);
  }

  /** One line saying how the process died, and for a seccomp kill which syscall and policy. */
  #death(name: string, exit: ChildExit): string {
    const signal = exit.signal ??
      (exit.code !== null && exit.code > SIGNAL_EXIT_BASE ? exit.code - SIGNAL_EXIT_BASE : null);
    const who = `${name}: device process ${this.child.pid}`;
    if (signal === null) return `${who} exited with status ${exit.code}`;
    const died = `${who} was killed by ${SIGNAL_NAMES[signal] ?? `signal ${signal}`}`;
    if (signal !== SIGSYS) return died;
    const syscall = findSeccompKill([this.child.pid, ...this.jailed]);
    return `${died}: ${describeSeccompKill(syscall, this.options.sandbox.policyFile)}`;
  }
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
    return FIRST_PASSED_FD + (at < 0 ? fds.push(fd) - 1 : at);
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
  return { init: { ...init, maxFds: FIRST_PASSED_FD + fds.length + RUNTIME_FD_ALLOWANCE }, fds };
}

/** Every descendant of `pid` (bubblewrap forks the jail's init, which runs Deno). */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    let children: string;
    try {
      children = Deno.readTextFileSync(`/proc/${parent}/task/${parent}/children`);
    } catch {
      return; // it has gone already
    }
    for (const word of children.trim().split(/\s+/).filter(Boolean)) {
      found.push(Number(word));
      visit(Number(word));
    }
  };
  visit(pid);
  return found;
}

/** How a child ended, in words. */
function exitText(exit: ChildExit): string {
  return exit.signal !== null
    ? `killed by ${SIGNAL_NAMES[exit.signal] ?? `signal ${exit.signal}`}`
    : `status ${exit.code}`;
}

/**
 * What runs in the jail: this same program with the device-process command. Under `deno run`
 * that is Deno with the project's main module (the binary, the module tree and the libraries it
 * loads are bound read-only); a single-file build is just itself.
 */
function jailSpec(): { command: string[]; readOnlyPaths: string[]; env: Record<string, string> } {
  const files = runtimeFiles([LIBSECCOMP_SONAME]);
  if (Deno.build.standalone) {
    return { command: [Deno.execPath(), DEVICE_PROCESS_COMMAND], readOnlyPaths: files, env: {} };
  }
  const main = decodeURIComponent(new URL("../../../../main.ts", import.meta.url).pathname);
  const src = decodeURIComponent(new URL("../../../", import.meta.url).pathname);
  return {
    command: [
      Deno.execPath(),
      "run",
      "--quiet",
      "--no-config",
      "--no-code-cache",
      "--allow-ffi",
      "--allow-read",
      "--allow-env",
      main,
      DEVICE_PROCESS_COMMAND,
    ],
    readOnlyPaths: [...files, main, src],
    env: { ...DENO_JAIL_ENV },
  };
}
