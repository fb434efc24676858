/**
 * One virtio-pci device's shared state and the spec every thread rebuilds it from: the vCPU
 * Workers (register accesses), the device's Worker (queues) and the main thread (creation and
 * stop) each build a {@link VirtioPciState} over the same SharedArrayBuffer and descriptors.
 *
 * State layout (Uint32 cells): the virtio registers (cell 0 is the device's lock word), then the
 * 256 bytes of configuration space, then the MSI-X table and PBA, then the cells the device type
 * shares with the VMM beyond virtio's registers (`hostCells`: a balloon's statistics).
 *
 * @module
 */

import { irqfd } from "../../../../ffi/kvm_irq_routing.ts";
import { GsiRouter, kvmRouteSubmitter, type RouteSubmitter } from "../../../../irq_routing.ts";
import {
  privateRegion,
  type SharableRegion,
  type SharedRegion,
} from "../../../../shared_region.ts";
import { SharedMutex } from "../../../../sync.ts";
import { DWORD } from "../../../access.ts";
import { CellCarver, cellsNeeded } from "../../../register_cells.ts";
import { CONFIG_DWORDS, ConfigRegisters } from "../../../pci/config_regs.ts";
import { BAR0 } from "../../../pci/config_space.ts";
import { Msix, msixCells, type MsixDelivery } from "../../../pci/msix.ts";
import { type IntxLine, VirtioInterrupt } from "./interrupt.ts";
import { type BarLayout, barLayout } from "./layout.ts";
import { type VirtioConfigImage, virtioConfigImage } from "./capabilities.ts";
import { regsCells, VirtioRegs, type VirtioRegsShape } from "../../registers.ts";
import {
  featureBit,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
} from "../../spec.ts";

/** The lock word is cell 0 of the state. */
const LOCK_CELL = 0;

/** Transport features every device offers on top of its own (§6). */
const TRANSPORT_FEATURES = featureBit(VIRTIO_F_VERSION_1) |
  featureBit(VIRTIO_F_INDIRECT_DESC) | featureBit(VIRTIO_F_EVENT_IDX);

/** A device as the transport sees it: structured-cloneable, the same in every thread. */
export interface VirtioDeviceInfo {
  /** §5 device ID. */
  readonly deviceType: number;
  /** Device-specific feature bits offered (the transport adds {@link TRANSPORT_FEATURES}). */
  readonly features: bigint;
  /** Maximum size of each queue (powers of two, §2.7). */
  readonly queueSizes: readonly number[];
  /** Initial device-specific configuration (§4.1.4.6); empty when the type has none. */
  readonly config: Uint8Array;
  /** 24-bit PCI class code. */
  readonly pciClass: number;
  /** The bytes of {@link config} the driver may write (a balloon's `actual`), or null. */
  readonly driverWritableConfig: { readonly offset: number; readonly length: number } | null;
  /** Cells the device type shares with the VMM beyond the registers (0 for most). */
  readonly hostCells: number;
}

/** A virtio-pci function, as every thread receives it. */
export interface VirtioPciSpec {
  /** Tells this spec apart in the VM's device list. */
  kind: "virtio-pci";
  /** For logs, e.g. `virtio-rng`. */
  name: string;
  /** Its slot on bus 0 (`devfn`). */
  devfn: number;
  /** What the device is. */
  device: VirtioDeviceInfo;
  /** The device's shared state (memfd-backed when a jailed process runs the device). */
  state: SharedRegion;
  /** The VM's GSI routing state ({@link GsiRouter.createState}). */
  router: SharedArrayBuffer;
  /** The VM fd for KVM_IOEVENTFD and KVM_SET_GSI_ROUTING, or -1 without KVM (tests). */
  vmFd: number;
  /** GSI of MSI-X vector 0; vector v uses `msiGsiBase + v`. */
  msiGsiBase: number;
  /** Per MSI-X vector, the irqfd bound to its GSI. */
  vectorFds: number[];
  /** Per queue, the eventfd its doorbell signals (registered with KVM_IOEVENTFD). */
  queueFds: number[];
  /** Wakes the device Worker: DRIVER_OK, reset and stop. */
  controlFd: number;
  /** The INTx line, or null for an MSI-X-only function. */
  intx: IntxLine | null;
}

/** MSI-X vectors for a device: one per queue plus one for configuration changes. */
export function vectorCount(device: VirtioDeviceInfo): number {
  return device.queueSizes.length + 1;
}

/** The BAR layout of a device. */
export function deviceBarLayout(device: VirtioDeviceInfo): BarLayout {
  return barLayout(device.queueSizes.length, vectorCount(device), device.config.length);
}

/** The configuration space image of a device. */
function deviceConfigImage(
  device: VirtioDeviceInfo,
  intxLine: number | null,
): VirtioConfigImage {
  return virtioConfigImage(
    {
      deviceType: device.deviceType,
      pciClass: device.pciClass,
      intxLine,
      vectors: vectorCount(device),
    },
    deviceBarLayout(device),
  );
}

interface Cells {
  regs: Uint32Array;
  config: Uint32Array;
  msix: Uint32Array;
  host: Uint32Array;
}

