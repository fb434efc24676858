/**
 * A virtio-pci guest driver for tests, doing what Linux's drivers/virtio/virtio_pci_modern.c and
 * virtio_pci_modern_dev.c do, in the same order, through real buses: configuration space via
 * ECAM, the BAR through the BAR window on the MMIO bus, and a split ring in guest memory.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  MIB,
  PCI_MMIO_32_BASE,
  PCI_MMIO_32_SIZE,
  PCIE_ECAM_BASE,
  PCIE_ECAM_SIZE,
  ramRegions,
} from "../../src/arch/x86_64/layout.ts";
import { Bus } from "../../src/bus.ts";
import { drainEventfd } from "../../src/ffi/eventfd.ts";
import type { VmFd } from "../../src/ffi/kvm.ts";
import { GsiRouter, type RouteSubmitter } from "../../src/irq_routing.ts";
import type { IrqRoute } from "../../src/ffi/kvm_irq_routing.ts";
import { PciBarAllocator, PciBarWindow } from "../../src/devices/pci/bar_window.ts";
import { PciEcam } from "../../src/devices/pci/ecam.ts";
import { devfn, PciRoot } from "../../src/devices/pci/root.ts";
import type { BackendSpec } from "../../src/devices/virtio/kinds.ts";
import {
  createVirtioPci,
  virtioBarSize,
  type VirtioPciDevice,
} from "../../src/devices/virtio/transport/pci/create.ts";
import { CommonCfg } from "../../src/devices/virtio/transport/pci/layout.ts";
import { VirtioPciState } from "../../src/devices/virtio/transport/pci/state.ts";
import {
  type DoorbellRegistrar,
  VirtioPciFunction,
} from "../../src/devices/virtio/transport/pci/transport.ts";
import {
  availRingSize,
  descTableSize,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
} from "../../src/devices/virtio/queue.ts";
import { GuestMemory } from "../../src/memory.ts";

/** The test device's slot, 00:01.0, as crosvm places its first PCI device. */
export const TEST_DEVICE = 1;
/** Where the driver moves the BAR to (another spot in the 32-bit window). */
export const RELOCATED_BAR = PCI_MMIO_32_BASE + 0x10_0000;

// PCI configuration registers and bits the driver uses (PCI Local Bus Spec 3.0 §6.1, §6.2).
export const PCI = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_PROG_IF: 0x09,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  BAR0: 0x10,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  COMMAND_MEMORY: 0x2,
  COMMAND_MASTER: 0x4,
  COMMAND_INTX_DISABLE: 0x400,
  STATUS_INTERRUPT: 0x8,
  STATUS_CAP_LIST: 0x10,
  CAP_ID_VNDR: 0x09,
  CAP_ID_MSIX: 0x11,
  MSIX_FLAGS: 2,
  MSIX_TABLE: 4,
  MSIX_PBA: 8,
  MSIX_FLAGS_ENABLE: 0x8000,
  MSIX_FLAGS_MASKALL: 0x4000,
} as const;

/** `include/uapi/linux/virtio_pci.h` VIRTIO_PCI_CAP_*_CFG. */
export const CFG = { COMMON: 1, NOTIFY: 2, ISR: 3, DEVICE: 4, PCI: 5 } as const;

/** `include/uapi/linux/virtio_config.h` status bits. */
export const S = { ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8, NEEDS_RESET: 64 };
/** `include/uapi/linux/virtio_pci.h` VIRTIO_MSI_NO_VECTOR. */
export const NO_VECTOR = 0xffff;

/** One vendor capability as `virtio_pci_find_capability` reads it. */
export interface VirtioCap {
  at: number;
  cfgType: number;
  bar: number;
  offset: number;
  length: number;
  notifyOffMultiplier?: number;
}

/** Guest RAM areas of queue 0 and its buffers. */
export const RING = { desc: 0x10_0000, avail: 0x11_0000, used: 0x12_0000, data: 0x20_0000 };

