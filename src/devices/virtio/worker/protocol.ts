/**
 * Messages between the main thread and a virtio device Worker.
 *
 * @module
 */

import type { LogLevel } from "../../../log.ts";
import type { GuestMemoryShare } from "../../../memory.ts";
import type { BackendSpec } from "../kinds.ts";
import type { VirtioPciSpec } from "../transport/pci/state.ts";

/** Main → Worker: the device to run. */
export interface DeviceWorkerInit {
  /** The transport's spec (state, eventfds). */
  spec: VirtioPciSpec;
  /** Which backend to build. */
  backend: BackendSpec;
  /** Guest RAM. */
  memory: GuestMemoryShare;
  /** Log level. */
  logLevel: LogLevel;
}

/** Worker → main: the loop is running, or it ended (with the error that ended it, if any). */
export type DeviceWorkerMessage =
  | { type: "ready" }
  | { type: "exited"; error?: string };
