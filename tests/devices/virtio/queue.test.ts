import assert from "node:assert/strict";
import { MIB, ramRegions } from "../../../src/arch/x86_64/layout.ts";
import {
  availRingSize,
  ChainError,
  type ChainErrorReason,
  DescriptorChain,
  descTableSize,
  needEvent,
  QueueConfigError,
  SplitQueue,
  type SplitQueueConfig,
  usedRingSize,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_IDX,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_MAX_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
} from "../../../src/devices/virtio/queue.ts";
import { GuestMemory } from "../../../src/memory.ts";
import {
  AVAIL,
  DESC,
  Driver,
  INDIRECT_TABLES,
  RAM_SIZE,
  USED,
} from "../../helpers/split_ring_driver.ts";

Deno.test("pop returns null while the driver has published nothing", () => {
  const d = new Driver();
  assert.equal(d.queue.pop(), null);
  d.add([{ addr: d.buffer(4), len: 4 }]); // written but avail.idx not yet bumped
  assert.equal(d.queue.pop(), null);
  d.publish();
  assert.ok(d.queue.pop() instanceof DescriptorChain);
  assert.equal(d.queue.pop(), null);
});

Deno.test("a single readable descriptor is read and completed with its head", () => {
  const d = new Driver();
  const addr = d.buffer(5);
  d.mem.write(addr, new TextEncoder().encode("hello"));
  const head = d.add([{ addr, len: 5 }]);
  d.publish();
  const chain = d.pop();
  assert.equal(chain.head, head);
  assert.deepEqual(chain.readable, [{ address: addr, length: 5 }]);
  assert.deepEqual(chain.writable, []);
  assert.equal(new TextDecoder().decode(chain.read(100)), "hello");
  d.queue.pushUsed(chain.head, 0);
  assert.deepEqual(d.used(), [{ id: head, len: 0 }]);
  assert.equal(d.mem.readU16(USED + VIRTQ_USED_IDX), 1);
});

Deno.test("a multi-descriptor chain splits into readable then writable buffers", () => {
  const d = new Driver();
  const { head, r, w } = d.addBuffers([[3, 0x11], [2, 0x22], [4, 0x33]], [3, 1]);
  d.publish();
  const chain = d.pop();
  assert.deepEqual(chain.readable.map((b) => b.address), r);
  assert.deepEqual(chain.writable, [{ address: w[0], length: 3 }, { address: w[1], length: 1 }]);
  assert.equal(chain.readableLength, 9);
  assert.equal(chain.writableLength, 4);
  assert.deepEqual([...chain.read(9)], [0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x33, 0x33]);
  assert.equal(chain.write(Uint8Array.of(1, 2, 3, 4)), 4);
  assert.deepEqual([...d.mem.read(w[0], 3), ...d.mem.read(w[1], 1)], [1, 2, 3, 4]);
  d.queue.pushUsed(head, 4);
  assert.deepEqual(d.used(), [{ id: head, len: 4 }]);
});

Deno.test("chain copies are bounded by the cap, the offset and the chain's own length", () => {
  const d = new Driver();
  const { r, w } = d.addBuffers([[4, 0xaa], [4, 0xbb]], [2, 3]);
  d.publish();
  const chain = d.pop();
  assert.deepEqual([...chain.read(3)], [0xaa, 0xaa, 0xaa]);
  assert.deepEqual([...chain.read(100, 3)], [0xaa, 0xbb, 0xbb, 0xbb, 0xbb]);
  assert.equal(chain.read(100, 8).length, 0);
  assert.equal(chain.read(100, 50).length, 0);
  const into = new Uint8Array(16);
  assert.equal(chain.readInto(into, 6), 2);
  assert.equal(chain.write(Uint8Array.of(9, 8), 1), 2); // straddles both writable buffers
  assert.deepEqual([...d.mem.read(w[0], 2), ...d.mem.read(w[1], 3)], [0, 9, 8, 0, 0]);
  assert.equal(chain.write(new Uint8Array(10).fill(7)), 5, "truncated at the chain's end");
  assert.equal(chain.write(Uint8Array.of(1), 5), 0);
  assert.deepEqual([...d.mem.read(r[0], 4)], [0xaa, 0xaa, 0xaa, 0xaa], "readable untouched");
  const views = chain.writableViews();
  assert.deepEqual(views.map((v) => v.length), [2, 3]);
  views[1][2] = 0x42;
  assert.equal(d.mem.readU8(w[1] + 2), 0x42, "views are live guest memory");
  assert.deepEqual(chain.readableViews().map((v) => v[0]), [0xaa, 0xbb]);
});

