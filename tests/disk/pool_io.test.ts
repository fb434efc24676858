// The disk engine's thread pool (src/disk/pool_io.ts), against real files: more requests in
// flight than it has threads, reads and writes straight into and out of guest RAM, fdatasync,
// a failing call's errno as the result, and a close that refuses to drop requests in flight.

import assert from "node:assert/strict";
import { PoolDiskIo } from "../../src/disk/pool_io.ts";
import { drainEventfd } from "../../src/ffi/eventfd.ts";
import { close, EFD_NONBLOCK, eventfd, O_RDONLY, O_RDWR, open } from "../../src/ffi/libc.ts";
import { Errno } from "../../src/ffi/errno.ts";
import { PollSet } from "../../src/ffi/poll.ts";
import { GuestMemory } from "../../src/memory.ts";
import { MIB, ramRegions } from "../../src/arch/x86_64/layout.ts";

const BLOCK = 4096;
/** Requests the tests keep in flight at once: four times the pool's threads. */
const DEPTH = 32;
const THREADS = 8;

const content = (length: number, seed: number) =>
  Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);

/** Runs `fn` with a pool over a file of `bytes` opened with `flags`, and 4 MiB of guest RAM. */
async function withPool(
  bytes: Uint8Array,
  flags: number,
  fn: (io: PoolDiskIo<number>, memory: GuestMemory, wait: () => void) => void,
): Promise<Uint8Array> {
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, bytes);
  const fd = open(path, flags);
  const event = eventfd(0, EFD_NONBLOCK);
  const poll = new PollSet([event]);
  const memory = GuestMemory.allocate(ramRegions(4 * MIB));
  const io = new PoolDiskIo<number>(fd, event, DEPTH, THREADS);
  try {
    fn(io, memory, () => {
      poll.wait(-1);
      drainEventfd(event);
    });
  } finally {
    io.drain(() => {});
    io.close();
    close(event);
    close(fd);
  }
  const after = await Deno.readFile(path);
  await Deno.remove(path);
  return after;
}

Deno.test("disk thread pool: 32 reads in flight on 8 threads each land in their own guest buffer", async () => {
  const file = content(DEPTH * BLOCK, 1);
  await withPool(file, O_RDONLY, (io, memory, wait) => {
    const base = Number(memory.hostAddress(0));
    for (let i = 0; i < DEPTH; i++) {
      // Block i of the file into guest page DEPTH - 1 - i, as two buffers of half a block.
      const at = (DEPTH - 1 - i) * BLOCK;
      const halves = [{ offset: at, length: BLOCK / 2 }, {
        offset: at + BLOCK / 2,
        length: BLOCK / 2,
      }];
      assert.ok(io.accepts(halves.length));
      io.read(base, halves, i * BLOCK, i);
    }
    assert.equal(io.inFlight, DEPTH);
    assert.equal(io.accepts(1), false, "every slot is taken");
    io.submit();
    const results = new Map<number, number>();
    while (results.size < DEPTH) {
      wait();
      io.reap((token, result) => results.set(token, result));
    }
    assert.equal(io.inFlight, 0);
    for (let i = 0; i < DEPTH; i++) {
      assert.equal(results.get(i), BLOCK, `read ${i}`);
      const page = memory.bytes.subarray((DEPTH - 1 - i) * BLOCK, (DEPTH - i) * BLOCK);
      assert.deepEqual(page, file.subarray(i * BLOCK, (i + 1) * BLOCK), `block ${i}`);
    }
  });
});

Deno.test("disk thread pool: writes queued from completions, then fdatasync, reach the file", async () => {
  const rounds = 3;
  const after = await withPool(new Uint8Array(rounds * DEPTH * BLOCK), O_RDWR, (io, memory) => {
    const data = content(rounds * DEPTH * BLOCK, 2);
    memory.bytes.set(data);
    const base = Number(memory.hostAddress(0));
    const write = (n: number) =>
      io.write(base, [{ offset: n * BLOCK, length: BLOCK }], n * BLOCK, n);
    for (let n = 0; n < DEPTH; n++) write(n);
    let next = DEPTH;
    const done: number[] = [];
    // Each completion queues the next write: the slot it frees is taken again at once.
    io.drain((token, result) => {
      assert.equal(result, BLOCK, `write ${token}`);
      done.push(token);
      if (next < rounds * DEPTH) write(next++);
    });
    assert.deepEqual(done.toSorted((a, b) => a - b), [...Array(rounds * DEPTH).keys()]);
    let synced: number | undefined;
    io.datasync(-1);
    io.drain((_, result) => synced = result);
    assert.equal(synced, 0, "fdatasync succeeded");
  });
  assert.deepEqual(after, content(rounds * DEPTH * BLOCK, 2));
});

Deno.test("disk thread pool: a failing call completes with -errno; close refuses requests in flight", async () => {
  await withPool(content(BLOCK, 3), O_RDONLY, (io, memory, wait) => {
    io.write(Number(memory.hostAddress(0)), [{ offset: 0, length: BLOCK }], 0, 7);
    assert.throws(() => io.close(), /closed with 1 requests in flight/);
    io.submit();
    let failed: [number, number] | undefined;
    while (!failed) {
      wait();
      io.reap((token, result) => failed = [token, result]);
    }
    assert.deepEqual(failed, [7, -Errno.EBADF], "a write to a read-only descriptor");
  });
});
