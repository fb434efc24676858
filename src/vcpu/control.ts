/**
 * The VM's run control, shared by the main thread and every vCPU Worker through a
 * SharedArrayBuffer: whether the vCPUs must stop, and why the VM ended.
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
const CELLS = 2;
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
    return first === NO_REASON;
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
