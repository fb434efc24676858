import assert from "node:assert/strict";
import {
  FIRST_ADDR_PAST_32BITS,
  GIB,
  IOAPIC_BASE,
  MIB,
  MMIO_HOLE_START,
  ramRegions,
} from "../src/arch/x86_64/layout.ts";
import { GuestMemory, GuestMemoryError, HUGE_PAGE_SIZE } from "../src/memory.ts";
import type { MemoryJob, MemoryReply } from "./helpers/memory_worker.ts";
import { askWorker } from "./helpers/worker.ts";

/** A guest just big enough to have high RAM: all of low RAM plus 2 MiB above 4 GiB. */
const TWO_REGION_SIZE = MMIO_HOLE_START + 2 * MIB;
const HIGH_END = (size: number) => FIRST_ADDR_PAST_32BITS + size - MMIO_HOLE_START;

Deno.test("ramRegions: a small guest is one region from 0", () => {
  assert.deepEqual(ramRegions(256 * MIB), [{ guestAddress: 0, size: 256 * MIB }]);
});

Deno.test("ramRegions: a guest exactly as large as low RAM stops at the hole", () => {
  assert.equal(MMIO_HOLE_START, 0xd000_0000);
  assert.deepEqual(ramRegions(MMIO_HOLE_START), [{ guestAddress: 0, size: MMIO_HOLE_START }]);
});

Deno.test("ramRegions: RAM beyond the hole resumes at 4 GiB", () => {
  assert.deepEqual(ramRegions(MMIO_HOLE_START + 4096), [
    { guestAddress: 0, size: MMIO_HOLE_START },
    { guestAddress: FIRST_ADDR_PAST_32BITS, size: 4096 },
  ]);
  const regions = ramRegions(6 * GIB);
  assert.equal(regions[1].guestAddress, 4 * GIB);
  assert.equal(regions[0].size + regions[1].size, 6 * GIB);
});

Deno.test("GuestMemory.allocate refuses sizes that are not whole 4 KiB pages", () => {
  for (const size of [0, -4096, 4095, 4096 + 1]) {
    assert.throws(() => GuestMemory.allocate(ramRegions(size)), RangeError, `size ${size}`);
  }
});

Deno.test("GuestMemory.allocate aligns RAM to 2 MiB in host memory", () => {
  for (const size of [4096, 64 * 1024, 3 * MIB]) {
    const mem = GuestMemory.allocate(ramRegions(size));
    assert.equal(mem.hostAddress(0) % BigInt(HUGE_PAGE_SIZE), 0n);
    assert.equal(mem.size, size);
    assert.equal(mem.bytes.length, size);
    assert.ok(mem.shared.offset + size <= mem.shared.buffer.byteLength);
  }
});

Deno.test("GuestMemory typed accessors round-trip little-endian values", () => {
  const mem = GuestMemory.allocate(ramRegions(64 * 1024));
  mem.writeU8(0x10, 0xab);
  mem.writeU16(0x20, 0xbeef);
  mem.writeU32(0x30, 0xdead_beef);
  mem.writeU64(0x40, 0x0123_4567_89ab_cdefn);
  assert.equal(mem.readU8(0x10), 0xab);
  assert.equal(mem.readU16(0x20), 0xbeef);
  assert.equal(mem.readU32(0x30), 0xdead_beef);
  assert.equal(mem.readU64(0x40), 0x0123_4567_89ab_cdefn);
  assert.deepEqual([...mem.read(0x30, 4)], [0xef, 0xbe, 0xad, 0xde]);
  mem.writeU32(0x50, -1);
  assert.equal(mem.readU32(0x50), 0xffff_ffff);
});

