/**
 * The VMM's side of a balloon: sets its target (`num_pages`, with a configuration change
 * notification), reads what the guest holds (`actual`), and fetches the guest's statistics
 * through the cells the device's runner shares ({@link BalloonHost}).
 *
 * @module
 */

import { signalEventfd } from "../../../ffi/eventfd.ts";
import { pollUntil } from "../../../sync.ts";
import type { DeviceManager } from "../../manager.ts";
import type { VirtioPciDevice } from "../transport/pci/create.ts";
import type { VirtioPciState } from "../transport/pci/state.ts";
import { BALLOON_PAGE_SIZE, BalloonConfigOffset } from "./device.ts";
import { BalloonHost } from "./host.ts";
import type { BalloonStats } from "./stats.ts";

/** How long {@link BalloonControl.stats} waits for the guest to refill its statistics. */
export const STATS_TIMEOUT_MS = 5000;
/** How often a wait looks at the shared cells. */
const POLL_MS = 10;

/** A balloon, from the VMM. */
export class BalloonControl {
  readonly #state: VirtioPciState;
  readonly #host: BalloonHost;

  /**
   * @param devices the VM's device manager
   * @param device the balloon
   */
  constructor(private readonly devices: DeviceManager, private readonly device: VirtioPciDevice) {
    this.#state = devices.stateOf(device);
    this.#host = new BalloonHost(this.#state.host);
  }

  /** Sets the target to `bytes` (whole 4 KiB pages; the rest is dropped, as crosvm does). */
  async setTarget(bytes: number): Promise<void> {
    const field = new Uint8Array(4);
    new DataView(field.buffer).setUint32(0, Math.floor(bytes / BALLOON_PAGE_SIZE), true);
    await this.devices.updateConfig(this.device, BalloonConfigOffset.NUM_PAGES, field);
  }

  /** The target now, in bytes. */
  get targetBytes(): number {
    return this.#configField(BalloonConfigOffset.NUM_PAGES) * BALLOON_PAGE_SIZE;
  }

  /** What the guest says it holds in the balloon (`actual`), in bytes. */
  get actualBytes(): number {
    return this.#configField(BalloonConfigOffset.ACTUAL) * BALLOON_PAGE_SIZE;
  }

  /**
   * The guest's statistics: fresh ones when the device holds the driver's buffer (the driver
   * refills it within {@link STATS_TIMEOUT_MS}), else the last the guest reported.
   */
  async stats(): Promise<BalloonStats> {
    if (!this.#host.holding) return this.#host.stats();
    const request = this.#host.requestStats();
    signalEventfd(this.#state.spec.controlFd);
    // A guest that does not refill in time gets its last figures reported.
    await pollUntil(() => this.#host.answered(request), STATS_TIMEOUT_MS, POLL_MS);
    return this.#host.stats();
  }

  #configField(offset: number): number {
    const field = new Uint8Array(4);
    this.#state.lock.with(() => this.#state.regs.readConfig(offset, field));
    return new DataView(field.buffer).getUint32(0, true);
  }
}
