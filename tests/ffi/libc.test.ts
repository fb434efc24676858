import assert from "node:assert/strict";
import { Errno, errnoName, SyscallError } from "../../src/ffi/errno.ts";
import { assertMatchesC, namedAfterMacros } from "../helpers/c_values.ts";
import {
  close,
  EFD_NONBLOCK,
  eventfd,
  ioctl,
  MAP_SHARED,
  memfdCreate,
  mmap,
  munmap,
  O_RDONLY,
  open,
  pipe,
  PROT_READ,
  PROT_WRITE,
  read,
  readAsync,
  viewOf,
  writeAll,
} from "../../src/ffi/libc.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Asserts `fn` throws a SyscallError carrying `errno`, whose message names `call`. */
function assertSyscallError(fn: () => unknown, errno: keyof typeof Errno, call: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SyscallError, `expected a SyscallError, got ${e}`);
    assert.ok(e.is(errno), `expected ${errno}, got ${e.message}`);
    assert.equal(e.errno, Errno[errno]);
    assert.equal(e.call, call);
    assert.ok(e.message.startsWith(`${call} failed: ${errno}`), e.message);
    return true;
  });
}

function u64(value: bigint): Uint8Array {
  return new Uint8Array(new BigUint64Array([value]).buffer);
}

Deno.test("open of a missing path throws SyscallError ENOENT naming the call", () => {
  const path = "/nonexistent-dir-for-crosvm-tests/file";
  assertSyscallError(() => open(path, O_RDONLY), "ENOENT", `open(${path})`);
});

Deno.test("SyscallError names errno values and falls back to the number", () => {
  const err = new SyscallError("ioctl(KVM_RUN)", Errno.EINTR, "Interrupted system call");
  assert.equal(err.name, "SyscallError");
  assert.equal(err.message, "ioctl(KVM_RUN) failed: EINTR (Interrupted system call)");
  assert.ok(err.is("EINTR") && !err.is("EAGAIN"));
  assert.equal(errnoName(Errno.ENOTTY), "ENOTTY");
  assert.equal(errnoName(4095), "errno 4095");
  assert.equal(new SyscallError("x", 4095).message, "x failed: errno 4095");
});

Deno.test("closing a descriptor that is not open gives EBADF", () => {
  assertSyscallError(() => close(-1), "EBADF", "close(-1)");
});

Deno.test("an ioctl a descriptor does not know gives ENOTTY, named in the error", () => {
  const fd = eventfd();
  try {
    assertSyscallError(
      () => ioctl(fd, 0xae00, 0n, "KVM_GET_API_VERSION"),
      "ENOTTY",
      "ioctl(KVM_GET_API_VERSION)",
    );
    assertSyscallError(() => ioctl(fd, 0xae00), "ENOTTY", "ioctl(0xae00)");
  } finally {
    close(fd);
  }
});

Deno.test("eventfd sums the counters written and read resets it", () => {
  const fd = eventfd(0, EFD_NONBLOCK);
  try {
    writeAll(fd, u64(5n));
    writeAll(fd, u64(7n));
    const buf = new Uint8Array(8);
    assert.equal(read(fd, buf), 8);
    assert.equal(new DataView(buf.buffer).getBigUint64(0, true), 12n);
    assertSyscallError(() => read(fd, buf), "EAGAIN", `read(${fd})`);
  } finally {
    close(fd);
  }
});

Deno.test("pipe carries bytes from the write end to the read end, then EOF", () => {
  const [r, w] = pipe();
  try {
    writeAll(w, encoder.encode("hello, "));
    writeAll(w, encoder.encode("pipe").subarray(1));
    const buf = new Uint8Array(64);
    const n = read(r, buf);
    assert.equal(decoder.decode(buf.subarray(0, n)), "hello, ipe");
    close(w);
    assert.equal(read(r, buf), 0);
  } finally {
    close(r);
  }
});

Deno.test("readAsync waits on another thread until the pipe has data", async () => {
  const [r, w] = pipe();
  try {
    const buf = new Uint8Array(16);
    const pending = readAsync(r, buf);
    // The read is blocked on a libc worker thread; this thread is free to write.
    await new Promise((resolve) => setTimeout(resolve, 20));
    writeAll(w, encoder.encode("async"));
    const n = await pending;
    assert.equal(decoder.decode(buf.subarray(0, n)), "async");
  } finally {
    close(r);
    close(w);
  }
});

Deno.test("two MAP_SHARED mappings of one memfd show the same bytes", () => {
  const size = 2 * 4096;
  const fd = memfdCreate("crosvm-test", size);
  const first = mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  const second = mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  try {
    assert.notEqual(first, second);
    const a = new Uint8Array(viewOf(first, size));
    const b = new Uint8Array(viewOf(second, size));
    a.set([1, 2, 3], 4096 + 10);
    assert.deepEqual([...b.subarray(4096 + 10, 4096 + 13)], [1, 2, 3]);
    b[0] = 0xee;
    assert.equal(a[0], 0xee);
  } finally {
    munmap(first, size);
    munmap(second, size);
    close(fd);
  }
});

Deno.test("mmap of a bad descriptor throws SyscallError EBADF", () => {
  assert.throws(
    () => mmap(4096, PROT_READ, MAP_SHARED, -1),
    (e: unknown) => e instanceof SyscallError && e.is("EBADF") && e.message.includes("mmap"),
  );
});

Deno.test("every errno value we name is <errno.h>'s", async () => {
  await assertMatchesC(["errno.h"], namedAfterMacros(Errno, /^E[A-Z0-9]+$/));
});