Deno.test("chains come out in avail order and go back in completion order", () => {
  const d = new Driver();
  const heads = [1, 2, 3].map((n) => d.add([{ addr: d.buffer(n), len: n, write: true }]));
  d.publish();
  const chains = heads.map(() => d.pop());
  assert.deepEqual(chains.map((c) => c.head), heads);
  assert.equal(d.queue.pop(), null);
  d.queue.pushUsed(heads[2], 3);
  d.queue.pushUsed(heads[0], 1);
  assert.deepEqual(d.used(), [{ id: heads[2], len: 3 }, { id: heads[0], len: 1 }]);
  d.queue.pushUsed(heads[1], 2);
  assert.deepEqual(d.used(), [{ id: heads[1], len: 2 }]);
});

Deno.test("an indirect descriptor brings its whole table as one chain (§2.7.5.3)", () => {
  const d = new Driver({ indirect: true });
  const r = d.buffer(8, 0x5a);
  const w = d.buffer(2);
  const head = d.add([{ addr: r, len: 8 }, { addr: w, len: 1 }, {
    addr: w + 1,
    len: 1,
    write: true,
  }], true);
  d.publish();
  const chain = d.pop();
  assert.equal(chain.head, head);
  assert.deepEqual(chain.readable, [{ address: r, length: 8 }, { address: w, length: 1 }]);
  assert.deepEqual(chain.writable, [{ address: w + 1, length: 1 }]);
  d.queue.pushUsed(head, 1);
  assert.deepEqual(d.used(), [{ id: head, len: 1 }]);
});

Deno.test("direct descriptors may precede one indirect descriptor, whose WRITE flag is ignored", () => {
  const d = new Driver({ indirect: true });
  const table = INDIRECT_TABLES;
  const [a, b, c] = [d.buffer(4), d.buffer(4), d.buffer(4)];
  d.writeChain([{ addr: b, len: 4 }, { addr: c, len: 4, write: true }], 0, table);
  d.writeDesc(3, { addr: a, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 5 });
  const indirectWrite = VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE;
  d.writeDesc(5, { addr: table, len: 2 * VIRTQ_DESC_SIZE, flags: indirectWrite });
  d.offer(3);
  d.publish();
  const chain = d.pop();
  assert.deepEqual(chain.readable.map((x) => x.address), [a, b]);
  assert.deepEqual(chain.writable.map((x) => x.address), [c]);
});

Deno.test("avail and used indices wrap at 65536", () => {
  const d = new Driver({ size: 4 });
  for (let i = 0; i < 65534; i++) d.roundTrip();
  assert.equal(d.queue.nextAvail, 65534);
  const heads = [1, 2, 3, 4].map((n) => d.add([{ addr: d.buffer(n), len: n, write: true }]));
  d.publish();
  assert.equal(d.mem.readU16(AVAIL + VIRTQ_AVAIL_IDX), 2, "the driver's idx wrapped");
  assert.deepEqual(heads.map(() => d.pop().head), heads);
  assert.equal(d.queue.pop(), null);
  assert.equal(d.queue.nextAvail, 2);
  heads.forEach((h, n) => d.queue.pushUsed(h, n + 1));
  assert.deepEqual(d.used(), heads.map((id, n) => ({ id, len: n + 1 })));
  assert.equal(d.mem.readU16(USED + VIRTQ_USED_IDX), 2);
  d.roundTrip();
});

