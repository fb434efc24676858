/**
 * A modern (non-transitional) virtio-pci function (OASIS virtio 1.2 §4.1): its configuration
 * space on the PCI root, and its memory BAR behind the {@link PciBarWindow}, with the common
 * configuration (§4.1.4.3), notification (§4.1.4.4), ISR (§4.1.4.5) and device configuration
 * (§4.1.4.6) regions and the MSI-X table and PBA (PCI Local Bus Spec 3.0 §6.8.2).
 *
 * Register accesses run inline in whichever vCPU Worker trapped; every thread builds its own
 * {@link VirtioPciFunction} over the device's shared state and serialises on its lock.
 *
 * Doorbells never reach this code when KVM is there: each queue's notify address is registered
 * with KVM_IOEVENTFD, which signals the queue's eventfd in the kernel. The registration follows
 * the BAR: whichever vCPU handles a write that moves the BAR or toggles memory decoding
 * deassigns the old addresses and assigns the new ones under the device's lock. A doorbell write
 * that does trap (no KVM, or an access of another width) signals the same eventfd here.
 *
 * @module
 */

import { SyscallError } from "../../../../ffi/errno.ts";
import { VmFd } from "../../../../ffi/kvm.ts";
import { signalEventfd } from "../../../../ffi/eventfd.ts";
import * as log from "../../../../log.ts";
import { DWORD } from "../../../access.ts";
import type { PciBarClaim } from "../../../pci/bar_window.ts";
import { BAR0, COMMAND, type PciDevice, STATUS } from "../../../pci/config_space.ts";
import {
  BAR_MEMORY_ADDRESS_MASK,
  COMMAND_MEMORY_SPACE,
  STATUS_INTERRUPT,
} from "../../../pci/header_bits.ts";
import { MSIX_MESSAGE_CONTROL } from "../../../pci/msix.ts";
import { CommonConfig } from "./common_cfg.ts";
import {
  CAP_BAR,
  CAP_LENGTH,
  CAP_OFFSET,
  CAP_PCI_CFG_DATA,
  COMMON_CFG_SIZE,
  ISR_SIZE,
  NOTIFY_OFF_MULTIPLIER,
  NOTIFY_WRITE_SIZE,
  PCI_CFG_ACCESS_SIZES,
  VIRTIO_BAR,
} from "./layout.ts";
import { type VirtioPciSpec, VirtioPciState } from "./state.ts";
import type { StatusChange } from "../../registers.ts";

/** The command and status registers share dword 1. */
const COMMAND_STATUS_REGISTER = COMMAND / DWORD;
const STATUS_SHIFT = 8 * (STATUS - COMMAND);

/** Registers and removes doorbell eventfds (KVM_IOEVENTFD on the VM, or a test double). */
export interface DoorbellRegistrar {
  /** Makes a `length`-byte guest write at `address` signal `fd`. */
  assign(fd: number, address: number, length: number): void;
  /** Undoes {@link assign}. */
  deassign(fd: number, address: number, length: number): void;
}

/** Doorbells registered with KVM_IOEVENTFD on VM fd `vmFd`. */
function kvmDoorbells(vmFd: number): DoorbellRegistrar {
  const vm = new VmFd(vmFd);
  return {
    assign: (fd, address, length) => vm.ioeventfd(fd, address, length),
    deassign: (fd, address, length) => vm.ioeventfd(fd, address, length, { deassign: true }),
  };
}

/** One thread's virtio-pci function. */
export class VirtioPciFunction implements PciDevice, PciBarClaim {
  /** For logs. */
  readonly name: string;
  readonly #state: VirtioPciState;
  readonly #common: CommonConfig;
  readonly #doorbells: DoorbellRegistrar | null;
  /** Dword index of the PCI configuration access capability's `pci_cfg_data`. */
  readonly #pciCfgData: number;
  /** Dword index of the MSI-X capability's Message Control. */
  readonly #msixControl: number;

  /**
   * Builds the function over the device's shared state.
   * @param spec the device's spec
   * @param doorbells where queue doorbells get registered; by default KVM_IOEVENTFD on
   *   `spec.vmFd`, and none without a VM
   * @param state the device's state in this thread (built from `spec` unless given)
   */
  constructor(
    spec: VirtioPciSpec,
    doorbells?: DoorbellRegistrar | null,
    state = new VirtioPciState(spec),
  ) {
    this.name = spec.name;
    this.#state = state;
    this.#doorbells = doorbells !== undefined
      ? doorbells
      : (spec.vmFd >= 0 ? kvmDoorbells(spec.vmFd) : null);
    this.#common = new CommonConfig(state.regs, (change) => this.#statusChanged(change));
    this.#pciCfgData = (state.image.pciCfgCapability + CAP_PCI_CFG_DATA) / DWORD;
    this.#msixControl = Math.floor((state.image.msixCapability + MSIX_MESSAGE_CONTROL) / DWORD);
  }

