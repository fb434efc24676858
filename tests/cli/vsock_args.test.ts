// `crosvm run --vsock`: crosvm's cid, our uds-path, the older --cid, and every way of getting them
// wrong; and an unusable uds-path as one line before the VM starts.

import assert from "node:assert/strict";
import { parseRunArgs, parseRunCommand } from "../../src/cli/run_args.ts";
import { assertUsageError } from "../helpers/usage_error.ts";
import { assertOneLineError, crosvm } from "../helpers/cli_process.ts";
import { buildGuest } from "../helpers/guests.ts";
import { kvmTest } from "../helpers/vcpu.ts";

const vsock = (...args: string[]) => parseRunArgs([...args, "vmlinux"]).vsock;

Deno.test("--vsock cid=N[,device=PATH] is vhost-vsock, cid=N,uds-path=PATH the userspace device; --cid N is the older spelling", () => {
  assert.equal(vsock(), undefined, "none unless asked");
  assert.deepEqual(vsock("--vsock", "cid=3,uds-path=/run/v.sock"), {
    cid: 3,
    udsPath: "/run/v.sock",
  });
  assert.deepEqual(vsock("--vsock", "4294967294,uds-path=v.sock"), {
    cid: 4294967294,
    udsPath: "v.sock",
  });
  assert.deepEqual(vsock("--vsock", "3"), { cid: 3 }, "vhost-vsock, through /dev/vhost-vsock");
  assert.deepEqual(vsock("--vsock", "cid=4,device=/dev/vsock-test"), {
    cid: 4,
    vhostDevice: "/dev/vsock-test",
  });
  const older = parseRunCommand(["--cid", "5,uds-path=/run/v.sock", "k"]);
  assert.deepEqual(older.config.vsock, { cid: 5, udsPath: "/run/v.sock" });
  assert.deepEqual(older.warnings, ["--cid is deprecated; use --vsock cid=5,uds-path=/run/v.sock"]);
});

const BAD: [string[], string][] = [
  [["--vsock", "cid=2,uds-path=/v"], "cid must be from 3 to 4294967294, not 2"],
  [["--vsock", "cid=4294967295,uds-path=/v"], "cid must be from 3"],
  [["--vsock", "uds-path=/v"], "cid is required"],
  [["--vsock", "cid=3,device=/d,uds-path=/v"], "give uds-path (the userspace device) or device"],
  [["--vsock", "cid=3,uds-path=/v,bogus=1"], "bogus"],
  [["--vsock", "cid=3,uds-path=/v", "--cid", "4"], "--cid and --vsock both give the CID"],
];
for (const [args, says] of BAD) {
  Deno.test(`${args.join(" ")} is one line: ${says}`, () => {
    assertUsageError(() => vsock(...args), says);
  });
}

kvmTest(
  "a uds-path or vhost-vsock device that cannot be used is one line before the VM starts",
  async () => {
    const guest = await buildGuest("hello");
    const dir = await Deno.makeTempDir({ prefix: "vsock_cli_" });
    try {
      await Deno.writeTextFile(`${dir}/file`, "not a socket");
      const cases: [string, RegExp][] = [
        [
          `${dir}/missing/v.sock`,
          /^crosvm: error: vsock uds-path .*\/missing\/v\.sock: open\(.*\) failed: ENOENT/,
        ],
        [`${dir}/file`, /^crosvm: error: vsock uds-path .*\/file: exists and is not a socket$/],
        [`${dir}/${"n".repeat(80)}`, /its file name is longer than 76 bytes$/],
      ];
      for (const [path, says] of cases) {
        assertOneLineError(await crosvm(["run", "--vsock", `cid=3,uds-path=${path}`, guest]), says);
      }
      // Our hosts have no vhost-vsock: that is one line too, with what to do.
      assertOneLineError(
        await crosvm(["run", "--vsock", `cid=3,device=${dir}/no-vhost-vsock`, guest]),
        /^crosvm: error: vsock: cannot open vhost-vsock device .*\/no-vhost-vsock: ENOENT \(load vhost_vsock, or give uds-path=PATH for the userspace device\)$/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
