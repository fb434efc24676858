/**
 * Counting this process's open descriptors, for tests that prove nothing is left open.
 *
 * @module
 */

/**
 * The process's open descriptors once they stop changing: a terminated Worker's thread closes its
 * own event-loop descriptors a moment after `terminate()` returns.
 */
export async function settledFdCount(): Promise<number> {
  const count = () => [...Deno.readDirSync("/proc/self/fd")].length;
  let last = count();
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = count();
    if (now === last) return now;
    last = now;
  }
  return last;
}
