/**
 * Building a virtio-pci device on the main thread at VM creation: its shared state, its GSIs,
 * and its eventfds (one irqfd per MSI-X vector for the vector's GSI, one doorbell eventfd
 * per queue, a control eventfd, and the INTx irqfd with its resample eventfd). Descriptors are
 * process-wide, so every thread uses the numbers in the resulting {@link VirtioPciSpec}.
 *
 * @module
 */

import type { SharableRegion } from "../../../../shared_region.ts";
import type { VmFd } from "../../../../ffi/kvm.ts";
import { irqfdResample } from "../../../../ffi/kvm_irq_routing.ts";
import { close, EFD_NONBLOCK, eventfd } from "../../../../ffi/libc.ts";
import { GsiRouter } from "../../../../irq_routing.ts";
import { type BackendSpec, createBackend, deviceInfo } from "../../kinds.ts";
import { deviceBarLayout, vectorCount, type VirtioPciSpec, VirtioPciState } from "./state.ts";

/** What to build. */
export interface VirtioPciOptions {
  /** For logs, e.g. `virtio-rng`. */
  name: string;
  /** Slot on bus 0 (from `devfn(device, function)`). */
  devfn: number;
  /** The device type and its options. */
  backend: BackendSpec;
  /** Where BAR 0 starts out (aligned to the BAR's size; see `PciBarAllocator`). */
  barAddress: number;
  /** The VM's GSI routing state. */
  router: SharedArrayBuffer;
  /** The VM, to bind irqfds; null builds unbound eventfds (tests without KVM). */
  vm: VmFd | null;
  /** IOAPIC GSI of the INTx line, or null for an MSI-X-only function. */
  intxGsi: number | null;
  /**
   * Where the device's state goes, given its size and a name for it (default: a buffer of its
   * own); a jailed device needs a memfd-backed region.
   */
  allocateState?: (size: number, name: string) => SharableRegion;
}

/** A built device: its spec, and the descriptors to release when the VM ends. */
export interface VirtioPciDevice {
  /** What every thread builds the device from. */
  readonly spec: VirtioPciSpec;
  /** What the device's runner builds the backend from. */
  readonly backend: BackendSpec;
  /** The memfd holding the state, when it was made shareable. */
  readonly stateFd?: number;
  /** Unbinds the irqfds and closes every eventfd. */
  close(): void;
}

/** The BAR size a backend's function needs (to allocate its address first). */
export function virtioBarSize(backend: BackendSpec): number {
  return deviceBarLayout(deviceInfo(createBackend(backend))).size;
}

/** Creates the device's state, GSIs and eventfds. */
export function createVirtioPci(options: VirtioPciOptions): VirtioPciDevice {
  const device = deviceInfo(createBackend(options.backend));
  const { vm, intxGsi } = options;
  const fds: number[] = [];
  const unbind: (() => void)[] = [];
  const newEventfd = () => {
    const fd = eventfd(0, EFD_NONBLOCK);
    fds.push(fd);
    return fd;
  };
  const release = () => {
    for (const undo of unbind.reverse()) undo();
    for (const fd of fds) close(fd);
  };
  try {
    const vectors = vectorCount(device);
    const msiGsiBase = new GsiRouter(options.router, () => {}).allocate(vectors);
    const vectorFds = Array.from({ length: vectors }, newEventfd);
    if (vm !== null) {
      // Each is bound while its vector is deliverable (msix.ts); unbinding one that is not bound
      // does nothing.
      vectorFds.forEach((fd, v) => unbind.push(() => vm.irqfd(fd, msiGsiBase + v, true)));
    }
    let intx: VirtioPciSpec["intx"] = null;
    if (intxGsi !== null) {
      intx = { gsi: intxGsi, irqfd: newEventfd(), resampleFd: newEventfd() };
      const line = intx;
      if (vm !== null) {
        irqfdResample(vm.fd, line.irqfd, line.gsi, line.resampleFd);
        unbind.push(() => irqfdResample(vm.fd, line.irqfd, line.gsi, line.resampleFd, true));
      }
    }
    const allocate = options.allocateState;
    const state = VirtioPciState.createState(
      device,
      options.barAddress,
      intxGsi,
      allocate && ((size) => allocate(size, `${options.name}-state`)),
    );
    if (state.fd !== undefined) fds.push(state.fd);
    const spec: VirtioPciSpec = {
      kind: "virtio-pci",
      name: options.name,
      devfn: options.devfn,
      device,
      state: { buffer: state.buffer, offset: state.offset, size: state.size },
      router: options.router,
      vmFd: vm?.fd ?? -1,
      msiGsiBase,
      vectorFds,
      queueFds: device.queueSizes.map(newEventfd),
      controlFd: newEventfd(),
      intx,
    };
    return { spec, backend: options.backend, stateFd: state.fd, close: release };
  } catch (e) {
    release();
    throw e;
  }
}
