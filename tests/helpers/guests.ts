/**
 * Builds the small guest programs of tests/guests/ into ELF64 kernels with the
 * system assembler and linker (binutils), cached under .cache/guests/.
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

/**
 * Assembles `tests/guests/NAME.S` and links it with `tests/guests/SCRIPT.ld`
 * (`guest` by default: code at 0x200000). Returns the ELF's path.
 */
export async function buildGuest(name: string, script = "guest"): Promise<string> {
  await Deno.mkdir(CACHE, { recursive: true });
  const source = new URL(`${name}.S`, GUESTS).pathname;
  const object = new URL(`${name}.o`, CACHE).pathname;
  const elf = new URL(`${name}-${script}.elf`, CACHE).pathname;
  await run("as", ["--64", "-o", object, source]);
  await run("ld", [
    "-T",
    new URL(`${script}.ld`, GUESTS).pathname,
    "-z",
    "noexecstack",
    "-o",
    elf,
    object,
  ]);
  return elf;
}