  /** The shared state, for the main thread and tests. */
  get state(): VirtioPciState {
    return this.#state;
  }

  // --- configuration space (PciDevice) ---

  /**
   * A configuration dword. The status register's Interrupt Status bit mirrors the INTx level
   * (§4.1.4.5.1); `pci_cfg_data` reads through the access window (§4.1.4.9).
   */
  readConfigDword(register: number): number {
    const s = this.#state;
    if (register === this.#pciCfgData) return this.#pciCfgAccess(null);
    const value = s.config.readDword(register);
    if (register === COMMAND_STATUS_REGISTER && s.interrupt.intxPending) {
      return (value | (STATUS_INTERRUPT << STATUS_SHIFT)) >>> 0;
    }
    return value;
  }

  /** A guest configuration write: BAR and command changes move the doorbells; MSI-X control. */
  writeConfig(offset: number, data: Uint8Array): void {
    const register = Math.floor(offset / DWORD);
    if (register === this.#pciCfgData) {
      const window = new Uint8Array(DWORD);
      window.set(data, offset % DWORD);
      this.#pciCfgAccess(window);
      return;
    }
    const s = this.#state;
    s.lock.with(() => {
      const change = s.config.write(offset, data);
      if (change === undefined || change.before === change.after) return;
      if (register === COMMAND_STATUS_REGISTER || register === BAR0 / DWORD) {
        this.#syncDoorbells();
      }
      if (register === this.#msixControl) s.msix.controlWritten();
    });
  }

  // --- the BAR (PciBarClaim) ---

  /** The BAR offset of an access when memory decoding is on and the BAR covers it, else -1. */
  claim(address: number, length: number): number {
    const base = this.#decodedBase();
    if (base === null) return -1;
    const offset = address - base;
    return offset >= 0 && offset + length <= this.#state.bar.size ? offset : -1;
  }

  /** Reads a BAR region. */
  readBar(offset: number, data: Uint8Array): void {
    const s = this.#state;
    const bar = s.bar;
    if (within(offset, data.length, bar.common, COMMON_CFG_SIZE)) {
      s.lock.with(() => this.#common.read(offset - bar.common, data));
    } else if (within(offset, data.length, bar.isr, ISR_SIZE)) {
      // §4.1.4.5: reading the ISR clears it (and so stops INTx being re-asserted).
      data[0] = s.lock.with(() => s.regs.takeIsr());
    } else if (within(offset, data.length, bar.device, bar.deviceLength)) {
      s.lock.with(() => s.regs.readConfig(offset - bar.device, data));
    } else if (within(offset, data.length, bar.msixTable, bar.msixPba - bar.msixTable)) {
      s.lock.with(() => s.msix.readTable(offset - bar.msixTable, data));
    } else if (within(offset, data.length, bar.msixPba, bar.size - bar.msixPba)) {
      s.lock.with(() => s.msix.readPba(offset - bar.msixPba, data));
    } else {
      data.fill(0);
    }
  }

  /** Writes a BAR region. */
  writeBar(offset: number, data: Uint8Array): void {
    const s = this.#state;
    const bar = s.bar;
    if (within(offset, data.length, bar.common, COMMON_CFG_SIZE)) {
      s.lock.with(() => this.#common.write(offset - bar.common, data));
    } else if (within(offset, data.length, bar.notify, bar.notifyLength)) {
      this.#doorbell(offset - bar.notify, data.length);
    } else if (within(offset, data.length, bar.msixTable, bar.msixPba - bar.msixTable)) {
      s.lock.with(() => s.msix.writeTable(offset - bar.msixTable, data));
    } else if (within(offset, data.length, bar.device, bar.deviceLength)) {
      const at = offset - bar.device;
      const writable = s.spec.device.driverWritableConfig;
      if (writable !== null && within(at, data.length, writable.offset, writable.length)) {
        s.lock.with(() => s.regs.writeConfig(at, data));
      } else {
        log.debug(`${this.name}: device configuration write at ${at} dropped`);
      }
    }
    // The ISR and the PBA are read-only.
  }

  /** A trapped doorbell (§4.1.5.2): signal the queue's eventfd as KVM's ioeventfd would. */
  #doorbell(offset: number, length: number): void {
    const q = offset / NOTIFY_OFF_MULTIPLIER;
    if (!Number.isInteger(q) || length < NOTIFY_WRITE_SIZE) return;
    const fd = this.#state.spec.queueFds[q];
    if (fd !== undefined) signalEventfd(fd);
  }

  /** Runs under the lock, after the driver wrote device_status. */
  #statusChanged(change: StatusChange): void {
    const { regs, interrupt, spec } = this.#state;
    switch (change) {
      case "reset":
        // §4.1.4.3.2: device_status reads 0 only once the reset is complete. With queues live
        // in the device Worker, it completes the reset and status stays non-zero until then.
        if (regs.workerActive) {
          regs.requestReset();
          signalEventfd(spec.controlFd);
        } else {
          regs.reset();
        }
        return;
      case "driver-ok":
        signalEventfd(spec.controlFd);
        return;
      case "needs-reset":
        interrupt.configLocked();
        return;
      case "none":
        return;
    }
  }

  /** BAR 0's address when memory decoding is on, else null. */
  #decodedBase(): number | null {
    const config = this.#state.config;
    if (!(config.read(COMMAND, 2) & COMMAND_MEMORY_SPACE)) return null;
    return (config.readDword(BAR0 / DWORD) & BAR_MEMORY_ADDRESS_MASK) >>> 0;
  }

  /** Moves the doorbell registrations to where the BAR decodes now (under the lock). */
  #syncDoorbells(): void {
    const { regs, bar, spec } = this.#state;
    const decoded = this.#decodedBase();
    const base = decoded === null ? null : decoded + bar.notify;
    const old = regs.doorbellBase;
    if (base === old) return;
    regs.doorbellBase = base;
    const doorbells = this.#doorbells;
    if (doorbells === null) return;
    spec.queueFds.forEach((fd, q) => {
      const offset = q * NOTIFY_OFF_MULTIPLIER;
      if (old !== null) {
        this.#tolerate("deassign", () => doorbells.deassign(fd, old + offset, NOTIFY_WRITE_SIZE));
      }
      if (base !== null) {
        this.#tolerate("assign", () => doorbells.assign(fd, base + offset, NOTIFY_WRITE_SIZE));
      }
    });
  }

