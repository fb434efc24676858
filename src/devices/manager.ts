/**
 * The device manager: one place that owns every device of a VM and decides where it sits.
 *
 * - Platform devices (UARTs, i8042, RTC, power management, absorbed ports) arrive as specs the
 *   architecture filled in with their ports; the manager keeps them in bus order.
 * - The PCI root goes where {@link PciPlacement} says (configuration ports, ECAM, BAR window).
 * - Each virtio device gets the next slot on bus 0, a BAR in the window, MSI-X GSIs from the VM's
 *   router and, when the platform wires INTx, its INTA# GSI; then, while the VM runs, a runner of
 *   its own for its queues: a jailed process ({@link DeviceProcess}) when the VM has a sandbox,
 *   else a Worker ({@link VirtioDeviceThread}). A runner that ends before it is stopped is a
 *   failure of the VM.
 *
 * The vCPU Workers see only {@link DeviceManager.specs}: a device can move to another runner
 * without the vCPU side changing.
 *
 * @module
 */

import type { VmFd } from "../ffi/kvm.ts";
import { GsiRouter } from "../irq_routing.ts";
import type { LogLevel } from "../log.ts";
import type { GuestMemory } from "../memory.ts";
import type { SharableRegion, SharedArena } from "../shared_region.ts";
import { PciConfigIo } from "./pci/config_io.ts";
import { PciBarAllocator } from "./pci/bar_window.ts";
import { devfn } from "./pci/root.ts";
import type { DeviceSpec, PciSpec } from "./registry.ts";
import type { BackendSpec } from "./virtio/kinds.ts";
import { DeviceProcess } from "./virtio/process/device_process.ts";
import type { DeviceRunner } from "./virtio/runner.ts";
import type { SeccompPolicy } from "../sandbox/policy.ts";
import {
  createVirtioPci,
  virtioBarSize,
  type VirtioPciDevice,
} from "./virtio/transport/pci/create.ts";
import { type VirtioPciSpec, VirtioPciState } from "./virtio/transport/pci/state.ts";
import { signalEventfd } from "../ffi/eventfd.ts";
import { pollUntil } from "../sync.ts";
import { VirtioDeviceThread } from "./virtio/worker/thread.ts";

/** Bus 0 slot of the first virtio function (00:00.0 is the host bridge), as in crosvm. */
export const FIRST_VIRTIO_SLOT = 1;

/** A guest-physical or I/O address range. */
export interface AddressRange {
  /** First address. */
  readonly base: number;
  /** Length in bytes. */
  readonly size: number;
}

/** Where the architecture puts PCI: decided once, by the architecture's memory map. */
export interface PciPlacement {
  /** First port of configuration mechanism #1. */
  readonly configIoPort: number;
  /** The ECAM window (PCI Express enhanced configuration access). */
  readonly ecam: AddressRange;
  /** The 32-bit BAR window (also the MMIO range the BAR window device covers). */
  readonly barWindow: AddressRange;
  /**
   * The IOAPIC GSI that INTA# of a function in `slot` drives, or null when the platform gives PCI
   * no INTx lines (MSI-X only). The architecture describes the same wiring to the guest (x86_64:
   * the DSDT's `_PRT`).
   */
  intxGsi(slot: number): number | null;
}

/** How the devices are jailed: prepared (policies read and checked) before the VM is built. */
export interface DeviceSandbox {
  /** Log seccomp violations instead of killing the device. */
  readonly logFailures: boolean;
  /** The seccomp policy of a device type, and the file it came from. */
  policyFor(backend: BackendSpec): { readonly file: string; readonly policy: SeccompPolicy };
}

/** How long {@link DeviceManager.quiesce} and {@link DeviceManager.updateConfig} wait for runners to confirm. */
export const QUIESCE_TIMEOUT_MS = 5000;
/** How often it looks. */
const QUIESCE_POLL_MS = 1;

/** Called once, when a device runner ends that nobody stopped, with one line saying how. */
export type DeviceFailure = (message: string) => void;

/** A platform device spec: anything on the buses but the PCI root and its functions. */
export type PlatformDeviceSpec = Exclude<DeviceSpec, PciSpec | VirtioPciSpec>;

