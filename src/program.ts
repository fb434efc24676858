/**
 * Where this program's code is: the source tree (`deno run main.ts`, or `deno compile`'s copy of
 * it), or one bundled JavaScript file (`deno task bundle`), in which every module has the bundle's
 * URL. Workers and jailed device processes start from here: in the source tree each Worker runs
 * its own small entry module; from the bundle each runs the bundle itself, its role named by the
 * URL's fragment, so the bundle needs no sibling files.
 *
 * @module
 */

/** The entry module of each role a Worker plays, beside this module in the source tree. */
const WORKER_MODULES = {
  vcpu: "./vcpu/worker.ts",
  device: "./devices/virtio/worker/entry.ts",
} as const;

/** A role a Worker of ours plays: a vCPU's loop, or a virtio device's. */
export type WorkerRole = keyof typeof WORKER_MODULES;

/** This module's path in the source tree. */
const THIS_MODULE = "/src/program.ts";
/** The source tree's main module, relative to this one. */
const SOURCE_MAIN = "../main.ts";

const here = new URL(import.meta.url);

/** True when this program is one bundled file rather than the source tree. */
export const BUNDLED: boolean = !here.pathname.endsWith(THIS_MODULE);

/** The file of the program's main module: the source tree's main.ts, or the bundle. */
export function mainModulePath(): string {
  return decodeURIComponent(BUNDLED ? here.pathname : new URL(SOURCE_MAIN, here).pathname);
}

/** The URL a Worker in `role` starts from. */
export function workerUrl(role: WorkerRole): string {
  if (!BUNDLED) return new URL(WORKER_MODULES[role], here).href;
  const url = new URL(here);
  url.hash = role;
  return url.href;
}

/** In a Worker started from the bundle, its role; undefined anywhere else. */
export function bundledWorkerRole(): WorkerRole | undefined {
  const role = here.hash.slice(1);
  return BUNDLED && Object.hasOwn(WORKER_MODULES, role) ? role as WorkerRole : undefined;
}
