/**
 * virtio-balloon, the traditional memory balloon (OASIS virtio 1.2 §5.5), as crosvm offers it:
 * MUST_TELL_HOST, STATS_VQ and DEFLATE_ON_OOM, and free page reporting on request.
 *
 * - The VMM sets the target, `num_pages` in the configuration; the driver inflates (gives pages
 *   to the device on `inflateq`) or deflates (`deflateq`) towards it and writes what it holds to
 *   `actual`, the one configuration field a driver may write.
 * - Every page inflated goes back to the host at once ({@link GuestMemory.discard}): the VMM's
 *   resident memory falls by that much. A deflated page needs nothing: it comes back, zeroed, on
 *   its first touch.
 * - Statistics (§5.5.6.3): the driver leaves one buffer on `statsq`; the device holds it until the
 *   VMM asks ({@link BalloonHost.requestStats}), then hands it back, and reads the fresh figures
 *   from the buffer the driver returns.
 * - Free page reporting (§5.5.6.5, `--balloon-page-reporting`): each buffer on `reporting_vq`
 *   describes free guest pages, which go back to the host like inflated ones.
 *
 * Page frame numbers the guest sends are checked: one outside RAM is skipped (and counted), never
 * trusted.
 *
 * @module
 */

import * as log from "../../../log.ts";
import { type GuestMemory, GuestMemoryError } from "../../../memory.ts";
import type { VirtioBackend, VirtQueue } from "../device.ts";
import type { DescriptorChain } from "../queue.ts";
import { featureBit, VirtioDeviceType } from "../spec.ts";
import { BALLOON_HOST_CELLS, BalloonHost } from "./host.ts";
import { BALLOON_STAT_FIELDS, BALLOON_STAT_TAGS, type BalloonStats } from "./stats.ts";

/** `<linux/virtio_balloon.h>`: the host is told before the guest reuses a deflated page. */
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
/** `<linux/virtio_balloon.h>`: there is a statistics queue. */
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
/** `<linux/virtio_balloon.h>`: the guest deflates the balloon when it runs out of memory. */
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
/** `<linux/virtio_balloon.h>`: there is a free page reporting queue. */
export const VIRTIO_BALLOON_F_REPORTING = 5;
/** `<linux/virtio_balloon.h>` VIRTIO_BALLOON_PFN_SHIFT: page frame numbers count 4 KiB pages. */
export const BALLOON_PAGE_SIZE = 1 << 12;
/** `struct virtio_balloon_config` (§5.5.4): `num_pages` (set by the device), then `actual`. */
export const BalloonConfigOffset = { NUM_PAGES: 0, ACTUAL: 4 } as const;
/** The configuration the device offers: `num_pages` and `actual`, le32 each. */
export const BALLOON_CONFIG_SIZE = 8;
/** `struct virtio_balloon_stat` (§5.5.6.3): `le16 tag; le64 val;`, packed. */
export const BALLOON_STAT_SIZE = 10;
/** Entries in each queue (crosvm's size). */
const BALLOON_QUEUE_SIZE = 128;
/** A page frame number on `inflateq`/`deflateq` is a le32. */
const PFN_SIZE = 4;
/** PCI class 05h (memory controller), sub-class 80h (other), as QEMU's virtio-balloon. */
const PCI_CLASS_MEMORY_OTHER = 0x05_8000;

/** The queues, by index: sequential over the features offered, as Linux and QEMU number them. */
const Queue = { INFLATE: 0, DEFLATE: 1, STATS: 2, REPORTING: 3 } as const;

/** What a balloon is built from. */
export interface BalloonSpec {
  /** Selects virtio-balloon. */
  kind: "balloon";
  /** Offer free page reporting (crosvm's `--balloon-page-reporting`). */
  pageReporting: boolean;
}

/** The balloon device. */
export class BalloonBackend implements VirtioBackend {
  /** §5.5.1. */
  readonly deviceType: number = VirtioDeviceType.BALLOON;
  /** §5.5.3. */
  readonly features: bigint;
  /** inflateq, deflateq, statsq, and reporting_vq when offered. */
  readonly queueSizes: readonly number[];
  /** §5.5.4: `num_pages` 0, `actual` 0. */
  readonly configBytes: Uint8Array = new Uint8Array(BALLOON_CONFIG_SIZE);
  /** Class 05h. */
  readonly pciClass: number = PCI_CLASS_MEMORY_OTHER;
  /** The driver writes `actual`. */
  readonly driverWritableConfig = { offset: BalloonConfigOffset.ACTUAL, length: 4 } as const;
  /** The statistics and their requests, shared with the VMM. */
  readonly hostCells: number = BALLOON_HOST_CELLS;
  #host: BalloonHost | undefined;
  /** The statistics buffer the driver left, held until the VMM asks for figures. */
  #heldStats: DescriptorChain | null = null;
  /** Page frame numbers the guest sent that are not RAM. */
  #badPages = 0;

