/**
 * A virtqueue fuzzer: drives a device's backend through guest memory as a careless or hostile
 * driver would. Each case builds fresh rings for every queue and fills them with a mix of
 * well-formed requests of the device's own shape (then often corrupted) and raw descriptors
 * (random addresses, lengths, flags and `next` links, loops, indirect tables that point anywhere),
 * publishes them (sometimes with an `avail.idx` that jumps past the ring), and lets the device
 * serve them, with resets and re-activations thrown in between.
 *
 * What must hold, on every case ({@link fuzzDevice} throws a {@link FuzzFailure} naming the seed
 * and the case otherwise):
 * - the backend never throws (out of a queue, an event, a reset or an activation);
 * - every chain comes back with no more bytes written than its writable part holds;
 * - the target's own invariants hold (a read-only image's bytes never change, …);
 * - after a reset the device serves a well-formed request again;
 * - at the end no descriptor is left open that the run opened.
 *
 * @module
 */

import type { DescriptorChain } from "../../src/devices/virtio/descriptor.ts";
import { VirtQueue } from "../../src/devices/virtio/device.ts";
import type { VirtioBackend } from "../../src/devices/virtio/device.ts";
import {
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
} from "../../src/devices/virtio/queue.ts";
import {
  AVAIL,
  DATA,
  DESC,
  Driver,
  type Element,
  INDIRECT_TABLES,
  RAM_SIZE,
  USED,
} from "../helpers/split_ring_driver.ts";
import { ramRegions } from "../../src/arch/x86_64/layout.ts";
import { GuestMemory } from "../../src/memory.ts";
import { Random } from "./random.ts";

/** Entries in each fuzzed ring: room for every request a case adds. */
const RING_SIZE = 64;
/** Requests a case adds to one ring, at most. */
const MAX_REQUESTS = 5;
/** `avail.idx` (§2.7.6). */
const AVAIL_IDX = AVAIL + 2;

/** One request of a device's own shape: its buffers (filled) in order. */
export type Request = Element[];

/** A device under fuzzing, and what it knows of its own requests. */
export interface FuzzTarget {
  /** For messages. */
  readonly name: string;
  /** The backend. */
  readonly backend: VirtioBackend;
  /** The driver features to activate with (a random subset is used at times). */
  readonly features: bigint;
  /** A well-formed request of this device on queue `queue`, built in `driver`'s memory. */
  request(random: Random, driver: Driver, queue: number): Request;
  /**
   * After a reset and activation: serves one well-formed request on fresh rings and says what
   * is wrong with the answer, or null when it is right.
   */
  probe(queues: Driver[]): string | null;
  /** The target's own invariant after a case (null when it holds). */
  check?(): string | null;
  /** Lets the backend act on its own descriptors (a TAP's frames, a socket's bytes). */
  pump?(queues: readonly (VirtQueue | undefined)[]): void;
}

/** A broken invariant, with what it takes to reproduce it. */
export class FuzzFailure extends Error {}

