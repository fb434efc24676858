/**
 * crosvm's control-socket messages: one JSON document per SOCK_SEQPACKET datagram, in serde's
 * externally tagged form of crosvm's `VmRequest` and `VmResponse` (vm_control/src/lib.rs; the
 * balloon's in vm_control/src/balloon_tube.rs and common/balloon_control/src/lib.rs). A unit
 * variant is a JSON string (`"Exit"`), any other variant an object with one key naming it
 * (`{"BalloonCommand":{"Adjust":{...}}}`); `Err` carries an errno value.
 *
 * Here each message is a small tagged union; {@link encodeRequest}/{@link decodeRequest} and
 * {@link encodeResponse}/{@link decodeResponse} translate, and a decoder says in one line what
 * is wrong with bytes that are not a message it knows.
 *
 * @module
 */

import { BALLOON_STAT_FIELDS, type BalloonStats } from "../devices/virtio/balloon/stats.ts";

/** A request to a running VM. */
export type ControlRequest =
  /** `"Exit"`: end the VM now. */
  | { readonly kind: "exit" }
  /** `"SuspendVcpus"`, or `"SuspendVm"` with `full`. */
  | { readonly kind: "suspend"; readonly full: boolean }
  /** `"ResumeVcpus"`, or `"ResumeVm"` with `full`. */
  | { readonly kind: "resume"; readonly full: boolean }
  /** `"Powerbtn"`: press the ACPI power button. */
  | { readonly kind: "powerbtn" }
  /** `{"BalloonCommand":{"Adjust":{"num_bytes":N,"wait_for_success":B}}}`. */
  | { readonly kind: "balloon-adjust"; readonly numBytes: number; readonly wait: boolean }
  /** `{"BalloonCommand":"Stats"}`. */
  | { readonly kind: "balloon-stats" }
  /** `{"DiskCommand":{"disk_index":I,"command":{"Resize":{"new_size":N}}}}`. */
  | { readonly kind: "disk-resize"; readonly index: number; readonly newSize: number };

/** A reply. */
export type ControlResponse =
  /** `"Ok"`. */
  | { readonly kind: "ok" }
  /** `{"Err": errno}`. */
  | { readonly kind: "err"; readonly errno: number }
  /** `{"ErrString": "..."}`. */
  | { readonly kind: "err-string"; readonly message: string }
  /** `{"BalloonStats":{"stats":{...},"balloon_actual":N}}`. */
  | {
    readonly kind: "balloon-stats";
    readonly stats: BalloonStats;
    readonly balloonActual: number;
  };

