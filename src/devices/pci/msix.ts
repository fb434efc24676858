/**
 * MSI-X (PCI Local Bus Spec 3.0 §6.8.2): the capability structure, the vector table and the
 * pending bit array, kept in a device's shared state so that every vCPU Worker and the device's
 * own Worker see one copy.
 *
 * Each vector owns a KVM GSI and an irqfd. The GSI's route follows the table entry: when an
 * entry becomes deliverable (MSI-X enabled, function and entry unmasked) or is rewritten while
 * deliverable, its message is handed to the VM's {@link GsiRouter}, which resubmits the whole
 * routing table. Signalling a masked vector sets its pending bit instead; unmasking delivers it
 * (§6.8.2.9).
 *
 * The irqfd is bound to the GSI (KVM_IRQFD) only while the vector is deliverable, so the kernel
 * may signal it directly (a vhost ring's call eventfd, with no wake-up of ours in between) and a
 * masked vector still holds its interrupt: what the kernel signals meanwhile waits in the
 * eventfd's count, and KVM delivers it when the binding comes back (it looks at the count when
 * an irqfd is assigned). Such an interrupt is pending without its PBA bit; drivers do not read
 * the PBA to find interrupts (Linux never does).
 *
 * Every method must run under the owning device's lock.
 *
 * @module
 */

import { signalEventfd } from "../../ffi/eventfd.ts";
import type { GsiRouter } from "../../irq_routing.ts";
import { DWORD, QWORD } from "../access.ts";
import { readCellBytes } from "../register_cells.ts";
import type { ConfigImage, ConfigRegisters } from "./config_regs.ts";
import { CAP_ID_MSIX } from "./header_bits.ts";

/** §6.8.2.3 Message Control, at offset 2 of the capability. */
export const MSIX_MESSAGE_CONTROL = 2;
/** §6.8.2.4 Table Offset/Table BIR, at offset 4. */
export const MSIX_TABLE_OFFSET = 4;
/** §6.8.2.5 PBA Offset/PBA BIR, at offset 8. */
export const MSIX_PBA_OFFSET = 8;
/** Message Control bits 10:0: table size, encoded as N - 1. */
export const MSIX_CONTROL_TABLE_SIZE = 0x7ff;
/** Message Control bit 14: every vector is masked, whatever its own mask bit says. */
export const MSIX_CONTROL_FUNCTION_MASK = 1 << 14;
/** Message Control bit 15: MSI-X is enabled (and INTx is off). */
export const MSIX_CONTROL_ENABLE = 1 << 15;
/** Table/PBA offset registers: bits 2:0 are the BAR indicator (BIR). */
export const MSIX_BIR_MASK = 0x7;
/** At most 2048 vectors (an 11-bit table size). */
export const MSIX_MAX_VECTORS = 2048;

/** §6.8.2.6: bytes per table entry. */
export const MSIX_ENTRY_SIZE = 16;
/** Entry offset of Message Address (low dword). */
export const MSIX_ENTRY_ADDRESS_LO = 0;
/** Entry offset of Message Upper Address. */
export const MSIX_ENTRY_ADDRESS_HI = 4;
/** Entry offset of Message Data. */
export const MSIX_ENTRY_DATA = 8;
/** Entry offset of Vector Control. */
export const MSIX_ENTRY_VECTOR_CONTROL = 12;
/** Vector Control bit 0 (§6.8.2.9): the vector is masked; set at reset. */
export const MSIX_VECTOR_MASKED = 1;
/** §6.8.2.10: the PBA is an array of QWORDs, one bit per vector. */
const MSIX_PBA_ENTRY_BITS = 64;

const CELLS_PER_ENTRY = MSIX_ENTRY_SIZE / DWORD;
const BITS_PER_CELL = 32;
/** Body bytes of the capability after its ID and next pointer: control, table and PBA offsets. */
export const CAPABILITY_BODY_SIZE = 10;

/** Bytes of the PBA for `vectors` vectors (whole QWORDs). */
export function pbaSize(vectors: number): number {
  return Math.ceil(vectors / MSIX_PBA_ENTRY_BITS) * QWORD;
}

/**
 * Shared cells the table and PBA of `vectors` vectors take, and the bitmap (as long as the PBA)
 * of the vectors whose irqfd is bound now.
 */
export function msixCells(vectors: number): number {
  return vectors * CELLS_PER_ENTRY + 2 * pbaSize(vectors) / DWORD;
}

/** Where the table and PBA live: both in BAR `bar`, at the given offsets (8-byte aligned). */
export interface MsixPlacement {
  /** Table size. */
  readonly vectors: number;
  /** The BAR both structures are in (BIR). */
  readonly bar: number;
  /** Offset of the table in the BAR. */
  readonly tableOffset: number;
  /** Offset of the PBA in the BAR. */
  readonly pbaOffset: number;
}

