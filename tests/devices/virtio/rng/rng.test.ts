import assert from "node:assert/strict";
import { MIB, ramRegions } from "../../../../src/arch/x86_64/layout.ts";
import { VirtQueue } from "../../../../src/devices/virtio/device.ts";
import {
  SplitQueue,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_RING,
} from "../../../../src/devices/virtio/queue.ts";
import {
  RNG_MAX_BYTES_PER_REQUEST,
  RngBackend,
} from "../../../../src/devices/virtio/rng/device.ts";
import { GuestMemory } from "../../../../src/memory.ts";

const SIZE = 8;
const DESC = 0x1000;
const AVAIL = 0x2000;
const USED = 0x3000;
const DATA = 0x10_0000;

/** A queue with one chain of buffers `[length, writable]`; returns the queue and the buffers. */
function oneChain(buffers: [number, boolean][]) {
  const memory = GuestMemory.allocate(ramRegions(4 * MIB));
  let address = DATA;
  const placed = buffers.map(([length, writable], i) => {
    const at = DESC + i * VIRTQ_DESC_SIZE;
    memory.writeU64(at, BigInt(address));
    memory.writeU32(at + 8, length);
    const next = i < buffers.length - 1 ? VIRTQ_DESC_F_NEXT : 0;
    memory.writeU16(at + 12, next | (writable ? VIRTQ_DESC_F_WRITE : 0));
    memory.writeU16(at + 14, i + 1);
    const start = address;
    address += length;
    return start;
  });
  memory.writeU16(AVAIL + VIRTQ_AVAIL_RING, 0);
  memory.writeU16(AVAIL + VIRTQ_AVAIL_IDX, 1);
  const split = new SplitQueue(memory, {
    size: SIZE,
    descTable: DESC,
    availRing: AVAIL,
    usedRing: USED,
    eventIdx: false,
    indirect: false,
  });
  return { memory, queue: new VirtQueue(0, split), placed };
}

Deno.test("virtio-rng fills every writable buffer of a chain and reports the length", () => {
  const { memory, queue, placed } = oneChain([[64, true], [32, true]]);
  new RngBackend().processQueue(0, queue, memory);
  assert.equal(memory.readU32(USED + VIRTQ_USED_RING + 4), 96);
  assert.ok(memory.read(placed[0], 64).some((b) => b !== 0));
  assert.ok(memory.read(placed[1], 32).some((b) => b !== 0));
  assert.equal(queue.pop(), null, "the ring is drained");
});

Deno.test("virtio-rng caps a request and ignores readable buffers", () => {
  const { memory, queue, placed } = oneChain([[16, false], [4096, true]]);
  new RngBackend(100).processQueue(0, queue, memory);
  assert.equal(memory.readU32(USED + VIRTQ_USED_RING + 4), 100);
  assert.ok(memory.read(placed[0], 16).every((b) => b === 0), "readable part untouched");
  assert.ok(memory.read(placed[1] + 100, 3996).every((b) => b === 0), "nothing past the cap");
});

Deno.test("virtio-rng refuses caps WebCrypto cannot serve", () => {
  assert.throws(() => new RngBackend(RNG_MAX_BYTES_PER_REQUEST + 1), RangeError);
  assert.throws(() => new RngBackend(0), RangeError);
});
