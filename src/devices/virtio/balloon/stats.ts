/**
 * The guest's memory statistics as the virtio balloon's stats queue carries them (OASIS virtio
 * 1.2 §5.5.6.3): a buffer of `struct virtio_balloon_stat { le16 tag; le64 val; }` entries
 * (packed, 10 bytes each), tags from `<linux/virtio_balloon.h>` plus crosvm's two non-standard
 * ones. Named as crosvm's `BalloonStats` (common/balloon_control/src/lib.rs), which its
 * `balloon_stats` command prints.
 *
 * @module
 */

/** What the guest last reported, in bytes or counts; null where it reported nothing. */
export interface BalloonStats {
  /** VIRTIO_BALLOON_S_SWAP_IN: memory swapped in, bytes. */
  readonly swap_in: number | null;
  /** VIRTIO_BALLOON_S_SWAP_OUT: memory swapped out, bytes. */
  readonly swap_out: number | null;
  /** VIRTIO_BALLOON_S_MAJFLT: major page faults. */
  readonly major_faults: number | null;
  /** VIRTIO_BALLOON_S_MINFLT: minor page faults. */
  readonly minor_faults: number | null;
  /** VIRTIO_BALLOON_S_MEMFREE: memory the guest does not use at all, bytes. */
  readonly free_memory: number | null;
  /** VIRTIO_BALLOON_S_MEMTOT: memory the guest has, bytes. */
  readonly total_memory: number | null;
  /** VIRTIO_BALLOON_S_AVAIL: memory available to new programs (MemAvailable), bytes. */
  readonly available_memory: number | null;
  /** VIRTIO_BALLOON_S_CACHES: disk caches, bytes. */
  readonly disk_caches: number | null;
  /** VIRTIO_BALLOON_S_HTLB_PGALLOC: huge page allocations. */
  readonly hugetlb_allocations: number | null;
  /** VIRTIO_BALLOON_S_HTLB_PGFAIL: huge page allocation failures. */
  readonly hugetlb_failures: number | null;
  /** crosvm's VIRTIO_BALLOON_S_NONSTANDARD_SHMEM: shared memory, bytes. */
  readonly shared_memory: number | null;
  /** crosvm's VIRTIO_BALLOON_S_NONSTANDARD_UNEVICTABLE: unevictable memory, bytes. */
  readonly unevictable_memory: number | null;
}

/** Each statistic's tag (`VIRTIO_BALLOON_S_*`, `<linux/virtio_balloon.h>`; crosvm's last two). */
export const BALLOON_STAT_TAGS: Readonly<Record<keyof BalloonStats, number>> = {
  swap_in: 0,
  swap_out: 1,
  major_faults: 2,
  minor_faults: 3,
  free_memory: 4,
  total_memory: 5,
  available_memory: 6,
  disk_caches: 7,
  hugetlb_allocations: 8,
  hugetlb_failures: 9,
  shared_memory: 65534,
  unevictable_memory: 65535,
};

/** The fields of {@link BalloonStats}, in crosvm's order. */
export const BALLOON_STAT_FIELDS = Object.keys(
  BALLOON_STAT_TAGS,
) as readonly (keyof BalloonStats)[];

/** Statistics with nothing reported. */
export function noBalloonStats(): BalloonStats {
  return Object.fromEntries(BALLOON_STAT_FIELDS.map((f) => [f, null])) as unknown as BalloonStats;
}
