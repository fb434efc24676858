/**
 * The VM's GSI routing table, shared by every thread. KVM_SET_GSI_ROUTING replaces the whole
 * table, so the MSI routes of every device live in one SharedArrayBuffer under one lock: whoever
 * changes a route (a vCPU Worker handling an MSI-X table write) rebuilds the table from that
 * state and submits it before unlocking, and no thread can ever submit a stale table.
 *
 * GSIs below {@link MSI_GSI_BASE} keep KVM's default irqchip routes; MSI vectors get GSIs from
 * there up, allocated by the main thread when it builds the VM.
 *
 * @module
 */

import {
  defaultIrqchipRoutes,
  type IrqRoute,
  KVM_IOAPIC_NUM_PINS,
  type MsiMessage,
  setGsiRouting,
} from "./ffi/kvm_irq_routing.ts";
import { SharedMutex } from "./sync.ts";

/** The first GSI past the IOAPIC's pins: where MSI GSIs start (as in QEMU and crosvm). */
export const MSI_GSI_BASE: number = KVM_IOAPIC_NUM_PINS;
/**
 * MSI GSIs a VM may allocate by default. KVM's x86 table holds `KVM_MAX_IRQ_ROUTES` (4096)
 * entries; a few hundred vectors is plenty for our devices.
 */
const DEFAULT_MSI_GSI_COUNT = 256;

// Cell layout of the shared state.
const LOCK = 0;
const FIRST_GSI = 1;
const CAPACITY = 2;
const ALLOCATED = 3;
const HEADER_CELLS = 4;
// Per MSI slot: valid flag, then the message.
const SLOT_VALID = 0;
const SLOT_ADDRESS_LO = 1;
const SLOT_ADDRESS_HI = 2;
const SLOT_DATA = 3;
const SLOT_CELLS = 4;

/** Hands a complete routing table to KVM (or, in tests, records it). */
export type RouteSubmitter = (routes: readonly IrqRoute[]) => void;

/** A submitter that sends the table to VM fd `vmFd` with KVM_SET_GSI_ROUTING. */
export function kvmRouteSubmitter(vmFd: number): RouteSubmitter {
  return (routes) => setGsiRouting(vmFd, routes);
}

/** One thread's handle on the VM's GSI routing table. */
export class GsiRouter {
  readonly #cells: Uint32Array;
  readonly #lock: SharedMutex;

  /**
   * The shared state for `capacity` MSI GSIs from `firstGsi` on, none allocated and none routed.
   */
  static createState(
    firstGsi = MSI_GSI_BASE,
    capacity = DEFAULT_MSI_GSI_COUNT,
  ): SharedArrayBuffer {
    const state = new SharedArrayBuffer(Uint32Array.BYTES_PER_ELEMENT * cellCount(capacity));
    const cells = new Uint32Array(state);
    cells[FIRST_GSI] = firstGsi;
    cells[CAPACITY] = capacity;
    return state;
  }

  /**
   * A handle on the shared table.
   * @param state from {@link GsiRouter.createState}, the same in every thread
   * @param submit where complete tables go
   */
  constructor(state: SharedArrayBuffer, private readonly submit: RouteSubmitter) {
    this.#cells = new Uint32Array(state);
    this.#lock = new SharedMutex(new Int32Array(state), LOCK);
  }

  /**
   * Reserves `count` consecutive MSI GSIs; returns the first.
   * @throws RangeError when the table is full
   */
  allocate(count: number): number {
    return this.#lock.with(() => {
      const allocated = this.#cells[ALLOCATED];
      if (allocated + count > this.#cells[CAPACITY]) {
        throw new RangeError(`no room for ${count} more MSI GSIs (${allocated} in use)`);
      }
      this.#cells[ALLOCATED] = allocated + count;
      return this.#cells[FIRST_GSI] + allocated;
    });
  }

  /**
   * Points MSI GSI `gsi` at `message` (or removes its route when null) and, when that changes
   * anything, submits the whole table before returning.
   * @returns true when the table changed
   */
  setMsiRoute(gsi: number, message: MsiMessage | null): boolean {
    return this.#lock.with(() => {
      const at = this.#slot(gsi);
      const c = this.#cells;
      const valid = message === null ? 0 : 1;
      if (
        c[at + SLOT_VALID] === valid &&
        (message === null ||
          (c[at + SLOT_ADDRESS_LO] === message.addressLo >>> 0 &&
            c[at + SLOT_ADDRESS_HI] === message.addressHi >>> 0 &&
            c[at + SLOT_DATA] === message.data >>> 0))
      ) {
        return false;
      }
      c[at + SLOT_VALID] = valid;
      c[at + SLOT_ADDRESS_LO] = message?.addressLo ?? 0;
      c[at + SLOT_ADDRESS_HI] = message?.addressHi ?? 0;
      c[at + SLOT_DATA] = message?.data ?? 0;
      this.submit(this.#table());
      return true;
    });
  }

  /** The table as it stands: KVM's default irqchip routes, then every routed MSI GSI. */
  #table(): IrqRoute[] {
    const c = this.#cells;
    const routes: IrqRoute[] = defaultIrqchipRoutes();
    for (let i = 0; i < c[ALLOCATED]; i++) {
      const at = HEADER_CELLS + i * SLOT_CELLS;
      if (!c[at + SLOT_VALID]) continue;
      routes.push({
        gsi: c[FIRST_GSI] + i,
        type: "msi",
        addressLo: c[at + SLOT_ADDRESS_LO],
        addressHi: c[at + SLOT_ADDRESS_HI],
        data: c[at + SLOT_DATA],
      });
    }
    return routes;
  }

  #slot(gsi: number): number {
    const index = gsi - this.#cells[FIRST_GSI];
    if (!Number.isInteger(index) || index < 0 || index >= this.#cells[ALLOCATED]) {
      throw new RangeError(`GSI ${gsi} is not an allocated MSI GSI`);
    }
    return HEADER_CELLS + index * SLOT_CELLS;
  }
}

function cellCount(capacity: number): number {
  return HEADER_CELLS + capacity * SLOT_CELLS;
}
