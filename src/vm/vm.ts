/**
 * A virtual machine's lifecycle: {@link Vm.create} opens the host resources (KVM, disk images,
 * kernel and initrd) and hands them to the architecture, which builds the machine;
 * {@link Vm.run} starts the device runners and one Worker per vCPU and waits for the end;
 * {@link Vm.stop} asks for it. While it runs, {@link Vm.suspend} and {@link Vm.resume} park and
 * release the vCPUs (and, with `full`, quiet the devices and hold the guest's clock), and
 * {@link Vm.events} reports each change of {@link Vm.state}. The control socket
 * (`src/control/`) is a thin layer over these methods.
 *
 * @module
 */

import type { Machine } from "../arch/machine.ts";
import { buildMachine, MAX_VCPUS } from "../arch/x86_64/build.ts";
import { DEFAULT_KVM_DEVICE, type VmConfig } from "../config.ts";
import { StdinPump } from "../devices/legacy/stdin_pump.ts";
import { buildSerial } from "../devices/registry.ts";
import { openDisks, rootParams } from "../devices/virtio/block/disks.ts";
import { SyscallError } from "../ffi/errno.ts";
import { fallocate, ftruncate } from "../ffi/libc.ts";
import { capacityUpdate } from "../devices/virtio/block/config.ts";
import { BalloonControl } from "../devices/virtio/balloon/control.ts";
import * as log from "../log.ts";
import type { GuestMemory } from "../memory.ts";
import { pollUntil } from "../sync.ts";
import { VmControl, type VmExitReason } from "../vcpu/control.ts";
import type { VcpuStats } from "../vcpu/protocol.ts";
import { VcpuThreads } from "../vcpu/threads.ts";
import { openImage, openKvm, VmSetupError } from "./host.ts";
import { prepareSandbox } from "./sandbox.ts";
import { virtioDeviceRequests } from "./virtio_devices.ts";
import { openTaps } from "../devices/virtio/net/taps.ts";
import { openVsock } from "../devices/virtio/vsock/sockets.ts";
import { VhostVsockHost, type VsockEndpoint, VsockHost } from "./vsock.ts";
import {
  type BalloonStatsReply,
  VmControlError,
  type VmEvent,
  VmEvents,
  type VmState,
} from "./events.ts";

/** How a VM ended. */
export interface VmResult {
  /** Why it ended. */
  reason: VmExitReason;
  /** What went wrong, when `reason` is `"error"`. */
  error?: string;
  /** Per-vCPU exit counters and times. */
  stats: VcpuStats[];
}

/** How long {@link Vm.setBalloon} with `wait` waits for the guest to reach the target. */
export const BALLOON_WAIT_MS = 60_000;
/** How often it looks. */
const BALLOON_POLL_MS = 10;

/** Options of {@link Vm.create} beyond the VM's configuration. */
export interface VmOptions {
  /** Feed the host's stdin to the serial port configured with `stdin` (the CLI does). */
  attachStdin?: boolean;
}

/** What a built VM holds besides its machine. */
interface VmParts {
  readonly machine: Machine;
  readonly config: VmConfig;
  readonly options: VmOptions;
  readonly control: VmControl;
  readonly threads: VcpuThreads;
  readonly cleanup: DisposableStack;
}

/** Options of {@link Vm.suspend} and {@link Vm.resume}. */
export interface SuspendOptions {
  /**
   * Also quiet every device (no queue served, no interrupt raised, no console input delivered)
   * and hold the guest's kvmclock, so the guest does not see the gap (crosvm's `--full`). A full
   * suspend needs a full resume.
   */
  readonly full?: boolean;
}

/** A VM ready to run. */
export class Vm {
  #pump?: StdinPump;
  readonly #running = Promise.withResolvers<void>();
  readonly #ended = Promise.withResolvers<void>();
  readonly #events = new VmEvents();
  #state: VmState = "created";
  /** The suspend in force: whether the devices are quiet too, and the guest clock then. */
  #suspended: { readonly full: boolean; readonly clockNs?: bigint } | undefined;
  #balloonControl: BalloonControl | undefined;
  /** Each resized disk's size now, by index. */
  readonly #diskSizes = new Map<number, number>();
  /** Control operations run one at a time, in the order they were asked for. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly parts: VmParts) {
    // Nobody need wait for it: a failed start is reported by run() too.
    this.#running.promise.catch(() => {});
  }

  /**
   * Resolves once {@link run} has every device runner ready and every vCPU in KVM_RUN; rejects
   * when the VM failed to start.
   */
  get running(): Promise<void> {
    return this.#running.promise;
  }

  /** Where the VM is in its life. */
  get state(): VmState {
    return this.#state;
  }

