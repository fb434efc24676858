/**
 * Whether a path names something, for tests and the test bed's asset recipe.
 *
 * @module
 */

/** Whether `path` exists (a dangling symlink counts); errors other than NotFound propagate. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
