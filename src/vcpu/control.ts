/**
 * The VM's run control, shared by the main thread and every vCPU Worker through a
 * SharedArrayBuffer: whether the vCPUs must stop (and why the VM ended), and whether they must
 * stay out of KVM_RUN for a while (a suspend), with the count of those that are.
 *
 * @module
 */

import type { GuestExitReason } from "../devices/context.ts";

/** Why a VM ended: a guest request, a host `stop`, or an error. */
export type VmExitReason = GuestExitReason | "stop" | "halt" | "error";

const REASONS: readonly VmExitReason[] = [
  "stop",
  "reset",
  "shutdown",
  "triple-fault",
  "crash",
  "halt",
  "error",
];

/** Cell indices in the control block. */
const STOP = 0;
const REASON = 1;
/** 1 while the vCPUs must stay out of KVM_RUN. */
const PAUSE = 2;
/** How many vCPUs are parked out of KVM_RUN. */
const PARKED = 3;
const CELLS = 4;
/** How long one wait for a change of the parked count lasts before it looks again. */
const PARKED_POLL_MS = 100;
/** REASON cell value before anyone asked the VM to end. */
const NO_REASON = -1;

/** Run control over a shared block of Int32 cells. Rebuild it in a Worker over the same buffer. */
export class VmControl {
  readonly #cells: Int32Array;

  /** @param buffer from {@link VmControl.createBuffer} */
  constructor(readonly buffer: SharedArrayBuffer) {
    this.#cells = new Int32Array(buffer);
  }

  /** A fresh control block: running, no exit reason. */
  static createBuffer(): SharedArrayBuffer {
    const buffer = new SharedArrayBuffer(CELLS * Int32Array.BYTES_PER_ELEMENT);
    new Int32Array(buffer)[REASON] = NO_REASON;
    return buffer;
  }

  /**
   * Asks every vCPU to stop, recording `reason` if no reason was recorded before.
   * Returns true when this call set the reason.
   */
  requestExit(reason: VmExitReason): boolean {
    const first = Atomics.compareExchange(this.#cells, REASON, NO_REASON, REASONS.indexOf(reason));
    Atomics.store(this.#cells, STOP, 1);
    // A parked vCPU wakes to leave its loop.
    Atomics.notify(this.#cells, PAUSE);
    return first === NO_REASON;
  }

  /** Asks every vCPU to park out of KVM_RUN (the caller then kicks them) until {@link unpause}. */
  pause(): void {
    Atomics.store(this.#cells, PAUSE, 1);
  }

  /** Lets the parked vCPUs run again. */
  unpause(): void {
    Atomics.store(this.#cells, PAUSE, 0);
    Atomics.notify(this.#cells, PAUSE);
  }

  /** True while the vCPUs must stay out of KVM_RUN. */
  get pauseRequested(): boolean {
    return Atomics.load(this.#cells, PAUSE) !== 0;
  }

  /**
   * Called by a vCPU thread out of KVM_RUN: counts itself parked and blocks until the pause ends
   * or the VM must stop.
   */
  park(): void {
    Atomics.add(this.#cells, PARKED, 1);
    Atomics.notify(this.#cells, PARKED);
    while (Atomics.load(this.#cells, PAUSE) !== 0 && !this.stopRequested) {
      Atomics.wait(this.#cells, PAUSE, 1);
    }
    Atomics.sub(this.#cells, PARKED, 1);
    Atomics.notify(this.#cells, PARKED);
  }

  /**
   * Resolves once `count` vCPUs are parked, or the VM must stop (then some may never park).
   * Does not block the event loop.
   */
  async untilParked(count: number): Promise<void> {
    for (;;) {
      const parked = Atomics.load(this.#cells, PARKED);
      if (parked >= count || this.stopRequested) return;
      await Atomics.waitAsync(this.#cells, PARKED, parked, PARKED_POLL_MS).value;
    }
  }

  /** True once any thread asked the VM to end. */
  get stopRequested(): boolean {
    return Atomics.load(this.#cells, STOP) !== 0;
  }

  /** The first recorded exit reason, if any. */
  get reason(): VmExitReason | undefined {
    const code = Atomics.load(this.#cells, REASON);
    return code === NO_REASON ? undefined : REASONS[code];
  }
}
