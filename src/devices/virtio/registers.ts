/**
 * The transport-level state of one virtio device (OASIS virtio 1.2 §2 and §4.1.4.3): feature
 * negotiation, device status, the per-queue configuration, the ISR, the device-specific
 * configuration and its generation, kept in SharedArrayBuffer cells that the vCPU Workers (which
 * handle register accesses) and the device's Worker (which runs the queues) share.
 *
 * Nothing here locks: every method must run under the owning device's lock.
 *
 * @module
 */

import { DWORD } from "../access.ts";
import { U32_RANGE } from "../../ffi/struct.ts";
import { readCellBytes, writeCellBytes } from "../register_cells.ts";
import {
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  VIRTIO_F_VERSION_1,
  VIRTIO_MSI_NO_VECTOR,
} from "./spec.ts";

// Control cells. Cell 0 is the device's lock word, owned by the device, not by this class.
const DEVICE_FEATURE_SELECT = 1;
const DRIVER_FEATURE_SELECT = 2;
const DRIVER_FEATURES_LO = 3;
const DRIVER_FEATURES_HI = 4;
const CONFIG_MSIX_VECTOR = 5;
const DEVICE_STATUS = 6;
const CONFIG_GENERATION = 7;
const QUEUE_SELECT = 8;
const ISR = 9;
/** The driver wrote 0 to device_status while the Worker ran queues: it must drop them first. */
const RESET_PENDING = 10;
/** The device Worker has live queues. */
const WORKER_ACTIVE = 11;
/** The queue doorbells are registered with KVM_IOEVENTFD at {@link DOORBELL_BASE}. */
const DOORBELL_REGISTERED = 12;
const DOORBELL_BASE = 13;
/** The VMM asked the device Worker to exit. */
const STOP = 14;
/** Whether the device must stay quiet (a full suspend): one of the `QUIESCE_*` values. */
const QUIESCE = 15;
/** The device runs as usual. */
const QUIESCE_NONE = 0;
/** The VMM asked the device to stop processing queues and raising interrupts. */
const QUIESCE_REQUESTED = 1;
/** The device's runner has stopped processing queues and raising interrupts. */
const QUIESCE_DONE = 2;
/** How many device configuration updates the VMM has announced ({@link VirtioRegs.updateConfig}). */
const CONFIG_EPOCH = 16;
/** The last of them the device's runner has taken in. */
const CONFIG_SEEN = 17;
/** Control cells, the lock included. */
const CONTROL_CELLS = 18;

// Per-queue cells.
const Q_SIZE = 0;
const Q_MSIX_VECTOR = 1;
const Q_ENABLE = 2;
const Q_DESC = 3; // lo, hi
const Q_DRIVER = 5; // lo, hi
const Q_DEVICE = 7; // lo, hi
/** Cells per queue. */
const QUEUE_CELLS = 9;

/** The driver_feature / device_feature window is 32 bits wide (§4.1.4.3). */
const FEATURE_WINDOW_BITS = 32n;
const FEATURE_WINDOW_MASK = 0xffff_ffffn;
/** Feature windows past the second are beyond the 64 bits we track. */
const FEATURE_WINDOWS = 2;

/** What the static description of a device gives the transport. */
export interface VirtioRegsShape {
  /** Every feature bit the device offers, transport features included. */
  readonly offeredFeatures: bigint;
  /** Maximum size of each queue. */
  readonly queueSizes: readonly number[];
  /** MSI-X vectors (a vector number at or past this maps to nothing). */
  readonly vectors: number;
  /** Bytes of device-specific configuration. */
  readonly configLength: number;
}

/** Shared cells {@link VirtioRegs} needs for a device of `queues` queues and `configLength` bytes. */
export function regsCells(queues: number, configLength: number): number {
  return CONTROL_CELLS + queues * QUEUE_CELLS + Math.ceil(configLength / DWORD);
}

