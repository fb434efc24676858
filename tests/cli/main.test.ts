import assert from "node:assert/strict";
import { buildGuest } from "../helpers/guests.ts";
import { HAVE_KVM, NO_KVM } from "../helpers/run_guest.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `crosvm ARGS` as a real process, optionally writing `input` to its stdin. */
async function crosvm(args: string[], input?: string): Promise<CliRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Asserts a user error: non-zero status and exactly one line on stderr, with no stack trace. */
function assertOneLineError(run: CliRun, pattern: RegExp): void {
  assert.notEqual(run.code, 0);
  const lines = run.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected, got:\n${run.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(run.stderr, /\bat .*\.ts:\d+/, "no stack trace");
}

const kvmTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: HAVE_KVM ? name : `${name} [ignored: ${NO_KVM}]`, ignore: !HAVE_KVM, fn });

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

Deno.test("a missing disk image is one clear line, before the kernel is read", async () => {
  const run = await crosvm(["run", "--rwdisk", "/nonexistent/disk.img", "/nonexistent/vmlinux"]);
  assertOneLineError(run, /disk image \/nonexistent\/disk\.img: no such file/);
});

Deno.test("a directory given as a disk image is one clear line", async () => {
  assertOneLineError(
    await crosvm(["run", "-b", "/tmp,ro", "/tmp"]),
    /disk image \/tmp: is a directory/,
  );
});

kvmTest("an image in use by another VM is refused; the first VM keeps it", async () => {
  const image = await Deno.makeTempFile();
  await Deno.truncate(image, 1 << 20);
  // The first VM waits on its console for a line, holding the image.
  const first = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "run", "--rwdisk", image, await buildGuest("echo")],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = first.stdout.getReader();
    await reader.read(); // the guest's prompt: the VM is running
    reader.releaseLock();
    const second = await crosvm(["run", "--disk", image, await buildGuest("hello")]);
    assertOneLineError(second, /is locked by another process/);
  } finally {
    const writer = first.stdin.getWriter();
    await writer.write(new TextEncoder().encode("bye\n"));
    await writer.close();
    const { code } = await first.output();
    assert.equal(code, 0, "the first VM ran on undisturbed");
    await Deno.remove(image);
  }
});

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
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "run", "-c", "2", await buildGuest("spin")],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert.equal(decoder.decode(first.value), "R");
  child.kill("SIGTERM");
  reader.releaseLock();
  const { code } = await child.output();
  assert.equal(code, 0);
});
