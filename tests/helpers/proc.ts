/**
 * Reading processes from /proc, for tests that look at a jailed process from outside.
 *
 * @module
 */

export { descendantPids } from "../../src/sandbox/jail.ts";

/** The `Name:\tvalue` lines of /proc/PID/status, by name. */
export function processStatus(pid: number): Map<string, string> {
  return new Map(
    Deno.readTextFileSync(`/proc/${pid}/status`).split("\n").filter((line) => line.includes(":"))
      .map((line) => {
        const at = line.indexOf(":");
        return [line.slice(0, at), line.slice(at + 1).trim()];
      }),
  );
}

/** A process's command name (`/proc/PID/comm`), or undefined once it has gone. */
export function commandName(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return undefined;
  }
}

/** A process's command line (`/proc/PID/cmdline`, arguments joined by spaces), or undefined. */
export function commandLine(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
  } catch {
    return undefined;
  }
}

/**
 * Every process on the host but this one whose command line mentions `text` (a path only its
 * own processes name, such as this checkout's), with its command line.
 */
export function processesMentioning(text: string): { pid: number; cmdline: string }[] {
  return [...Deno.readDirSync("/proc")].flatMap((entry) => {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) return [];
    const cmdline = commandLine(pid);
    return cmdline?.includes(text) ? [{ pid, cmdline }] : [];
  });
}
