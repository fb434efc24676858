/**
 * Runs the ACPICA tools from Debian's `acpica-tools` (iasl, acpiexec): the reference ACPI
 * implementation, whose interpreter is the one in Linux. Each call works in a fresh temporary
 * directory.
 *
 * @module
 */

/** What a tool printed, stdout and stderr together. */
export interface ToolRun {
  /** Exit status. */
  code: number;
  /** stdout then stderr. */
  log: string;
}

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "acpica-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function run(cmd: string, args: string[], cwd: string): Promise<ToolRun> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `${cmd} not found: install Debian's acpica-tools (scripts/install_test_deps.sh)`,
      );
    }
    throw e;
  }
  const text = new TextDecoder();
  return { code: out.code, log: text.decode(out.stdout) + text.decode(out.stderr) };
}

/** `iasl -d`: disassembles one binary table; returns the .dsl text and what iasl printed. */
export function disassemble(table: Uint8Array): Promise<ToolRun & { dsl: string }> {
  return inTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/table.dat`, table);
    const result = await run("iasl", ["-d", "table.dat"], dir);
    let dsl = "";
    try {
      dsl = await Deno.readTextFile(`${dir}/table.dsl`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return { ...result, dsl };
  });
}

/**
 * `iasl -oa`: compiles ASL (a DefinitionBlock, or a data table in iasl's template syntax) with
 * every optimization off, so that the AML says exactly what the source says.
 */
export function compile(source: string): Promise<ToolRun & { aml: Uint8Array }> {
  return inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/source.asl`, source);
    const result = await run("iasl", ["-oa", "-p", "out", "source.asl"], dir);
    if (result.code !== 0) throw new Error(`iasl failed:\n${result.log}`);
    return { ...result, aml: await Deno.readFile(`${dir}/out.aml`) };
  });
}

/** `acpiexec -b COMMANDS`: loads binary tables into ACPICA's interpreter and runs debugger commands. */
export function acpiexec(tables: readonly Uint8Array[], commands: string): Promise<ToolRun> {
  return inTempDir(async (dir) => {
    const files = tables.map((_, i) => `table${i}.dat`);
    await Promise.all(tables.map((t, i) => Deno.writeFile(`${dir}/${files[i]}`, t)));
    return run("acpiexec", ["-b", commands, ...files], dir);
  });
}
