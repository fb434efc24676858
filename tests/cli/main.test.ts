import assert from "node:assert/strict";
import { buildGuest } from "../helpers/guests.ts";
import { assertOneLineError, crosvm, MAIN, spawnCrosvm } from "../helpers/cli_process.ts";
import { buildBzImage, pattern } from "../helpers/bzimage.ts";
import { kvmTest } from "../helpers/vcpu.ts";

Deno.test("crosvm version prints the version", async () => {
  const run = await crosvm(["version"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /^crosvm \d+\.\d+\.\d+\n$/);
});

Deno.test("crosvm run --help lists crosvm's options with their defaults", async () => {
  const run = await crosvm(["run", "--help"]);
  assert.equal(run.code, 0);
  for (const option of ["--mem", "--cpus", "--params", "--initrd", "--serial", "--log-level"]) {
    assert.ok(run.stdout.includes(option), `${option} in help`);
  }
  assert.match(run.stdout, /default: 256/);
});

Deno.test("a malformed option value is one clear line and status 35", async () => {
  const run = await crosvm(["run", "--mem", "lots", "vmlinux"]);
  assert.equal(run.code, 35);
  assertOneLineError(run, /--mem.*lots/);
});

Deno.test("a missing kernel is one clear line", async () => {
  assertOneLineError(await crosvm(["run", "/nonexistent/vmlinux"]), /no such file/);
});

Deno.test("a directory given as the kernel is one clear line", async () => {
  assertOneLineError(await crosvm(["run", "/tmp"]), /is a directory/);
});

kvmTest("a file that is neither ELF nor bzImage is refused", async () => {
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, crypto.getRandomValues(new Uint8Array(4096)));
  assertOneLineError(await crosvm(["run", path]), /neither an ELF vmlinux nor a bzImage/);
  await Deno.remove(path);
});

kvmTest("a truncated ELF kernel is refused", async () => {
  const elf = await Deno.readFile(await buildGuest("hello"));
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, elf.subarray(0, 100));
  assertOneLineError(await crosvm(["run", path]), /truncated|past the end/);
  await Deno.remove(path);
});

kvmTest("a bzImage cut short of the kernel its setup header declares is refused", async () => {
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, buildBzImage({ payload: pattern(64 * 1024) }).subarray(0, 8192));
  const run = await crosvm(["run", path]);
  assertOneLineError(
    run,
    /truncated: the setup header declares 65536 bytes of protected-mode kernel after 1024 bytes of setup, the file has 7168/,
  );
  await Deno.remove(path);
});

/** The host's RAM in MiB (MemTotal, /proc/meminfo). */
function hostMemoryMiB(): number {
  const kib = Number(/^MemTotal:\s+(\d+) kB$/m.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]);
  return Math.ceil(kib / 1024);
}

kvmTest("a guest larger than the host's RAM runs: guest memory is touched lazily", async () => {
  const mib = 2 * hostMemoryMiB();
  const run = await crosvm(["run", "-m", String(mib), await buildGuest("hello")]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "Hello from the guest\n");
});

kvmTest("guest memory the host truly refuses (ulimit -v) is one line with the size", async () => {
  // Room for Deno's own reservations (V8's heap cages), not for the 2 x 64 GiB guest.
  const limitKiB = 96 << 20;
  const guest = await buildGuest("hello");
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -v ${limitKiB} && exec "$0" run --allow-all "$1" run -m 131072 "$2"`,
      Deno.execPath(),
      MAIN,
      guest,
    ],
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  const run = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  assertOneLineError(
    run,
    /^crosvm: error: cannot reserve 131072 MiB of guest memory: the host refused/,
  );
});

kvmTest("an initrd larger than guest memory is refused", async () => {
  const initrd = await Deno.makeTempFile();
  await Deno.truncate(initrd, 40 << 20);
  const run = await crosvm(["run", "-m", "32", "-i", initrd, await buildGuest("hello")]);
  assertOneLineError(run, /initrd .* does not fit/);
  await Deno.remove(initrd);
});

for (
  const [device, message] of [
    ["/nonexistent/kvm", /\/nonexistent\/kvm does not exist/],
    ["/dev/null", /\/dev\/null is not a KVM device/],
  ] as const
) {
  Deno.test(`--kvm-device ${device} is one clear line`, async () => {
    const kernel = await Deno.makeTempFile();
    await Deno.writeFile(kernel, new Uint8Array(64));
    assertOneLineError(await crosvm(["run", "--kvm-device", device, kernel]), message);
    await Deno.remove(kernel);
  });
}

kvmTest("crosvm run boots a guest with COM1 on stdout and exits 0 on reset", async () => {
  const run = await crosvm(["run", await buildGuest("hello")]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "Hello from the guest\n");
});

kvmTest("a triple fault ends crosvm run with status 0", async () => {
  const run = await crosvm(["run", await buildGuest("triple_fault")]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "T");
});

kvmTest("stdin reaches the guest's COM1", async () => {
  const run = await crosvm(["run", await buildGuest("echo")], "ping\n");
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, ">ping\n");
});

kvmTest("--serial type=file writes COM1 to a file and nothing to stdout", async () => {
  const path = await Deno.makeTempFile();
  const run = await crosvm([
    "run",
    "--serial",
    `type=file,path=${path},num=1,console`,
    await buildGuest("hello"),
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "");
  assert.equal(await Deno.readTextFile(path), "Hello from the guest\n");
  await Deno.remove(path);
});

kvmTest("SIGTERM stops a running VM cleanly with status 0", async () => {
  const child = spawnCrosvm(["run", "-c", "2", await buildGuest("spin")], "null");
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert.equal(new TextDecoder().decode(first.value), "R");
  child.kill("SIGTERM");
  reader.releaseLock();
  const { code } = await child.output();
  assert.equal(code, 0);
});
