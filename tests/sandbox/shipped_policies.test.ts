// The policies built into the program are the files in seccomp/x86_64/, every one of them and
// each as it is (a device whose policy is missing from the build could not start jailed), and
// every device type has its policy among them.

import assert from "node:assert/strict";
import { policyFileName } from "../../src/devices/virtio/kinds.ts";
import type { BackendSpec } from "../../src/devices/virtio/kinds.ts";
import { SHIPPED_POLICIES } from "../../src/sandbox/shipped_policies.ts";

const DIR = new URL("../../seccomp/x86_64/", import.meta.url).pathname;

Deno.test("every policy file in seccomp/x86_64/ is built in, as it is", () => {
  const files = [...Deno.readDirSync(DIR)].map((e) => e.name).sort();
  assert.deepEqual(Object.keys(SHIPPED_POLICIES).sort(), files);
  for (const name of files) {
    assert.equal(SHIPPED_POLICIES[name], Deno.readTextFileSync(`${DIR}${name}`), name);
  }
});

Deno.test("every device type's policy is shipped", () => {
  const kinds: BackendSpec["kind"][] = [
    "rng",
    "block",
    "balloon",
    "net",
    "vhost-net",
    "vsock",
    "vhost-vsock",
  ];
  for (const kind of kinds) {
    const name = policyFileName({ kind } as BackendSpec);
    assert.ok(SHIPPED_POLICIES[name] !== undefined, `${kind}: ${name}`);
  }
});