/** The driver's configuration of one queue, as the device Worker snapshots it at DRIVER_OK. */
export interface QueueSetup {
  /** Queue index. */
  readonly index: number;
  /** queue_size as the driver set it. */
  readonly size: number;
  /** queue_desc: the descriptor table. */
  readonly descTable: number;
  /** queue_driver: the available ring. */
  readonly availRing: number;
  /** queue_device: the used ring. */
  readonly usedRing: number;
}

/** What a write to device_status asks of the transport. */
export type StatusChange =
  /** Nothing beyond storing it. */
  | "none"
  /** The driver wrote 0: reset the device (§2.4). */
  | "reset"
  /** DRIVER_OK was set after a successful FEATURES_OK: start the queues (§3.1.1 step 8). */
  | "driver-ok"
  /** DRIVER_OK without FEATURES_OK: DEVICE_NEEDS_RESET was set (§2.1.2). */
  | "needs-reset";

/** One thread's view of a device's transport registers. */
export class VirtioRegs {
  readonly #c: Uint32Array;
  readonly #queues: Uint32Array;
  readonly #config: Uint32Array;

  /**
   * Views the shared registers.
   * @param cells {@link regsCells} shared cells (cell 0 is the device's lock word)
   * @param shape the device's static description
   */
  constructor(cells: Uint32Array, readonly shape: VirtioRegsShape) {
    const queues = shape.queueSizes.length;
    this.#c = cells;
    this.#queues = cells.subarray(CONTROL_CELLS, CONTROL_CELLS + queues * QUEUE_CELLS);
    this.#config = cells.subarray(CONTROL_CELLS + queues * QUEUE_CELLS);
  }

  /** Number of queues (`num_queues`). */
  get numQueues(): number {
    return this.shape.queueSizes.length;
  }