/** The descriptors this process holds now. */
export function openDescriptors(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Guest RAM for each queue's driver, reused from case to case (touching fresh RAM is slow). */
const ramPool: GuestMemory[] = [];

/** Fresh rings for every queue of `target`, with their live views. */
function freshQueues(target: FuzzTarget): { drivers: Driver[]; queues: CheckedQueue[] } {
  const drivers = target.backend.queueSizes.map((_, q) => {
    ramPool[q] ??= GuestMemory.allocate(ramRegions(RAM_SIZE));
    return new Driver({ size: RING_SIZE, indirect: true, eventIdx: false, mem: ramPool[q] });
  });
  return { drivers, queues: drivers.map((d, i) => new CheckedQueue(i, d.queue)) };
}

/** Writes raw, random descriptors over part of `driver`'s table and offers random heads. */
function rawDescriptors(random: Random, driver: Driver): void {
  const count = 1 + random.below(RING_SIZE);
  for (let k = 0; k < count; k++) {
    const addr = random.chance(0.7)
      ? DATA + random.below(0x10_0000)
      : random.chance(0.5)
      ? random.pick([0, AVAIL, USED, RAM_SIZE - 8, RAM_SIZE, 2 ** 32, 2 ** 52])
      : random.u32() * 0x1000;
    const flags = (random.chance(0.5) ? VIRTQ_DESC_F_NEXT : 0) |
      (random.chance(0.5) ? VIRTQ_DESC_F_WRITE : 0) |
      (random.chance(0.15) ? VIRTQ_DESC_F_INDIRECT : 0);
    const len = random.chance(0.8) ? random.below(0x2000) : random.field();
    const next = random.chance(0.9) ? random.below(RING_SIZE) : random.field();
    driver.writeDesc(random.below(RING_SIZE), { addr, len, flags, next: next & 0xffff });
  }
  if (random.chance(0.3)) {
    // An indirect table of junk where a descriptor may point.
    driver.mem.write(INDIRECT_TABLES, random.bytes(VIRTQ_DESC_SIZE * RING_SIZE));
  }
  const heads = 1 + random.below(4);
  for (let k = 0; k < heads; k++) {
    driver.offer(random.chance(0.95) ? random.below(RING_SIZE) : random.field() & 0xffff);
  }
}

/** Fills every ring with requests, raw descriptors and corruption; publishes them. */
function fillRings(random: Random, target: FuzzTarget, drivers: Driver[]): void {
  drivers.forEach((driver, q) => {
    const requests = random.below(MAX_REQUESTS + 1);
    for (let k = 0; k < requests; k++) {
      if (random.chance(0.7)) {
        const request = target.request(random, driver, q);
        if (request.length === 0) continue;
        driver.add(request, random.chance(0.2));
      } else {
        rawDescriptors(random, driver);
      }
    }
    if (random.chance(0.2)) {
      // Corrupt a descriptor of what was just added.
      const at = random.below(RING_SIZE) * VIRTQ_DESC_SIZE + random.below(VIRTQ_DESC_SIZE - 3);
      driver.mem.writeU32(DESC + at, random.field());
    }
    driver.publish();
    if (random.chance(0.05)) driver.mem.writeU16(AVAIL_IDX, random.u32() & 0xffff);
  });
}

/**
 * A live queue that checks what the device returns: never more bytes written than the chain's
 * writable part holds. (Heads and lengths outside the ring's bounds the split queue refuses by
 * throwing, which the fuzzer catches as a failure.)
 */
class CheckedQueue extends VirtQueue {
  /** The first impossible completion, if any. */
  wrong: string | null = null;
  /** Chains the device returned. */
  returned = 0;

  override pushUsed(chain: DescriptorChain, writtenLength: number): void {
    this.returned++;
    if (writtenLength > chain.writableLength) {
      this.wrong ??= `head ${chain.head} returned with ${writtenLength} bytes written, ` +
        `its writable part holds ${chain.writableLength}`;
    }
    super.pushUsed(chain, writtenLength);
  }
}

/** What a fuzzing run did. */
export interface FuzzReport {
  readonly cases: number;
  readonly resets: number;
  /** Chains the device served and returned (well-formed or not), across every case. */
  readonly chains: number;
  /** Queues (one per queue per case) that met a malformed chain or ring, which the device survived. */
  readonly faults: number;
}

/**
 * Runs `cases` cases against `target` from `seed`.
 * @throws FuzzFailure naming the target, seed and case of the first broken invariant
 */
export function fuzzDevice(target: FuzzTarget, seed: number, cases: number): FuzzReport {
  const random = new Random(seed);
  let resets = 0;
  let chains = 0;
  let faults = 0;
  const fail = (k: number, what: string): never => {
    throw new FuzzFailure(
      `${target.name}: case ${k} of seed ${seed} (FUZZ_SEED=${seed} FUZZ_CASES=${k + 1}): ${what}`,
    );
  };
  const guarded = (k: number, step: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      fail(k, `${step} threw ${e instanceof Error ? e.stack : e}`);
    }
  };
  for (let k = 0; k < cases; k++) {
    const { drivers, queues } = freshQueues(target);
    const features = random.chance(0.8) ? target.features : target.features & BigInt(random.u32());
    guarded(k, "activate", () => target.backend.activate?.(features, [], drivers[0].mem));
    fillRings(random, target, drivers);
    const rounds = 1 + random.below(3);
    for (let r = 0; r < rounds; r++) {
      const order = queues.map((_, i) => i).sort(() => random.below(3) - 1);
      for (const q of order) {
        guarded(
          k,
          `queue ${q}`,
          () => target.backend.processQueue(q, queues[q], drivers[q].mem, queues),
        );
      }
      guarded(k, "events", () => target.pump?.(queues));
      if (random.chance(0.1)) {
        guarded(k, "a reset mid-request", () => target.backend.reset?.());
        resets++;
      }
    }
    for (const queue of queues) {
      if (queue.wrong !== null) fail(k, queue.wrong);
      chains += queue.returned;
      if (queue.takeFault() !== null) faults++;
    }
    const broken = target.check?.();
    if (broken) fail(k, broken);
    // The guest resets the device and starts again: it must work.
    guarded(k, "reset", () => target.backend.reset?.());
    resets++;
    const fresh = freshQueues(target);
    guarded(
      k,
      "re-activate",
      () => target.backend.activate?.(target.features, [], fresh.drivers[0].mem),
    );
    let answer: string | null = null;
    guarded(k, "probe", () => (answer = target.probe(fresh.drivers)));
    if (answer !== null) fail(k, `after a reset: ${answer}`);
    guarded(k, "reset", () => target.backend.reset?.());
  }
  return { cases, resets, chains, faults };
}
