/**
 * What runs a virtio device's queues while the VM runs, wherever it runs: a Worker of the VMM
 * (`worker/thread.ts`) or a jailed process of its own (`process/device_process.ts`). The device
 * manager starts one per device and treats them alike.
 *
 * @module
 */

/** A running device runner. */
export interface DeviceRunner {
  /**
   * Resolves once the runner has ended: with undefined after {@link stop} asked it to, or with one
   * line saying what ended it (an error, a crash, a signal).
   */
  readonly exited: Promise<string | undefined>;
  /** Asks the runner to end, waits for it, and frees it; resolves as {@link exited} does. */
  stop(): Promise<string | undefined>;
}
