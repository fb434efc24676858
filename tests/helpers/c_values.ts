/**
 * Asks the C compiler for the values of integer expressions (sizeof, offsetof, macros) under the
 * system headers, so tests can hold our ABI constants against the real `<linux/*.h>`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { StructLayout } from "../../src/ffi/kvm_abi.ts";

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

/** One of our constants and the C expressions that must each equal it under some headers. */
export interface CClaim {
  /** How a mismatch names the constant: its export, e.g. `CommonCfg.QUEUE_SIZE`. */
  readonly name: string;
  /** The value our TypeScript gives it. */
  readonly value: number;
  /** C expressions (macros, `offsetof`, `sizeof`, ...) that must evaluate to {@link value}. */
  readonly c: readonly string[];
}

/** For the number-valued exports of `M`, the C expression (or expressions) each restates. */
export type CTable<M> = {
  readonly [K in keyof M as M[K] extends number ? K : never]?: string | readonly string[];
};

/** The number export `name` of `module` (a runtime guard on what {@link CTable} types). */
function numberExport(module: object, name: string, label: string): number {
  const value: unknown = (module as Record<string, unknown>)[name];
  if (typeof value !== "number") throw new TypeError(`${label} is not a number export`);
  return value;
}

/** The claims `table` makes about `module`'s constants, named `prefix` + export name. */
export function claimsOf<M extends object>(module: M, table: CTable<M>, prefix = ""): CClaim[] {
  const entries = Object.entries(table as Record<string, string | readonly string[]>);
  return entries.map(([name, c]) => ({
    name: prefix + name,
    value: numberExport(module, name, prefix + name),
    c: typeof c === "string" ? [c] : c,
  }));
}

/** Claims for each layout's size and member offsets (`sizeof`, `offsetof` of `struct name`). */
export function layoutClaims(layouts: readonly StructLayout[]): CClaim[] {
  return layouts.flatMap((layout) => [
    { name: `${layout.name} size`, value: layout.size, c: [`sizeof(struct ${layout.name})`] },
    ...Object.entries(layout.fields).map(([field, offset]) => ({
      name: `${layout.name}.${field}`,
      value: offset,
      c: [`offsetof(struct ${layout.name}, ${field})`],
    })),
  ]);
}

/**
 * Claims for the number exports of `module` whose names match `pattern`, each named after the C
 * macro it restates (`VIRTIO_BLK_T_IN` for `VIRTIO_BLK_T_IN`), so a new export is checked too.
 * @throws Error when nothing matches (a stale pattern would check nothing)
 */
export function namedAfterMacros(module: object, pattern: RegExp): CClaim[] {
  const out = Object.entries(module as Record<string, unknown>)
    .filter((entry): entry is [string, number] =>
      pattern.test(entry[0]) && typeof entry[1] === "number"
    )
    .map(([name, value]) => ({ name, value, c: [name] }));
  if (out.length === 0) throw new Error(`no number export matches ${pattern}`);
  return out;
}

/**
 * Compiles every claim's expressions under `headers` and asserts each equals our value; a
 * failure lists every constant that differs, with both values.
 */
export async function assertMatchesC(
  headers: readonly string[],
  claims: readonly CClaim[],
): Promise<void> {
  assert.ok(claims.length > 0, "no claims to check");
  const expressions = [...new Set(claims.flatMap((claim) => claim.c))];
  const values = await cValues(headers, expressions);
  const where = headers.map((h) => `<${h}>`).join(" ");
  const wrong = claims
    .map(({ name, value, c }) => ({
      name,
      value,
      off: c.filter((e) => values.get(e) !== value),
    }))
    .filter(({ off }) => off.length > 0);
  const lines = wrong.flatMap(({ name, value, off }) =>
    off.map((e) => `${name} is ${value}, but ${e} is ${values.get(e)} under ${where}`)
  );
  assert.deepEqual(
    lines,
    [],
    `${wrong.length} of ${claims.length} constants differ:\n${lines.join("\n")}`,
  );
}
