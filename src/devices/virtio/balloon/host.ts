/**
 * The cells a balloon shares with the VMM beyond virtio's registers (its `hostCells`): the
 * VMM's requests for statistics, the device's answers, and the latest figures. Both sides build
 * a {@link BalloonHost} over the same cells: the device's runner (a Worker or a jailed process)
 * and the VMM's main thread.
 *
 * | cell        | meaning                                                         |
 * | ----------- | --------------------------------------------------------------- |
 * | 0           | statistics requests the VMM made                                |
 * | 1           | the last request the device answered                            |
 * | 2           | 1 while the device holds the driver's statistics buffer         |
 * | 3 + 3i ...  | statistic i (crosvm's order): present, low and high 32 bits     |
 *
 * @module
 */

import { BALLOON_STAT_FIELDS, type BalloonStats, noBalloonStats } from "./stats.ts";

const REQUESTED = 0;
const ANSWERED = 1;
const HOLDING = 2;
const FIRST_STAT = 3;
/** Cells per statistic: present, low word, high word. */
const STAT_CELLS = 3;
/** 2^32, the weight of a statistic's high word. */
const HIGH_WORD = 2 ** 32;

/** How many cells a balloon shares with the VMM. */
export const BALLOON_HOST_CELLS = FIRST_STAT + STAT_CELLS * BALLOON_STAT_FIELDS.length;

/** One side's view of a balloon's shared cells. */
export class BalloonHost {
  /** @param cells {@link BALLOON_HOST_CELLS} cells of the device's shared state */
  constructor(private readonly cells: Int32Array) {
    if (cells.length < BALLOON_HOST_CELLS) throw new RangeError("too few balloon host cells");
  }

  /** VMM: asks for fresh statistics (then signal the device); returns the request's number. */
  requestStats(): number {
    return Atomics.add(this.cells, REQUESTED, 1) + 1;
  }

  /** VMM: whether request `n` has been answered. */
  answered(n: number): boolean {
    return Atomics.load(this.cells, ANSWERED) - n >= 0;
  }

  /** Device: whether a request is waiting for figures. */
  get statsWanted(): boolean {
    return Atomics.load(this.cells, REQUESTED) !== Atomics.load(this.cells, ANSWERED);
  }

  /** Whether the device holds the driver's statistics buffer (so a request can be answered). */
  get holding(): boolean {
    return Atomics.load(this.cells, HOLDING) === 1;
  }

  set holding(holding: boolean) {
    Atomics.store(this.cells, HOLDING, holding ? 1 : 0);
  }

  /** Device: stores the figures the driver reported, answering every request made so far. */
  publishStats(stats: Partial<Record<keyof BalloonStats, number>>): void {
    const requested = Atomics.load(this.cells, REQUESTED);
    BALLOON_STAT_FIELDS.forEach((field, i) => {
      const at = FIRST_STAT + STAT_CELLS * i;
      const value = stats[field];
      Atomics.store(this.cells, at, value === undefined ? 0 : 1);
      Atomics.store(this.cells, at + 1, (value ?? 0) % HIGH_WORD);
      Atomics.store(this.cells, at + 2, Math.floor((value ?? 0) / HIGH_WORD));
    });
    Atomics.store(this.cells, ANSWERED, requested);
  }

  /** VMM: the figures last published (null where the guest reported nothing). */
  stats(): BalloonStats {
    const stats: Record<string, number | null> = { ...noBalloonStats() };
    BALLOON_STAT_FIELDS.forEach((field, i) => {
      const at = FIRST_STAT + STAT_CELLS * i;
      if (Atomics.load(this.cells, at) === 0) return;
      stats[field] = (Atomics.load(this.cells, at + 1) >>> 0) +
        (Atomics.load(this.cells, at + 2) >>> 0) * HIGH_WORD;
    });
    return stats as unknown as BalloonStats;
  }
}