Deno.test("without EVENT_IDX, interrupts follow avail.flags NO_INTERRUPT (§2.7.7.2)", () => {
  const d = new Driver();
  assert.equal(d.queue.needsInterrupt(), false, "nothing used yet");
  d.roundTrip();
  assert.equal(d.queue.needsInterrupt(), true);
  assert.equal(d.queue.needsInterrupt(), false, "nothing new since the last check");
  d.availFlags = VIRTQ_AVAIL_F_NO_INTERRUPT;
  d.roundTrip();
  assert.equal(d.queue.needsInterrupt(), false);
  d.availFlags = 0;
  d.roundTrip();
  d.roundTrip();
  assert.equal(d.queue.needsInterrupt(), true);
});

Deno.test("with EVENT_IDX, an interrupt is due only when used.idx passes used_event", () => {
  const d = new Driver({ eventIdx: true });
  d.usedEvent = 2; // "interrupt me once entry 2 is in the used ring"
  d.availFlags = VIRTQ_AVAIL_F_NO_INTERRUPT; // ignored with EVENT_IDX (§2.7.7.2)
  const expected = [false, false, true, false];
  for (const want of expected) {
    d.roundTrip();
    assert.equal(d.queue.needsInterrupt(), want, `used.idx ${d.queue.nextUsed}`);
  }
  d.usedEvent = 5; // batch of 3 over [4, 7): 5 inside
  for (let i = 0; i < 3; i++) d.roundTrip();
  assert.equal(d.queue.needsInterrupt(), true);
  d.usedEvent = 3; // already behind used.idx 7: no interrupt until idx comes round again
  d.roundTrip();
  assert.equal(d.queue.needsInterrupt(), false);
  assert.equal(d.queue.needsInterrupt(), false);
});

Deno.test("with EVENT_IDX, used_event is compared modulo 2^16 across the wrap", () => {
  const d = new Driver({ size: 2, eventIdx: true });
  for (let i = 0; i < 65534; i++) d.roundTrip();
  d.queue.needsInterrupt();
  d.usedEvent = 65535;
  d.roundTrip(); // used.idx 65534 -> 65535
  assert.equal(d.queue.needsInterrupt(), false);
  d.roundTrip(); // entry 65535 written, used.idx -> 0
  assert.equal(d.queue.needsInterrupt(), true);
  d.usedEvent = 65535; // stale: now 65535 behind
  d.roundTrip();
  assert.equal(d.queue.needsInterrupt(), false);
  d.usedEvent = 2; // a batch of two, [1, 3), passes it
  d.roundTrip();
  d.roundTrip();
  assert.equal(d.queue.needsInterrupt(), true);
  assert.equal(needEvent(0xffff, 1, 0xfffe), true, "a batch 65534 -> 1 passes 65535");
  assert.equal(needEvent(1, 1, 0xfffe), false, "but not 1");
});

Deno.test("with EVENT_IDX, the device asks for a kick only when it has run dry (§2.7.10)", () => {
  const d = new Driver({ eventIdx: true });
  assert.equal(d.queue.pop(), null); // empty: avail_event = 0
  d.add([{ addr: d.buffer(1), len: 1 }]);
  assert.equal(d.publish(), true, "first request after idle kicks");
  d.pop();
  d.add([{ addr: d.buffer(1), len: 1 }]);
  assert.equal(d.publish(), false, "the device is still working: no kick");
  d.pop();
  assert.equal(d.queue.pop(), null); // dry again: avail_event = 2
  d.add([{ addr: d.buffer(1), len: 1 }]);
  assert.equal(d.publish(), true);
});

Deno.test("without EVENT_IDX, avail_event is left alone and every publish kicks", () => {
  const d = new Driver();
  const availEvent = USED + VIRTQ_USED_RING + 8 * d.size;
  d.mem.writeU16(availEvent, 0x1234);
  assert.equal(d.queue.pop(), null);
  d.queue.setAvailEvent();
  assert.equal(d.mem.readU16(availEvent), 0x1234);
  for (let i = 0; i < 3; i++) {
    d.add([{ addr: d.buffer(1), len: 1 }]);
    assert.equal(d.publish(), true, "used.flags stays 0: notifications wanted");
  }
});

