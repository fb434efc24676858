/**
 * A virtual machine: KVM VM and vCPUs, guest memory, the legacy devices, the boot
 * images, and one Worker per vCPU. Build one with {@link Vm.create}, then {@link Vm.run}.
 *
 * @module
 */

import { MADT_MAX_CPUS } from "../arch/x86_64/acpi/madt.ts";
import { buildAcpiTables } from "../arch/x86_64/acpi/tables.ts";
import { loadBootImages, setBootVcpuState } from "../arch/x86_64/boot/load.ts";
import { RESET_VECTOR_ADDRESS, resetVectorStub } from "../arch/x86_64/boot/reset_vector.ts";
import { bootMsrs, cpuidForVcpu, setDefaultFpu, setLocalInterrupts } from "../arch/x86_64/cpu.ts";
import {
  KVM_IDENTITY_MAP_ADDRESS,
  KVM_TSS_ADDRESS,
  MIB,
  PCI_INTX_GSIS,
  PCI_MMIO_32_BASE,
  PCI_MMIO_32_SIZE,
  PCIE_ECAM_BASE,
  PCIE_ECAM_SIZE,
} from "../arch/x86_64/layout.ts";
import { DEFAULT_KVM_DEVICE, type VmConfig } from "../config.ts";
import { Cmos } from "../devices/legacy/cmos.ts";
import { I8042 } from "../devices/legacy/i8042.ts";
import { PciConfigIo } from "../devices/pci/config_io.ts";
import { buildSerial, type DeviceSpec } from "../devices/registry.ts";
import { VirtioDevices } from "../devices/manager.ts";
import { diskName, openDisks, rootParams } from "../devices/virtio/block/disks.ts";
import { SyscallError } from "../ffi/errno.ts";
import { Kvm, type VcpuFd } from "../ffi/kvm.ts";
import { munmap } from "../ffi/libc.ts";
import * as log from "../log.ts";
import { GuestMemory } from "../memory.ts";
import { COM_PORTS, openSerialPorts, type SerialPorts } from "../devices/legacy/serial_ports.ts";
import { StdinPump } from "../devices/legacy/stdin_pump.ts";
import { VmControl, type VmExitReason } from "../vcpu/control.ts";
import type { VcpuStats } from "../vcpu/protocol.ts";
import { VcpuThreads } from "../vcpu/threads.ts";

/** Ports Linux writes to for I/O delays (0x80 POST code, 0xED alternative): absorbed silently. */
const IO_DELAY_PORTS: [number, number][] = [[0x80, 1], [0xed, 1]];

/** A problem with the VM's configuration or host that the user can fix. */
export class VmSetupError extends Error {
  /** @param message one line saying what is wrong */
  constructor(message: string) {
    super(message);
    this.name = "VmSetupError";
  }
}

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

interface Vcpu {
  fd: VcpuFd;
  runAddress: bigint;
}

/** A VM ready to run. */
export class Vm {
  #pump?: StdinPump;

  private constructor(
    private readonly control: VmControl,
    private readonly threads: VcpuThreads,
    /** Guest RAM, readable and writable by the host while the VM runs. */
    readonly memory: GuestMemory,
    /** The kernel command line the guest was given. */
    readonly cmdline: string,
    private readonly cleanup: DisposableStack,
    private readonly vcpus: Vcpu[],
    private readonly runSize: number,
    private readonly devices: DeviceSpec[],
    private readonly serials: SerialPorts,
    private readonly options: VmOptions,
    private readonly logLevel: VmConfig["logLevel"],
    private readonly virtio: VirtioDevices,
  ) {}

  /** Output of the serial ports configured with `type: "stream"`. */
  get serialOutput(): ReadableStream<Uint8Array> | undefined {
    return this.serials.output;
  }

