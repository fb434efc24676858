/** The VM's boot images opened from files (src/vm/host.ts): read a part at a time, errors in one line. */

import assert from "node:assert/strict";
import { openImage, VmSetupError } from "../../src/vm/host.ts";

Deno.test("openImage reads any part of the file into the array it is given", async () => {
  const path = await Deno.makeTempFile();
  try {
    const bytes = Uint8Array.from({ length: 10_000 }, (_, i) => i % 251);
    await Deno.writeFile(path, bytes);
    const image = openImage("kernel", path);
    try {
      assert.equal(image.size, bytes.length);
      const part = new Uint8Array(5000);
      image.read(4321, part);
      assert.deepEqual(part, bytes.subarray(4321, 9321));
      image.read(0, part.subarray(0, 10));
      assert.deepEqual(part.subarray(0, 10), bytes.subarray(0, 10));
    } finally {
      image.close();
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("openImage: a file that shrank since it was opened is a VmSetupError", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, new Uint8Array(4096));
    const image = openImage("initrd", path);
    try {
      await Deno.truncate(path, 100);
      assert.throws(
        () => image.read(0, new Uint8Array(4096)),
        (e: unknown) => e instanceof VmSetupError && /initrd .*: ends at byte 100/.test(e.message),
      );
    } finally {
      image.close();
    }
  } finally {
    await Deno.remove(path);
  }
});

for (
  const [what, path, pattern] of [
    ["a missing file", "/nonexistent/vmlinux", /kernel \/nonexistent\/vmlinux: no such file/],
    ["a directory", "/tmp", /kernel \/tmp: is a directory/],
  ] as const
) {
  Deno.test(`openImage refuses ${what} in one line`, () => {
    assert.throws(
      () => openImage("kernel", path),
      (e: unknown) => e instanceof VmSetupError && pattern.test(e.message),
    );
  });
}