  /** @param spec the balloon's options */
  constructor(readonly spec: BalloonSpec) {
    this.features = featureBit(VIRTIO_BALLOON_F_MUST_TELL_HOST) |
      featureBit(VIRTIO_BALLOON_F_STATS_VQ) | featureBit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
      (spec.pageReporting ? featureBit(VIRTIO_BALLOON_F_REPORTING) : 0n);
    const queues = spec.pageReporting ? 4 : 3;
    this.queueSizes = Array.from({ length: queues }, () => BALLOON_QUEUE_SIZE);
  }

  /** The cells shared with the VMM. */
  attachHost(cells: Int32Array): void {
    this.#host = new BalloonHost(cells);
  }

  /** Serves one queue after its doorbell. */
  processQueue(index: number, queue: VirtQueue, memory: GuestMemory): void {
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      switch (index) {
        case Queue.INFLATE:
          this.#discardPages(chain, memory);
          queue.pushUsed(chain, 0);
          break;
        case Queue.STATS:
          this.#takeStats(chain, queue);
          break;
        case Queue.REPORTING:
          this.#discardRanges(chain, memory);
          queue.pushUsed(chain, 0);
          break;
        default:
          // deflateq: the pages come back to the guest on their first touch.
          queue.pushUsed(chain, 0);
      }
    }
  }

  /** The VMM asked for statistics: hand the held buffer back, so the driver refills it. */
  onControl(queues: readonly (VirtQueue | undefined)[]): void {
    const host = this.#host;
    const stats = queues[Queue.STATS];
    if (host === undefined || stats === undefined || this.#heldStats === null) return;
    if (!host.statsWanted) return;
    stats.pushUsed(this.#heldStats, 0);
    this.#heldStats = null;
    host.holding = false;
  }

  /** The driver reset the device: its buffers are gone. */
  reset(): void {
    this.#heldStats = null;
    if (this.#host !== undefined) this.#host.holding = false;
  }

  /**
   * A statistics buffer arrived: the first comes at DRIVER_OK, each later one after the device
   * gave the last back. Its figures go to the VMM; the buffer is held for the next request.
   */
  #takeStats(chain: DescriptorChain, queue: VirtQueue): void {
    if (this.#heldStats !== null) {
      // A driver only ever has one out: give the older back rather than lose it.
      queue.pushUsed(this.#heldStats, 0);
    }
    this.#host?.publishStats(parseStats(chain.read(chain.readableLength)));
    this.#heldStats = chain;
    if (this.#host !== undefined) this.#host.holding = true;
  }

  /**
   * `inflateq`: each le32 is a page frame number. Sorted, runs of neighbours go back to the
   * host in one call each (the guest's allocator hands pages out in no particular order).
   */
  #discardPages(chain: DescriptorChain, memory: GuestMemory): void {
    const bytes = chain.read(chain.readableLength);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const pfns = Uint32Array.from(
      { length: Math.floor(bytes.length / PFN_SIZE) },
      (_, i) => view.getUint32(i * PFN_SIZE, true),
    ).sort();
    let runStart = -1;
    let runPages = 0;
    const flush = () => {
      if (runPages > 0) {
        this.#discard(memory, runStart * BALLOON_PAGE_SIZE, runPages * BALLOON_PAGE_SIZE);
      }
      runPages = 0;
    };
    for (const pfn of pfns) {
      if (runPages > 0 && pfn === runStart + runPages) {
        runPages++;
      } else {
        flush();
        runStart = pfn;
        runPages = 1;
      }
    }
    flush();
  }

  /**
   * `reporting_vq`: every readable buffer is a range of free guest memory; the whole pages in it
   * go back (Linux reports whole, aligned blocks; a range that is not gives back what it covers).
   */
  #discardRanges(chain: DescriptorChain, memory: GuestMemory): void {
    for (const { address, length } of chain.readable) {
      const start = Math.ceil(address / BALLOON_PAGE_SIZE) * BALLOON_PAGE_SIZE;
      const end = Math.floor((address + length) / BALLOON_PAGE_SIZE) * BALLOON_PAGE_SIZE;
      if (end > start) this.#discard(memory, start, end - start);
    }
  }

  #discard(memory: GuestMemory, address: number, length: number): void {
    try {
      memory.discard(address, length);
    } catch (e) {
      if (!(e instanceof GuestMemoryError)) throw e;
      if (this.#badPages === 0) {
        log.warn(`virtio-balloon: the guest gave back memory it has not: ${e.message}`);
      }
      this.#badPages += length / BALLOON_PAGE_SIZE;
    }
  }
}

/** The figures in a statistics buffer; tags this device does not know are skipped. */
export function parseStats(bytes: Uint8Array): Partial<Record<keyof BalloonStats, number>> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const byTag = new Map(BALLOON_STAT_FIELDS.map((field) => [BALLOON_STAT_TAGS[field], field]));
  const stats: Partial<Record<keyof BalloonStats, number>> = {};
  for (let at = 0; at + BALLOON_STAT_SIZE <= bytes.length; at += BALLOON_STAT_SIZE) {
    const field = byTag.get(view.getUint16(at, true));
    if (field !== undefined) stats[field] = Number(view.getBigUint64(at + 2, true));
  }
  return stats;
}