/** A malformed chain the driver publishes, and how the device must refuse it. */
interface BadChain {
  name: string;
  reason: ChainErrorReason;
  indirect?: boolean;
  /** Writes the descriptors; returns the head to offer (default 0). */
  setup(d: Driver): number | void;
  /** The head the error carries (default: the offered head). */
  head?: number | null;
}

const OUT_OF_RAM = RAM_SIZE;
const TABLE = INDIRECT_TABLES;
const one = (d: Driver) => ({ addr: d.buffer(16), len: 16 });
const wone = (d: Driver) => ({ ...one(d), write: true });
/** Offers `entries` as an indirect table behind descriptor 0. */
const indirectTable = (d: Driver, entries: Parameters<Driver["writeDesc"]>[1][]) => {
  entries.forEach((e, i) => d.writeDesc(i, e, TABLE));
  d.writeDesc(0, { addr: TABLE, len: entries.length * VIRTQ_DESC_SIZE, flags: INDIRECT });
};
const INDIRECT = VIRTQ_DESC_F_INDIRECT;
const NEXT = VIRTQ_DESC_F_NEXT;

const BAD_CHAINS: BadChain[] = [
  {
    name: "a buffer outside RAM",
    reason: "buffer-out-of-range",
    setup: (d) => d.writeChain([one(d), { addr: OUT_OF_RAM, len: 1 }]),
  },
  {
    name: "a buffer running past the end of RAM",
    reason: "buffer-out-of-range",
    setup: (d) => d.writeChain([{ addr: OUT_OF_RAM - 100, len: 200, write: true }]),
  },
  {
    name: "an address with high bits set",
    reason: "buffer-out-of-range",
    setup: (d) => d.writeChain([{ addr: 1n << 63n, len: 1 }]),
  },
  {
    name: "an address above 4 GiB where there is no RAM",
    reason: "buffer-out-of-range",
    setup: (d) => d.writeChain([{ addr: 2 ** 40, len: 1, write: true }]),
  },
  {
    name: "a loop: next pointing back",
    reason: "chain-too-long",
    setup: (d) => {
      d.writeDesc(0, { ...one(d), flags: NEXT, next: 1 });
      d.writeDesc(1, { ...one(d), flags: NEXT, next: 0 });
    },
  },
  {
    name: "a descriptor chained to itself",
    reason: "chain-too-long",
    setup: (d) => {
      d.writeDesc(2, { ...one(d), flags: NEXT, next: 2 });
      return 2;
    },
  },
  {
    name: "a chain longer than the queue size",
    reason: "chain-too-long",
    setup: (d) => {
      for (let i = 0; i < d.size; i++) {
        d.writeDesc(i, { ...one(d), flags: NEXT, next: (i + 1) % d.size });
      }
      return 3;
    },
  },
  {
    name: "next past the end of the table",
    reason: "next-out-of-range",
    setup: (d) => d.writeDesc(0, { ...one(d), flags: NEXT, next: d.size }),
  },
  {
    name: "a head past the end of the table",
    reason: "head-out-of-range",
    head: null,
    setup: (d) => d.size + 1,
  },
  {
    name: "a readable buffer after a writable one",
    reason: "readable-after-writable",
    setup: (d) => d.writeChain([one(d), wone(d), one(d)]),
  },
  {
    name: "INDIRECT without VIRTIO_F_INDIRECT_DESC",
    reason: "indirect-not-negotiated",
    setup: (d) => indirectTable(d, [one(d)]),
  },
  {
    name: "an indirect table inside an indirect table",
    reason: "nested-indirect",
    indirect: true,
    setup: (d) =>
      indirectTable(d, [{ ...one(d), flags: NEXT, next: 1 }, {
        addr: TABLE,
        len: 32,
        flags: INDIRECT,
      }]),
  },
  {
    name: "INDIRECT together with NEXT",
    reason: "indirect-with-next",
    indirect: true,
    setup: (d) => {
      d.writeDesc(0, one(d), TABLE);
      d.writeDesc(0, { addr: TABLE, len: 16, flags: INDIRECT | NEXT, next: 1 });
      d.writeDesc(1, one(d));
    },
  },
  {
    name: "an indirect table that is not whole descriptors",
    reason: "indirect-table-size",
    indirect: true,
    setup: (d) => d.writeDesc(0, { addr: TABLE, len: 24, flags: INDIRECT }),
  },
  {
    name: "an empty indirect table",
    reason: "indirect-table-size",
    indirect: true,
    setup: (d) => d.writeDesc(0, { addr: TABLE, len: 0, flags: INDIRECT }),
  },
  {
    name: "an indirect table of more than 32768 descriptors",
    reason: "indirect-table-size",
    indirect: true,
    setup: (d) =>
      d.writeDesc(0, { addr: 0, len: (VIRTQ_MAX_SIZE + 1) * VIRTQ_DESC_SIZE, flags: INDIRECT }),
  },
  {
    name: "an indirect table running past the end of RAM",
    reason: "indirect-table-out-of-range",
    indirect: true,
    setup: (d) => d.writeDesc(0, { addr: OUT_OF_RAM - 16, len: 32, flags: INDIRECT }),
  },
  {
    name: "a loop inside an indirect table",
    reason: "chain-too-long",
    indirect: true,
    setup: (d) =>
      indirectTable(d, [{ ...one(d), flags: NEXT, next: 1 }, { ...one(d), flags: NEXT, next: 0 }]),
  },
  {
    name: "next past the end of an indirect table",
    reason: "next-out-of-range",
    indirect: true,
    setup: (d) => indirectTable(d, [{ ...one(d), flags: NEXT, next: 1 }]),
  },
  {
    name: "a buffer outside RAM inside an indirect table",
    reason: "buffer-out-of-range",
    indirect: true,
    setup: (d) => indirectTable(d, [{ addr: OUT_OF_RAM, len: 4 }]),
  },
  {
    name: "a readable buffer after a writable one inside an indirect table",
    reason: "readable-after-writable",
    indirect: true,
    setup: (d) => indirectTable(d, [{ ...wone(d), flags: NEXT, next: 1 }, { ...one(d), flags: 0 }]),
  },
  {
    name: "a writable direct buffer before an indirect table that starts readable",
    reason: "readable-after-writable",
    indirect: true,
    setup: (d) => {
      d.writeDesc(0, one(d), TABLE);
      d.writeDesc(4, { ...wone(d), flags: NEXT, next: 5 });
      d.writeDesc(5, { addr: TABLE, len: 16, flags: INDIRECT });
      return 4;
    },
  },
  {
    name: "more than 2^32 bytes in all (§2.7.5.2)",
    reason: "chain-too-large",
    indirect: true,
    setup: (d) =>
      indirectTable(
        d,
        Array.from(
          { length: 257 },
          (_, i) => ({ addr: 0, len: RAM_SIZE, flags: NEXT, next: i + 1 }),
        ),
      ),
  },
];

