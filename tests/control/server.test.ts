/**
 * The control socket server with a recording handler in place of a VM: its file, its clients
 * (ours, raw datagrams, and a Python client speaking crosvm's JSON), and everything a hostile
 * or careless client can do to it.
 */

import assert from "node:assert/strict";
import { connect } from "../../src/control/client.ts";
import type { ControlRequest, ControlResponse } from "../../src/control/protocol.ts";
import {
  ControlServer,
  ControlSocketError,
  MAX_CLIENTS,
  MAX_REQUEST_BYTES,
} from "../../src/control/server.ts";
import { close } from "../../src/ffi/libc.ts";
import { PollSet } from "../../src/ffi/poll.ts";
import {
  connectSeqpacket,
  listenSeqpacket,
  receiveDatagram,
  sendDatagramBlocking,
} from "../../src/ffi/unix_socket.ts";
import { settledFdCount } from "../helpers/fds.ts";

/** A server in a fresh directory whose handler records each request and answers "Ok". */
async function withServer(
  fn: (server: ControlServer, seen: ControlRequest[], dir: string) => Promise<void>,
  handler?: (request: ControlRequest) => Promise<ControlResponse>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "control_" });
  const seen: ControlRequest[] = [];
  const server = ControlServer.listen(`${dir}/vm.sock`);
  server.serve(async (request) => {
    seen.push(request);
    return handler === undefined ? { kind: "ok" } : await handler(request);
  });
  try {
    await fn(server, seen, dir);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Sends raw `bytes` on a new connection and returns the reply's text (null: closed). */
async function exchangeRaw(path: string, bytes: Uint8Array): Promise<string | null> {
  const fd = connectSeqpacket(path);
  try {
    sendDatagramBlocking(fd, bytes);
    return await replyText(fd);
  } finally {
    close(fd);
  }
}

async function replyText(fd: number): Promise<string | null> {
  const buf = new Uint8Array(4096);
  for (;;) {
    await new PollSet([fd]).waitAsync();
    const d = receiveDatagram(fd, buf);
    if (d.kind === "datagram") return new TextDecoder().decode(d.bytes);
    if (d.kind === "closed") return null;
  }
}

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("the socket is mode 0600 at PATH, or PATH/crosvm-<pid>.sock for a directory, and goes at close", async () => {
  const dir = await Deno.makeTempDir({ prefix: "control_" });
  try {
    for (
      const [given, expected] of [[`${dir}/a.sock`, `${dir}/a.sock`], [
        dir,
        `${dir}/crosvm-${Deno.pid}.sock`,
      ]]
    ) {
      const server = ControlServer.listen(given);
      assert.equal(server.path, expected);
      const info = Deno.lstatSync(expected);
      assert.ok(info.isSocket);
      assert.equal(info.mode! & 0o777, 0o600);
      await server.close();
      assert.throws(() => Deno.lstatSync(expected), Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file that is not a socket, or a socket a VM listens on, is refused and kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "control_" });
  try {
    const file = `${dir}/file`;
    Deno.writeTextFileSync(file, "keep me");
    assert.throws(
      () => ControlServer.listen(file),
      (e: Error) =>
        e instanceof ControlSocketError &&
        e.message === `control socket ${file}: exists and is not a socket`,
    );
    assert.equal(Deno.readTextFileSync(file), "keep me");
    const live = `${dir}/live.sock`;
    const fd = listenSeqpacket(live, 0o600);
    try {
      assert.throws(() => ControlServer.listen(live), /a running VM listens there/);
      assert.ok(Deno.lstatSync(live).isSocket);
    } finally {
      close(fd);
    }
    // Now nobody listens: a stale socket, replaced.
    const server = ControlServer.listen(live);
    await server.close();
    assert.throws(() => ControlServer.listen(`${dir}/missing/vm.sock`), /ENOENT/);
    assert.throws(() => ControlServer.listen(`${dir}/${"x".repeat(120)}`), /at most 107/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad datagrams get an ErrString each and the server goes on serving", async () => {
  await withServer(async (server, seen) => {
    const cases: [Uint8Array, RegExp][] = [
      [bytes("{not json"), /bad request: not a JSON message/],
      [bytes('"Reboot"'), /bad request: unknown request "Reboot"/],
      [new Uint8Array(MAX_REQUEST_BYTES + 1).fill(0x20), /request of 65537 bytes: at most 65536/],
    ];
    for (const [input, reply] of cases) {
      const text = await exchangeRaw(server.path, input);
      assert.ok(text !== null);
      assert.match(JSON.parse(text).ErrString, reply);
    }
    assert.equal(await exchangeRaw(server.path, bytes('"Exit"')), '"Ok"');
    assert.deepEqual(seen, [{ kind: "exit" }]);
  });
});

Deno.test("many clients at once, several requests each, each answered in order", async () => {
  await withServer(async (server, seen) => {
    const clients = Array.from({ length: 8 }, () => connect(server.path));
    try {
      await Promise.all(clients.map(async (client, i) => {
        for (let n = 0; n < 5; n++) await client.resizeDisk(i, n);
      }));
    } finally {
      for (const client of clients) client.close();
    }
    assert.equal(seen.length, 40);
    for (let i = 0; i < 8; i++) {
      const mine = seen.filter((r) => r.kind === "disk-resize" && r.index === i);
      assert.deepEqual(mine.map((r) => r.kind === "disk-resize" && r.newSize), [0, 1, 2, 3, 4]);
    }
  });
});

Deno.test("a client that leaves mid-request harms nobody; refusals reach the client as errors", async () => {
  const slow = Promise.withResolvers<void>();
  await withServer(async (server) => {
    const leaving = connectSeqpacket(server.path);
    sendDatagramBlocking(leaving, bytes('"SuspendVm"'));
    close(leaving);
    using client = connect(server.path);
    await assert.rejects(client.stop(), /the VM refused: EINVAL/);
    await assert.rejects(client.powerButton(), /the VM refused: no power button here/);
    slow.resolve();
    await assert.rejects(client.resume(), /the VM refused: handler failed/);
  }, async (request) => {
    if (request.kind === "suspend") await slow.promise;
    if (request.kind === "exit") return { kind: "err", errno: 22 };
    if (request.kind === "powerbtn") return { kind: "err-string", message: "no power button here" };
    throw new Error("handler failed");
  });
});

Deno.test(`a client beyond ${MAX_CLIENTS} is turned away; the others keep their connections`, async () => {
  await withServer(async (server) => {
    // One at a time: a connect blocks while the listen backlog is full, and this process is
    // also the server that would accept it.
    const clients = [];
    try {
      for (let i = 0; i < MAX_CLIENTS; i++) {
        clients.push(connect(server.path));
        await clients[i].suspend();
      }
      const extra = connectSeqpacket(server.path);
      try {
        assert.equal(await replyText(extra), null, "closed without a word");
      } finally {
        close(extra);
      }
      await clients[0].resume();
    } finally {
      for (const c of clients) c.close();
    }
    // Their places free up again.
    using late = connect(server.path);
    await late.resume();
  });
});

Deno.test("a Python client speaking crosvm's JSON over SOCK_SEQPACKET is served", async () => {
  await withServer(async (server, seen) => {
    const script = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
for request in [b'"SuspendVcpus"', b'{"BalloonCommand":{"Adjust":{"num_bytes":4096,"wait_for_success":true}}}']:
    s.send(request)
    print(s.recv(4096).decode())
`;
    const { code, stdout } = await new Deno.Command("python3", {
      args: ["-c", script, server.path],
      stdout: "piped",
    }).output();
    assert.equal(code, 0);
    assert.equal(new TextDecoder().decode(stdout), '"Ok"\n"Ok"\n');
    assert.deepEqual(seen, [
      { kind: "suspend", full: false },
      { kind: "balloon-adjust", numBytes: 4096, wait: true },
    ]);
  });
});

Deno.test("no descriptor outlives a server and its clients", async () => {
  await withServer(async () => {}); // warm up
  const before = await settledFdCount();
  await withServer(async (server) => {
    using client = connect(server.path);
    await client.suspend();
  });
  assert.equal(await settledFdCount(), before);
});
