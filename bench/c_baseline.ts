/**
 * The C half of the exit round-trip benchmark: builds the guest program (`guest/exits.S`, an
 * ELF64 image linked at 0x200000) and the C KVM peer (`c/kvm_exits.c`), patches the guest's
 * iteration count, and runs the peer to measure PIO and MMIO exits per second on this host.
 *
 * The guest's iteration count N is the 8-byte little-endian value that immediately follows the
 * 16-byte ASCII magic {@linkcode ITERATIONS_MAGIC} in the image (the symbol `iterations`).
 * {@linkcode setIterations} finds the magic in the ELF file bytes and overwrites those 8 bytes,
 * so no ELF symbol-table reader is needed and the same patched file runs in both VMMs.
 *
 * @module
 */

/** The 16 ASCII bytes that precede the guest's 8-byte little-endian iteration count. */
export const ITERATIONS_MAGIC = "EXITBENCH-ITERS:";

/** The iteration count assembled into `guest/exits.S`. */
export const DEFAULT_ITERATIONS = 200_000;

/** Paths of the built benchmark artifacts. */
export interface BenchArtifacts {
  /** The guest program: an ELF64 image with PT_LOAD segments at physical 0x200000. */
  guestElf: string;
  /** The C KVM peer: run it as `cBaseline guestElf`. */
  cBaseline: string;
}

/** What one run of a VMM over the guest measured. */
export interface ExitRates {
  /** PIO write exits to port 0x80 the VMM saw between the 'S' and 'P' markers. */
  pioExits: number;
  /** MMIO write exits the VMM saw between the 'P' and 'M' markers. */
  mmioExits: number;
  /** Seconds from the 'S' marker to the 'P' marker (the PIO phase). */
  pioSeconds: number;
  /** Seconds from the 'P' marker to the 'M' marker (the MMIO phase). */
  mmioSeconds: number;
  /** `pioExits / pioSeconds`. */
  pioExitsPerSecond: number;
  /** `mmioExits / mmioSeconds`. */
  mmioExitsPerSecond: number;
}

const GUEST_SOURCES = ["guest/exits.S", "guest/exits.ld"];
const C_SOURCES = ["c/kvm_exits.c"];
const GUEST_OBJECT = "exits.o";
const GUEST_ELF = "exits.elf";
const C_BINARY = "kvm_exits";
/** Bytes of the iteration count after the magic. */
const ITERATIONS_SIZE = 8;
const NS_PER_SECOND = 1e9;

/** Absolute path of a file beside this module. */
function benchPath(relative: string): string {
  return decodeURIComponent(new URL(relative, import.meta.url).pathname);
}

/** The file's modification time in ms, or null when it does not exist. */
async function mtime(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** True when `output` is missing or older than any of `inputs`. */
async function isStale(output: string, inputs: string[]): Promise<boolean> {
  const built = await mtime(output);
  if (built === null) return true;
  for (const input of inputs) {
    const changed = await mtime(input);
    if (changed === null) throw new Error(`benchmark source missing: ${input}`);
    if (changed > built) return true;
  }
  return false;
}

/** Runs a build tool; throws with its output when it fails. */
async function run(command: string, args: string[]): Promise<void> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (code !== 0) {
    const output = new TextDecoder().decode(stderr) + new TextDecoder().decode(stdout);
    throw new Error(`${command} ${args.join(" ")} failed (exit ${code}):\n${output.trim()}`);
  }
}

/**
 * Builds the guest ELF (GNU `as` + `ld` with `guest/exits.ld`) and the C peer (`gcc -O2`) into
 * `dir` (created if needed; `bench/.build/` is gitignored). Each artifact is rebuilt only when it
 * is missing or older than its sources.
 *
 * @param dir Directory for the build outputs.
 * @returns The paths (under `dir`) of the guest ELF and the C binary.
 */
export async function buildBenchArtifacts(dir: string): Promise<BenchArtifacts> {
  await Deno.mkdir(dir, { recursive: true });
  const guestElf = `${dir}/${GUEST_ELF}`;
  const cBaseline = `${dir}/${C_BINARY}`;
  const [asm, script] = GUEST_SOURCES.map(benchPath);
  if (await isStale(guestElf, [asm, script])) {
    const object = `${dir}/${GUEST_OBJECT}`;
    await run("as", ["--64", "-o", object, asm]);
    await run("ld", [
      "-m",
      "elf_x86_64",
      "-T",
      script,
      "-z",
      "noexecstack",
      "-o",
      guestElf,
      object,
    ]);
  }
  const cSources = C_SOURCES.map(benchPath);
  if (await isStale(cBaseline, cSources)) {
    await run("gcc", ["-O2", "-Wall", "-Wextra", "-o", cBaseline, ...cSources]);
  }
  return { guestElf, cBaseline };
}

