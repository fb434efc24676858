// Disk file transfers between an image and guest RAM: more buffers than one preadv takes, and a
// file that ends before the transfer does.

import assert from "node:assert/strict";
import { DiskFile, ShortTransferError } from "../../src/disk/file.ts";
import { close, IOV_MAX, O_RDWR, open } from "../../src/ffi/libc.ts";
import { GuestMemory } from "../../src/memory.ts";
import { MIB, ramRegions } from "../../src/arch/x86_64/layout.ts";

/** Runs `fn` with a file of `bytes` and a DiskFile over it with 4 MiB of guest RAM. */
async function withFile(
  bytes: Uint8Array,
  fn: (file: DiskFile, memory: GuestMemory, path: string) => Promise<void> | void,
): Promise<void> {
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, bytes);
  const fd = open(path, O_RDWR);
  const memory = GuestMemory.allocate(ramRegions(4 * MIB));
  try {
    await fn(
      new DiskFile(fd, memory.bytes, memory.hostAddress(0), { direct: false }),
      memory,
      path,
    );
  } finally {
    close(fd);
    await Deno.remove(path);
  }
}

const content = (length: number) => Uint8Array.from({ length }, (_, i) => (i * 31 + 7) & 0xff);

Deno.test("disk file: a transfer of more buffers than IOV_MAX is split, in order", async () => {
  const count = IOV_MAX * 2 + 5;
  const data = content(count * 3);
  await withFile(data, async (file, memory, path) => {
    // Every 3-byte buffer 16 bytes apart, so no two are adjacent.
    const ranges = Array.from({ length: count }, (_, i) => ({ offset: i * 16, length: 3 }));
    file.read(ranges, 0);
    ranges.forEach((r, i) => {
      assert.deepEqual(memory.bytes.slice(r.offset, r.offset + 3), data.slice(i * 3, i * 3 + 3));
    });
    for (const r of ranges) memory.bytes.subarray(r.offset, r.offset + 3).reverse();
    file.write(ranges, 0);
    const written = await Deno.readFile(path);
    for (let i = 0; i < count; i++) {
      assert.deepEqual(written.slice(i * 3, i * 3 + 3), data.slice(i * 3, i * 3 + 3).reverse());
    }
  });
});

Deno.test("disk file: reading past the end of the file is a ShortTransferError", async () => {
  await withFile(content(1000), (file) => {
    assert.throws(() => file.read([{ offset: 0, length: 1024 }], 0), ShortTransferError);
  });
});

Deno.test("disk file: zero-length buffers are skipped", async () => {
  await withFile(content(8), (file, memory) => {
    file.read([{ offset: 0, length: 0 }, { offset: 64, length: 8 }, { offset: 128, length: 0 }], 0);
    assert.deepEqual(memory.bytes.slice(64, 72), content(8));
  });
});
