// The loaders and parsers on mutated inputs (tests/fuzz/random.ts): the kernel loaders (ELF,
// bzImage) with an initrd and a command line into guest memory, crosvm's command line, the
// control socket's JSON and the seccomp policy files. Each may accept an input or refuse it with
// its own one-line error; anything else thrown (a RangeError, a write outside guest memory, a
// TypeError) is a failure, reported with the seed and case that reproduce it.

import assert from "node:assert/strict";
import { bytesImage } from "../../src/arch/x86_64/boot/image.ts";
import { loadBootImages } from "../../src/arch/x86_64/boot/load.ts";
import { MIB, ramRegions } from "../../src/arch/x86_64/layout.ts";
import { HelpRequested } from "../../src/cli/errors.ts";
import { parseRunArgs } from "../../src/cli/run_args.ts";
import { decodeRequest, encodeRequest, ProtocolError } from "../../src/control/protocol.ts";
import type { ControlRequest } from "../../src/control/protocol.ts";
import { UserError } from "../../src/errors.ts";
import { GuestMemory } from "../../src/memory.ts";
import { parsePolicy } from "../../src/sandbox/policy.ts";
import { buildBzImage, pattern } from "../helpers/bzimage.ts";
import { buildGuest } from "../helpers/guests.ts";
import { Random, runCases, runSeed } from "./random.ts";

const CASES = runCases(400);
const SEED = runSeed();
console.log(`input fuzz: seed ${SEED}, ${CASES} cases per input (FUZZ_SEED, FUZZ_CASES)`);

/**
 * Feeds `CASES` mutations of the seeds to `consume`; each must return, or throw an error
 * `expected` accepts.
 */
function fuzzInputs(
  name: string,
  seeds: readonly Uint8Array[],
  consume: (input: Uint8Array, random: Random) => void,
  expected: (e: unknown) => boolean,
): void {
  const random = new Random(SEED);
  let refused = 0;
  for (let k = 0; k < CASES; k++) {
    const input = random.mutate(random.pick(seeds));
    try {
      consume(input, random);
    } catch (e) {
      if (!expected(e)) {
        assert.fail(
          `${name}: case ${k} of seed ${SEED} (FUZZ_SEED=${SEED} FUZZ_CASES=${k + 1}) threw ` +
            (e instanceof Error ? e.stack : String(e)),
        );
      }
      refused++;
    }
  }
  console.log(`  ${name}: ${CASES - refused} accepted, ${refused} refused in one line`);
}

/** A user error whose message is one line. */
const oneLineUserError = (e: unknown) => e instanceof UserError && !e.message.includes("\n");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("fuzz: the kernel loaders (ELF, bzImage) with an initrd and a command line", async () => {
  const elf = await Deno.readFile(await buildGuest("hello"));
  const bzImage = buildBzImage({ payload: pattern(40_000, 5), initSize: 2 * MIB });
  fuzzInputs("kernels", [elf, bzImage], (kernel, random) => {
    const mem = GuestMemory.allocate(ramRegions(32 * MIB));
    const initrd = random.chance(0.5)
      ? bytesImage("initrd", new Uint8Array(random.chance(0.9) ? random.below(1 << 20) : 40 * MIB))
      : undefined;
    const cmdline = "console=ttyS0 ".repeat(random.chance(0.9) ? 1 : 500);
    loadBootImages(mem, { kernel: bytesImage("vmlinux", kernel), initrd, cmdline });
  }, oneLineUserError);
});

/** crosvm's options, valid ones each, joined by NUL (split into argv after mutation). */
const ARGVS = [
  ["-m", "512", "-c", "2", "-p", "quiet", "vmlinux"],
  ["--serial", "type=file,path=/tmp/x,num=2,console", "--block", "/d,ro,root,sparse=false", "k"],
  ["--net", "tap-name=t0,mac=52:54:00:00:00:01,vq-pairs=2", "-c", "2", "k"],
  ["--net", "host-ip=10.0.0.1,netmask=255.255.255.0,mac=52:54:00:00:00:01,vhost-net", "k"],
  ["--vsock", "cid=3,uds-path=/tmp/v.sock", "--disable-sandbox", "--no-rng", "k"],
  ["--rwdisk", "/d", "--balloon-page-reporting", "-s", "/tmp/c.sock", "--extended-status", "k"],
].map((argv) => encoder.encode(argv.join("\0")));

Deno.test("fuzz: crosvm run's command line", () => {
  // A mutation that makes an argument `-h` or `--help` asks for the usage text, as it should.
  fuzzInputs("argv", ARGVS, (input) => {
    parseRunArgs(decoder.decode(input).split("\0"));
  }, (e) => oneLineUserError(e) || e instanceof HelpRequested);
});

const REQUESTS: ControlRequest[] = [
  { kind: "exit" },
  { kind: "suspend", full: true },
  { kind: "resume", full: false },
  { kind: "powerbtn" },
  { kind: "balloon-adjust", numBytes: 1 << 30, wait: true },
  { kind: "balloon-stats" },
  { kind: "disk-resize", index: 1, newSize: 1 << 20 },
];

Deno.test("fuzz: the control socket's JSON requests", () => {
  fuzzInputs("requests", REQUESTS.map(encodeRequest), (input) => {
    decodeRequest(input);
  }, (e) => e instanceof ProtocolError);
});

Deno.test("fuzz: the seccomp policy files", async () => {
  const dir = new URL("../../seccomp/x86_64/", import.meta.url).pathname;
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    files.set(entry.name, await Deno.readTextFile(`${dir}${entry.name}`));
  }
  const include = (path: string) => {
    const text = files.get(path.slice(path.lastIndexOf("/") + 1));
    if (text === undefined) throw new Deno.errors.NotFound(path);
    return text;
  };
  fuzzInputs("policies", [...files.values()].map((t) => encoder.encode(t)), (input) => {
    parsePolicy(decoder.decode(input), `${dir}fuzzed.policy`, include);
  }, oneLineUserError);
});
