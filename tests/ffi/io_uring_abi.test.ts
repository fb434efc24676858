// The io_uring numbers and struct layouts src/ffi/io_uring.ts restates, against
// <linux/io_uring.h> and <asm/unistd_64.h>; and a ring that runs on this host.

import assert from "node:assert/strict";
import * as uring from "../../src/ffi/io_uring.ts";
import { close, O_RDWR, open } from "../../src/ffi/libc.ts";
import { assertMatchesC, claimsOf, layoutClaims, namedAfterMacros } from "../helpers/c_values.ts";

const HEADERS = ["linux/io_uring.h", "asm/unistd_64.h"];

Deno.test("io_uring syscall numbers, opcodes and flags match <linux/io_uring.h>", async () => {
  await assertMatchesC(HEADERS, [
    ...namedAfterMacros(uring, /^IORING_/),
    ...claimsOf(uring, {
      NR_IO_URING_SETUP: "__NR_io_uring_setup",
      NR_IO_URING_ENTER: "__NR_io_uring_enter",
      NR_IO_URING_REGISTER: "__NR_io_uring_register",
    }),
  ]);
});

Deno.test("io_uring struct sizes and member offsets match <linux/io_uring.h>", async () => {
  await assertMatchesC(
    HEADERS,
    layoutClaims([uring.IO_URING_PARAMS, uring.IO_URING_SQE, uring.IO_URING_CQE]),
  );
});

Deno.test("an io_uring on this host completes an fdatasync with its 64-bit user data", async () => {
  const path = await Deno.makeTempFile();
  const fd = open(path, O_RDWR);
  const ring = uring.IoUring.create(4);
  try {
    assert.ok(ring.sqEntries >= 4);
    ring.fdatasync(fd, 2 ** 40 + 7);
    ring.wait(1);
    const seen: [number, number][] = [];
    assert.equal(ring.reap((userData, result) => seen.push([userData, result])), 1);
    assert.deepEqual(seen, [[2 ** 40 + 7, 0]], "the user data comes back whole");
  } finally {
    ring.close();
    close(fd);
    await Deno.remove(path);
  }
});