Deno.test("GuestMemory read copies, write copies in, slice is live", () => {
  const mem = GuestMemory.allocate(ramRegions(64 * 1024));
  const end = mem.size;
  mem.write(end - 3, new Uint8Array([1, 2, 3]));
  const copy = mem.read(end - 3, 3);
  const live = mem.slice(end - 3, 3);
  assert.deepEqual([...copy], [1, 2, 3]);
  live[0] = 9;
  assert.equal(mem.readU8(end - 3), 9, "a write through a slice reaches RAM");
  mem.writeU8(end - 1, 7);
  assert.equal(live[2], 7, "a slice sees later writes");
  assert.deepEqual([...copy], [1, 2, 3], "read returned a copy");
  assert.equal(mem.slice(end, 0).length, 0);
});

/** Accesses of `length` bytes at `address` in every form GuestMemory offers. */
function accesses(mem: GuestMemory, length: number): ((address: number) => unknown)[] {
  const forms: ((address: number) => unknown)[] = [
    (a) => mem.read(a, length),
    (a) => mem.slice(a, length),
    (a) => mem.offsetOf(a, length),
  ];
  // write() takes its length from the data: only sensible lengths get a buffer built.
  if (length >= 0 && length <= 4096) {
    forms.push((a) => mem.write(a, new Uint8Array(length).fill(0xa5)));
  }
  const typed: Record<number, ((address: number) => unknown)[]> = {
    1: [(a) => mem.readU8(a), (a) => mem.writeU8(a, 0xa5)],
    2: [(a) => mem.readU16(a), (a) => mem.writeU16(a, 0xa5a5)],
    4: [(a) => mem.readU32(a), (a) => mem.writeU32(a, 0xa5a5_a5a5)],
    8: [(a) => mem.readU64(a), (a) => mem.writeU64(a, 0xa5a5_a5a5_a5a5_a5a5n)],
  };
  return [...forms, ...(typed[length] ?? [])];
}

/** Host bytes around every region boundary in the buffer, including just outside RAM. */
function guardWindows(mem: GuestMemory): Uint8Array[] {
  const all = new Uint8Array(mem.shared.buffer);
  const edges = [0];
  for (const r of mem.regions) edges.push(edges[edges.length - 1] + r.size);
  return edges.map((edge) => {
    const at = mem.shared.offset + edge;
    return all.subarray(Math.max(0, at - 16), Math.min(all.length, at + 16));
  });
}

/** Asserts every access to `[address, address + length)` throws and leaves host memory alone. */
function assertRejected(mem: GuestMemory, address: number, length: number): void {
  const windows = guardWindows(mem);
  for (const w of windows) w.fill(0x5a);
  assert.equal(
    mem.contains(address, length),
    false,
    `contains(0x${address.toString(16)}, ${length})`,
  );
  for (const access of accesses(mem, length)) {
    assert.throws(() => access(address), (e: unknown) => {
      assert.ok(e instanceof GuestMemoryError, `${access}: got ${e}`);
      assert.equal(e.address, address);
      assert.equal(e.length, length);
      assert.match(e.message, /is not RAM/);
      return true;
    });
  }
  for (const w of windows) assert.ok(w.every((b) => b === 0x5a), "host bytes changed");
}

Deno.test("every access outside a small guest's RAM throws and touches nothing", () => {
  const mem = GuestMemory.allocate(ramRegions(64 * 1024));
  const end = mem.size;
  for (const width of [1, 2, 4, 8]) {
    assertRejected(mem, end - width + 1, width); // straddles the end
    assertRejected(mem, end, width); // just past the end
    assertRejected(mem, -1, width); // negative
    assertRejected(mem, -width, width); // negative, ending at 0
    assertRejected(mem, 2 * end, width); // far past the end
  }
  assertRejected(mem, 0, end + 1); // longer than RAM
  assertRejected(mem, end - 4096, 4097);
  assertRejected(mem, 0, -1); // negative length
  // The last bytes that do fit are accepted.
  assert.ok(mem.contains(end - 8, 8));
  mem.writeU64(end - 8, 1n);
});

