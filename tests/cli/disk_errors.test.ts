/**
 * Disk images the VMM cannot use, through the real CLI: each is one line on stderr, status 1,
 * and the VM never starts (the guest would have printed). Complements the cases in
 * main.test.ts: every spelling of a disk, and image locks between VMs and within one.
 */
import assert from "node:assert/strict";
import { buildGuest } from "../helpers/guests.ts";
import { assertOneLineError, type CliRun, crosvm, spawnCrosvm } from "../helpers/cli_process.ts";
import { kvmTest } from "../helpers/vcpu.ts";

const decoder = new TextDecoder();

/** Status 1, one line naming the image and matching `pattern`, and no guest output. */
function assertRefused(run: CliRun, image: string, pattern: RegExp, what = ""): void {
  assertOneLineError(run, pattern);
  assert.ok(run.stderr.includes(image), `${what}: names ${image}: ${run.stderr}`);
  assert.equal(run.code, 1, `${what}: ${run.stderr}`);
  assert.equal(run.stdout, "", `${what}: the VM never started`);
}

/** Every way to give a disk, as the arguments for `image`. */
const SPELLINGS: [string, (image: string) => string[]][] = [
  ["-b", (image) => ["-b", image]],
  ["--block ro,root", (image) => ["--block", `${image},ro,root`]],
  ["--root", (image) => ["--root", image]],
  ["--rwroot", (image) => ["--rwroot", image]],
  ["--disk", (image) => ["--disk", image]],
  ["--rwdisk", (image) => ["--rwdisk", image]],
];

/** A 1 MiB image file, removed after `fn`. */
async function withImage(fn: (image: string) => Promise<void>): Promise<void> {
  const image = await Deno.makeTempFile({ suffix: ".img" });
  try {
    await Deno.truncate(image, 1 << 20);
    await fn(image);
  } finally {
    await Deno.remove(image);
  }
}

/**
 * Runs `fn` while a VM (the `spin` guest, which prints R and spins) runs with `diskArgs`;
 * then stops it with SIGTERM and checks it ran on undisturbed (status 0).
 */
async function whileRunning(diskArgs: string[], fn: () => Promise<void>): Promise<void> {
  const vm = spawnCrosvm(["run", ...diskArgs, await buildGuest("spin")], "null");
  const stderr = new Response(vm.stderr).text();
  try {
    const reader = vm.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    if (decoder.decode(first.value) !== "R") {
      vm.kill("SIGKILL");
      assert.fail(`the first VM did not start: ${await stderr}`);
    }
    await fn();
  } finally {
    vm.kill("SIGTERM");
    await vm.stdout.cancel();
    const { code } = await vm.status;
    assert.equal(code, 0, `the first VM: ${await stderr}`);
  }
}

for (const [spelling, disk] of SPELLINGS) {
  kvmTest(`${spelling}: a missing image is refused before the VM starts`, async () => {
    const image = "/nonexistent/disk.img";
    const run = await crosvm(["run", ...disk(image), await buildGuest("hello")]);
    assertRefused(run, image, /no such file/);
  });

  kvmTest(`${spelling}: a directory as the image is refused before the VM starts`, async () => {
    const image = await Deno.makeTempDir();
    try {
      const run = await crosvm(["run", ...disk(image), await buildGuest("hello")]);
      assertRefused(run, image, /is a directory/);
    } finally {
      await Deno.remove(image);
    }
  });
}

kvmTest(
  "an image a running VM writes is refused to a second VM, read-write or read-only",
  () =>
    withImage((image) =>
      whileRunning(["--rwdisk", image], async () => {
        for (const [spelling, disk] of SPELLINGS) {
          const run = await crosvm(["run", ...disk(image), await buildGuest("hello")]);
          assertRefused(run, image, /is locked by another process/, spelling);
        }
      })
    ),
);

kvmTest(
  "read-only images are shared between VMs, but not with a writer",
  () =>
    withImage((image) =>
      whileRunning(["--disk", image], async () => {
        const reader = await crosvm(["run", "--root", image, await buildGuest("hello")]);
        assert.equal(reader.code, 0, reader.stderr);
        assert.equal(reader.stdout, "Hello from the guest\n");
        const writer = await crosvm(["run", "-b", image, await buildGuest("hello")]);
        assertRefused(writer, image, /is locked by another process/);
      })
    ),
);

kvmTest(
  "the same image twice in one VM, once writable, is refused",
  () =>
    withImage(async (image) => {
      const run = await crosvm([
        "run",
        "-b",
        image,
        "-b",
        `${image},ro`,
        await buildGuest("hello"),
      ]);
      assertRefused(run, image, /given more than once/);
    }),
);