/** A datagram that is not a message this side knows, with one line saying why. */
export class ProtocolError extends Error {
  /** @param message what is wrong */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** The unit requests, by their JSON string. */
const UNIT_REQUESTS: Readonly<Record<string, ControlRequest>> = {
  Exit: { kind: "exit" },
  SuspendVcpus: { kind: "suspend", full: false },
  SuspendVm: { kind: "suspend", full: true },
  ResumeVcpus: { kind: "resume", full: false },
  ResumeVm: { kind: "resume", full: true },
  Powerbtn: { kind: "powerbtn" },
};

/** `request` in crosvm's JSON, as the bytes of one datagram. */
export function encodeRequest(request: ControlRequest): Uint8Array {
  return encodeJson(requestJson(request));
}

function requestJson(request: ControlRequest): unknown {
  switch (request.kind) {
    case "exit":
      return "Exit";
    case "suspend":
      return request.full ? "SuspendVm" : "SuspendVcpus";
    case "resume":
      return request.full ? "ResumeVm" : "ResumeVcpus";
    case "powerbtn":
      return "Powerbtn";
    case "balloon-adjust":
      return {
        BalloonCommand: {
          Adjust: { num_bytes: request.numBytes, wait_for_success: request.wait },
        },
      };
    case "balloon-stats":
      return { BalloonCommand: "Stats" };
    case "disk-resize":
      return {
        DiskCommand: {
          disk_index: request.index,
          command: { Resize: { new_size: request.newSize } },
        },
      };
  }
}

/**
 * The request in one datagram.
 * @throws ProtocolError for bytes that are not JSON, or JSON that is no request we serve
 */
export function decodeRequest(bytes: Uint8Array): ControlRequest {
  const value = decodeJson(bytes);
  if (typeof value === "string") {
    if (Object.hasOwn(UNIT_REQUESTS, value)) return UNIT_REQUESTS[value];
    throw new ProtocolError(`unknown request ${JSON.stringify(value)}`);
  }
  const [variant, body] = singleKey(value, "a request");
  switch (variant) {
    case "BalloonCommand": {
      if (body === "Stats") return { kind: "balloon-stats" };
      const [command, args] = singleKey(body, "a balloon command");
      if (command !== "Adjust") throw new ProtocolError(`unknown balloon command ${command}`);
      const adjust = record(args, "Adjust");
      return {
        kind: "balloon-adjust",
        numBytes: unsigned(adjust.num_bytes, "num_bytes"),
        wait: boolean(adjust.wait_for_success, "wait_for_success"),
      };
    }
    case "DiskCommand": {
      const disk = record(body, "DiskCommand");
      const [command, args] = singleKey(disk.command, "a disk command");
      if (command !== "Resize") throw new ProtocolError(`unknown disk command ${command}`);
      return {
        kind: "disk-resize",
        index: unsigned(disk.disk_index, "disk_index"),
        newSize: unsigned(record(args, "Resize").new_size, "new_size"),
      };
    }
    default:
      throw new ProtocolError(`unknown request ${JSON.stringify(variant)}`);
  }
}

/** `response` in crosvm's JSON, as the bytes of one datagram. */
export function encodeResponse(response: ControlResponse): Uint8Array {
  return encodeJson(responseJson(response));
}

/** `response` as crosvm's JSON value (what `balloon_stats` prints). */
export function responseJson(response: ControlResponse): unknown {
  switch (response.kind) {
    case "ok":
      return "Ok";
    case "err":
      return { Err: response.errno };
    case "err-string":
      return { ErrString: response.message };
    case "balloon-stats":
      return { BalloonStats: { stats: response.stats, balloon_actual: response.balloonActual } };
  }
}

/**
 * The reply in one datagram.
 * @throws ProtocolError for bytes that are not a reply we know
 */
export function decodeResponse(bytes: Uint8Array): ControlResponse {
  const value = decodeJson(bytes);
  if (value === "Ok") return { kind: "ok" };
  const [variant, body] = singleKey(value, "a reply");
  switch (variant) {
    case "Err":
      return { kind: "err", errno: unsigned(body, "Err") };
    case "ErrString":
      if (typeof body !== "string") throw new ProtocolError("ErrString is not a string");
      return { kind: "err-string", message: body };
    case "BalloonStats": {
      const reply = record(body, "BalloonStats");
      const given = record(reply.stats, "stats");
      const stats = Object.fromEntries(
        BALLOON_STAT_FIELDS.map((field) => {
          const v = given[field];
          return [field, v === null || v === undefined ? null : unsigned(v, field)];
        }),
      ) as unknown as BalloonStats;
      return {
        kind: "balloon-stats",
        stats,
        balloonActual: unsigned(reply.balloon_actual, "balloon_actual"),
      };
    }
    default:
      throw new ProtocolError(`unknown reply ${JSON.stringify(variant)}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function decodeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw new ProtocolError("not a JSON message");
  }
}

/** The one key of an externally tagged variant and its value. */
function singleKey(value: unknown, what: string): [string, unknown] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError(`not ${what}`);
  }
  const keys = Object.keys(value);
  if (keys.length !== 1) throw new ProtocolError(`not ${what}: ${keys.length} keys`);
  return [keys[0], (value as Record<string, unknown>)[keys[0]]];
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError(`${what} is not an object`);
  }
  return value as Record<string, unknown>;
}

/** A u64 field that JavaScript holds exactly (crosvm's sizes and indices all fit). */
function unsigned(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(`${field} is not an unsigned integer below 2^53`);
  }
  return value;
}

function boolean(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw new ProtocolError(`${field} is not a boolean`);
  return value;
}
