/**
 * The control plane from the command line, as real processes on this host's KVM: `crosvm run
 * -s` with a guest that counts in memory (tests/guests/spin.S) or resets (hello.S), driven by
 * `crosvm stop|suspend|resume|balloon_stats|disk resize SOCKET`, and every error such a command
 * can meet, each in one line.
 */

import assert from "node:assert/strict";
import { connectSeqpacket, sendDatagramBlocking } from "../../src/ffi/unix_socket.ts";
import { close } from "../../src/ffi/libc.ts";
import { assertOneLineError, crosvm, spawnCrosvm } from "../helpers/cli_process.ts";
import { buildGuest } from "../helpers/guests.ts";
import { kvmTest } from "../helpers/kvm.ts";
import { exists } from "../helpers/paths.ts";

/** Runs spin.S under `crosvm run -s DIR/vm.sock ...extra`, hands `fn` the socket, then waits. */
async function withRunningVm(
  extra: string[],
  fn: (socket: string) => Promise<void>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "control_cli_" });
  const socket = `${dir}/vm.sock`;
  const child = spawnCrosvm(
    ["run", "--no-rng", "-m", "64", "-s", socket, ...extra, await buildGuest("spin")],
    "null",
  );
  const output = child.output();
  try {
    // The socket exists once the VM is being built; requests are served once it runs.
    while (!(await exists(socket))) await new Promise((r) => setTimeout(r, 10));
    await fn(socket);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  } finally {
    await output.finally(() => Deno.remove(dir, { recursive: true }));
  }
  const { code, stdout, stderr } = await output;
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

kvmTest(
  "crosvm suspend, resume and stop drive a running VM; the socket is 0600 and goes",
  async () => {
    let socketPath = "";
    const run = await withRunningVm([], async (socket) => {
      socketPath = socket;
      assert.equal(Deno.lstatSync(socket).mode! & 0o777, 0o600);
      for (const args of [["suspend"], ["resume"], ["suspend", "--full"]]) {
        const r = await crosvm([...args, socket]);
        assert.deepEqual([r.code, r.stderr], [0, ""], args.join(" "));
      }
      assertOneLineError(
        await crosvm(["resume", socket]),
        /^crosvm: error: the VM refused: EINVAL$/,
      );
      assert.equal((await crosvm(["resume", "--full", socket])).code, 0);
      // A hostile client: garbage, then gone; the VM runs on.
      const fd = connectSeqpacket(socket);
      sendDatagramBlocking(fd, new Uint8Array([0, 1, 2, 0xff]));
      close(fd);
      // A balloon by default, as crosvm; this guest has no driver for it, so it reports nothing.
      assert.equal((await crosvm(["balloon", "8192", socket])).code, 0);
      const stats = await crosvm(["balloon_stats", socket]);
      assert.equal(stats.code, 0, stats.stderr);
      const reply = JSON.parse(stats.stdout).BalloonStats;
      assert.equal(reply.balloon_actual, 0);
      assert.equal(reply.stats.free_memory, null);
      assertOneLineError(
        await crosvm(["balloon", String(1 << 30), socket]),
        /^crosvm: error: the VM refused: EINVAL$/,
      );
      assert.equal((await crosvm(["stop", socket])).code, 0);
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "R");
    assert.equal(await exists(socketPath), false, "the socket is removed when the VM ends");
  },
);

kvmTest("without a balloon, balloon and balloon_stats get crosvm's EOPNOTSUPP", async () => {
  const run = await withRunningVm(["--no-balloon"], async (socket) => {
    const stats = await crosvm(["balloon_stats", socket]);
    assert.equal(stats.code, 1);
    assert.deepEqual(JSON.parse(stats.stdout), { Err: 95 });
    assertOneLineError(await crosvm(["balloon", "4096", socket]), /EOPNOTSUPP/);
    await crosvm(["stop", socket]);
  });
  assert.equal(run.code, 0);
});

kvmTest("--extended-status: a guest reset exits 32; without it, 0", async () => {
  const kernel = await buildGuest("hello");
  assert.equal((await crosvm(["run", "--extended-status", kernel])).code, 32);
  assert.equal((await crosvm(["run", kernel])).code, 0);
});

kvmTest(
  "a control socket path that cannot be used stops crosvm run before the VM starts",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "control_cli_" });
    try {
      const file = `${dir}/not-a-socket`;
      Deno.writeTextFileSync(file, "precious");
      const kernel = await buildGuest("hello");
      assertOneLineError(
        await crosvm(["run", "-s", file, kernel]),
        /^crosvm: error: control socket .*not-a-socket: exists and is not a socket$/,
      );
      assert.equal(Deno.readTextFileSync(file), "precious", "never overwritten");
      assertOneLineError(await crosvm(["run", "-s", `${dir}/no/such/dir`, kernel]), /ENOENT/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("control commands: a missing socket, a bad number, a missing argument: one line each", async () => {
  assertOneLineError(
    await crosvm(["stop", "/nonexistent/vm.sock"]),
    /^crosvm: error: cannot connect to the control socket \/nonexistent\/vm.sock: ENOENT$/,
  );
  const usage: [string[], RegExp][] = [
    [["balloon", "lots", "/tmp/x.sock"], /invalid SIZE "lots": expected a whole number/],
    [["balloon", "4096"], /missing VM_SOCKET/],
    [["disk", "resize", "0", "/tmp/x.sock"], /missing VM_SOCKET/],
    [["disk", "grow", "0", "1", "/tmp/x.sock"], /unknown disk command "grow"/],
    [["suspend", "--now", "/tmp/x.sock"], /unknown option --now/],
    [["stop", "a.sock", "b.sock"], /unexpected argument "b.sock"/],
  ];
  for (const [args, message] of usage) {
    const run = await crosvm(args);
    assertOneLineError(run, message);
    assert.equal(run.code, 35, "crosvm's InvalidArgs");
  }
  const help = await crosvm(["disk", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: crosvm disk resize DISK_INDEX NEW_SIZE VM_SOCKET/);
});
