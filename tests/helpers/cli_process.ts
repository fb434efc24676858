/**
 * The CLI as a real process, for tests: `crosvm ARGS` through `deno run main.ts`, and the
 * assertion every user error must pass.
 *
 * @module
 */

import assert from "node:assert/strict";

/** The CLI's entry point. */
export const MAIN: string = new URL("../../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** How a CLI run ended. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Starts `crosvm ARGS` with piped stdout and stderr, and stdin piped or /dev/null. `program` is
 * the main module to run (the source tree's, or a bundle); with `via`, the VMM is the command
 * that program runs (`["ip", "netns", "exec", NS]`: in network namespace NS).
 */
export function spawnCrosvm(
  args: string[],
  stdin: "piped" | "null" = "piped",
  { program = MAIN, via = [] }: { program?: string; via?: readonly string[] } = {},
): Deno.ChildProcess {
  const command = [...via, Deno.execPath(), "run", "--allow-all", program, ...args];
  return new Deno.Command(command[0], {
    args: command.slice(1),
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Runs `crosvm ARGS` (`program`: see {@link spawnCrosvm}) to its end, writing `input` to its
 * stdin (none: stdin closed at once).
 */
export async function crosvm(
  args: string[],
  input?: string,
  program: string = MAIN,
): Promise<CliRun> {
  const child = spawnCrosvm(args, "piped", { program });
  const writer = child.stdin.getWriter();
  if (input !== undefined) await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Asserts a user error: non-zero status and exactly one line on stderr, with no stack trace. */
export function assertOneLineError(run: CliRun, pattern: RegExp): void {
  assert.notEqual(run.code, 0);
  const lines = run.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected, got:\n${run.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(run.stderr, /\bat .*\.ts:\d+/, "no stack trace");
}
