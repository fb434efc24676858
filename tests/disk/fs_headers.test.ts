// Holds the disk layer's kernel numbers, the fallocate(2) modes (src/ffi/libc.ts) and the
// block-device size ioctl (src/disk/image.ts), against <linux/falloc.h> and <linux/fs.h>: a
// generated C program prints what the compiler says (tests/helpers/c_values.ts).

import * as image from "../../src/disk/image.ts";
import * as libc from "../../src/ffi/libc.ts";
import { assertMatchesC, namedAfterMacros } from "../helpers/c_values.ts";

Deno.test("every FALLOC_FL_* mode we use matches <linux/falloc.h>", async () => {
  await assertMatchesC(["linux/falloc.h"], namedAfterMacros(libc, /^FALLOC_FL_/));
});

Deno.test("every block-device ioctl number (BLKGETSIZE64, ...) matches <linux/fs.h>", async () => {
  await assertMatchesC(["linux/fs.h"], namedAfterMacros(image, /^BLK[A-Z0-9_]+$/));
});
