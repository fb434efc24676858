import assert from "node:assert/strict";
import { close, EFD_NONBLOCK, eventfd } from "../../src/ffi/libc.ts";
import { drainEventfd, signalEventfd } from "../../src/ffi/eventfd.ts";
import { PollSet } from "../../src/ffi/poll.ts";

Deno.test("poll reports which eventfds are readable; drain empties their counters", () => {
  const fds = [eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)];
  try {
    const set = new PollSet(fds);
    assert.deepEqual(set.wait(0), [], "nothing yet");
    signalEventfd(fds[2]);
    signalEventfd(fds[2]);
    signalEventfd(fds[0]);
    assert.deepEqual(set.wait(-1), [0, 2]);
    assert.equal(drainEventfd(fds[2]), 2n, "counts add up");
    assert.equal(drainEventfd(fds[2]), 0n, "then read as empty");
    assert.equal(drainEventfd(fds[0]), 1n);
    assert.deepEqual(set.wait(10), [], "a timeout returns nothing");
  } finally {
    fds.forEach(close);
  }
});

Deno.test("poll refuses a closed descriptor", () => {
  const fd = eventfd(0, EFD_NONBLOCK);
  close(fd);
  assert.throws(() => new PollSet([fd]).wait(0), RangeError);
});
