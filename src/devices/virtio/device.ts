/**
 * What a virtio device type implements to plug into the transport and the device Worker
 * (crosvm's `VirtioDevice` in spirit): its static description, and the queue work the Worker
 * hands it. The framework pops nothing itself: a backend pops chains from a {@link VirtQueue},
 * handles them and returns them; the framework then raises the queue's interrupt if the driver
 * wants one.
 *
 * @module
 */

import type { GuestMemory } from "../../memory.ts";
import { ChainError, type DescriptorChain, type SplitQueue } from "./queue.ts";
import type { QueueSetup } from "./registers.ts";

/** A queue the kernel serves (vhost) and the eventfd the kernel signals to interrupt its driver. */
export interface KernelQueue {
  /** The queue's index. */
  readonly index: number;
  /** The kernel signals it when the driver should be interrupted (vhost's call eventfd). */
  readonly callFd: number;
}

/** A kernel-served queue as the driver set it up, and the doorbell eventfd the kernel takes. */
export interface KernelQueueSetup extends QueueSetup {
  /** The queue's doorbell (its ioeventfd): vhost's kick eventfd. */
  readonly kickFd: number;
  /**
   * With MSI-X, the irqfd of the queue's vector: the kernel interrupts the driver itself by
   * signalling it (vhost's call eventfd then), and a masked vector holds what it signals
   * (pci/msix.ts). Undefined with INTx or no vector: the kernel signals the queue's
   * {@link KernelQueue.callFd} and the runner raises the interrupt.
   */
  readonly irqFd?: number;
}

/** A device type's implementation. */
export interface VirtioBackend {
  /** §5 device ID. */
  readonly deviceType: number;
  /** Device-specific feature bits offered (transport bits are added by the transport). */
  readonly features: bigint;
  /** Maximum size of each queue. */
  readonly queueSizes: readonly number[];
  /** Initial device-specific configuration (empty when the type has none). */
  readonly configBytes: Uint8Array;
  /** 24-bit PCI class code (base << 16 | sub-class << 8 | interface). */
  readonly pciClass: number;
  /** The configuration bytes the driver may write (a balloon's `actual`); none by default. */
  readonly driverWritableConfig?: { readonly offset: number; readonly length: number };
  /** Cells of shared state this type keeps with the VMM (see {@link attachHost}); none by default. */
  readonly hostCells?: number;
  /** Hands the runner's backend its view of the cells it shares with the VMM. */
  attachHost?(cells: Int32Array): void;
  /**
   * The VMM signalled the device (after writing to the shared cells): act on the live queues
   * (`queues[i]` undefined for one the driver did not enable); the runner raises the interrupts
   * that completions call for.
   */
  onControl?(queues: readonly (VirtQueue | undefined)[], memory: GuestMemory): void;
  /**
   * Serves queue `index` after its doorbell: pop chains until `queue.pop()` returns null, and
   * complete each with `queue.pushUsed`. `queues` are all the live queues, for a type whose
   * work on one queue completes chains on another (vsock answers on its receive queue); the
   * runner raises the interrupts of every queue the call completed chains on.
   */
  processQueue(
    index: number,
    queue: VirtQueue,
    memory: GuestMemory,
    queues?: readonly (VirtQueue | undefined)[],
  ): void;
  /**
   * The device is to keep quiet (a full suspend): finish the work in flight, completing it on
   * `queues`, so that nothing touches guest memory until the queues are served again.
   */
  quiesce?(queues: readonly (VirtQueue | undefined)[], memory: GuestMemory): void;
  /** The driver reset the device, or the runner stops while the queues run: forget per-session state. */
  reset?(): void;
  /**
   * The runner stops for good: close what the backend opened itself (a device Worker shares the
   * VMM's descriptor table, so nothing may be left to the process's exit).
   */
  close?(): void;
  /**
   * The queues start (DRIVER_OK) with the features the driver accepted; `kernelQueues` are the
   * enabled ones of {@link kernelQueues}, for the backend to hand to the kernel with `memory`.
   */
  activate?(
    driverFeatures: bigint,
    kernelQueues: readonly KernelQueueSetup[],
    memory: GuestMemory,
  ): void;
  /**
   * Queues the kernel serves (vhost): the runner never watches, drains or serves their
   * doorbells (the kernel takes them) and builds no {@link VirtQueue} for them; while the queues
   * run it watches each call eventfd and raises that queue's interrupt.
   */
  readonly kernelQueues?: readonly KernelQueue[];
  /**
   * Descriptors of the backend's own (a TAP) that the loop watches for input while the queues
   * run and {@link wantsEvents} says so; {@link onEvent} is called with the index of a ready one.
   */
  readonly eventFds?: readonly number[];
  /**
   * Whether to watch `eventFds[index]` now (say no while nothing could be done with its input).
   */
  wantsEvents?(index: number): boolean;
  /** One of {@link eventFds} is readable. */
  onEvent?(index: number, queues: readonly (VirtQueue | undefined)[], memory: GuestMemory): void;
  /**
   * The VMM changed the device configuration (`config` is all of it now), e.g. a disk's capacity
   * after a resize: take it in before the driver is told.
   */
  configChanged?(config: Uint8Array): void;
}

/**
 * A live queue as a backend sees it. A malformed chain never reaches the backend: it is completed
 * with length 0 and remembered, so the framework can set DEVICE_NEEDS_RESET (§2.1.2).
 */
export class VirtQueue {
  #fault: ChainError | null = null;

  /**
   * Wraps a live split queue.
   * @param index the queue's index
   * @param queue the split virtqueue over guest memory
   */
  constructor(readonly index: number, readonly queue: SplitQueue) {}

  /** The next well-formed chain, or null when the ring is empty. */
  pop(): DescriptorChain | null {
    for (;;) {
      const next = this.queue.pop();
      if (!(next instanceof ChainError)) return next;
      this.#fault ??= next;
      // Hand the head back so the driver can reclaim its descriptors; a bad ring entry or
      // avail.idx has no head to return.
      if (next.head !== null) this.queue.pushUsed(next.head, 0);
    }
  }

  /** Returns a chain to the driver with `writtenLength` bytes written into it. */
  pushUsed(chain: DescriptorChain, writtenLength: number): void {
    this.queue.pushUsed(chain.head, writtenLength);
  }

  /** The first malformed chain since the last call, if any (and forgets it). */
  takeFault(): ChainError | null {
    const fault = this.#fault;
    this.#fault = null;
    return fault;
  }
}