for (const bad of BAD_CHAINS) {
  Deno.test(`a malformed chain fails alone, and the queue goes on: ${bad.name}`, () => {
    const d = new Driver({ indirect: bad.indirect ?? false });
    const head = bad.setup(d) ?? 0;
    d.offer(head);
    d.publish();
    const error = d.queue.pop();
    assert.ok(error instanceof ChainError, `expected a ChainError, got ${error}`);
    assert.equal(error.reason, bad.reason, error.message);
    assert.equal(error.head, bad.head === undefined ? head : bad.head);
    if (error.head !== null) {
      d.queue.pushUsed(error.head, 0);
      assert.deepEqual(d.used(), [{ id: head, len: 0 }]);
    }
    const data = d.buffer(3, 0x77);
    d.writeChain([{ addr: data, len: 3 }, { addr: data, len: 3, write: true }], 6);
    d.offer(6);
    d.publish();
    const chain = d.pop();
    assert.deepEqual([chain.head, chain.readableLength, chain.writableLength], [6, 3, 3]);
    d.queue.pushUsed(6, 3);
    assert.deepEqual(d.used(), [{ id: 6, len: 3 }]);
  });
}

Deno.test("an avail.idx more than the queue size ahead breaks the queue until reset", () => {
  const d = new Driver({ size: 4 });
  d.mem.writeU16(AVAIL + VIRTQ_AVAIL_IDX, 5);
  const error = d.queue.pop();
  assert.ok(error instanceof ChainError);
  assert.equal(error.reason, "avail-index");
  assert.equal(error.head, null);
  assert.equal(d.queue.pop(), null);
  d.mem.writeU16(AVAIL + VIRTQ_AVAIL_IDX, 1);
  assert.equal(d.queue.pop(), null, "still broken");
});