/** Offset of the iteration count in `elf`; throws unless the magic occurs exactly once. */
function iterationsOffset(elf: Uint8Array): number {
  const magic = new TextEncoder().encode(ITERATIONS_MAGIC);
  let found = -1;
  for (let i = 0; i + magic.length + ITERATIONS_SIZE <= elf.length; i++) {
    let match = true;
    for (let j = 0; j < magic.length; j++) {
      if (elf[i + j] !== magic[j]) {
        match = false;
        break;
      }
    }
    if (!match) continue;
    if (found !== -1) throw new Error(`guest image has more than one "${ITERATIONS_MAGIC}"`);
    found = i + magic.length;
  }
  if (found === -1) throw new Error(`guest image lacks the "${ITERATIONS_MAGIC}" marker`);
  return found;
}

/**
 * Reads the guest's iteration count from the image bytes.
 *
 * @param elf The guest ELF file's bytes.
 * @returns N, the number of PIO and of MMIO exits the guest performs.
 */
export function getIterations(elf: Uint8Array): number {
  const offset = iterationsOffset(elf);
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const n = view.getBigUint64(offset, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`guest iteration count too large: ${n}`);
  return Number(n);
}

/**
 * Returns a copy of the guest ELF with its iteration count set to `n`: the 8 little-endian bytes
 * after the {@linkcode ITERATIONS_MAGIC} marker are overwritten. `elf` is not modified.
 *
 * @param elf The guest ELF file's bytes.
 * @param n How many PIO and how many MMIO exits the guest performs (a non-negative integer).
 * @returns The patched image.
 */
export function setIterations(elf: Uint8Array, n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`iteration count must be a non-negative integer, got ${n}`);
  }
  const patched = elf.slice();
  const view = new DataView(patched.buffer, patched.byteOffset, patched.byteLength);
  view.setBigUint64(iterationsOffset(patched), BigInt(n), true);
  return patched;
}

/** Reads a non-negative integer field from the peer's JSON result. */
function counter(result: Record<string, unknown>, key: string): number {
  const value = result[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`C baseline output: "${key}" is not a non-negative integer`);
  }
  return value;
}

/**
 * Runs the C peer over a guest ELF and returns its measurements. The exit counts are checked
 * against the iteration count patched into `elf`: a mismatch (for example a guest that did not
 * really run in 64-bit mode) throws.
 *
 * @param binary The C peer built by {@linkcode buildBenchArtifacts}.
 * @param elf The guest ELF path (usually patched with {@linkcode setIterations}).
 * @returns Exit counts, phase durations and exits per second.
 */
export async function runCBaseline(binary: string, elf: string): Promise<ExitRates> {
  const expected = getIterations(await Deno.readFile(elf));
  const { code, stdout, stderr } = await new Deno.Command(binary, {
    args: [elf],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout).trim();
  if (code !== 0) {
    const err = new TextDecoder().decode(stderr).trim();
    throw new Error(`${binary} ${elf} failed (exit ${code}):\n${err}`);
  }
  const line = out.split("\n").at(-1) ?? "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error(`C baseline printed no JSON result: ${JSON.stringify(out)}`);
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new Error(`C baseline printed no JSON object: ${line}`);
  }
  const result = parsed as Record<string, unknown>;
  const pioExits = counter(result, "pio_exits");
  const mmioExits = counter(result, "mmio_exits");
  if (pioExits !== expected || mmioExits !== expected) {
    throw new Error(
      `C baseline saw ${pioExits} PIO and ${mmioExits} MMIO exits, expected ${expected}`,
    );
  }
  const pioSeconds = counter(result, "pio_ns") / NS_PER_SECOND;
  const mmioSeconds = counter(result, "mmio_ns") / NS_PER_SECOND;
  return {
    pioExits,
    mmioExits,
    pioSeconds,
    mmioSeconds,
    pioExitsPerSecond: pioSeconds > 0 ? pioExits / pioSeconds : 0,
    mmioExitsPerSecond: mmioSeconds > 0 ? mmioExits / mmioSeconds : 0,
  };
}
