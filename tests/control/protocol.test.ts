/** crosvm's control-socket JSON, both ways, for every request and reply we speak. */

import assert from "node:assert/strict";
import {
  type ControlRequest,
  type ControlResponse,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  ProtocolError,
} from "../../src/control/protocol.ts";
import { BALLOON_STAT_FIELDS } from "../../src/devices/virtio/balloon/stats.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);

/** Each request with the exact JSON serde_json writes for crosvm's `VmRequest`. */
const REQUESTS: [ControlRequest, string][] = [
  [{ kind: "exit" }, '"Exit"'],
  [{ kind: "suspend", full: false }, '"SuspendVcpus"'],
  [{ kind: "suspend", full: true }, '"SuspendVm"'],
  [{ kind: "resume", full: false }, '"ResumeVcpus"'],
  [{ kind: "resume", full: true }, '"ResumeVm"'],
  [{ kind: "powerbtn" }, '"Powerbtn"'],
  [
    { kind: "balloon-adjust", numBytes: 268435456, wait: false },
    '{"BalloonCommand":{"Adjust":{"num_bytes":268435456,"wait_for_success":false}}}',
  ],
  [{ kind: "balloon-stats" }, '{"BalloonCommand":"Stats"}'],
  [
    { kind: "disk-resize", index: 1, newSize: 1073741824 },
    '{"DiskCommand":{"disk_index":1,"command":{"Resize":{"new_size":1073741824}}}}',
  ],
];

Deno.test("every request encodes as crosvm's JSON and decodes back", () => {
  for (const [request, json] of REQUESTS) {
    assert.equal(text(encodeRequest(request)), json);
    assert.deepEqual(decodeRequest(bytes(json)), request);
  }
});

const STATS = Object.fromEntries(
  BALLOON_STAT_FIELDS.map((field, i) => [field, i % 3 === 0 ? null : 4096 * i]),
);

/** Each reply with the JSON crosvm's `VmResponse` serializes to. */
const RESPONSES: [ControlResponse, string][] = [
  [{ kind: "ok" }, '"Ok"'],
  [{ kind: "err", errno: 22 }, '{"Err":22}'],
  [{ kind: "err-string", message: "no such disk" }, '{"ErrString":"no such disk"}'],
  [
    { kind: "balloon-stats", stats: STATS as never, balloonActual: 8192 },
    `{"BalloonStats":{"stats":${JSON.stringify(STATS)},"balloon_actual":8192}}`,
  ],
];

Deno.test("every reply encodes as crosvm's JSON and decodes back", () => {
  for (const [response, json] of RESPONSES) {
    assert.equal(text(encodeResponse(response)), json);
    assert.deepEqual(decodeResponse(bytes(json)), response);
  }
});

Deno.test("stats fields a guest did not report may be missing or null", () => {
  const reply = decodeResponse(
    bytes('{"BalloonStats":{"stats":{"free_memory":4096},"balloon_actual":0}}'),
  );
  assert.equal(reply.kind, "balloon-stats");
  if (reply.kind !== "balloon-stats") return;
  assert.equal(reply.stats.free_memory, 4096);
  assert.equal(reply.stats.swap_in, null);
});

Deno.test("datagrams that are no request are refused, each with its reason", () => {
  const bad: [string | Uint8Array, RegExp][] = [
    [new Uint8Array([0xff, 0xfe]), /not a JSON message/],
    ["{", /not a JSON message/],
    ['"Reboot"', /unknown request "Reboot"/],
    ["42", /not a request/],
    ["null", /not a request/],
    ["[]", /not a request/],
    ['{"Exit":null,"Powerbtn":null}', /2 keys/],
    ['{"Gpe":{"gpe":1}}', /unknown request "Gpe"/],
    ['{"BalloonCommand":"WorkingSet"}', /not a balloon command/],
    ['{"BalloonCommand":{"Adjust":{"num_bytes":-1,"wait_for_success":false}}}', /num_bytes/],
    ['{"BalloonCommand":{"Adjust":{"num_bytes":1e300,"wait_for_success":false}}}', /num_bytes/],
    ['{"BalloonCommand":{"Adjust":{"num_bytes":4096,"wait_for_success":"yes"}}}', /wait_for/],
    ['{"BalloonCommand":{"Adjust":{"num_bytes":1.5,"wait_for_success":true}}}', /num_bytes/],
    ['{"DiskCommand":{"disk_index":0,"command":"Resize"}}', /not a disk command/],
    ['{"DiskCommand":{"disk_index":0,"command":{"Grow":{}}}}', /unknown disk command Grow/],
    ['{"DiskCommand":{"disk_index":"0","command":{"Resize":{"new_size":1}}}}', /disk_index/],
    ['{"DiskCommand":[]}', /DiskCommand is not an object/],
  ];
  for (const [input, reason] of bad) {
    assert.throws(
      () => decodeRequest(typeof input === "string" ? bytes(input) : input),
      (e: Error) => e instanceof ProtocolError && reason.test(e.message),
      String(input),
    );
  }
});

Deno.test("replies that are none we know are refused", () => {
  for (const input of ['"Maybe"', '{"Err":"EINVAL"}', '{"ErrString":5}', '{"BalloonStats":1}']) {
    assert.throws(() => decodeResponse(bytes(input)), ProtocolError, input);
  }
});