/**
 * Adds the MSI-X capability to `image` (disabled, function unmasked; only the enable and
 * function-mask bits writable); returns its offset.
 */
export function addMsixCapability(image: ConfigImage, placement: MsixPlacement): number {
  const { vectors, bar, tableOffset, pbaOffset } = placement;
  if (vectors < 1 || vectors > MSIX_MAX_VECTORS) throw new RangeError(`${vectors} MSI-X vectors`);
  const body = new DataView(new ArrayBuffer(CAPABILITY_BODY_SIZE));
  const at = (field: number) => field - 2; // the body starts after the ID and next bytes
  body.setUint16(at(MSIX_MESSAGE_CONTROL), vectors - 1, true);
  body.setUint32(at(MSIX_TABLE_OFFSET), tableOffset | bar, true);
  body.setUint32(at(MSIX_PBA_OFFSET), pbaOffset | bar, true);
  const offset = image.addCapability(CAP_ID_MSIX, new Uint8Array(body.buffer));
  image.allowWrite(
    offset + MSIX_MESSAGE_CONTROL,
    2,
    MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK,
  );
  return offset;
}

/** How each vector reaches the guest: its GSI (consecutive from `firstGsi`) and its irqfd. */
export interface MsixDelivery {
  /** GSI of vector 0; vector v uses `firstGsi + v`. */
  readonly firstGsi: number;
  /** Per vector, the eventfd bound with KVM_IRQFD to its GSI while the vector is deliverable. */
  readonly irqfds: readonly number[];
  /** The VM's routing table. */
  readonly router: GsiRouter;
  /**
   * Binds (KVM_IRQFD) or unbinds irqfd `fd` and GSI `gsi`; absent where no table write is
   * handled (a device's own runner) or there is no VM (tests).
   */
  readonly bind?: (fd: number, gsi: number, bound: boolean) => void;
}

/** One thread's view of a function's MSI-X state. */
export class Msix {
  readonly #table: Uint32Array;
  readonly #pba: Uint32Array;
  /** Bit v: vector v's irqfd is bound to its GSI. */
  readonly #bound: Uint32Array;

  /**
   * Views the shared MSI-X state.
   * @param cells {@link msixCells} shared cells: the table, then the PBA
   * @param vectors table size
   * @param config the function's configuration registers
   * @param capability offset of the MSI-X capability in configuration space
   * @param delivery GSIs, irqfds and router
   */
  constructor(
    cells: Uint32Array,
    readonly vectors: number,
    private readonly config: ConfigRegisters,
    private readonly capability: number,
    private readonly delivery: MsixDelivery,
  ) {
    if (cells.length !== msixCells(vectors)) throw new RangeError("wrong MSI-X cell count");
    if (delivery.irqfds.length !== vectors) throw new RangeError("one irqfd per vector");
    const pbaCells = pbaSize(vectors) / DWORD;
    this.#table = cells.subarray(0, vectors * CELLS_PER_ENTRY);
    this.#pba = cells.subarray(vectors * CELLS_PER_ENTRY, vectors * CELLS_PER_ENTRY + pbaCells);
    this.#bound = cells.subarray(vectors * CELLS_PER_ENTRY + pbaCells);
  }

  /**
   * Puts the table in its reset state: every vector masked, nothing pending (§6.8.2.9), no
   * irqfd bound.
   */
  static initialize(cells: Uint32Array, vectors: number): void {
    cells.fill(0);
    for (let v = 0; v < vectors; v++) {
      cells[v * CELLS_PER_ENTRY + MSIX_ENTRY_VECTOR_CONTROL / DWORD] = MSIX_VECTOR_MASKED;
    }
  }

  /** Message Control. */
  get control(): number {
    return this.config.read(this.capability + MSIX_MESSAGE_CONTROL, 2);
  }

  /** MSI-X is enabled: interrupts go through the table, not INTx. */
  get enabled(): boolean {
    return (this.control & MSIX_CONTROL_ENABLE) !== 0;
  }

  /** The GSI of vector `vector`. */
  gsi(vector: number): number {
    return this.delivery.firstGsi + vector;
  }

