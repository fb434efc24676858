/**
 * What a running VM tells the program that controls it: its state, the events it emits, and the
 * error a control operation fails with.
 *
 * @module
 */

import { Errno, type ErrnoName } from "../ffi/errno.ts";
import { UserError } from "../errors.ts";
import type { BalloonStats } from "../devices/virtio/balloon/stats.ts";

/**
 * Where a VM is in its life: built but not run, running, suspended (by {@link Vm.suspend}), or
 * ended.
 */
export type VmState = "created" | "running" | "suspended" | "stopped";

/** Something that happened to a VM. */
export type VmEvent =
  | { readonly type: "state"; readonly state: VmState }
  | { readonly type: "device-error"; readonly message: string };

/**
 * A control operation the VM refused, in one line, with the errno crosvm answers with for it
 * (for example EINVAL for `resume` without `full` after a full suspend).
 */
export class VmControlError extends UserError {
  /** The errno value the control socket replies with (`{"Err": errno}`), if any. */
  readonly errno: number | undefined;

  /**
   * A refusal.
   * @param message one line saying why
   * @param errno the errno crosvm's reply carries (a name or a value), if the refusal has one
   */
  constructor(message: string, errno?: ErrnoName | number) {
    super(message);
    this.errno = typeof errno === "string" ? Errno[errno] : errno;
  }
}

/** Fans a VM's events out to every stream {@link subscribe} handed out. */
export class VmEvents {
  readonly #subscribers = new Set<ReadableStreamDefaultController<VmEvent>>();
  #closed = false;

  /** A new stream of every event from now on; it ends when the VM has stopped. */
  subscribe(): ReadableStream<VmEvent> {
    let controller: ReadableStreamDefaultController<VmEvent>;
    return new ReadableStream<VmEvent>({
      start: (c) => {
        controller = c;
        if (this.#closed) c.close();
        else this.#subscribers.add(c);
      },
      cancel: () => {
        this.#subscribers.delete(controller);
      },
    });
  }

  /** Sends `event` to every subscriber. */
  emit(event: VmEvent): void {
    for (const subscriber of this.#subscribers) subscriber.enqueue(event);
  }

  /** Ends every stream (the VM has stopped). */
  close(): void {
    this.#closed = true;
    for (const subscriber of this.#subscribers) subscriber.close();
    this.#subscribers.clear();
  }
}

/** What {@link Vm.balloonStats} returns. */
export interface BalloonStatsReply {
  /** What the guest last reported. */
  readonly stats: BalloonStats;
  /** The balloon's size now, in bytes. */
  readonly balloonActual: number;
}
