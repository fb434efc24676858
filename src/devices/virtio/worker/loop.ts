/**
 * The event loop of a virtio device's own Worker (one per virtio device, apart from the vCPU
 * Workers: ARCHITECTURE.md, "Threads and processes"): it sleeps in `poll(2)` on its control
 * eventfd, its INTx resample eventfd and one doorbell eventfd per queue, and wakes to
 *
 * - start the queues when the driver sets DRIVER_OK (OASIS virtio 1.2 §3.1.1 step 8): it snapshots
 *   the queue configuration from the shared registers and builds the split queues over guest
 *   memory;
 * - serve a queue whose doorbell rang: the backend pops and completes chains, and the loop raises
 *   the queue's interrupt when the driver wants one (§2.7.7.2);
 * - hand the backend its own descriptors' input (a TAP's frames), watched only while the queues
 *   run and the backend wants them;
 * - leave the queues the kernel serves (vhost) to it: their doorbells are never watched or
 *   drained; with MSI-X the kernel signals their vectors' irqfds itself, else their call
 *   eventfds, watched while the queues run, raise their interrupts;
 * - finish a reset (§2.4): drop the queues, reset the registers (device_status then reads 0) and
 *   idle until the next DRIVER_OK;
 * - re-assert INTx when the guest EOI'd it with the ISR still set;
 * - take in a device configuration the VMM changed (a disk's new capacity) and confirm it;
 * - keep quiet while the VMM asks (a full suspend): once the backend has finished the work it
 *   had in flight (a disk's requests on its io_uring), it confirms in the shared registers, then
 *   watches only its control eventfd, so no queue is served and no interrupt raised; when the
 *   VMM lets it go, it serves every queue once (doorbells rung meanwhile wait in their eventfds);
 * - exit when the VMM asks.
 *
 * A malformed chain is completed with length 0 and sets DEVICE_NEEDS_RESET, with a configuration
 * change notification (§2.1.2); so does a queue configuration the device cannot use.
 *
 * @module
 */

import { drainEventfd } from "../../../ffi/eventfd.ts";
import { PollSet } from "../../../ffi/poll.ts";
import * as log from "../../../log.ts";
import type { GuestMemory } from "../../../memory.ts";
import type { KernelQueueSetup, VirtioBackend } from "../device.ts";
import { VirtQueue } from "../device.ts";
import type { VirtioPciState } from "../transport/pci/state.ts";
import { QueueConfigError, SplitQueue } from "../queue.ts";
import type { QueueSetup } from "../registers.ts";
import {
  featureBit,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER_OK,
  STATUS_FAILED,
  STATUS_FEATURES_OK,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
} from "../spec.ts";

/** What the control eventfd asked for. */
type ControlAction =
  | { kind: "stop" | "reset" | "quiet" | "wake" | "none" }
  | { kind: "config"; epoch: number; config: Uint8Array }
  | { kind: "activate"; setups: QueueSetup[]; features: bigint };

/** Runs one device's queues until the VMM stops it. */
export class DeviceLoop {
  readonly #poll: PollSet;
  /** Just the control eventfd, watched while the device keeps quiet. */
  readonly #controlOnly: PollSet;
  /** Keeping quiet: the VMM asked, and the loop confirmed. */
  #quiet = false;
  /** Index in the poll set of the first queue's doorbell. */
  readonly #firstQueue: number;
  /** Index of the resample eventfd, or -1. */
  readonly #resample: number;
  /** Index in the poll set of the backend's first own descriptor (after the doorbells). */
  readonly #firstBackendFd: number;
  /** Index in the poll set of the first kernel queue's call eventfd (after the backend's own). */
  readonly #firstCallFd: number;
  /** The queues the kernel serves, by index. */
  readonly #kernelQueues: ReadonlySet<number>;
  /** Live queues by index while the driver has the device running; null while idle. */
  #queues: (VirtQueue | undefined)[] | null = null;

