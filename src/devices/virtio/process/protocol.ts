/**
 * What crosses the control socket between the VMM and a jailed device process. The process is
 * started with its descriptors at fixed numbers (the socket first, at {@link CONTROL_SOCKET_FD});
 * the VMM's first message is a {@link DeviceProcessInit} naming each descriptor by its number in
 * the process, then the process answers `ready` once its seccomp filter is loaded and its loop
 * is about to wait, and `exited` when the loop ends.
 *
 * @module
 */

import { FIRST_CHILD_FD } from "../../../ffi/spawn.ts";
import type { LogLevel } from "../../../log.ts";
import type { RamRegion } from "../../../memory.ts";
import type { SeccompPolicy } from "../../../sandbox/policy.ts";
import type { BackendSpec } from "../kinds.ts";
import type { VirtioPciSpec } from "../transport/pci/state.ts";

/** The device process's end of its control socket: the first descriptor it is given. */
export const CONTROL_SOCKET_FD = FIRST_CHILD_FD;

/** The transport's spec as the process sees it: no VM, no router, state from a memfd. */
export type ProcessVirtioSpec = Omit<VirtioPciSpec, "state" | "router" | "vmFd">;

/** VMM → process: the device to run, every descriptor numbered as in the process. */
export interface DeviceProcessInit {
  /** The transport's spec (eventfds renumbered). */
  readonly spec: ProcessVirtioSpec;
  /** The memfd holding the device's shared state, and the state's size. */
  readonly state: { readonly fd: number; readonly size: number };
  /** The memfd holding guest RAM, and RAM's layout. */
  readonly memory: { readonly fd: number; readonly regions: readonly RamRegion[] };
  /** Which backend to build (descriptors renumbered). */
  readonly backend: BackendSpec;
  /** The seccomp filter to load before touching guest memory. */
  readonly seccomp: { readonly policy: SeccompPolicy; readonly logFailures: boolean };
  /** The RLIMIT_NOFILE the process sets on itself before anything else. */
  readonly maxFds: number;
  /** Log level. */
  readonly logLevel: LogLevel;
}

/** Process → VMM: the loop runs, or it ended (with the error that ended it, if any). */
export type DeviceProcessMessage =
  | { readonly type: "ready" }
  | { readonly type: "exited"; readonly error?: string };

/** The longest error text the VMM takes from a device process. */
export const MAX_ERROR_TEXT = 500;

/**
 * `value` as a {@link DeviceProcessMessage}, or undefined when it is not one. The process may be
 * hostile: its error text becomes one line of printable characters, at most
 * {@link MAX_ERROR_TEXT} long.
 */
export function deviceProcessMessage(value: unknown): DeviceProcessMessage | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { type, error } = value as { type?: unknown; error?: unknown };
  if (type === "ready") return { type };
  if (type !== "exited") return undefined;
  if (error === undefined) return { type };
  return typeof error === "string" ? { type, error: printableLine(error) } : undefined;
}

/** `text` on one line, control characters shown as escapes, cut to {@link MAX_ERROR_TEXT}. */
export function printableLine(text: string): string {
  const escaped = text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x1f\x7f-\x9f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return escaped.length > MAX_ERROR_TEXT ? `${escaped.slice(0, MAX_ERROR_TEXT)}…` : escaped;
}
