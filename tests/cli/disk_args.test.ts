// Disk options: crosvm's --block keys and defaults, the older --root/--rwroot/--disk/--rwdisk
// spellings, disk order across all of them, and a one-line UsageError for every mistake.

import assert from "node:assert/strict";
import { parseRunArgs } from "../../src/cli/run_args.ts";
import type { DiskConfig } from "../../src/config.ts";
import { assertUsageError } from "../helpers/usage_error.ts";

/** The disks of `crosvm run ARGS... vmlinux`. */
const disks = (...args: string[]): DiskConfig[] => parseRunArgs([...args, "vmlinux"]).disks;

/** A disk with crosvm's defaults for every key not given. */
const disk = (path: string, overrides: Partial<DiskConfig> = {}): DiskConfig => ({
  path,
  readOnly: false,
  root: false,
  sparse: true,
  direct: false,
  blockSize: 512,
  ...overrides,
});

Deno.test("disks: none by default, and virtio-rng is on unless --no-rng", () => {
  assert.deepEqual(disks(), []);
  assert.equal(parseRunArgs(["vmlinux"]).rng, true);
  assert.equal(parseRunArgs(["--no-rng", "vmlinux"]).rng, false);
});

Deno.test("disks: --block takes the path unnamed or as path=, with crosvm's defaults", () => {
  assert.deepEqual(disks("--block", "a.img"), [disk("a.img")]);
  assert.deepEqual(disks("-b", "path=b.img"), [disk("b.img")]);
});

Deno.test("disks: every --block key", () => {
  assert.deepEqual(
    disks(
      "-b",
      "a.img,ro,root,sparse=false,direct,id=serial-1,block-size=4096,num-queues=4," +
        "async-executor=epoll",
    ),
    [disk("a.img", {
      readOnly: true,
      root: true,
      sparse: false,
      direct: true,
      id: "serial-1",
      blockSize: 4096,
      numQueues: 4,
      asyncExecutor: "epoll",
    })],
  );
});

Deno.test("disks: the older spellings imply ro and root", () => {
  assert.deepEqual(disks("--root", "r"), [disk("r", { readOnly: true, root: true })]);
  assert.deepEqual(disks("-r", "r"), [disk("r", { readOnly: true, root: true })]);
  assert.deepEqual(disks("--rwroot", "r"), [disk("r", { root: true })]);
  assert.deepEqual(disks("--disk", "d"), [disk("d", { readOnly: true })]);
  assert.deepEqual(disks("-d", "d,id=x"), [disk("d", { readOnly: true, id: "x" })]);
  assert.deepEqual(disks("--rwdisk", "d,sparse=false"), [disk("d", { sparse: false })]);
});

Deno.test("disks: vda, vdb, ... follow the order given across every spelling", () => {
  const order = disks("--rwdisk", "1", "-b", "2", "--root", "3", "-d", "4", "--block", "5");
  assert.deepEqual(order.map((d) => d.path), ["1", "2", "3", "4", "5"]);
});

const DISK_ERRORS: [string, string[], string[]][] = [
  ["a missing value", ["k", "-b"], ["-b", "needs a value"]],
  ["an empty path", ["k", "--block", 'path=""'], ["--block", "empty"]],
  ["no path", ["k", "--block", "ro"], ["--block", "path is missing"]],
  ["an unknown key", ["k", "-b", "a,cache=none"], ["-b", '"cache"']],
  ["a bad flag", ["k", "-b", "a,ro=maybe"], ["-b", "ro", "maybe"]],
  ["a block size under 512", ["k", "-b", "a,block-size=256"], ["block-size", "512 to 4096"]],
  ["a block size over a page", ["k", "-b", "a,block-size=8192"], ["block-size", "512 to 4096"]],
  ["a block size not a power of two", ["k", "-b", "a,block-size=1536"], ["power of two"]],
  ["no queue", ["k", "-b", "a,num-queues=0"], ["num-queues", "1 to 16"]],
  ["17 queues", ["k", "-b", "a,num-queues=17"], ["num-queues", "1 to 16"]],
  ["an unknown executor", ["k", "-b", "a,async-executor=tokio"], ["uring, epoll", "tokio"]],
  ["an id over 20 bytes", ["k", "-b", `a,id=${"x".repeat(21)}`], ["id", "20 bytes"]],
  ["two root disks", ["k", "--root", "a", "-b", "b,root"], ["-b", '"b,root"', "already a root"]],
  ["ro given to --disk", ["k", "--disk", "a,ro"], ["--disk", "ro is implied"]],
  ["27 disks", ["k", ...Array(27).fill(["-b", "x"]).flat()], ["27 disks", "at most 26"]],
];

for (const [what, args, parts] of DISK_ERRORS) {
  Deno.test(`disks: refuses ${what}`, () => {
    assertUsageError(() => parseRunArgs(args), ...parts);
  });
}