  /**
   * Prepares the loop (nothing runs until {@link run} or {@link step}).
   * @param state the device's state in this Worker
   * @param memory guest RAM
   * @param backend the device type's implementation
   */
  constructor(
    private readonly state: VirtioPciState,
    private readonly memory: GuestMemory,
    private readonly backend: VirtioBackend,
  ) {
    const { controlFd, intx, queueFds } = state.spec;
    const fds = [controlFd];
    this.#resample = intx === null ? -1 : fds.push(intx.resampleFd) - 1;
    this.#firstQueue = fds.length;
    this.#firstBackendFd = fds.length + queueFds.length;
    const backendFds = backend.eventFds ?? [];
    const kernelQueues = backend.kernelQueues ?? [];
    this.#firstCallFd = this.#firstBackendFd + backendFds.length;
    this.#poll = new PollSet([
      ...fds,
      ...queueFds,
      ...backendFds,
      ...kernelQueues.map((q) => q.callFd),
    ]);
    this.#kernelQueues = new Set(kernelQueues.map((q) => q.index));
    for (const q of this.#kernelQueues) this.#poll.watch(this.#firstQueue + q, false);
    this.#controlOnly = new PollSet([controlFd]);
    backend.attachHost?.(state.host);
  }

  /** Whether the queues are running. */
  get active(): boolean {
    return this.#queues !== null;
  }

  /** Serves events until a stop is requested. */
  run(): void {
    while (this.step()) { /* next event */ }
  }

  /**
   * Waits for events once and handles them.
   * @param timeoutMs how long to wait (-1: until something happens)
   * @returns false once a stop was requested
   */
  step(timeoutMs = -1): boolean {
    if (this.#quiet) {
      if (this.#controlOnly.wait(timeoutMs).length === 0) return true;
      drainEventfd(this.state.spec.controlFd);
      return this.#control();
    }
    const fds = this.#poll.fds;
    const active = this.#queues !== null;
    for (let i = this.#firstBackendFd; i < fds.length; i++) {
      const own = i - this.#firstBackendFd;
      this.#poll.watch(
        i,
        i < this.#firstCallFd ? active && (this.backend.wantsEvents?.(own) ?? true) : active,
      );
    }
    const ready = this.#poll.wait(timeoutMs);
    for (const i of ready) {
      if (i < this.#firstBackendFd || i >= this.#firstCallFd) drainEventfd(fds[i]);
    }
    if (ready.includes(0) && !this.#control()) return false;
    if (ready.includes(this.#resample)) this.state.interrupt.resample();
    for (const i of ready) {
      if (i >= this.#firstCallFd) this.#kernelCall(i - this.#firstCallFd);
      else if (i >= this.#firstBackendFd) this.#onEvent(i - this.#firstBackendFd);
      else if (i >= this.#firstQueue) this.#serve(i - this.#firstQueue);
    }
    return true;
  }

  /** Acts on the shared state after a control signal; false to stop. */
  #control(): boolean {
    const action = this.state.lock.with((): ControlAction => {
      const regs = this.state.regs;
      if (regs.stopRequested) return { kind: "stop" };
      const epoch = regs.configPending;
      if (epoch !== 0) {
        const config = new Uint8Array(regs.shape.configLength);
        regs.readConfig(0, config);
        return { kind: "config", epoch, config };
      }
      // Confirmed (below) once the backend has finished what it had in flight.
      if (regs.quiesceRequested) return { kind: "quiet" };
      if (this.#quiet) return { kind: "wake" };
      // The registers are reset once the backend has let go of the queues (below).
      if (regs.resetPending) return { kind: "reset" };
      if (this.#queues === null && runnable(regs.status)) {
        regs.workerActive = true;
        return { kind: "activate", setups: regs.enabledQueues(), features: regs.driverFeatures };
      }
      return { kind: "none" };
    });
    switch (action.kind) {
      case "stop":
        if (this.#queues !== null) this.backend.reset?.();
        this.#queues = null;
        this.backend.close?.();
        return false;
      case "reset":
        // §4.1.4.3.2: device_status reads 0 only once the reset is complete, so the driver
        // reuses no buffer the backend still has in flight (a read the kernel is filling).
        this.#queues = null;
        this.backend.reset?.();
        this.state.lock.with(() => this.state.regs.reset());
        return true;
      case "activate":
        this.#activate(action.setups, action.features);
        return true;
      case "config":
        this.backend.configChanged?.(action.config);
        this.state.regs.confirmConfig(action.epoch);
        // Whatever else the signal carried is looked at now.
        return this.#control();
      case "quiet":
        this.#backendWork((queues) => this.backend.quiesce?.(queues, this.memory));
        this.state.lock.with(() => this.state.regs.confirmQuiesce());
        this.#quiet = true;
        return true;
      case "wake":
        this.#quiet = false;
        if (this.#resample >= 0) this.state.interrupt.resample();
        this.#serveAll();
        // A reset or DRIVER_OK that came in just before the quiet is acted on now.
        return this.#control();
      case "none":
        this.#onControl();
        return true;
    }
  }

  #activate(setups: QueueSetup[], features: bigint): void {
    const has = (bit: number) => (features & featureBit(bit)) !== 0n;
    const queues: (VirtQueue | undefined)[] = [];
    const kernelSetups: KernelQueueSetup[] = [];
    for (const setup of setups) {
      try {
        const split = new SplitQueue(this.memory, {
          size: setup.size,
          descTable: setup.descTable,
          availRing: setup.availRing,
          usedRing: setup.usedRing,
          eventIdx: has(VIRTIO_F_EVENT_IDX),
          indirect: has(VIRTIO_F_INDIRECT_DESC),
        });
        // A queue the kernel serves is checked like any other, but left to it.
        if (!this.#kernelQueues.has(setup.index)) {
          queues[setup.index] = new VirtQueue(setup.index, split);
        } else {
          kernelSetups.push({
            ...setup,
            kickFd: this.#poll.fds[this.#firstQueue + setup.index],
            irqFd: this.#directIrqfd(setup.index),
          });
        }
      } catch (e) {
        if (!(e instanceof QueueConfigError)) throw e;
        this.#needsReset(`queue ${setup.index}: ${e.message}`);
      }
    }
    this.#queues = queues;
    this.backend.activate?.(features, kernelSetups, this.memory);
    // Doorbells rung before DRIVER_OK were drained while idle: look at every queue once.
    this.#serveAll();
  }

  /** The irqfd the kernel may signal itself for queue `q`'s interrupts (see KernelQueueSetup). */
  #directIrqfd(q: number): number | undefined {
    const { lock, msix, regs } = this.state;
    return lock.with(() => msix.directIrqfd(regs.queueVector(q)));
  }

  /** Serves every live queue once, its doorbell drained first. */
  #serveAll(): void {
    const fds = this.#poll.fds;
    for (let q = 0; q < (this.#queues?.length ?? 0); q++) {
      if (this.#kernelQueues.has(q)) continue;
      drainEventfd(fds[this.#firstQueue + q]);
      this.#serve(q);
    }
  }

  #serve(q: number): void {
    const queue = this.#queues?.[q];
    if (queue === undefined) return;
    this.#backendWork((queues) => this.backend.processQueue(q, queue, this.memory, queues));
  }

  /** The kernel signalled the call eventfd of its `k`th queue: interrupt the driver. */
  #kernelCall(k: number): void {
    const queue = this.backend.kernelQueues?.[k];
    if (queue !== undefined && this.#queues !== null) this.state.interrupt.queue(queue.index);
  }

  /** One of the backend's own descriptors is ready: let it act on its queues. */
  #onEvent(index: number): void {
    this.#backendWork((queues) => this.backend.onEvent?.(index, queues, this.memory));
  }

  /** The VMM signalled the backend (through the cells they share): let it act on its queues. */
  #onControl(): void {
    this.#backendWork((queues) => this.backend.onControl?.(queues, this.memory));
  }

  /** Runs backend work on the live queues, then raises the interrupts its completions call for. */
  #backendWork(work: (queues: readonly (VirtQueue | undefined)[]) => void): void {
    const queues = this.#queues;
    if (queues === null) return;
    work(queues);
    for (const queue of queues) if (queue !== undefined) this.#completed(queue);
  }

  /** After a backend worked on `queue`: the interrupt its completions call for, and faults. */
  #completed(queue: VirtQueue): void {
    if (queue.queue.needsInterrupt()) this.state.interrupt.queue(queue.index);
    const fault = queue.takeFault();
    if (fault !== null) this.#needsReset(fault.message);
  }

  /** §2.1.2: DEVICE_NEEDS_RESET, announced by a configuration change notification. */
  #needsReset(why: string): void {
    log.warn(`${this.state.spec.name}: ${why}; the device needs a reset`);
    const { lock, regs, interrupt } = this.state;
    lock.with(() => {
      if (regs.setNeedsReset()) interrupt.configLocked();
    });
  }
}

/** The driver has finished initialisation and nothing has failed (§3.1.1, §2.1.2). */
function runnable(status: number): boolean {
  const required = STATUS_DRIVER_OK | STATUS_FEATURES_OK;
  return (status & required) === required &&
    (status & (STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED)) === 0;
}