/** Every device of one VM, from creation to the end of the run. */
export class DeviceManager {
  /** The VM's GSI routing state, shared by every device and thread. */
  readonly router: SharedArrayBuffer = GsiRouter.createState();
  readonly #platform: PlatformDeviceSpec[] = [];
  readonly #pciRoot: PciSpec;
  readonly #virtio: VirtioPciDevice[] = [];
  readonly #bars: PciBarAllocator;
  #runners: DeviceRunner[] = [];
  #starting: Promise<void> | undefined;
  #stopping = false;
  #stateViews: VirtioPciState[] | undefined;

  /**
   * A manager with the PCI root and no other device yet.
   * @param vm the VM (irqfds are bound, doorbells and routes go to it); null builds unbound
   *   eventfds (tests without KVM)
   * @param memory guest RAM, for the devices' runners
   * @param pci where the PCI root and its BARs go
   * @param sandbox how to jail the virtio devices (then `memory` must be shareable), or null to
   *   run them in Workers
   * @param arena where the devices' state goes (the tail of guest RAM's arena; memfd-backed
   *   with a sandbox); by default each device's state is a buffer of its own
   */
  constructor(
    private readonly vm: VmFd | null,
    private readonly memory: GuestMemory,
    private readonly pci: PciPlacement,
    private readonly sandbox: DeviceSandbox | null = null,
    private readonly arena?: SharedArena,
  ) {
    this.#bars = new PciBarAllocator(pci.barWindow.base, pci.barWindow.size);
    this.#pciRoot = {
      kind: "pci",
      configIoPort: pci.configIoPort,
      state: PciConfigIo.createState(),
      ecamBase: pci.ecam.base,
      ecamSize: pci.ecam.size,
      barWindowBase: pci.barWindow.base,
      barWindowSize: pci.barWindow.size,
    };
  }

  /** Adds a platform device at the ports its spec names (overlaps are refused by the buses). */
  addPlatform(spec: PlatformDeviceSpec): void {
    this.#platform.push(spec);
  }

  /**
   * Adds a virtio-pci device in the next free slot of bus 0, in order: the guest probes
   * functions by slot, so the first disk added is /dev/vda.
   */
  addVirtio(name: string, backend: BackendSpec): VirtioPciSpec {
    const slot = FIRST_VIRTIO_SLOT + this.#virtio.length;
    const device = createVirtioPci({
      name,
      devfn: devfn(slot, 0),
      backend,
      barAddress: this.#bars.allocate(virtioBarSize(backend)),
      router: this.router,
      vm: this.vm,
      intxGsi: this.pci.intxGsi(slot),
      allocateState: this.#stateAllocator(),
    });
    this.#virtio.push(device);
    return device.spec;
  }

  /** Where a device's state goes: the arena's tail, memfd-backed when devices are jailed. */
  #stateAllocator(): ((size: number, name: string) => SharableRegion) | undefined {
    const { arena, sandbox } = this;
    if (arena === undefined) return undefined;
    return (size, name) => arena.allocate(size, sandbox === null ? undefined : name);
  }

  /** Every device's spec, for the vCPU Workers' buses: the PCI root before its functions. */
  get specs(): DeviceSpec[] {
    return [...this.#platform, this.#pciRoot, ...this.#virtio.map((d) => d.spec)];
  }

  /**
   * Starts one runner per virtio device; resolves when all of them wait for their driver. The
   * vCPUs may start meanwhile: whatever the driver does first waits in shared state and eventfds.
   * Call it from the main thread (a jailed process dies with the thread that spawned it).
   * @param onFailure told when a runner ends before {@link stop} (a crash, a seccomp kill)
   * @throws Error when one fails to start (the others are stopped again)
   */
  start(logLevel: LogLevel, onFailure: DeviceFailure = () => {}): Promise<void> {
    const starting = this.#start(logLevel, onFailure);
    // The caller may await other things first: a failure must not count as unhandled meanwhile.
    starting.catch(() => {});
    this.#starting = starting;
    return starting;
  }

  /** Stops every runner (once they have started); resolves with the first error one ended with. */
  async stop(): Promise<string | undefined> {
    this.#stopping = true;
    await this.#starting?.catch(() => {});
    this.#starting = undefined;
    return await this.#stopRunners();
  }

  /**
   * Makes every virtio device keep quiet (a full suspend): resolves once each runner has
   * confirmed that it serves no queue and raises no interrupt until {@link wake}.
   * @throws Error naming the devices that did not confirm within {@link QUIESCE_TIMEOUT_MS}
   *   (they are woken again)
   */
  async quiesce(): Promise<void> {
    const states = this.#states();
    for (const state of states) {
      state.regs.requestQuiesce();
      signalEventfd(state.spec.controlFd);
    }
    try {
      await this.#until(() => states.every((s) => s.regs.quiesced), "the quiesce");
    } catch (e) {
      const late = states.filter((s) => !s.regs.quiesced).map((s) => s.spec.name);
      this.wake();
      throw new Error(`${late.join(", ")}: ${(e as Error).message}`);
    }
  }

  /** Lets every virtio device run again after {@link quiesce}. */
  wake(): void {
    for (const state of this.#states()) {
      state.regs.endQuiesce();
      signalEventfd(state.spec.controlFd);
    }
  }

  /** The virtio devices of `kind`, in the order they were added (disk 0 first). */
  devicesOf(kind: BackendSpec["kind"]): VirtioPciDevice[] {
    return this.#virtio.filter((device) => device.backend.kind === kind);
  }

  /**
   * Changes `device`'s configuration bytes at `offset` (a disk's capacity), waits until its
   * runner has taken the change in, then tells the driver with a configuration change
   * notification (§2.5.2).
   * @throws Error when the runner did not confirm within {@link QUIESCE_TIMEOUT_MS}
   */
  async updateConfig(device: VirtioPciDevice, offset: number, bytes: Uint8Array): Promise<void> {
    const state = this.stateOf(device);
    const epoch = state.lock.with(() => state.regs.updateConfig(offset, bytes));
    signalEventfd(state.spec.controlFd);
    await this.#until(() => state.regs.configSeen >= epoch, `${device.spec.name}: configuration`);
    state.interrupt.config();
  }

  /** Resolves once `done` holds; throws after {@link QUIESCE_TIMEOUT_MS} naming `what`. */
  async #until(done: () => boolean, what: string): Promise<void> {
    if (!await pollUntil(done, QUIESCE_TIMEOUT_MS, QUIESCE_POLL_MS)) {
      throw new Error(`${what} not confirmed within ${QUIESCE_TIMEOUT_MS} ms`);
    }
  }

  /** This thread's view of `device`'s shared state (for a device type's own VMM-side control). */
  stateOf(device: VirtioPciDevice): VirtioPciState {
    const i = this.#virtio.indexOf(device);
    if (i < 0) throw new RangeError(`${device.spec.name} is not a device of this manager`);
    return this.#states()[i];
  }

  /** This thread's view of each virtio device's shared state, built on first use. */
  #states(): VirtioPciState[] {
    this.#stateViews ??= this.#virtio.map((device) => new VirtioPciState(device.spec));
    return this.#stateViews;
  }

  /** Releases every device's eventfds (after {@link stop}, before the VM fd closes). */
  close(): void {
    for (const device of this.#virtio) device.close();
  }

  async #start(logLevel: LogLevel, onFailure: DeviceFailure): Promise<void> {
    const started = await Promise.allSettled(
      this.#virtio.map((device) => this.#startRunner(device, logLevel)),
    );
    this.#runners = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    const failed = started.find((s) => s.status === "rejected");
    if (failed !== undefined) {
      await this.#stopRunners();
      throw failed.reason;
    }
    for (const [i, runner] of this.#runners.entries()) {
      runner.exited.then((error) => {
        if (this.#stopping) return;
        onFailure(error ?? `${this.#virtio[i].spec.name}: the device stopped on its own`);
      });
    }
  }

  async #startRunner(device: VirtioPciDevice, logLevel: LogLevel): Promise<DeviceRunner> {
    if (this.sandbox === null) {
      return await VirtioDeviceThread.start({
        spec: device.spec,
        backend: device.backend,
        memory: this.memory.shared,
        logLevel,
      });
    }
    const { file, policy } = this.sandbox.policyFor(device.backend);
    return await DeviceProcess.start({
      device,
      memory: this.memory,
      sandbox: { policy, policyFile: file, logFailures: this.sandbox.logFailures },
      logLevel,
    });
  }

  async #stopRunners(): Promise<string | undefined> {
    const runners = this.#runners;
    this.#runners = [];
    const errors = await Promise.all(runners.map((t) => t.stop()));
    return errors.find((e) => e !== undefined);
  }
}
