/**
 * The virtio 1.x split virtqueue, driven from the device side (OASIS virtio 1.2, §2.7 Split
 * Virtqueues): take available descriptor chains, hand back used ones, and decide when the driver
 * needs a used buffer notification (an interrupt) and when it should notify us.
 *
 * A queue lives in its device's own Worker (one per virtio device: ARCHITECTURE.md, "Threads and
 * processes"): woken by the ioeventfd, it pops chains until {@link SplitQueue.pop} returns null,
 * completes them with {@link SplitQueue.pushUsed}, and writes the irqfd when
 * {@link SplitQueue.needsInterrupt} says so.
 *
 * Memory ordering: the guest's vCPUs write the rings concurrently. The index fields (`avail.idx`,
 * `used.idx`, `used_event`, `avail_event`) are accessed with `Atomics`, which are sequentially
 * consistent: they keep the JIT from caching or reordering those accesses, order the ring
 * entries before the index that publishes them, and give the full barrier that notification
 * suppression needs between publishing an index and reading the other side's event index (on
 * x86 a plain store followed by a plain load may be reordered; `Atomics.store` is an `xchg`).
 *
 * @module
 */

import type { GuestMemory } from "../../memory.ts";
import { U32_RANGE } from "../../ffi/struct.ts";
import {
  ChainError,
  type DescriptorChain,
  type DescriptorTable,
  readChain,
  VIRTQ_DESC_SIZE,
  VIRTQ_MAX_SIZE,
} from "./descriptor.ts";

export * from "./descriptor.ts";

/** §6 Reserved Feature Bits: the driver may use VIRTQ_DESC_F_INDIRECT (§2.7.5.3). */
export const VIRTIO_F_INDIRECT_DESC = 28;
/** §6 Reserved Feature Bits: `used_event` and `avail_event` are in use (§2.7.7, §2.7.10). */
export const VIRTIO_F_EVENT_IDX = 29;

/** §2.7 alignment table: the descriptor table is 16-byte aligned. */
export const VIRTQ_DESC_ALIGN = 16;
/** §2.7 alignment table: the available ring is 2-byte aligned. */
export const VIRTQ_AVAIL_ALIGN = 2;
/** §2.7 alignment table: the used ring is 4-byte aligned. */
export const VIRTQ_USED_ALIGN = 4;

/** §2.7.6 `struct virtq_avail`: in `flags`, the driver wants no used buffer notifications. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** §2.7.6: offset of `flags` (le16) in the available ring. */
export const VIRTQ_AVAIL_FLAGS = 0;
/** §2.7.6: offset of `idx` (le16) in the available ring. */
export const VIRTQ_AVAIL_IDX = 2;
/** §2.7.6: offset of `ring[]` (le16 heads) in the available ring; `used_event` follows it. */
export const VIRTQ_AVAIL_RING = 4;
/** §2.7.6: size of one available ring entry. */
export const VIRTQ_AVAIL_ELEM_SIZE = 2;

/** §2.7.8 `struct virtq_used`: in `flags`, the device wants no available buffer notifications. */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** §2.7.8: offset of `flags` (le16) in the used ring. */
export const VIRTQ_USED_FLAGS = 0;
/** §2.7.8: offset of `idx` (le16) in the used ring. */
export const VIRTQ_USED_IDX = 2;
/** §2.7.8: offset of `ring[]` (`struct virtq_used_elem`) in the used ring; `avail_event` follows. */
export const VIRTQ_USED_RING = 4;
/** §2.7.8: size of one `struct virtq_used_elem` (le32 id, le32 len). */
export const VIRTQ_USED_ELEM_SIZE = 8;
/** §2.7.8: offset of `id` (le32) in a used ring entry. */
export const VIRTQ_USED_ELEM_ID = 0;
/** §2.7.8: offset of `len` (le32) in a used ring entry. */
export const VIRTQ_USED_ELEM_LEN = 4;

/** Ring indices are free-running le16 values that wrap at 65536 (§2.7.13.3). */
const INDEX_MASK = 0xffff;

/** §2.7 size table: bytes in the descriptor table of a queue of `size` entries. */
export function descTableSize(size: number): number {
  return VIRTQ_DESC_SIZE * size;
}

/** §2.7 size table: bytes in the available ring, `used_event` included (6 + 2 × size). */
export function availRingSize(size: number): number {
  return VIRTQ_AVAIL_RING + VIRTQ_AVAIL_ELEM_SIZE * size + 2;
}

/** §2.7 size table: bytes in the used ring, `avail_event` included (6 + 8 × size). */
export function usedRingSize(size: number): number {
  return VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * size + 2;
}

/**
 * `vring_need_event` (Linux `include/uapi/linux/virtio_ring.h`): true when moving an index from
 * `oldIdx` to `newIdx` passes `eventIdx`, i.e. `eventIdx` lies in `[oldIdx, newIdx)` modulo 2^16.
 */
export function needEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & INDEX_MASK) < ((newIdx - oldIdx) & INDEX_MASK);
}