  /** A new stream of the VM's events from now on: state changes, device errors. It ends with the VM. */
  events(): ReadableStream<VmEvent> {
    return this.#events.subscribe();
  }

  /** Guest RAM, readable and writable by the host while the VM runs. */
  get memory(): GuestMemory {
    return this.parts.machine.memory;
  }

  /** The kernel command line the guest was given. */
  get cmdline(): string {
    return this.parts.machine.cmdline;
  }

  /** The host's end of the guest's vsock device, over its back end; undefined without one. */
  get vsock(): VsockEndpoint | undefined {
    const vsock = this.parts.config.vsock;
    if (vsock === undefined) return undefined;
    return vsock.udsPath === undefined
      ? new VhostVsockHost(vsock.cid)
      : new VsockHost(vsock.udsPath);
  }

  /** Output of the serial ports configured with `type: "stream"`. */
  get serialOutput(): ReadableStream<Uint8Array> | undefined {
    return this.parts.machine.serials.output;
  }

  /**
   * Builds the VM: opens KVM, the disk images, the kernel and initrd, then has the architecture
   * build the machine (RAM, devices, boot images, vCPUs).
   * @throws UserError (one line) for anything the user can fix: a bad image, no KVM, too many
   *   vCPUs, a file that cannot be opened
   */
  static create(config: VmConfig, options: VmOptions = {}): Promise<Vm> {
    // Built synchronously today; a failure is a rejection all the same.
    return new Promise((resolve) => resolve(Vm.#build(config, options)));
  }

  static #build(config: VmConfig, options: VmOptions): Vm {
    const cleanup = new DisposableStack();
    try {
      const kvm = openKvm(config.kvmDevice ?? DEFAULT_KVM_DEVICE);
      cleanup.defer(() => kvm.close());
      const maxVcpus = Math.min(kvm.maxVcpus(), MAX_VCPUS);
      if (config.cpus > maxVcpus) {
        throw new VmSetupError(`${config.cpus} vCPUs requested, KVM allows at most ${maxVcpus}`);
      }
      // Images are opened and locked first: a bad one is reported before anything is built.
      const disks = openDisks(config.disks, config.cpus, cleanup);
      const nets = openTaps(config.nets ?? [], cleanup);
      const vsock = config.vsock === undefined ? undefined : openVsock(config.vsock, cleanup);
      const virtio = virtioDeviceRequests(config, disks, nets, vsock);
      const sandbox = prepareSandbox(config.sandbox, virtio);
      // The images are read when the machine is built, each part straight into guest RAM, and
      // closed once it is.
      using images = new DisposableStack();
      const open = (what: string, path: string) =>
        images.adopt(openImage(what, path), (image) => image.close());
      const kernel = open("kernel", config.kernel);
      const initrd = config.initrd === undefined ? undefined : open("initrd", config.initrd);
      // The vCPU Workers load their modules while the machine is built.
      const control = new VmControl(VmControl.createBuffer());
      const threads = new VcpuThreads(control, config.cpus);
      cleanup.defer(() => threads.terminate());
      log.debug(`vm: KVM and the images open, ${config.cpus} vCPU Workers starting`);
      const machine = buildMachine(kvm, {
        config,
        kernel,
        initrd,
        params: [...rootParams(config.disks), ...config.params],
        virtio,
        sandbox,
      }, cleanup);
      log.debug(`vm: built with ${config.cpus} vCPUs and ${config.memMiB} MiB`);
      return new Vm({ machine, config, options, control, threads, cleanup: cleanup.move() });
    } catch (e) {
      cleanup.dispose();
      // A host call that failed during set-up (a serial output file, a KVM limit) is the
      // user's to fix; say it in one line.
      if (e instanceof SyscallError) throw new VmSetupError(`cannot build the VM: ${e.message}`);
      throw e;
    }
  }

  /** Starts every vCPU, runs until the VM ends, then frees everything. */
  async run(): Promise<VmResult> {
    const { machine, config, options, control, threads } = this.parts;
    const { devices, vcpus } = machine;
    let deviceFailure: string | undefined;
    try {
      // The vCPUs go first: their Workers are loaded, and starting a device Worker holds this
      // thread until its isolate exists. Whatever the driver does before its device runs waits
      // in shared state and eventfds.
      const specs = devices.specs;
      const vcpusStarted = vcpus.map((vcpu) =>
        threads.spawn({
          id: vcpu.fd.id,
          vcpuFd: vcpu.fd.fd,
          runAddress: vcpu.runAddress,
          runSize: machine.runSize,
          devices: specs,
          control: control.buffer,
          logLevel: config.logLevel,
        })
      );
      // A device that dies (a crash, a seccomp kill) ends the VM at once, with its story.
      const devicesStarted = devices.start(config.logLevel, (message) => {
        deviceFailure ??= message;
        this.#events.emit({ type: "device-error", message });
        control.requestExit("error");
        threads.kickAll();
      });
      const started = await Promise.allSettled([...vcpusStarted, devicesStarted]);
      const failed = started.find((s) => s.status === "rejected");
      if (failed !== undefined) {
        // The vCPUs that did start must be out of KVM_RUN before their VM goes away.
        control.requestExit("error");
        threads.kickAll();
        await threads.join();
        this.#running.reject(failed.reason);
        throw failed.reason;
      }
      this.#running.resolve();
      this.#setState("running");
      log.debug(`vm: ${vcpus.length} vCPUs in KVM_RUN`);
      const stdinPort = machine.serials.stdinPort;
      if (options.attachStdin && stdinPort && !control.stopRequested) {
        this.#pump = new StdinPump(buildSerial(stdinPort));
        this.#pump.start();
      }
      const exits = await threads.join();
      log.debug("vm: every vCPU has left KVM_RUN");
      const deviceError = await devices.stop();
      return {
        reason: deviceFailure === undefined ? control.reason ?? "stop" : "error",
        error: deviceFailure ?? exits.find((e) => e.error !== undefined)?.error ?? deviceError,
        stats: exits.map((e) => e.stats),
      };
    } finally {
      // Settled already unless the run ended before it started: then it never will.
      this.#running.reject(new Error("the VM ended before it was running"));
      this.#pump?.stop();
      await devices.stop();
      this.parts.cleanup.dispose();
      this.#setState("stopped");
      this.#events.close();
      this.#ended.resolve();
    }
  }

  /**
   * Ends the VM now (the guest is not told); {@link run} then resolves with reason `"stop"`.
   * Resolves once the VM has ended (at once for a VM that was never run).
   */
  stop(): Promise<void> {
    this.parts.control.requestExit("stop");
    this.parts.threads.kickAll();
    return this.#state === "created" ? Promise.resolve() : this.#ended.promise;
  }

  /**
   * Parks every vCPU out of KVM_RUN until {@link resume}; resolves once all of them are out.
   * With `full`, also quiets every device and holds the guest's clock. Suspending a suspended
   * VM again does nothing (or adds the devices, with `full`).
   * @throws VmControlError when the VM is not running, or stopped meanwhile
   */
  suspend(options: SuspendOptions = {}): Promise<void> {
    return this.#serially(async () => {
      this.#mustBeLive("suspend");
      const { threads, control, machine } = this.parts;
      const parkedNow = this.#suspended === undefined;
      if (parkedNow) {
        await threads.park();
        if (control.stopRequested) throw new VmControlError("the VM stopped while suspending");
        this.#suspended = { full: false };
      }
      if (options.full && !this.#suspended?.full) {
        try {
          await machine.devices.quiesce();
        } catch (e) {
          if (parkedNow) this.#release();
          throw new VmControlError(`cannot suspend the devices: ${(e as Error).message}`);
        }
        this.#pump?.pause();
        this.#suspended = { full: true, clockNs: machine.vm.getClock() };
      }
      this.#setState("suspended");
      log.debug(`vm: suspended${this.#suspended?.full ? " (full)" : ""}`);
    });
  }

  /**
   * Lets a suspended VM run again (a running one is left alone).
   * @throws VmControlError (EINVAL) for a full suspend resumed without `full`, as crosvm
   */
  resume(options: SuspendOptions = {}): Promise<void> {
    return this.#serially(() => {
      this.#mustBeLive("resume");
      const suspended = this.#suspended;
      if (suspended === undefined) return;
      if (suspended.full && !options.full) {
        throw new VmControlError("the VM was suspended in full: resume it in full", "EINVAL");
      }
      if (suspended.clockNs !== undefined) {
        // The guest's clock goes on from where it stood: it does not see the gap.
        this.parts.machine.vm.setClock(suspended.clockNs);
        this.parts.machine.devices.wake();
        this.#pump?.resume();
      }
      this.#release();
      log.debug("vm: resumed");
    });
  }

  /**
   * Presses the ACPI power button: the guest is told, and may shut down cleanly.
   * @throws VmControlError when the VM is not running
   */
  powerButton(): Promise<void> {
    return this.#serially(() => {
      this.#mustBeLive("press the power button");
      this.parts.machine.pressPowerButton();
      log.debug("vm: power button pressed");
    });
  }

  /**
   * Sets the balloon's target to `bytes` (whole 4 KiB pages): the guest gives that much memory
   * back to the host. With `wait`, resolves once the guest holds the target in the balloon.
   * @throws VmControlError: EOPNOTSUPP (as crosvm) without a balloon, EINVAL for a target over
   *   the guest's memory, or when `wait` times out ({@link BALLOON_WAIT_MS})
   */
  setBalloon(bytes: number, options: { readonly wait?: boolean } = {}): Promise<void> {
    return this.#serially(async () => {
      this.#mustBeLive("adjust the balloon");
      const balloon = this.#balloon();
      const ram = this.parts.machine.memory.size;
      if (bytes > ram) {
        throw new VmControlError(`a balloon of ${bytes} bytes: the guest has ${ram}`, "EINVAL");
      }
      await balloon.setTarget(bytes);
      log.debug(`vm: balloon target ${balloon.targetBytes} bytes`);
      if (!options.wait) return;
      const reached = () => balloon.actualBytes === balloon.targetBytes;
      await pollUntil(
        () => reached() || this.parts.control.stopRequested,
        BALLOON_WAIT_MS,
        BALLOON_POLL_MS,
      );
      if (!reached()) {
        throw new VmControlError(
          `the guest holds ${balloon.actualBytes} of ${balloon.targetBytes} bytes in the balloon`,
        );
      }
    });
  }

  /**
   * The guest's memory statistics and the balloon's size.
   * @throws VmControlError (EOPNOTSUPP as crosvm) when the VM has no balloon device
   */
  balloonStats(): Promise<BalloonStatsReply> {
    return this.#serially(async () => {
      this.#mustBeLive("read the balloon's statistics");
      const balloon = this.#balloon();
      return { stats: await balloon.stats(), balloonActual: balloon.actualBytes };
    });
  }

  /** The balloon's control, built on first use. @throws VmControlError without a balloon */
  #balloon(): BalloonControl {
    if (this.#balloonControl !== undefined) return this.#balloonControl;
    const devices = this.parts.machine.devices;
    const [device] = devices.devicesOf("balloon");
    if (device === undefined) throw new VmControlError("this VM has no balloon", "EOPNOTSUPP");
    this.#balloonControl = new BalloonControl(devices, device);
    return this.#balloonControl;
  }

  /**
   * Resizes disk `index` (0-based, in configuration order) to `bytes`; the guest is told.
   * @throws VmControlError for a disk that does not exist or is read-only
   */
  resizeDisk(index: number, bytes: number): Promise<void> {
    return this.#serially(async () => {
      this.#mustBeLive("resize a disk");
      const disks = this.parts.machine.devices.devicesOf("block");
      const device = disks[index];
      if (device === undefined || device.backend.kind !== "block") {
        throw new VmControlError(`no disk ${index}: the VM has ${disks.length}`, "ENODEV");
      }
      const disk = device.backend;
      if (disk.readOnly) throw new VmControlError(`disk ${index} is read-only`, "EROFS");
      const old = this.#diskSizes.get(index) ?? disk.sizeBytes;
      // The image grows before the device hears of it, and shrinks after: the device never
      // serves a request past the end of its image.
      try {
        if (bytes > old) growImage(disk.fd, old, bytes, disk.sparse);
        const update = capacityUpdate(bytes);
        await this.parts.machine.devices.updateConfig(device, update.offset, update.bytes);
        if (bytes < old) ftruncate(disk.fd, bytes);
      } catch (e) {
        throw new VmControlError(`cannot resize disk ${index}: ${(e as Error).message}`);
      }
      this.#diskSizes.set(index, bytes);
      log.info(`disk ${index} resized from ${old} to ${bytes} bytes`);
    });
  }

  /** Unparks the vCPUs and says the VM runs. */
  #release(): void {
    this.#suspended = undefined;
    this.parts.threads.unpark();
    this.#setState("running");
  }

  /** Refuses a control operation on a VM that is not running (or suspended). */
  #mustBeLive(operation: string): void {
    if (this.#state === "created") {
      throw new VmControlError(`cannot ${operation}: the VM is not running yet`, "EINVAL");
    }
    if (this.#state === "stopped" || this.parts.control.stopRequested) {
      throw new VmControlError(`cannot ${operation}: the VM has stopped`, "EINVAL");
    }
  }

  #setState(state: VmState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#events.emit({ type: "state", state });
  }

  /** Runs `operation` after every control operation asked for before it has finished. */
  #serially<T>(operation: () => T | Promise<T>): Promise<T> {
    const result = this.#queue.then(operation);
    this.#queue = result.catch(() => {});
    return result;
  }
}

/** Grows an image from `old` to `bytes`; a disk that is not sparse gets the new blocks allocated. */
function growImage(fd: number, old: number, bytes: number, sparse: boolean): void {
  ftruncate(fd, bytes);
  if (!sparse) fallocate(fd, 0, old, bytes - old);
}
