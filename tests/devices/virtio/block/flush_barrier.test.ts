// The flush barrier: a flush waits for the writes submitted before it, never for later ones.

import assert from "node:assert/strict";
import { FlushBarrier } from "../../../../src/devices/virtio/block/flush_barrier.ts";

Deno.test("flush barrier: a flush with no write in flight may start at once", () => {
  const barrier = new FlushBarrier<string>();
  assert.equal(barrier.flushArrived("f"), true);
});

Deno.test("flush barrier: a flush starts when the last earlier write completes, in any order", () => {
  const barrier = new FlushBarrier<string>();
  const a = barrier.writeStarted();
  const b = barrier.writeStarted();
  assert.equal(barrier.flushArrived("f"), false);
  const later = barrier.writeStarted();
  assert.deepEqual(barrier.writeDone(b), [], "a is still in flight");
  assert.deepEqual(barrier.writeDone(a), ["f"], "a later write does not hold it");
  assert.deepEqual(barrier.writeDone(later), []);
});

Deno.test("flush barrier: flushes leave in order, each behind its own writes", () => {
  const barrier = new FlushBarrier<string>();
  const a = barrier.writeStarted();
  assert.equal(barrier.flushArrived("f1"), false);
  const b = barrier.writeStarted();
  assert.equal(barrier.flushArrived("f2"), false);
  assert.deepEqual(barrier.writeDone(b), [], "f1 waits for a, f2 behind it");
  assert.deepEqual(barrier.writeDone(a), ["f1", "f2"]);
});

Deno.test("flush barrier: clear forgets waiting flushes and writes", () => {
  const barrier = new FlushBarrier<string>();
  barrier.writeStarted();
  barrier.flushArrived("f");
  barrier.clear();
  assert.equal(barrier.flushArrived("g"), true);
});