function carve(
  region: SharedRegion | null,
  device: VirtioDeviceInfo,
): Cells & { total: number } {
  const counts = {
    regs: regsCells(device.queueSizes.length, device.config.length),
    config: CONFIG_DWORDS,
    msix: msixCells(vectorCount(device)),
    host: device.hostCells,
  };
  const total = counts.regs + counts.config + counts.msix + counts.host;
  const carver = region === null
    ? new CellCarver(new SharedArrayBuffer(cellsNeeded(total)))
    : new CellCarver(region.buffer, region.offset);
  return {
    regs: carver.take(counts.regs),
    config: carver.take(counts.config),
    msix: carver.take(counts.msix),
    host: carver.take(counts.host),
    total,
  };
}

/** One thread's handle on a virtio-pci device's shared state. */
export class VirtioPciState {
  /** Guards every register below. */
  readonly lock: SharedMutex;
  /** Configuration space. */
  readonly config: ConfigRegisters;
  /** MSI-X table, PBA and delivery. */
  readonly msix: Msix;
  /** Virtio transport registers. */
  readonly regs: VirtioRegs;
  /** Interrupt delivery. */
  readonly interrupt: VirtioInterrupt;
  /** Where the regions sit in the BAR. */
  readonly bar: BarLayout;
  /** The configuration image (write masks, capability offsets). */
  readonly image: VirtioConfigImage;
  /** The cells the device type shares with the VMM ({@link VirtioDeviceInfo.hostCells}). */
  readonly host: Int32Array;

  /**
   * Builds this thread's view of the state `spec` describes.
   * @param spec the device's spec
   * @param submitRoutes where MSI route tables go; by default KVM_SET_GSI_ROUTING on
   *   `spec.vmFd`, or nowhere without a VM
   * @param bindIrqfd what binds and unbinds the vectors' irqfds; by default KVM_IRQFD on
   *   `spec.vmFd` where routes go there, else nothing
   */
  constructor(
    readonly spec: VirtioPciSpec,
    submitRoutes?: RouteSubmitter,
    bindIrqfd?: MsixDelivery["bind"],
  ) {
    const cells = carve(spec.state, spec.device);
    this.bar = deviceBarLayout(spec.device);
    this.image = deviceConfigImage(spec.device, spec.intx?.gsi ?? null);
    this.lock = new SharedMutex(new Int32Array(spec.state.buffer, spec.state.offset), LOCK_CELL);
    this.config = new ConfigRegisters(cells.config, this.image.image.writable);
    const submit = submitRoutes ?? (spec.vmFd >= 0 ? kvmRouteSubmitter(spec.vmFd) : () => {});
    // Irqfds are bound where routes go to KVM: the threads that handle the guest's table writes.
    const vmFd = submitRoutes === undefined ? spec.vmFd : -1;
    const bind = bindIrqfd ??
      (vmFd < 0
        ? undefined
        : (fd: number, gsi: number, bound: boolean) => irqfd(vmFd, fd, gsi, !bound));
    this.msix = new Msix(
      cells.msix,
      vectorCount(spec.device),
      this.config,
      this.image.msixCapability,
      {
        firstGsi: spec.msiGsiBase,
        irqfds: spec.vectorFds,
        router: new GsiRouter(spec.router, submit),
        bind,
      },
    );
    this.regs = new VirtioRegs(cells.regs, regsShape(spec.device));
    this.host = new Int32Array(cells.host.buffer, cells.host.byteOffset, cells.host.length);
    this.interrupt = new VirtioInterrupt(this.lock, this.regs, this.msix, this.config, spec.intx);
  }

  /**
   * The state for `device`, initialised to power-on values: the configuration image (with BAR 0
   * at `barAddress`), every MSI-X vector masked, the virtio registers reset.
   * @param allocate where the state goes (default: a buffer of its own, for this process's
   *   Workers); a jailed device needs a region it can map from a memfd
   */
  static createState(
    device: VirtioDeviceInfo,
    barAddress: number,
    intxLine: number | null,
    allocate: (size: number) => SharableRegion = privateRegion,
  ): SharableRegion {
    const sized = carve(null, device);
    const state = allocate(cellsNeeded(sized.total));
    const cells = carve(state, device);
    const { image } = deviceConfigImage(device, intxLine);
    ConfigRegisters.initialize(cells.config, image);
    const size = deviceBarLayout(device).size;
    if (barAddress % size !== 0) throw new RangeError(`BAR address not ${size}-byte aligned`);
    const config = new ConfigRegisters(cells.config, image.writable);
    config.store(BAR0 / DWORD, config.readDword(BAR0 / DWORD) | barAddress);
    Msix.initialize(cells.msix, vectorCount(device));
    const regs = new VirtioRegs(cells.regs, regsShape(device));
    regs.reset();
    regs.loadConfig(device.config);
    return state;
  }
}

function regsShape(device: VirtioDeviceInfo): VirtioRegsShape {
  return {
    offeredFeatures: device.features | TRANSPORT_FEATURES,
    queueSizes: device.queueSizes,
    vectors: vectorCount(device),
    configLength: device.config.length,
  };
}