Deno.test("pushUsed refuses heads and lengths the used ring cannot hold", () => {
  const d = new Driver({ size: 4 });
  for (const head of [-1, 4, 1.5, NaN]) {
    assert.throws(() => d.queue.pushUsed(head, 0), RangeError, `head ${head}`);
  }
  for (const len of [-1, 2 ** 32, 0.5]) {
    assert.throws(() => d.queue.pushUsed(0, len), RangeError, `len ${len}`);
  }
  d.queue.pushUsed(3, 2 ** 32 - 1);
  assert.deepEqual(d.used(), [{ id: 3, len: 2 ** 32 - 1 }]);
});

const GOOD: SplitQueueConfig = {
  size: 256,
  descTable: DESC,
  availRing: AVAIL,
  usedRing: USED,
  eventIdx: false,
  indirect: false,
};

const SIZE = /size/;
const ALIGN = /aligned/;
const RAM = /not guest RAM/;
const BAD_CONFIGS: [string, Partial<SplitQueueConfig>, RegExp][] = [
  ["size 0", { size: 0 }, SIZE],
  ["size not a power of two", { size: 48 }, SIZE],
  ["size above 32768", { size: 65536 }, SIZE],
  ["fractional size", { size: 2.5 }, SIZE],
  ["descriptor table not 16-aligned", { descTable: DESC + 8 }, ALIGN],
  ["available ring not 2-aligned", { availRing: AVAIL + 1 }, ALIGN],
  ["used ring not 4-aligned", { usedRing: USED + 2 }, ALIGN],
  ["negative address", { usedRing: -4 }, RAM],
  ["address beyond 2^53", { descTable: 2 ** 60 }, RAM],
  ["descriptor table outside RAM", { descTable: RAM_SIZE }, RAM],
  ["descriptor table running past RAM", { descTable: RAM_SIZE - 16 * 128 }, RAM],
  // Two bytes short: the trailing used_event / avail_event belong to the ring (§2.7 size table).
  ["available ring running past RAM", { availRing: RAM_SIZE - availRingSize(256) + 2 }, RAM],
  ["used ring running past RAM", { usedRing: RAM_SIZE - usedRingSize(256) + 2 }, RAM],
];

for (const [name, change, message] of BAD_CONFIGS) {
  Deno.test(`a queue configuration is refused: ${name}`, () => {
    const mem = GuestMemory.allocate(ramRegions(RAM_SIZE));
    assert.throws(() => new SplitQueue(mem, { ...GOOD, ...change }), (e) => {
      assert.ok(e instanceof QueueConfigError);
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("queue configurations at the limits are accepted", () => {
  const mem = GuestMemory.allocate(ramRegions(RAM_SIZE));
  for (const size of [1, 2, VIRTQ_MAX_SIZE]) {
    assert.equal(new SplitQueue(mem, { ...GOOD, size }).size, size);
  }
  const q = new SplitQueue(mem, {
    ...GOOD,
    descTable: RAM_SIZE - 4 * MIB - descTableSize(256), // ends at 12 MiB
    availRing: RAM_SIZE - availRingSize(256), // ends at the last byte of RAM
    usedRing: RAM_SIZE - 2 * MIB - usedRingSize(256) - 2, // 4-aligned, ends 2 bytes short
  });
  assert.equal(q.pop(), null);
});
