/**
 * The single-file VMM (scripts/bundle.ts): built into an empty directory, it boots the trivial
 * guest with nothing beside it, its vCPU Workers, its device Workers (--disable-sandbox) and its
 * jailed device processes (the default) all started from the one file.
 */

import assert from "node:assert/strict";
import { buildBundle } from "../../scripts/bundle.ts";
import { crosvm } from "../helpers/cli_process.ts";
import { buildGuest } from "../helpers/guests.ts";

/** The byte the trivial guest writes to COM1 before it triple-faults. */
const GUEST_BYTE = "K";

const CASES = [
  ["jailed devices (the default)", []],
  ["devices in Workers (--disable-sandbox)", ["--disable-sandbox"]],
  ["no virtio devices, 2 vCPUs", ["--no-rng", "--no-balloon", "-c", "2"]],
] as const;

Deno.test("bundle: one file that boots the trivial guest", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "crosvm-bundle-" });
  try {
    const bundle = `${dir}/crosvm.js`;
    await buildBundle(bundle);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["crosvm.js"]);
    const guest = await buildGuest("first_byte", "pvh");
    for (const [what, options] of CASES) {
      await t.step(what, async () => {
        const run = await crosvm(["run", "-m", "64", ...options, guest], undefined, bundle);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout, GUEST_BYTE);
        assert.match(run.stderr, /vm ended: triple-fault/);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
