/// <reference lib="deno.worker" />
// Increments a plain (non-atomic) counter under a SharedMutex, after every worker is ready.

import { SharedMutex } from "../../src/sync.ts";

/** Cell indices and counts the main thread sends. */
export interface CounterJob {
  /** Int32Array over a SharedArrayBuffer holding the cells below. */
  cells: Int32Array;
  lock: number;
  counter: number;
  /** Atomically counted arrivals: work starts when it reaches `workers`. */
  ready: number;
  workers: number;
  iterations: number;
}

self.onmessage = (event: MessageEvent<CounterJob>) => {
  const { cells, lock, counter, ready, workers, iterations } = event.data;
  const mutex = new SharedMutex(cells, lock);
  Atomics.add(cells, ready, 1);
  while (Atomics.load(cells, ready) < workers) {
    // Spin so that all workers start together and contend for the lock.
  }
  for (let i = 0; i < iterations; i++) {
    mutex.with(() => {
      const value = cells[counter];
      let spin = 0;
      for (let k = 0; k < 8; k++) spin += k; // widen the read-modify-write window
      cells[counter] = value + 1 + spin - 28;
    });
  }
  self.postMessage(iterations);
};