Deno.test("every access in or across the MMIO hole or past high RAM throws", () => {
  const mem = GuestMemory.allocate(ramRegions(TWO_REGION_SIZE));
  const top = HIGH_END(TWO_REGION_SIZE);
  for (const width of [1, 2, 4, 8]) {
    assertRejected(mem, MMIO_HOLE_START - width + 1, width); // straddles the hole's start
    assertRejected(mem, MMIO_HOLE_START, width); // the hole's first byte
    assertRejected(mem, IOAPIC_BASE, width); // a device page inside the hole
    assertRejected(mem, FIRST_ADDR_PAST_32BITS - width, width); // the hole's last bytes
    assertRejected(mem, FIRST_ADDR_PAST_32BITS - 1, width + 1); // straddles the hole's end
    assertRejected(mem, top - width + 1, width); // straddles the end of high RAM
    assertRejected(mem, top, width);
  }
  assertRejected(mem, MMIO_HOLE_START - 8, FIRST_ADDR_PAST_32BITS - MMIO_HOLE_START + 16);
});

Deno.test("a 6 GiB guest is allocated lazily and its high RAM lives at 4 GiB", () => {
  const before = Deno.memoryUsage().rss;
  const mem = GuestMemory.allocate(ramRegions(6 * GIB));
  const grown = Deno.memoryUsage().rss - before;
  assert.ok(grown < 512 * MIB, `allocating 6 GiB committed ${grown} bytes`);
  assert.equal(mem.size, 6 * GIB);
  assert.deepEqual(mem.regions, [
    { guestAddress: 0, size: MMIO_HOLE_START },
    { guestAddress: FIRST_ADDR_PAST_32BITS, size: 6 * GIB - MMIO_HOLE_START },
  ]);
  const top = HIGH_END(6 * GIB);
  mem.writeU64(MMIO_HOLE_START - 8, 0x1111n);
  mem.writeU64(FIRST_ADDR_PAST_32BITS, 0x2222n);
  mem.writeU64(top - 8, 0x3333n);
  assert.equal(mem.readU64(MMIO_HOLE_START - 8), 0x1111n);
  assert.equal(mem.readU64(FIRST_ADDR_PAST_32BITS), 0x2222n);
  assert.equal(mem.readU64(top - 8), 0x3333n);
  // High RAM follows low RAM directly in the buffer.
  assert.equal(mem.offsetOf(FIRST_ADDR_PAST_32BITS, 8), MMIO_HOLE_START);
  assert.equal(mem.offsetOf(top - 8, 8), 6 * GIB - 8);
  assert.equal(mem.hostAddress(6 * GIB) - mem.hostAddress(0), BigInt(6 * GIB));
  assertRejected(mem, top, 1);
});

Deno.test("a GuestMemory rebuilt from mem.shared sees and makes the same writes", () => {
  const mem = GuestMemory.allocate(ramRegions(TWO_REGION_SIZE));
  const other = new GuestMemory(mem.shared);
  assert.equal(other.size, mem.size);
  assert.equal(other.hostAddress(0), mem.hostAddress(0));
  mem.writeU32(0x1000, 0xcafe_f00d);
  assert.equal(other.readU32(0x1000), 0xcafe_f00d);
  other.write(FIRST_ADDR_PAST_32BITS + 16, new Uint8Array([4, 5, 6]));
  assert.deepEqual([...mem.read(FIRST_ADDR_PAST_32BITS + 16, 3)], [4, 5, 6]);
});

Deno.test("a Worker given mem.shared reads and writes the same guest RAM", async () => {
  const mem = GuestMemory.allocate(ramRegions(TWO_REGION_SIZE));
  mem.writeU64(0x2000, 0x5555_aaaa_5555_aaaan);
  const job: MemoryJob = {
    shared: mem.shared,
    readAt: 0x2000,
    write: { address: FIRST_ADDR_PAST_32BITS + 0x100, data: new Uint8Array([0xde, 0xad]) },
  };
  const reply = await askWorker<MemoryReply>(
    new URL("./helpers/memory_worker.ts", import.meta.url),
    job,
  );
  assert.equal(reply.size, mem.size);
  assert.equal(reply.value, 0x5555_aaaa_5555_aaaan);
  assert.equal(mem.readU16(FIRST_ADDR_PAST_32BITS + 0x100), 0xadde);
});
