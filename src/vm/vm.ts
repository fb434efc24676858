/**
 * A virtual machine's lifecycle: {@link Vm.create} opens the host resources (KVM, disk images,
 * kernel and initrd) and hands them to the architecture, which builds the machine;
 * {@link Vm.run} starts the device runners and one Worker per vCPU and waits for the end;
 * {@link Vm.stop} asks for it.
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
import * as log from "../log.ts";
import type { GuestMemory } from "../memory.ts";
import { VmControl, type VmExitReason } from "../vcpu/control.ts";
import type { VcpuStats } from "../vcpu/protocol.ts";
import { VcpuThreads } from "../vcpu/threads.ts";
import { openKvm, readImage, VmSetupError } from "./host.ts";
import { prepareSandbox } from "./sandbox.ts";
import { virtioDeviceRequests } from "./virtio_devices.ts";

/** How a VM ended. */
export interface VmResult {
  /** Why it ended. */
  reason: VmExitReason;
  /** What went wrong, when `reason` is `"error"`. */
  error?: string;
  /** Per-vCPU exit counters and times. */
  stats: VcpuStats[];
}

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

/** A VM ready to run. */
export class Vm {
  #pump?: StdinPump;
  readonly #running = Promise.withResolvers<void>();

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

  /** Guest RAM, readable and writable by the host while the VM runs. */
  get memory(): GuestMemory {
    return this.parts.machine.memory;
  }

  /** The kernel command line the guest was given. */
  get cmdline(): string {
    return this.parts.machine.cmdline;
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
  static async create(config: VmConfig, options: VmOptions = {}): Promise<Vm> {
    const cleanup = new DisposableStack();
    try {
      const kvm = openKvm(config.kvmDevice ?? DEFAULT_KVM_DEVICE);
      cleanup.defer(() => kvm.close());
      const maxVcpus = Math.min(kvm.maxVcpus(), MAX_VCPUS);
      if (config.cpus > maxVcpus) {
        throw new VmSetupError(`${config.cpus} vCPUs requested, KVM allows at most ${maxVcpus}`);
      }
      // Images are opened and locked first: a bad one is reported before anything is built.
      const disks = openDisks(config.disks, cleanup);
      const virtio = virtioDeviceRequests(config, disks);
      const sandbox = prepareSandbox(config.sandbox, virtio);
      // The vCPU Workers load their modules while the kernel is read and the machine built.
      const control = new VmControl(VmControl.createBuffer());
      const threads = new VcpuThreads(control, config.cpus);
      cleanup.defer(() => threads.terminate());
      const kernel = { path: config.kernel, bytes: await readImage("kernel", config.kernel) };
      const initrd = config.initrd === undefined
        ? undefined
        : { path: config.initrd, bytes: await readImage("initrd", config.initrd) };
      log.debug(`vm: read the kernel (${kernel.bytes.length} bytes) and initrd`);
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
      // A device that dies (a crash, a seccomp kill) ends the VM at once, with its story.
      const devicesStarted = devices.start(config.logLevel, (message) => {
        deviceFailure ??= message;
        control.requestExit("error");
        threads.kickAll();
      });
      const specs = devices.specs;
      const started = await Promise.allSettled([
        ...vcpus.map((vcpu) =>
          threads.spawn({
            id: vcpu.fd.id,
            vcpuFd: vcpu.fd.fd,
            runAddress: vcpu.runAddress,
            runSize: machine.runSize,
            devices: specs,
            control: control.buffer,
            logLevel: config.logLevel,
          })
        ),
        devicesStarted,
      ]);
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
      log.debug(`vm: ${vcpus.length} vCPUs in KVM_RUN`);
      const stdinPort = machine.serials.stdinPort;
      if (options.attachStdin && stdinPort && !control.stopRequested) {
        this.#pump = new StdinPump(buildSerial(stdinPort));
        this.#pump.start();
      }
      const exits = await threads.join();
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
    }
  }

  /** Asks the VM to stop; {@link run} then resolves with reason `"stop"`. */
  stop(): void {
    this.parts.control.requestExit("stop");
    this.parts.threads.kickAll();
  }
}