/** Where the driver put a queue and what was negotiated for it. */
export interface SplitQueueConfig {
  /** Queue size: a power of two, at most 32768 (§2.7). */
  readonly size: number;
  /** Guest-physical address of the descriptor table (Descriptor Area). */
  readonly descTable: number;
  /** Guest-physical address of the available ring (Driver Area). */
  readonly availRing: number;
  /** Guest-physical address of the used ring (Device Area). */
  readonly usedRing: number;
  /** VIRTIO_F_EVENT_IDX was negotiated. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  readonly indirect: boolean;
}

/**
 * The driver configured a queue the device cannot use (bad size, misaligned or not in RAM).
 * The transport answers it by setting DEVICE_NEEDS_RESET (§2.1.2).
 */
export class QueueConfigError extends Error {
  /**
   * Builds the error.
   * @param message what is wrong with the configuration
   */
  constructor(message: string) {
    super(`virtqueue configuration: ${message}`);
    this.name = "QueueConfigError";
  }
}

/** Typed arrays use host byte order; the rings are little-endian (§2.7.3 legacy aside). */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The device side of one split virtqueue. */
export class SplitQueue {
  /** Number of entries (descriptors, ring slots). */
  readonly size: number;
  readonly #memory: GuestMemory;
  readonly #view: DataView;
  readonly #table: DescriptorTable;
  readonly #availRing: number;
  readonly #usedRing: number;
  readonly #eventIdx: boolean;
  readonly #indirect: boolean;
  readonly #availFlags: Uint16Array;
  readonly #availIdx: Uint16Array;
  readonly #usedEvent: Uint16Array;
  readonly #usedIdx: Uint16Array;
  readonly #availEvent: Uint16Array;
  /** The device's free-running index into the available ring (§2.7.6 `idx` semantics). */
  #nextAvail = 0;
  /** The last `avail.idx` read; entries before it need no fresh read. */
  #availSeen = 0;
  /** The device's free-running index into the used ring, mirrored in `used.idx`. */
  #nextUsed = 0;
  /** `used.idx` when {@link needsInterrupt} last ran. */
  #checkedUsed = 0;
  /** Set when `avail.idx` is nonsense: the queue is dead until the device is reset. */
  #broken = false;

