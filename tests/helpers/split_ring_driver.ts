/**
 * The guest's side of a split virtqueue for tests, done as Linux's drivers/virtio/virtio_ring.c
 * does it: a free list of descriptors, chains written before their avail entry, avail.idx bumped
 * last, used entries read up to used.idx, kicks decided by vring_need_event.
 *
 * @module
 */

import assert from "node:assert/strict";
import { MIB, ramRegions } from "../../src/arch/x86_64/layout.ts";
import {
  DescriptorChain,
  needEvent,
  SplitQueue,
  type SplitQueueConfig,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
} from "../../src/devices/virtio/queue.ts";
import { GuestMemory } from "../../src/memory.ts";

/** Guest RAM of a driver. */
export const RAM_SIZE = 16 * MIB;
/** Guest address of the descriptor table. */
export const DESC = 0x10_0000;
/** Guest address of the available ring. */
export const AVAIL = 0x20_0000;
/** Guest address of the used ring. */
export const USED = 0x30_0000;
/** Where data buffers start (bump allocated above the rings). */
export const DATA = 0x40_0000;
/** Where indirect tables start. */
export const INDIRECT_TABLES = 0x80_0000;

/** One buffer element the driver offers (§2.7.13.1). */
export interface Element {
  addr: number | bigint;
  len: number;
  write?: boolean;
}

/** What the driver reads back from one used ring entry. */
export interface Used {
  id: number;
  len: number;
}

/** A split-ring driver over its own guest RAM. */
export class Driver {
  readonly mem: GuestMemory;
  readonly queue: SplitQueue;
  readonly size: number;
  readonly eventIdx: boolean;
  availIdx = 0;
  lastUsed = 0;
  #added = 0;
  #free: number[];
  #chains = new Map<number, number[]>();
  #nextData = DATA;
  #nextTable = INDIRECT_TABLES;

  /**
   * A driver over fresh guest RAM, or over `opts.mem` (a fuzzer reuses RAM; the rings are
   * cleared, and the bump allocators start again).
   */
  constructor(opts: Partial<SplitQueueConfig> & { mem?: GuestMemory } = {}) {
    this.mem = opts.mem ?? GuestMemory.allocate(ramRegions(RAM_SIZE));
    this.size = opts.size ?? 8;
    if (opts.mem !== undefined) {
      // The rings of the size in use (their event words included), as fresh RAM has them.
      this.mem.slice(DESC, VIRTQ_DESC_SIZE * this.size).fill(0);
      this.mem.slice(AVAIL, VIRTQ_AVAIL_RING + 2 * this.size + 2).fill(0);
      this.mem.slice(USED, VIRTQ_USED_RING + 8 * this.size + 2).fill(0);
    }
    this.eventIdx = opts.eventIdx ?? false;
    this.#free = Array.from({ length: this.size }, (_, i) => i);
    this.queue = new SplitQueue(this.mem, {
      size: this.size,
      descTable: DESC,
      availRing: AVAIL,
      usedRing: USED,
      eventIdx: this.eventIdx,
      indirect: opts.indirect ?? false,
    });
  }

  /** A fresh data buffer of `len` bytes filled with `fill` (bump allocated, never reused). */
  buffer(len: number, fill = 0): number {
    const addr = this.#nextData;
    this.#nextData += len;
    this.mem.slice(addr, len).fill(fill);
    return addr;
  }

  /** Writes one descriptor at index `i` of the table at `table`. */
  writeDesc(i: number, d: Element & { flags?: number; next?: number }, table = DESC): void {
    const at = table + i * VIRTQ_DESC_SIZE;
    this.mem.writeU64(at, BigInt(d.addr));
    this.mem.writeU32(at + 8, d.len);
    this.mem.writeU16(at + 12, (d.flags ?? 0) | (d.write ? VIRTQ_DESC_F_WRITE : 0));
    this.mem.writeU16(at + 14, d.next ?? 0);
  }

  /** Writes `elements` as a chain at consecutive indices `[first, …)` of a table. */
  writeChain(elements: Element[], first = 0, table = DESC): void {
    elements.forEach((e, k) => {
      const last = k === elements.length - 1;
      const flags = last ? 0 : VIRTQ_DESC_F_NEXT;
      this.writeDesc(first + k, { ...e, flags, next: first + k + 1 }, table);
    });
  }