/** Buses, root, window and one virtio function, as a vCPU Worker would have them. */
export class TestBed {
  readonly memory = GuestMemory.allocate(ramRegions(16 * MIB));
  readonly mmio = new Bus("mmio");
  readonly root = new PciRoot();
  readonly window = new PciBarWindow("pci-bars", PCI_MMIO_32_BASE);
  readonly router = GsiRouter.createState();
  /** Every routing table the function submitted. */
  readonly tables: IrqRoute[][] = [];
  /** Irqfd bindings of the MSI-X vectors: `bind fd@gsi` / `unbind fd@gsi`. */
  readonly irqfdLog: string[] = [];
  /** Doorbell registrations: `assign fd@address` / `deassign fd@address`. */
  readonly doorbellLog: string[] = [];
  readonly device: VirtioPciDevice;
  readonly fn: VirtioPciFunction;
  readonly barAddress: number;

  /**
   * @param options the backend (virtio-rng by default), the INTx GSI (10; null for none), and a
   *   VM whose KVM then takes the doorbells and routes (by default both are recorded instead)
   */
  constructor(options: { backend?: BackendSpec; intxGsi?: number | null; vm?: VmFd } = {}) {
    const { backend = { kind: "rng" }, intxGsi = 10, vm } = options;
    this.mmio.insert(new PciEcam("pci-ecam", this.root), PCIE_ECAM_BASE, PCIE_ECAM_SIZE);
    this.mmio.insert(this.window, PCI_MMIO_32_BASE, PCI_MMIO_32_SIZE);
    const allocator = new PciBarAllocator(PCI_MMIO_32_BASE, PCI_MMIO_32_SIZE);
    this.barAddress = allocator.allocate(virtioBarSize(backend));
    this.device = createVirtioPci({
      name: "virtio-test",
      devfn: devfn(TEST_DEVICE, 0),
      backend,
      barAddress: this.barAddress,
      router: this.router,
      vm: vm ?? null,
      intxGsi,
    });
    const submit: RouteSubmitter = (routes) => void this.tables.push([...routes]);
    const doorbells: DoorbellRegistrar = {
      assign: (fd, address) => void this.doorbellLog.push(`assign ${fd}@${hex(address)}`),
      deassign: (fd, address) => void this.doorbellLog.push(`deassign ${fd}@${hex(address)}`),
    };
    this.fn = vm === undefined
      ? new VirtioPciFunction(
        this.device.spec,
        doorbells,
        new VirtioPciState(
          this.device.spec,
          submit,
          (fd, gsi, bound) => void this.irqfdLog.push(`${bound ? "bind" : "unbind"} ${fd}@${gsi}`),
        ),
      )
      : new VirtioPciFunction(this.device.spec);
    this.root.add(this.device.spec.devfn, this.fn);
    this.window.add(this.fn);
  }

  /** Frees the eventfds. */
  close(): void {
    this.device.close();
  }

  /** A little-endian MMIO read of `size` bytes. */
  read(address: number, size: number): number {
    const data = new Uint8Array(size);
    this.mmio.read(address, data);
    return data.reduceRight((acc, byte) => acc * 256 + byte, 0);
  }

  /** A little-endian MMIO write of `size` bytes. */
  write(address: number, value: number, size: number): void {
    const data = Uint8Array.from({ length: size }, (_, i) => Math.floor(value / 256 ** i) % 256);
    this.mmio.write(address, data);
  }
}

/** The driver: config-space helpers, then the virtio_pci_modern steps. */
export class ModernDriver {
  caps = new Map<number, VirtioCap>();
  msixCap = 0;
  bar = 0;
  /** Size of queue 0 as set up. */
  queueSize = 0;
  /** Where vector v's message goes (an x86 LAPIC address with v as the data). */
  readonly messages: { addressLo: number; data: number }[] = [];
  #avail = 0;
  #nextDesc = 0;

  constructor(readonly bed: TestBed, readonly slot = TEST_DEVICE) {}