  /**
   * Checks the driver's configuration and attaches to its rings. Both ring indices start at 0,
   * as after a reset (§2.7.6, §2.7.8).
   * @param memory guest RAM holding the rings
   * @param config the driver's queue configuration
   * @throws QueueConfigError if the configuration breaks §2.7's size, alignment or placement
   */
  constructor(memory: GuestMemory, config: SplitQueueConfig) {
    if (!HOST_IS_LITTLE_ENDIAN) throw new Error("virtqueues need a little-endian host");
    const { size, descTable, availRing, usedRing } = config;
    if (!Number.isInteger(size) || size < 1 || size > VIRTQ_MAX_SIZE || (size & (size - 1))) {
      throw new QueueConfigError(`size ${size} is not a power of two from 1 to ${VIRTQ_MAX_SIZE}`);
    }
    this.size = size;
    this.#memory = memory;
    this.#view = memory.view;
    this.#eventIdx = config.eventIdx;
    this.#indirect = config.indirect;
    this.#table = {
      offset: ringOffset(
        memory,
        "descriptor table",
        descTable,
        VIRTQ_DESC_ALIGN,
        descTableSize(size),
      ),
      size,
    };
    this.#availRing = ringOffset(
      memory,
      "available ring",
      availRing,
      VIRTQ_AVAIL_ALIGN,
      availRingSize(size),
    );
    this.#usedRing = ringOffset(
      memory,
      "used ring",
      usedRing,
      VIRTQ_USED_ALIGN,
      usedRingSize(size),
    );
    const cell = (offset: number) => {
      // Aligned guest addresses stay aligned in the buffer: GuestMemory keeps RAM 2 MiB aligned.
      return new Uint16Array(memory.bytes.buffer, memory.bytes.byteOffset + offset, 1);
    };
    this.#availFlags = cell(this.#availRing + VIRTQ_AVAIL_FLAGS);
    this.#availIdx = cell(this.#availRing + VIRTQ_AVAIL_IDX);
    this.#usedEvent = cell(this.#availRing + VIRTQ_AVAIL_RING + VIRTQ_AVAIL_ELEM_SIZE * size);
    this.#usedIdx = cell(this.#usedRing + VIRTQ_USED_IDX);
    this.#availEvent = cell(this.#usedRing + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * size);
  }

  /** The next available ring index the device will read (free-running, 16 bits). */
  get nextAvail(): number {
    return this.#nextAvail;
  }

  /** The next used ring index the device will write; equals `used.idx` (free-running, 16 bits). */
  get nextUsed(): number {
    return this.#nextUsed;
  }

  /**
   * Takes the next available descriptor chain (§2.7.13: `avail.idx` is read before the ring
   * entries it publishes).
   *
   * When the ring is empty and VIRTIO_F_EVENT_IDX is in use, this first asks the driver to notify
   * at the next new entry (§2.7.10, {@link setAvailEvent}) and looks again, so a Worker that
   * sleeps on its ioeventfd after a null never misses a request.
   *
   * @returns the chain; null when nothing is available (or the queue is broken); a
   *   {@link ChainError} when the chain, or the ring itself, is malformed. A bad chain is
   *   consumed, so the next call moves on; a bad `avail.idx` breaks the queue until reset.
   */
  pop(): DescriptorChain | ChainError | null {
    if (this.#broken) return null;
    if (this.#nextAvail === this.#availSeen) {
      const pending = this.#refreshAvail();
      if (pending === 0) return null;
      if (pending > this.size) {
        // More heads than descriptors: impossible for a driver that follows §2.7.13.
        this.#broken = true;
        return new ChainError(null, "avail-index", `avail.idx is ${pending} entries ahead`);
      }
    }
    const slot = this.#nextAvail & (this.size - 1);
    const head = this.#view.getUint16(
      this.#availRing + VIRTQ_AVAIL_RING + VIRTQ_AVAIL_ELEM_SIZE * slot,
      true,
    );
    this.#nextAvail = (this.#nextAvail + 1) & INDEX_MASK;
    if (head >= this.size) {
      return new ChainError(
        null,
        "head-out-of-range",
        `ring entry ${head}, queue size ${this.size}`,
      );
    }
    return readChain(this.#memory, this.#table, head, this.#indirect);
  }

  /** Re-reads `avail.idx`; returns how many entries it is ahead of the device. */
  #refreshAvail(): number {
    this.#availSeen = Atomics.load(this.#availIdx, 0);
    if (this.#availSeen === this.#nextAvail && this.#eventIdx) {
      this.setAvailEvent();
      this.#availSeen = Atomics.load(this.#availIdx, 0);
    }
    return (this.#availSeen - this.#nextAvail) & INDEX_MASK;
  }

  /**
   * Returns a chain to the driver (§2.7.8): writes `{id: head, len: writtenLength}` to the next
   * used ring slot, then publishes it by advancing `used.idx` (§2.7.8.2: `len` before `idx`).
   *
   * @param head the chain's head index, as {@link DescriptorChain.head} or {@link ChainError.head}
   * @param writtenLength bytes the device wrote into the chain's writable part (0 for none)
   * @throws RangeError for a head outside the queue or a length that is not an le32 (bugs)
   */
  pushUsed(head: number, writtenLength: number): void {
    if (!Number.isInteger(head) || head < 0 || head >= this.size) {
      throw new RangeError(`used head ${head} outside a queue of ${this.size}`);
    }
    if (!Number.isInteger(writtenLength) || writtenLength < 0 || writtenLength >= U32_RANGE) {
      throw new RangeError(`used length ${writtenLength} is not a 32-bit count`);
    }
    const at = this.#usedRing + VIRTQ_USED_RING +
      VIRTQ_USED_ELEM_SIZE * (this.#nextUsed & (this.size - 1));
    this.#view.setUint32(at + VIRTQ_USED_ELEM_ID, head, true);
    this.#view.setUint32(at + VIRTQ_USED_ELEM_LEN, writtenLength, true);
    this.#nextUsed = (this.#nextUsed + 1) & INDEX_MASK;
    Atomics.store(this.#usedIdx, 0, this.#nextUsed);
  }

  /**
   * Whether the chains pushed since the last call need a used buffer notification (§2.7.7.2).
   * Without VIRTIO_F_EVENT_IDX: yes unless `avail.flags` has VIRTQ_AVAIL_F_NO_INTERRUPT. With
   * it: yes when `used.idx` moved past `used_event` (`vring_need_event`, modulo 2^16). Call it
   * once per batch and write the irqfd when it returns true.
   */
  needsInterrupt(): boolean {
    const oldIdx = this.#checkedUsed;
    const newIdx = this.#nextUsed;
    this.#checkedUsed = newIdx;
    if (oldIdx === newIdx) return false;
    if (this.#eventIdx) return needEvent(Atomics.load(this.#usedEvent, 0), newIdx, oldIdx);
    return (Atomics.load(this.#availFlags, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * With VIRTIO_F_EVENT_IDX, asks the driver to notify once it publishes the entry after those
   * the device has taken (§2.7.10: `avail_event` = the next available index). {@link pop} does
   * this itself when it finds the ring empty; without the feature this does nothing (we leave
   * `used.flags` at 0, so the driver always notifies).
   */
  setAvailEvent(): void {
    if (this.#eventIdx) Atomics.store(this.#availEvent, 0, this.#nextAvail);
  }
}

/** Checks one ring part's alignment and placement; returns its offset in `memory.bytes`. */
function ringOffset(
  memory: GuestMemory,
  part: string,
  address: number,
  alignment: number,
  length: number,
): number {
  const where = `${part} 0x${address.toString(16)}+${length}`;
  if (!Number.isSafeInteger(address) || address < 0) {
    throw new QueueConfigError(`${where} is not guest RAM`);
  }
  if (address % alignment !== 0) throw new QueueConfigError(`${where} is not ${alignment}-aligned`);
  if (!memory.contains(address, length)) throw new QueueConfigError(`${where} is not guest RAM`);
  return memory.offsetOf(address, length);
}