  /**
   * The device reset of §2.4: status, features, queue configuration and vectors back to their
   * initial values (queue_size = maximum, queue_enable = 0, vectors = NO_VECTOR), ISR cleared.
   * Keeps config_generation and the device-specific configuration; MSI-X table entries are PCI
   * state and survive too.
   */
  reset(): void {
    const c = this.#c;
    for (const cell of [DEVICE_FEATURE_SELECT, DRIVER_FEATURE_SELECT, QUEUE_SELECT, ISR]) {
      Atomics.store(c, cell, 0);
    }
    Atomics.store(c, DRIVER_FEATURES_LO, 0);
    Atomics.store(c, DRIVER_FEATURES_HI, 0);
    Atomics.store(c, CONFIG_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR);
    Atomics.store(c, RESET_PENDING, 0);
    Atomics.store(c, WORKER_ACTIVE, 0);
    this.shape.queueSizes.forEach((max, q) => {
      const at = q * QUEUE_CELLS;
      this.#queues.fill(0, at, at + QUEUE_CELLS);
      Atomics.store(this.#queues, at + Q_SIZE, max);
      Atomics.store(this.#queues, at + Q_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR);
    });
    Atomics.store(c, DEVICE_STATUS, 0);
  }

  // --- features (§2.2, §4.1.4.3) ---

  /** `device_feature_select`. */
  get deviceFeatureSelect(): number {
    return Atomics.load(this.#c, DEVICE_FEATURE_SELECT);
  }

  set deviceFeatureSelect(value: number) {
    Atomics.store(this.#c, DEVICE_FEATURE_SELECT, value);
  }

  /** `device_feature`: the 32 offered bits the select register picks (0 past bit 63). */
  get deviceFeature(): number {
    return featureWindow(this.shape.offeredFeatures, this.deviceFeatureSelect);
  }

  /** `driver_feature_select`. */
  get driverFeatureSelect(): number {
    return Atomics.load(this.#c, DRIVER_FEATURE_SELECT);
  }

  set driverFeatureSelect(value: number) {
    Atomics.store(this.#c, DRIVER_FEATURE_SELECT, value);
  }

  /** `driver_feature`: the 32 accepted bits the select register picks. */
  get driverFeature(): number {
    return featureWindow(this.driverFeatures, this.driverFeatureSelect);
  }

  /**
   * Stores 32 accepted bits at the selected window. Ignored once FEATURES_OK is set: the
   * negotiated set is then fixed until reset (§3.1.1 step 5).
   */
  set driverFeature(value: number) {
    const select = this.driverFeatureSelect;
    if (select >= FEATURE_WINDOWS || this.status & STATUS_FEATURES_OK) return;
    Atomics.store(this.#c, select === 0 ? DRIVER_FEATURES_LO : DRIVER_FEATURES_HI, value);
  }

  /** Every feature bit the driver accepted. */
  get driverFeatures(): bigint {
    return BigInt(Atomics.load(this.#c, DRIVER_FEATURES_LO)) |
      (BigInt(Atomics.load(this.#c, DRIVER_FEATURES_HI)) << FEATURE_WINDOW_BITS);
  }

  /**
   * Whether the accepted set may be confirmed with FEATURES_OK: only offered bits (§2.2.1: the
   * driver MUST NOT accept a feature the device did not offer), and VIRTIO_F_VERSION_1, without
   * which a non-transitional device cannot operate (§6.1).
   */
  #featuresAcceptable(): boolean {
    const accepted = this.driverFeatures;
    return (accepted & ~this.shape.offeredFeatures) === 0n &&
      (accepted >> BigInt(VIRTIO_F_VERSION_1)) % 2n === 1n;
  }

  // --- status (§2.1, §3.1.1) ---

  /** `device_status`. While a reset is pending it still reads non-zero (§4.1.4.3.2). */
  get status(): number {
    return Atomics.load(this.#c, DEVICE_STATUS);
  }

  /**
   * Handles a driver write to `device_status`. FEATURES_OK is only kept when the accepted
   * features are acceptable (§2.2.2: the device fails to set it otherwise, and the driver sees it
   * on re-reading, §3.1.1 step 6). DEVICE_NEEDS_RESET stays set until reset.
   */
  writeStatus(value: number): StatusChange {
    if (value === 0) return "reset";
    const old = this.status;
    let next = value & 0xff;
    if (next & STATUS_FEATURES_OK && !(old & STATUS_FEATURES_OK) && !this.#featuresAcceptable()) {
      next &= ~STATUS_FEATURES_OK;
    }
    next |= old & STATUS_DEVICE_NEEDS_RESET;
    let change: StatusChange = "none";
    if (next & STATUS_DRIVER_OK && !(old & STATUS_DRIVER_OK)) {
      if (next & STATUS_FEATURES_OK) change = "driver-ok";
      else {
        next |= STATUS_DEVICE_NEEDS_RESET;
        change = "needs-reset";
      }
    }
    Atomics.store(this.#c, DEVICE_STATUS, next);
    return change;
  }

  /** Sets DEVICE_NEEDS_RESET (§2.1.2); returns false when it was already set. */
  setNeedsReset(): boolean {
    const old = Atomics.or(this.#c, DEVICE_STATUS, STATUS_DEVICE_NEEDS_RESET);
    return (old & STATUS_DEVICE_NEEDS_RESET) === 0;
  }

  /** `config_generation`. */
  get configGeneration(): number {
    return Atomics.load(this.#c, CONFIG_GENERATION);
  }

  /** `config_msix_vector`. */
  get configVector(): number {
    return Atomics.load(this.#c, CONFIG_MSIX_VECTOR);
  }

  /** Stores a config vector; one past the MSI-X table maps to NO_VECTOR (§4.1.5.1.2). */
  set configVector(vector: number) {
    Atomics.store(this.#c, CONFIG_MSIX_VECTOR, this.#mapVector(vector));
  }

  // --- queues (§4.1.4.3) ---

  /** `queue_select`. */
  get queueSelect(): number {
    return Atomics.load(this.#c, QUEUE_SELECT);
  }

  set queueSelect(value: number) {
    Atomics.store(this.#c, QUEUE_SELECT, value);
  }

  /** Whether `q` names a queue the device has. */
  hasQueue(q: number): boolean {
    return q < this.numQueues;
  }

  /** `queue_size` of queue `q`. */
  queueSize(q: number): number {
    return this.#queue(q, Q_SIZE);
  }

  /** `queue_msix_vector` of queue `q`. */
  queueVector(q: number): number {
    return this.#queue(q, Q_MSIX_VECTOR);
  }

  /** `queue_enable` of queue `q`. */
  queueEnabled(q: number): boolean {
    return this.#queue(q, Q_ENABLE) === 1;
  }

  /** One 32-bit half of `queue_desc`, `queue_driver` or `queue_device`. */
  queueAddressHalf(q: number, area: QueueArea, high: boolean): number {
    return this.#queue(q, AREA_CELL[area] + (high ? 1 : 0));
  }

  /**
   * Driver writes to a queue's registers. Size and addresses are frozen once the queue is enabled
   * (§4.1.4.3.2: they are configured before queue_enable); the vector may change at any time.
   */
  setQueueSize(q: number, size: number): void {
    if (!this.queueEnabled(q)) this.#setQueue(q, Q_SIZE, size);
  }

  /** Stores a queue vector; one past the MSI-X table maps to NO_VECTOR (§4.1.5.1.2). */
  setQueueVector(q: number, vector: number): void {
    this.#setQueue(q, Q_MSIX_VECTOR, this.#mapVector(vector));
  }

  /** `queue_enable` = 1 enables; §4.1.4.3.2 forbids writing 0 (that is queue_reset's job). */
  enableQueue(q: number, value: number): void {
    if (value === 1) this.#setQueue(q, Q_ENABLE, 1);
  }

  /** Stores one 32-bit half of a queue address while the queue is disabled. */
  setQueueAddressHalf(q: number, area: QueueArea, high: boolean, value: number): void {
    if (!this.queueEnabled(q)) this.#setQueue(q, AREA_CELL[area] + (high ? 1 : 0), value);
  }

  /** The configuration of every enabled queue. */
  enabledQueues(): QueueSetup[] {
    const out: QueueSetup[] = [];
    for (let q = 0; q < this.numQueues; q++) {
      if (!this.queueEnabled(q)) continue;
      const address = (area: QueueArea) =>
        this.queueAddressHalf(q, area, false) + this.queueAddressHalf(q, area, true) * U32_RANGE;
      out.push({
        index: q,
        size: this.queueSize(q),
        descTable: address("desc"),
        availRing: address("driver"),
        usedRing: address("device"),
      });
    }
    return out;
  }

  // --- ISR (§4.1.4.5) ---

  /** The ISR bits without clearing them. */
  get isr(): number {
    return Atomics.load(this.#c, ISR);
  }

  /** Sets ISR bits. */
  raiseIsr(bits: number): void {
    Atomics.or(this.#c, ISR, bits);
  }

  /** Reads and clears the ISR, as a driver read does (§4.1.4.5.1). */
  takeIsr(): number {
    return Atomics.exchange(this.#c, ISR, 0);
  }

  // --- device-specific configuration (§4.1.4.6) ---

  /** Reads device configuration bytes. */
  readConfig(offset: number, data: Uint8Array): void {
    if (offset + data.length <= this.shape.configLength) readCellBytes(this.#config, offset, data);
    else data.fill(0);
  }

  /** A driver's write of configuration bytes it may write (a balloon's `actual`). */
  writeConfig(offset: number, data: Uint8Array): void {
    if (offset + data.length <= this.shape.configLength) writeCellBytes(this.#config, offset, data);
  }

  /** Stores the initial configuration (no generation change: nobody has read it yet). */
  loadConfig(data: Uint8Array): void {
    writeCellBytes(this.#config, 0, data);
  }

  /**
   * The VMM changes device configuration bytes at `offset` (a disk's new capacity): the
   * generation moves (§4.1.4.3.1), and the change is announced to the device's runner, which
   * confirms it in {@link configSeen}. Call it holding the lock, then signal the control eventfd.
   * @returns the update's number, for {@link configSeen}
   */
  updateConfig(offset: number, data: Uint8Array): number {
    this.writeConfig(offset, data);
    Atomics.add(this.#c, CONFIG_GENERATION, 1);
    return Atomics.add(this.#c, CONFIG_EPOCH, 1) + 1;
  }

  /** The last update the VMM announced that the runner has not taken in, or 0. */
  get configPending(): number {
    const epoch = Atomics.load(this.#c, CONFIG_EPOCH);
    return epoch === Atomics.load(this.#c, CONFIG_SEEN) ? 0 : epoch;
  }

  /** The runner has taken in every update up to `epoch`. */
  confirmConfig(epoch: number): void {
    Atomics.store(this.#c, CONFIG_SEEN, epoch);
  }

  /** The last update the runner has taken in. */
  get configSeen(): number {
    return Atomics.load(this.#c, CONFIG_SEEN);
  }

  // --- coordination with the device Worker ---

  /** A reset waits for the device Worker to drop its queues. */
  get resetPending(): boolean {
    return Atomics.load(this.#c, RESET_PENDING) === 1;
  }

  /** Marks a reset as waiting for the device Worker. */
  requestReset(): void {
    Atomics.store(this.#c, RESET_PENDING, 1);
  }

  /** The device Worker has live queues. */
  get workerActive(): boolean {
    return Atomics.load(this.#c, WORKER_ACTIVE) === 1;
  }

  set workerActive(active: boolean) {
    Atomics.store(this.#c, WORKER_ACTIVE, active ? 1 : 0);
  }

  /** The VMM asked the device Worker to exit. */
  get stopRequested(): boolean {
    return Atomics.load(this.#c, STOP) === 1;
  }

  /** Asks the device Worker to exit (then signal its control eventfd). */
  requestStop(): void {
    Atomics.store(this.#c, STOP, 1);
  }

  /** The VMM asked the device to keep quiet (then signal its control eventfd). */
  requestQuiesce(): void {
    Atomics.store(this.#c, QUIESCE, QUIESCE_REQUESTED);
  }

  /** The VMM let the device run again (then signal its control eventfd). */
  endQuiesce(): void {
    Atomics.store(this.#c, QUIESCE, QUIESCE_NONE);
  }

  /** The device's runner must keep quiet (it was asked, or has answered). */
  get quiesceRequested(): boolean {
    return Atomics.load(this.#c, QUIESCE) !== QUIESCE_NONE;
  }

  /** The runner answers a quiesce request: nothing runs from here until {@link endQuiesce}. */
  confirmQuiesce(): void {
    Atomics.compareExchange(this.#c, QUIESCE, QUIESCE_REQUESTED, QUIESCE_DONE);
  }

  /** The runner keeps quiet. */
  get quiesced(): boolean {
    return Atomics.load(this.#c, QUIESCE) === QUIESCE_DONE;
  }

  /** Where the queue doorbells are registered with KVM, or null when they are not. */
  get doorbellBase(): number | null {
    return Atomics.load(this.#c, DOORBELL_REGISTERED) ? Atomics.load(this.#c, DOORBELL_BASE) : null;
  }

  set doorbellBase(base: number | null) {
    Atomics.store(this.#c, DOORBELL_BASE, base ?? 0);
    Atomics.store(this.#c, DOORBELL_REGISTERED, base === null ? 0 : 1);
  }

  #mapVector(vector: number): number {
    return vector < this.shape.vectors ? vector : VIRTIO_MSI_NO_VECTOR;
  }

  #queue(q: number, field: number): number {
    return Atomics.load(this.#queues, q * QUEUE_CELLS + field);
  }

  #setQueue(q: number, field: number, value: number): void {
    Atomics.store(this.#queues, q * QUEUE_CELLS + field, value);
  }
}

/** The three areas of a split queue (§2.7): descriptor table, driver (avail) and device (used). */
export type QueueArea = "desc" | "driver" | "device";

const AREA_CELL: Record<QueueArea, number> = { desc: Q_DESC, driver: Q_DRIVER, device: Q_DEVICE };

function featureWindow(features: bigint, select: number): number {
  if (select >= FEATURE_WINDOWS) return 0;
  return Number((features >> (BigInt(select) * FEATURE_WINDOW_BITS)) & FEATURE_WINDOW_MASK);
}