  cfgRead(register: number, size: number): number {
    return this.bed.read(PCIE_ECAM_BASE + (this.slot << 15) + register, size);
  }

  cfgWrite(register: number, value: number, size: number): void {
    this.bed.write(PCIE_ECAM_BASE + (this.slot << 15) + register, value, size);
  }

  /** `pci_read_bases` for BAR 0: save, write all ones, read the mask, restore. */
  sizeBar0(): number {
    const saved = this.cfgRead(PCI.BAR0, 4);
    this.cfgWrite(PCI.BAR0, 0xffff_ffff, 4);
    const mask = this.cfgRead(PCI.BAR0, 4);
    this.cfgWrite(PCI.BAR0, saved, 4);
    return mask;
  }

  /** `vp_modern_probe`: IDs, then every vendor capability by `cfg_type`, and MSI-X. */
  probe(): void {
    assert.equal(this.cfgRead(PCI.VENDOR_ID, 2), 0x1af4);
    const device = this.cfgRead(PCI.DEVICE_ID, 2);
    assert.ok(device >= 0x1040 && device <= 0x107f, `device ID ${device.toString(16)}`);
    assert.ok(this.cfgRead(PCI.STATUS, 2) & PCI.STATUS_CAP_LIST);
    for (let at = this.cfgRead(PCI.CAPABILITY_LIST, 1); at !== 0; at = this.cfgRead(at + 1, 1)) {
      assert.equal(at % 4, 0, "capabilities are dword aligned");
      const id = this.cfgRead(at, 1);
      if (id === PCI.CAP_ID_MSIX) this.msixCap = at;
      if (id !== PCI.CAP_ID_VNDR) continue;
      const cap: VirtioCap = {
        at,
        cfgType: this.cfgRead(at + 3, 1),
        bar: this.cfgRead(at + 4, 1),
        offset: this.cfgRead(at + 8, 4),
        length: this.cfgRead(at + 12, 4),
      };
      if (cap.cfgType === CFG.NOTIFY) cap.notifyOffMultiplier = this.cfgRead(at + 16, 4);
      if (!this.caps.has(cap.cfgType)) this.caps.set(cap.cfgType, cap);
    }
  }

  /** `pci_enable_device` + `pci_set_master` with BAR 0 where the VMM put it (or `address`). */
  enable(address = (this.cfgRead(PCI.BAR0, 4) & ~0xf) >>> 0): void {
    this.cfgWrite(PCI.BAR0, address, 4);
    this.bar = address;
    const command = this.cfgRead(PCI.COMMAND, 2);
    this.cfgWrite(PCI.COMMAND, command | PCI.COMMAND_MEMORY | PCI.COMMAND_MASTER, 2);
  }

  /** Address of `offset` in the region of capability type `cfgType`. */
  region(cfgType: number, offset = 0): number {
    const cap = this.caps.get(cfgType);
    assert.ok(cap, `no capability of type ${cfgType}`);
    return this.bar + cap.offset + offset;
  }

  common(register: number, size: number): number {
    return this.bed.read(this.region(CFG.COMMON, register), size);
  }

  setCommon(register: number, value: number, size: number): void {
    this.bed.write(this.region(CFG.COMMON, register), value, size);
  }

  get status(): number {
    return this.common(CommonCfg.DEVICE_STATUS, 1);
  }

  addStatus(bits: number): void {
    this.setCommon(CommonCfg.DEVICE_STATUS, this.status | bits, 1);
  }