  /** Places a head in the next avail slot (visible after {@link publish}). */
  offer(head: number): void {
    const slot = (this.availIdx + this.#added++) % this.size;
    this.mem.writeU16(AVAIL + VIRTQ_AVAIL_RING + 2 * slot, head);
  }

  /** Adds a chain from the free list, optionally through one indirect table; returns its head. */
  add(elements: Element[], indirect = false): number {
    if (indirect) {
      const table = this.#nextTable;
      this.#nextTable += elements.length * VIRTQ_DESC_SIZE;
      this.writeChain(elements, 0, table);
      elements = [{ addr: table, len: elements.length * VIRTQ_DESC_SIZE }];
    }
    const ids = elements.map(() => this.#free.shift()!);
    elements.forEach((e, k) => {
      const flags = (k < ids.length - 1 ? VIRTQ_DESC_F_NEXT : 0) |
        (indirect ? VIRTQ_DESC_F_INDIRECT : 0);
      this.writeDesc(ids[k], { ...e, flags, next: ids[k + 1] ?? 0 });
    });
    this.#chains.set(ids[0], ids);
    this.offer(ids[0]);
    return ids[0];
  }

  /** Adds fresh readable buffers (`[length, fill]`) then fresh writable ones, as one chain. */
  addBuffers(readable: [number, number][], writable: number[]) {
    const r = readable.map(([len, fill]) => this.buffer(len, fill));
    const w = writable.map((len) => this.buffer(len));
    const head = this.add([
      ...r.map((addr, i) => ({ addr, len: readable[i][0] })),
      ...w.map((addr, i) => ({ addr, len: writable[i], write: true })),
    ]);
    return { head, r, w };
  }

  /** Bumps avail.idx over what was added; returns whether the device wants a kick (§2.7.10). */
  publish(): boolean {
    const old = this.availIdx;
    this.availIdx = (old + this.#added) & 0xffff;
    this.#added = 0;
    this.mem.writeU16(AVAIL + VIRTQ_AVAIL_IDX, this.availIdx);
    if (!this.eventIdx) {
      return (this.mem.readU16(USED + VIRTQ_USED_FLAGS) & VIRTQ_USED_F_NO_NOTIFY) === 0;
    }
    const availEvent = this.mem.readU16(USED + VIRTQ_USED_RING + 8 * this.size);
    return needEvent(availEvent, this.availIdx, old);
  }

  /** Reads new used entries up to used.idx and frees their chains. */
  used(): Used[] {
    const out: Used[] = [];
    const idx = this.mem.readU16(USED + VIRTQ_USED_IDX);
    for (; this.lastUsed !== idx; this.lastUsed = (this.lastUsed + 1) & 0xffff) {
      const at = USED + VIRTQ_USED_RING + 8 * (this.lastUsed % this.size);
      const entry = { id: this.mem.readU32(at), len: this.mem.readU32(at + 4) };
      this.#free.push(...(this.#chains.get(entry.id) ?? []));
      this.#chains.delete(entry.id);
      out.push(entry);
    }
    return out;
  }

  /** Sets avail.used_event (§2.7.7). */
  set usedEvent(value: number) {
    this.mem.writeU16(AVAIL + VIRTQ_AVAIL_RING + 2 * this.size, value);
  }

  /** Sets avail.flags (§2.7.7). */
  set availFlags(value: number) {
    this.mem.writeU16(AVAIL + VIRTQ_AVAIL_FLAGS, value);
  }

  /** Pops one chain and asserts it is well formed. */
  pop(): DescriptorChain {
    const chain = this.queue.pop();
    assert.ok(chain instanceof DescriptorChain, `expected a chain, got ${chain}`);
    return chain;
  }

  /** One whole request: add a 1-byte readable chain, publish, pop, complete, reclaim. */
  roundTrip(): void {
    const head = this.add([{ addr: this.buffer(1), len: 1 }]);
    this.publish();
    assert.equal(this.pop().head, head);
    this.queue.pushUsed(head, 0);
    assert.deepEqual(this.used(), [{ id: head, len: 0 }]);
  }
}
