// Opening disk images: what the user can get wrong is one clear line, and the flock makes
// writable images exclusive while read-only ones may be shared.

import assert from "node:assert/strict";
import { DiskImageError, openDiskImage } from "../../src/disk/image.ts";
import { close } from "../../src/ffi/libc.ts";

/** Runs `fn` with a 4 KiB image in a temporary directory. */
async function withImage(fn: (path: string, dir: string) => void): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(4096));
    fn(`${dir}/disk.img`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts that opening fails with a one-line DiskImageError containing `part`. */
function assertRefused(options: Parameters<typeof openDiskImage>[0], part: string): void {
  assert.throws(() => openDiskImage(options), (e: unknown) => {
    assert.ok(e instanceof DiskImageError, String(e));
    assert.ok(e.message.startsWith(`disk image ${options.path}: `), e.message);
    assert.ok(e.message.includes(part), e.message);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

const rw = (path: string) => ({ path, readOnly: false, direct: false });
const ro = (path: string) => ({ path, readOnly: true, direct: false });

Deno.test("disk image: size and kind of a regular file", () =>
  withImage((path) => {
    const disk = openDiskImage(rw(path));
    try {
      assert.equal(disk.sizeBytes, 4096);
      assert.equal(disk.blockDevice, false);
    } finally {
      close(disk.fd);
    }
  }));

Deno.test("disk image: a missing file, a directory and a character device are refused", () =>
  withImage((_path, dir) => {
    assertRefused(rw(`${dir}/nope.img`), "no such file");
    assertRefused(rw(dir), "is a directory");
    assertRefused(ro("/dev/null"), "neither a regular file nor a block device");
  }));

Deno.test("disk image: a writable image is exclusive; read-only ones share", () =>
  withImage((path) => {
    const first = openDiskImage(rw(path));
    try {
      assertRefused(rw(path), "locked by another process");
      assertRefused(ro(path), "locked by another process (is another VM using it read-write?)");
    } finally {
      close(first.fd);
    }
    const readers = [openDiskImage(ro(path)), openDiskImage(ro(path))];
    try {
      assertRefused(rw(path), "locked by another process");
    } finally {
      for (const reader of readers) close(reader.fd);
    }
    close(openDiskImage(rw(path)).fd); // every lock went with its descriptor
  }));