  /** Builds the VM: opens KVM, allocates RAM, loads the kernel, creates devices and vCPUs. */
  static async create(config: VmConfig, options: VmOptions = {}): Promise<Vm> {
    const cleanup = new DisposableStack();
    try {
      const kvm = openKvm(config.kvmDevice ?? DEFAULT_KVM_DEVICE);
      cleanup.defer(() => kvm.close());
      const maxVcpus = Math.min(kvm.maxVcpus(), MADT_MAX_CPUS);
      if (config.cpus > maxVcpus) {
        throw new VmSetupError(`${config.cpus} vCPUs requested, KVM allows at most ${maxVcpus}`);
      }
      // Images are opened and locked first: a bad one is reported before anything is built.
      const disks = openDisks(config.disks, cleanup);
      const control = new VmControl(VmControl.createBuffer());
      const threads = new VcpuThreads(control, config.cpus);
      cleanup.defer(() => threads.terminate());
      const kernel = await readImage("kernel", config.kernel);
      const initrd = config.initrd === undefined
        ? undefined
        : await readImage("initrd", config.initrd);
      log.debug(`vm: read the kernel (${kernel.length} bytes) and initrd`);
      const vm = kvm.createVm();
      cleanup.defer(() => vm.close());
      vm.setTssAddress(KVM_TSS_ADDRESS);
      vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
      vm.createIrqchip();
      vm.createPit2();

      const memory = GuestMemory.allocate(config.memMiB * MIB);
      memory.register(vm);

      const serials = openSerialPorts(vm, config.serials, cleanup);
      const cmdline = [
        ...(serials.consolePort ? [`console=ttyS${serials.consolePort - 1}`] : []),
        ...rootParams(config.disks),
        ...config.params,
      ].join(" ");
      const lastRegion = memory.regions[memory.regions.length - 1];
      const acpi = buildAcpiTables({
        cpus: config.cpus,
        memoryTop: lastRegion.guestAddress + lastRegion.size,
        isa: { serialPorts: COM_PORTS, i8042: true, rtc: true },
      });
      memory.write(acpi.address, acpi.blob);
      memory.write(RESET_VECTOR_ADDRESS, resetVectorStub());
      const entry = loadBootImages(memory, {
        kernel: { path: config.kernel, bytes: kernel },
        initrd: initrd && { path: config.initrd ?? "", bytes: initrd },
        cmdline,
        acpi,
      });

      const virtio = new VirtioDevices(vm, memory, {
        barWindowBase: PCI_MMIO_32_BASE,
        barWindowSize: PCI_MMIO_32_SIZE,
        intxGsis: PCI_INTX_GSIS,
      });
      cleanup.defer(() => virtio.close());
      // Disks first, in order, so the guest probes them as vda, vdb, …
      disks.forEach((disk, i) => virtio.add(`virtio-blk-${diskName(i)}`, disk));
      if (config.rng) virtio.add("virtio-rng", { kind: "rng" });

      const lowMemory = memory.regions[0].size;
      const highMemory = memory.size - lowMemory;
      const devices: DeviceSpec[] = [
        ...serials.specs,
        { kind: "i8042", state: I8042.createState() },
        { kind: "cmos", state: Cmos.createState(lowMemory, highMemory) },
        {
          kind: "pci",
          state: PciConfigIo.createState(),
          ecamBase: PCIE_ECAM_BASE,
          ecamSize: PCIE_ECAM_SIZE,
          barWindowBase: PCI_MMIO_32_BASE,
          barWindowSize: PCI_MMIO_32_SIZE,
        },
        ...virtio.specs,
        { kind: "acpi-pm" },
        { kind: "absorb", name: "io-delay", ranges: IO_DELAY_PORTS },
      ];

      const runSize = kvm.vcpuMmapSize();
      const supportedCpuid = kvm.supportedCpuid();
      const vcpus: Vcpu[] = [];
      for (let id = 0; id < config.cpus; id++) {
        const fd = vm.createVcpu(id);
        cleanup.defer(() => fd.close());
        const runAddress = fd.mapRun(runSize);
        cleanup.defer(() => munmap(runAddress, runSize));
        fd.setCpuid(cpuidForVcpu(supportedCpuid, id, config.cpus));
        fd.setMsrs(bootMsrs());
        setDefaultFpu(fd);
        setLocalInterrupts(fd);
        if (id === 0) setBootVcpuState(fd, entry);
        vcpus.push({ fd, runAddress });
      }
      log.debug(`vm: built with ${config.cpus} vCPUs and ${config.memMiB} MiB`);
      return new Vm(
        control,
        threads,
        memory,
        cmdline,
        cleanup.move(),
        vcpus,
        runSize,
        devices,
        serials,
        options,
        config.logLevel,
        virtio,
      );
    } catch (e) {
      cleanup.dispose();
      throw e;
    }
  }

  /** Starts every vCPU, runs until the VM ends, then frees everything. */
  async run(): Promise<VmResult> {
    try {
      const devicesStarted = this.virtio.start(this.logLevel);
      await Promise.all(this.vcpus.map((vcpu) =>
        this.threads.spawn({
          id: vcpu.fd.id,
          vcpuFd: vcpu.fd.fd,
          runAddress: vcpu.runAddress,
          runSize: this.runSize,
          devices: this.devices,
          control: this.control.buffer,
          logLevel: this.logLevel,
        })
      ));
      await devicesStarted;
      log.debug(`vm: ${this.vcpus.length} vCPUs in KVM_RUN`);
      const stdinPort = this.serials.stdinPort;
      if (this.options.attachStdin && stdinPort && !this.control.stopRequested) {
        this.#pump = new StdinPump(buildSerial(stdinPort));
        this.#pump.start();
      }
      const exits = await this.threads.join();
      const deviceError = await this.virtio.stop();
      return {
        reason: this.control.reason ?? "stop",
        error: exits.find((e) => e.error !== undefined)?.error ?? deviceError,
        stats: exits.map((e) => e.stats),
      };
    } finally {
      this.#pump?.stop();
      await this.virtio.stop();
      this.cleanup.dispose();
    }
  }

  /** Asks the VM to stop; {@link run} then resolves with reason `"stop"`. */
  stop(): void {
    this.control.requestExit("stop");
    this.threads.kickAll();
  }
}

function openKvm(path: string): Kvm {
  try {
    return Kvm.open(path);
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    if (e.is("ENOENT")) {
      throw new VmSetupError(
        `${path} does not exist: this host has no KVM (is the module loaded?)`,
      );
    }
    if (e.is("EACCES") || e.is("EPERM")) {
      throw new VmSetupError(`no permission to open ${path} (join the 'kvm' group or run as root)`);
    }
    if (e.is("ENOTTY") || e.is("EINVAL")) throw new VmSetupError(`${path} is not a KVM device`);
    throw new VmSetupError(`cannot open ${path}: ${e.message}`);
  }
}

async function readImage(what: string, path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new VmSetupError(`${what} ${path}: no such file`);
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new VmSetupError(`${what} ${path}: permission denied`);
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new VmSetupError(`${what} ${path}: is a directory`);
    }
    throw new VmSetupError(`${what} ${path}: cannot read it (${(e as Error).message})`);
  }
}
