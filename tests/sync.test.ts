import assert from "node:assert/strict";
import { SharedMutex } from "../src/sync.ts";
import type { CounterJob } from "./helpers/mutex_worker.ts";
import { askWorker } from "./helpers/worker.ts";

const WORKER = new URL("./helpers/mutex_worker.ts", import.meta.url);

function sharedCells(count: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(count * Int32Array.BYTES_PER_ELEMENT));
}

Deno.test("lock and unlock move the lock word between unlocked and locked", () => {
  const cells = sharedCells(3);
  const mutex = new SharedMutex(cells, 2);
  mutex.lock();
  assert.deepEqual([...cells], [0, 0, 1]);
  mutex.unlock();
  assert.deepEqual([...cells], [0, 0, 0]);
});

Deno.test("with returns the callback's value and unlocks even when it throws", () => {
  const cells = sharedCells(1);
  const mutex = new SharedMutex(cells);
  assert.equal(mutex.with(() => Atomics.load(cells, 0)), 1, "held during the callback");
  assert.equal(cells[0], 0);
  assert.throws(() =>
    mutex.with(() => {
      throw new Error("boom");
    }), /boom/);
  assert.equal(cells[0], 0, "released after a throw");
  mutex.lock(); // would block forever if the throw had left it held
  mutex.unlock();
});

for (const workers of [2, 3]) {
  Deno.test(`${workers} Workers incrementing a plain counter under the mutex lose no update`, async () => {
    const iterations = 100_000;
    const cells = sharedCells(3);
    const job: CounterJob = { cells, lock: 1, counter: 0, ready: 2, workers, iterations };
    const done = await Promise.all(
      Array.from({ length: workers }, () => askWorker<number>(WORKER, job)),
    );
    assert.deepEqual(done, Array(workers).fill(iterations));
    assert.equal(cells[0], workers * iterations);
    assert.equal(cells[1], 0, "the lock is free at the end");
  });
}
