/**
 * Builds the small guest programs of tests/guests/ with the system assembler and linker
 * (binutils), cached under .cache/guests/: ELF64 kernels for the VMM, and flat binaries for a
 * bare vCPU.
 *
 * @module
 */

const GUESTS = new URL("../guests/", import.meta.url);
const CACHE = new URL("../../.cache/guests/", import.meta.url);

async function run(cmd: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  if (!success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(stderr)}`);
  }
}

/** Assembles `tests/guests/NAME.S` and links it with `tests/guests/SCRIPT.ld` into `output`. */
async function assembleAndLink(name: string, script: string, output: string): Promise<string> {
  await Deno.mkdir(CACHE, { recursive: true });
  const source = new URL(`${name}.S`, GUESTS).pathname;
  const object = new URL(`${name}.o`, CACHE).pathname;
  const linked = new URL(output, CACHE).pathname;
  await run("as", ["--64", "-o", object, source]);
  await run("ld", [
    "-T",
    new URL(`${script}.ld`, GUESTS).pathname,
    "-z",
    "noexecstack",
    "-o",
    linked,
    object,
  ]);
  return linked;
}

/**
 * Assembles `tests/guests/NAME.S` and links it with `tests/guests/SCRIPT.ld`
 * (`guest` by default: code at 0x200000). Returns the ELF's path.
 */
export function buildGuest(name: string, script = "guest"): Promise<string> {
  return assembleAndLink(name, script, `${name}-${script}.elf`);
}

/**
 * Assembles `tests/guests/NAME.S` and links it with `tests/guests/flat.ld` into a flat binary
 * for a bare vCPU (code at 0x1000, entered in real mode). Returns its bytes.
 */
export async function buildFlatGuest(name: string): Promise<Uint8Array> {
  return await Deno.readFile(await assembleAndLink(name, "flat", `${name}.bin`));
}
