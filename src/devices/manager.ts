/**
 * The device manager: one place that owns every device of a VM and decides where it sits.
 *
 * - Platform devices (UARTs, i8042, RTC, power management, absorbed ports) arrive as specs the
 *   architecture filled in with their ports; the manager keeps them in bus order.
 * - The PCI root goes where {@link PciPlacement} says (configuration ports, ECAM, BAR window).
 * - Each virtio device gets the next slot on bus 0, a BAR in the window, MSI-X GSIs from the VM's
 *   router and, when the platform wires INTx, its INTA# GSI; then, while the VM runs, a runner of
 *   its own for its queues (today a Worker: {@link VirtioDeviceThread}).
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
import { PciConfigIo } from "./pci/config_io.ts";
import { PciBarAllocator } from "./pci/bar_window.ts";
import { devfn } from "./pci/root.ts";
import type { DeviceSpec, PciSpec } from "./registry.ts";
import type { BackendSpec } from "./virtio/kinds.ts";
import {
  createVirtioPci,
  virtioBarSize,
  type VirtioPciDevice,
} from "./virtio/transport/pci/create.ts";
import type { VirtioPciSpec } from "./virtio/transport/pci/state.ts";
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
  #threads: VirtioDeviceThread[] = [];
  #starting: Promise<void> | undefined;

  /**
   * A manager with the PCI root and no other device yet.
   * @param vm the VM (irqfds are bound, doorbells and routes go to it); null builds unbound
   *   eventfds (tests without KVM)
   * @param memory guest RAM, for the devices' runners
   * @param pci where the PCI root and its BARs go
   */
  constructor(
    private readonly vm: VmFd | null,
    private readonly memory: GuestMemory,
    private readonly pci: PciPlacement,
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
    });
    this.#virtio.push(device);
    return device.spec;
  }

  /** Every device's spec, for the vCPU Workers' buses: the PCI root before its functions. */
  get specs(): DeviceSpec[] {
    return [...this.#platform, this.#pciRoot, ...this.#virtio.map((d) => d.spec)];
  }

  /**
   * Starts one runner per virtio device; resolves when all of them wait for their driver. The
   * vCPUs may start meanwhile: whatever the driver does first waits in shared state and eventfds.
   * @throws Error when one fails to start (the others are stopped again)
   */
  start(logLevel: LogLevel): Promise<void> {
    const starting = this.#start(logLevel);
    // The caller may await other things first: a failure must not count as unhandled meanwhile.
    starting.catch(() => {});
    this.#starting = starting;
    return starting;
  }

  /** Stops every runner (once they have started); resolves with the first error one ended with. */
  async stop(): Promise<string | undefined> {
    await this.#starting?.catch(() => {});
    this.#starting = undefined;
    return await this.#stopThreads();
  }

  /** Releases every device's eventfds (after {@link stop}, before the VM fd closes). */
  close(): void {
    for (const device of this.#virtio) device.close();
  }

  async #start(logLevel: LogLevel): Promise<void> {
    const started = await Promise.allSettled(
      this.#virtio.map((device) =>
        VirtioDeviceThread.start({
          spec: device.spec,
          backend: device.backend,
          memory: this.memory.shared,
          logLevel,
        })
      ),
    );
    this.#threads = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    const failed = started.find((s) => s.status === "rejected");
    if (failed !== undefined) {
      await this.#stopThreads();
      throw failed.reason;
    }
  }

  async #stopThreads(): Promise<string | undefined> {
    const errors = await Promise.all(this.#threads.map((t) => t.stop()));
    this.#threads = [];
    return errors.find((e) => e !== undefined);
  }
}