  /** Reads the table: aligned DWORDs or QWORDs (§6.8.2); anything else reads 0. */
  readTable(offset: number, data: Uint8Array): void {
    if (!aligned(offset, data.length)) data.fill(0);
    else readCellBytes(this.#table, offset, data);
  }

  /**
   * Writes the table with an aligned DWORD or QWORD (§6.8.2; anything else is dropped), then
   * re-routes and, when it was just unmasked with its pending bit set, delivers the vector.
   */
  writeTable(offset: number, data: Uint8Array): void {
    if (!aligned(offset, data.length) || offset + data.length > this.vectors * MSIX_ENTRY_SIZE) {
      return;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < data.length; i += DWORD) {
      Atomics.store(this.#table, (offset + i) / DWORD, view.getUint32(i, true));
    }
    this.#refresh(Math.floor(offset / MSIX_ENTRY_SIZE));
  }

  /** Reads the PBA (read-only; writes are ignored by the caller). */
  readPba(offset: number, data: Uint8Array): void {
    readCellBytes(this.#pba, offset, data);
  }

  /**
   * Call after a guest write to Message Control: when MSI-X became usable, routes every unmasked
   * vector and delivers those pending.
   */
  controlWritten(): void {
    for (let v = 0; v < this.vectors; v++) this.#refresh(v);
  }

  /**
   * Raises vector `vector`: writes its irqfd, or sets its pending bit when it (or the function)
   * is masked. Does nothing when MSI-X is disabled or the vector does not exist.
   */
  signal(vector: number): void {
    if (!this.enabled || vector >= this.vectors) return;
    if (this.#masked(vector)) this.#setPending(vector, true);
    else signalEventfd(this.delivery.irqfds[vector]);
  }

  /** The vector is pending (its PBA bit is set). */
  pending(vector: number): boolean {
    return testBit(this.#pba, vector);
  }

  /**
   * The eventfd the kernel may signal itself to raise `vector` (see the module notes): its
   * irqfd, when MSI-X is enabled and the vector exists; else undefined.
   */
  directIrqfd(vector: number): number | undefined {
    return this.enabled && vector < this.vectors ? this.delivery.irqfds[vector] : undefined;
  }

  /** The message in entry `vector`. */
  message(vector: number): { addressLo: number; addressHi: number; data: number } {
    const at = vector * CELLS_PER_ENTRY;
    return {
      addressLo: Atomics.load(this.#table, at + MSIX_ENTRY_ADDRESS_LO / DWORD),
      addressHi: Atomics.load(this.#table, at + MSIX_ENTRY_ADDRESS_HI / DWORD),
      data: Atomics.load(this.#table, at + MSIX_ENTRY_DATA / DWORD),
    };
  }

  /** Whether `vector` cannot be sent now: MSI-X off, the function masked, or the entry masked. */
  #masked(vector: number): boolean {
    const control = this.control;
    if (!(control & MSIX_CONTROL_ENABLE) || control & MSIX_CONTROL_FUNCTION_MASK) return true;
    const vectorControl = Atomics.load(
      this.#table,
      vector * CELLS_PER_ENTRY + MSIX_ENTRY_VECTOR_CONTROL / DWORD,
    );
    return (vectorControl & MSIX_VECTOR_MASKED) !== 0;
  }

  /**
   * Routes a deliverable vector's GSI to its message, binds its irqfd and delivers it if it was
   * pending; unbinds a masked one's.
   */
  #refresh(vector: number): void {
    if (this.#masked(vector)) {
      this.#bind(vector, false);
      return;
    }
    this.delivery.router.setMsiRoute(this.gsi(vector), this.message(vector));
    this.#bind(vector, true);
    if (this.pending(vector)) {
      this.#setPending(vector, false);
      signalEventfd(this.delivery.irqfds[vector]);
    }
  }

  #setPending(vector: number, on: boolean): void {
    setBit(this.#pba, vector, on);
  }

  /** Binds or unbinds `vector`'s irqfd, if it is not so already and this thread can. */
  #bind(vector: number, bound: boolean): void {
    const bind = this.delivery.bind;
    if (bind === undefined || testBit(this.#bound, vector) === bound) return;
    bind(this.delivery.irqfds[vector], this.gsi(vector), bound);
    setBit(this.#bound, vector, bound);
  }
}

/** Bit `bit` of the bitmap `cells`. */
function testBit(cells: Uint32Array, bit: number): boolean {
  return ((Atomics.load(cells, Math.floor(bit / BITS_PER_CELL)) >>> (bit % BITS_PER_CELL)) & 1) ===
    1;
}

function setBit(cells: Uint32Array, bit: number, on: boolean): void {
  const mask = 1 << (bit % BITS_PER_CELL);
  const cell = Math.floor(bit / BITS_PER_CELL);
  if (on) Atomics.or(cells, cell, mask);
  else Atomics.and(cells, cell, ~mask);
}

/** §6.8.2: table accesses are naturally aligned DWORDs or QWORDs. */
function aligned(offset: number, size: number): boolean {
  return (size === DWORD || size === QWORD) && offset % size === 0;
}