  /** `vp_reset`: write 0, then poll until the device reads 0 (§4.1.4.3.2). */
  async reset(timeoutMs = 5000): Promise<void> {
    this.setCommon(CommonCfg.DEVICE_STATUS, 0, 1);
    const deadline = Date.now() + timeoutMs;
    while (this.status !== 0) {
      assert.ok(Date.now() < deadline, "device_status never read 0 after reset");
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** The 64 offered feature bits (`vp_get_features`). */
  deviceFeatures(): bigint {
    this.setCommon(CommonCfg.DEVICE_FEATURE_SELECT, 0, 4);
    const lo = this.common(CommonCfg.DEVICE_FEATURE, 4);
    this.setCommon(CommonCfg.DEVICE_FEATURE_SELECT, 1, 4);
    const hi = this.common(CommonCfg.DEVICE_FEATURE, 4);
    return BigInt(lo) | (BigInt(hi) << 32n);
  }

  /** `vp_finalize_features` + `virtio_features_ok`: returns whether FEATURES_OK stuck. */
  negotiate(features: bigint): boolean {
    this.setCommon(CommonCfg.DRIVER_FEATURE_SELECT, 0, 4);
    this.setCommon(CommonCfg.DRIVER_FEATURE, Number(features & 0xffff_ffffn), 4);
    this.setCommon(CommonCfg.DRIVER_FEATURE_SELECT, 1, 4);
    this.setCommon(CommonCfg.DRIVER_FEATURE, Number(features >> 32n), 4);
    this.addStatus(S.FEATURES_OK);
    return (this.status & S.FEATURES_OK) !== 0;
  }

  /** `virtio_dev_probe` up to FEATURES_OK, accepting `features` of the offered ones. */
  async initialise(features = this.deviceFeatures()): Promise<void> {
    await this.reset();
    this.addStatus(S.ACKNOWLEDGE);
    this.addStatus(S.DRIVER);
    assert.ok(this.negotiate(features), "FEATURES_OK refused");
  }

  /**
   * `pci_alloc_irq_vectors(PCI_IRQ_MSIX)`: enable with the function masked, program each entry
   * (masked), unmask each, then unmask the function.
   */
  enableMsix(vectors: number): void {
    const flags = this.cfgRead(this.msixCap + PCI.MSIX_FLAGS, 2);
    this.cfgWrite(
      this.msixCap + PCI.MSIX_FLAGS,
      flags | PCI.MSIX_FLAGS_ENABLE | PCI.MSIX_FLAGS_MASKALL,
      2,
    );
    const table = this.cfgRead(this.msixCap + PCI.MSIX_TABLE, 4);
    assert.equal(table & 7, 0, "table in BAR 0");
    for (let v = 0; v < vectors; v++) {
      const entry = this.bar + (table & ~7) + v * 16;
      const message = { addressLo: 0xfee0_0000, data: 0x40 + v };
      this.messages[v] = message;
      this.bed.write(entry, message.addressLo, 4);
      this.bed.write(entry + 4, 0, 4);
      this.bed.write(entry + 8, message.data, 4);
      this.bed.write(entry + 12, 0, 4); // unmask the entry
    }
    this.cfgWrite(this.msixCap + PCI.MSIX_FLAGS, flags | PCI.MSIX_FLAGS_ENABLE, 2);
  }

  /** Sets vector `v`'s mask bit. */
  maskVector(v: number, masked: boolean): void {
    const table = this.cfgRead(this.msixCap + PCI.MSIX_TABLE, 4) & ~7;
    this.bed.write(this.bar + table + v * 16 + 12, masked ? 1 : 0, 4);
  }

  /** `vp_modern_config_vector`: write, read back. */
  setConfigVector(vector: number): number {
    this.setCommon(CommonCfg.CONFIG_MSIX_VECTOR, vector, 2);
    return this.common(CommonCfg.CONFIG_MSIX_VECTOR, 2);
  }

  /** `setup_vq` for queue 0 of `size` entries at {@link RING}, then (as `find_vqs`) enable it. */
  setupQueue0(size: number, vector: number): void {
    this.setCommon(CommonCfg.QUEUE_SELECT, 0, 2);
    const max = this.common(CommonCfg.QUEUE_SIZE, 2);
    assert.ok(max >= size && this.common(CommonCfg.QUEUE_ENABLE, 2) === 0);
    this.setCommon(CommonCfg.QUEUE_SIZE, size, 2);
    const pair = (lo: number, value: number) => {
      this.setCommon(lo, value % 2 ** 32, 4);
      this.setCommon(lo + 4, Math.floor(value / 2 ** 32), 4);
    };
    pair(CommonCfg.QUEUE_DESC_LO, RING.desc);
    pair(CommonCfg.QUEUE_DRIVER_LO, RING.avail);
    pair(CommonCfg.QUEUE_DEVICE_LO, RING.used);
    this.setCommon(CommonCfg.QUEUE_MSIX_VECTOR, vector, 2);
    assert.equal(this.common(CommonCfg.QUEUE_MSIX_VECTOR, 2), vector, "vector refused");
    this.setCommon(CommonCfg.QUEUE_ENABLE, 1, 2);
    const mem = this.bed.memory;
    mem.slice(RING.desc, descTableSize(size)).fill(0);
    mem.slice(RING.avail, availRingSize(size)).fill(0);
    mem.slice(RING.used, 4 + VIRTQ_USED_ELEM_SIZE * size + 2).fill(0);
    this.#avail = 0;
    this.#nextDesc = 0;
    this.queueSize = size;
  }

  /** Publishes a chain of device-writable buffers of `lengths` bytes; returns their addresses. */
  publishWritable(lengths: number[], flagsOverride?: number): { head: number; buffers: number[] } {
    const mem = this.bed.memory;
    const head = this.#nextDesc;
    const buffers: number[] = [];
    lengths.forEach((len, k) => {
      const i = this.#nextDesc++ % this.queueSize;
      const address = RING.data + i * 0x1_0000;
      buffers.push(address);
      mem.slice(address, len).fill(0);
      const at = RING.desc + i * VIRTQ_DESC_SIZE;
      const last = k === lengths.length - 1;
      mem.writeU64(at, BigInt(address));
      mem.writeU32(at + 8, len);
      mem.writeU16(at + 12, flagsOverride ?? (VIRTQ_DESC_F_WRITE | (last ? 0 : VIRTQ_DESC_F_NEXT)));
      mem.writeU16(at + 14, (i + 1) % this.queueSize);
    });
    mem.writeU16(RING.avail + VIRTQ_AVAIL_RING + 2 * (this.#avail % this.queueSize), head);
    this.#avail++;
    mem.writeU16(RING.avail + VIRTQ_AVAIL_IDX, this.#avail & 0xffff);
    return { head, buffers };
  }

  /** `vp_notify`: a 16-bit write of the queue index at its doorbell. */
  notify(queue = 0): void {
    this.setCommon(CommonCfg.QUEUE_SELECT, queue, 2);
    const off = this.common(CommonCfg.QUEUE_NOTIFY_OFF, 2);
    const cap = this.caps.get(CFG.NOTIFY)!;
    this.bed.write(this.region(CFG.NOTIFY, off * cap.notifyOffMultiplier!), queue, 2);
  }

  /** used.idx. */
  usedIdx(): number {
    return this.bed.memory.readU16(RING.used + VIRTQ_USED_IDX);
  }

  /** Used ring entry `i`. */
  used(i: number): { id: number; len: number } {
    const at = RING.used + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * (i % this.queueSize);
    return { id: this.bed.memory.readU32(at), len: this.bed.memory.readU32(at + 4) };
  }

  /** Waits until used.idx reaches `count`. */
  async waitUsed(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.usedIdx() !== count) {
      assert.ok(Date.now() < deadline, `used.idx stuck at ${this.usedIdx()}, wanted ${count}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

/**
 * Waits until eventfd `fd` has been signalled and drains it: a device publishes a used entry
 * before it signals the vector, so the count may come just after {@link ModernDriver.waitUsed}.
 * @returns the count drained
 */
export async function waitSignalled(fd: number, timeoutMs = 5000): Promise<bigint> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const count = drainEventfd(fd);
    if (count !== 0n) return count;
    assert.ok(Date.now() < deadline, `eventfd ${fd} not signalled in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
