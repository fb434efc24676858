/**
 * Asks the C compiler for the values of integer expressions (sizeof, offsetof, macros) under the
 * system headers, so tests can hold our ABI constants against the real `<linux/*.h>`.
 *
 * @module
 */

/** Compiles and runs one program printing each of `expressions`; returns their values. */
export async function cValues(
  headers: readonly string[],
  expressions: readonly string[],
): Promise<Map<string, number>> {
  const source = [
    ...headers.map((h) => `#include <${h}>`),
    "#include <stddef.h>",
    "#include <stdio.h>",
    "int main(void) {",
    ...expressions.map((e) => `  printf("%lld\\n", (long long)(${e}));`),
    "}",
  ].join("\n");
  const dir = await Deno.makeTempDir({ prefix: "c_values_" });
  try {
    const exe = `${dir}/values`;
    const compiler = new Deno.Command("gcc", {
      args: ["-x", "c", "-o", exe, "-"],
      stdin: "piped",
      stderr: "piped",
    }).spawn();
    const writer = compiler.stdin.getWriter();
    await writer.write(new TextEncoder().encode(source));
    await writer.close();
    const built = await compiler.output();
    if (!built.success) throw new Error(`gcc: ${new TextDecoder().decode(built.stderr)}`);
    const ran = await new Deno.Command(exe, { stdout: "piped" }).output();
    const lines = new TextDecoder().decode(ran.stdout).trim().split("\n");
    return new Map(expressions.map((e, i) => [e, Number(lines[i])]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