  /**
   * A doorbell that collides with another (two BARs programmed over each other, for a moment)
   * cannot be registered; its writes then trap and {@link writeBar} signals the eventfd instead.
   */
  #tolerate(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof SyscallError) || !(e.is("EEXIST") || e.is("ENOENT"))) throw e;
      log.warn(`${this.name}: doorbell ${what}: ${e.message}`);
    }
  }

  /**
   * The PCI configuration access window (§4.1.4.9): `pci_cfg_data` reads (`write` null) or
   * writes `length` bytes at `offset` of BAR `bar`, as set in the capability. Unsupported
   * settings read 0 and write nothing.
   */
  #pciCfgAccess(write: Uint8Array | null): number {
    const cap = this.#state.image.pciCfgCapability;
    const config = this.#state.config;
    const bar = config.read(cap + CAP_BAR, 1);
    const offset = config.read(cap + CAP_OFFSET, 4);
    const length = config.read(cap + CAP_LENGTH, 4);
    // §4.1.4.9.1: only 1, 2 and 4 byte accesses aligned to their size.
    const usable = bar === VIRTIO_BAR && PCI_CFG_ACCESS_SIZES.includes(length) &&
      offset % length === 0 && offset + length <= this.#state.bar.size;
    if (!usable) return 0;
    if (write !== null) {
      this.writeBar(offset, write.subarray(0, length));
      return 0;
    }
    const data = new Uint8Array(length);
    this.readBar(offset, data);
    const out = new Uint8Array(DWORD);
    out.set(data);
    return new DataView(out.buffer).getUint32(0, true);
  }
}

/** Whether `[offset, offset + length)` lies inside the region `[start, start + size)`. */
function within(offset: number, length: number, start: number, size: number): boolean {
  return offset >= start && offset + length <= start + size;
}

/** Builds a function from its spec (what the bus registry does in every thread). */
export function buildVirtioPci(spec: VirtioPciSpec): VirtioPciFunction {
  return new VirtioPciFunction(spec);
}
