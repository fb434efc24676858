/**
 * Asks the C compiler for the values of integer expressions (sizeof, offsetof, macros) under the
 * system headers, so tests can hold our ABI constants against the real `<linux/*.h>`.
 *
 * @module
 */

/** What to install when gcc or a header is missing (CI installs both). */
const INSTALL_HINT =
  "install gcc and the kernel headers (Debian: apt-get install gcc linux-libc-dev)";

/**
 * Compiles and runs one program printing each of `expressions`; returns their values. A
 * missing compiler or header is an error that says what to install.
 */
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
    let compiler: Deno.ChildProcess;
    try {
      compiler = new Deno.Command("gcc", {
        args: ["-x", "c", "-Wall", "-Werror", "-o", exe, "-"],
        stdin: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new Error(`gcc not found: ${INSTALL_HINT}`);
      throw e;
    }
    const writer = compiler.stdin.getWriter();
    await writer.write(new TextEncoder().encode(source));
    await writer.close();
    const built = await compiler.output();
    const errors = new TextDecoder().decode(built.stderr);
    const header = /fatal error: (\S+\.h): No such file/.exec(errors);
    if (header) throw new Error(`<${header[1]}> not found: ${INSTALL_HINT}`);
    if (!built.success) throw new Error(`gcc: ${errors}`);
    const ran = await new Deno.Command(exe, { stdout: "piped" }).output();
    if (!ran.success) throw new Error("the generated program failed");
    const lines = new TextDecoder().decode(ran.stdout).trim().split("\n");
    return new Map(expressions.map((e, i) => [e, Number(lines[i])]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
