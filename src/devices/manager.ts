/**
 * A VM's virtio-pci devices, from the main thread: slots on bus 0, BAR addresses, GSIs and
 * eventfds at build time ({@link VirtioDevices.add}), then one device Worker each while the VM
 * runs ({@link VirtioDevices.start} / {@link VirtioDevices.stop}).
 *
 * @module
 */

import type { VmFd } from "../ffi/kvm.ts";
import { GsiRouter } from "../irq_routing.ts";
import type { LogLevel } from "../log.ts";
import type { GuestMemory } from "../memory.ts";
import { intxGsiForSlot, PciIntxPin } from "../arch/x86_64/pci_intx.ts";
import { PciBarAllocator } from "./pci/bar_window.ts";
import { devfn } from "./pci/root.ts";
import type { BackendSpec } from "./virtio/kinds.ts";
import { VirtioDeviceThread } from "./virtio/worker/thread.ts";
import {
  createVirtioPci,
  virtioBarSize,
  type VirtioPciDevice,
} from "./virtio/transport/pci/create.ts";
import type { VirtioPciSpec } from "./virtio/transport/pci/state.ts";

/** Bus 0 slot of the first virtio function (00:00.0 is the host bridge), as in crosvm. */
export const FIRST_VIRTIO_SLOT = 1;

/** Where the devices go. */
export interface VirtioPlacement {
  /** The 32-bit BAR window (also the MMIO range the BAR window device covers). */
  readonly barWindowBase: number;
  /** Its size. */
  readonly barWindowSize: number;
  /**
   * IOAPIC GSIs for INTx, INTA# of a slot chosen by `intxGsiForSlot` (an empty list: MSI-X only).
   * The DSDT's `_PRT` describes `PCI_INTX_GSIS`, which is what the VM passes.
   */
  readonly intxGsis: readonly number[];
}

/** The virtio devices of one VM. */
export class VirtioDevices {
  /** The VM's GSI routing state, shared by every device and thread. */
  readonly router: SharedArrayBuffer = GsiRouter.createState();
  readonly #devices: VirtioPciDevice[] = [];
  readonly #bars: PciBarAllocator;
  #threads: VirtioDeviceThread[] = [];
  #starting: Promise<void> | undefined;

  /**
   * No devices yet.
   * @param vm the VM (irqfds are bound, doorbells and routes go to it)
   * @param memory guest RAM, for the device Workers
   * @param placement where BARs and INTx lines go
   */
  constructor(
    private readonly vm: VmFd,
    private readonly memory: GuestMemory,
    private readonly placement: VirtioPlacement,
  ) {
    this.#bars = new PciBarAllocator(placement.barWindowBase, placement.barWindowSize);
  }

  /** Adds a device in the next free slot. */
  add(name: string, backend: BackendSpec): VirtioPciSpec {
    const slot = FIRST_VIRTIO_SLOT + this.#devices.length;
    const gsis = this.placement.intxGsis;
    const device = createVirtioPci({
      name,
      devfn: devfn(slot, 0),
      backend,
      barAddress: this.#bars.allocate(virtioBarSize(backend)),
      router: this.router,
      vm: this.vm,
      intxGsi: gsis.length === 0 ? null : intxGsiForSlot(slot, PciIntxPin.INTA, gsis),
    });
    this.#devices.push(device);
    return device.spec;
  }

  /** Every device's spec, for the vCPU Workers' buses. */
  get specs(): VirtioPciSpec[] {
    return this.#devices.map((d) => d.spec);
  }

  /**
   * Starts one Worker per device; resolves when all of them wait for the driver. The vCPUs may
   * start meanwhile: whatever the driver does first waits in shared state and eventfds.
   * @throws Error when one fails to start (the others are stopped again)
   */
  start(logLevel: LogLevel): Promise<void> {
    const starting = this.#start(logLevel);
    // The caller may await other things first: a failure must not count as unhandled meanwhile.
    starting.catch(() => {});
    this.#starting = starting;
    return starting;
  }

  /** Stops every Worker (once they have started); resolves with the first error one ended with. */
  async stop(): Promise<string | undefined> {
    await this.#starting?.catch(() => {});
    this.#starting = undefined;
    return await this.#stopThreads();
  }

  async #start(logLevel: LogLevel): Promise<void> {
    const started = await Promise.allSettled(
      this.#devices.map((device) =>
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

  /** Releases every device's eventfds (after {@link stop}, before the VM fd closes). */
  close(): void {
    for (const device of this.#devices) device.close();
  }
}
