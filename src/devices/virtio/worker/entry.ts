/**
 * The Worker that runs one virtio device's queues. Its first message is a {@link DeviceWorkerInit};
 * it answers `ready` once its loop is about to wait, then `exited` when the VMM stopped it (or it
 * failed). Everything else goes through shared memory and eventfds.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { setLogLevel } from "../../../log.ts";
import { GuestMemory } from "../../../memory.ts";
import { createBackend } from "../kinds.ts";
import { DeviceLoop } from "./loop.ts";
import type { DeviceWorkerInit, DeviceWorkerMessage } from "./protocol.ts";
import { VirtioPciState } from "../transport/pci/state.ts";

self.onmessage = (event: MessageEvent<DeviceWorkerInit>) => {
  self.onmessage = null;
  const init = event.data;
  setLogLevel(init.logLevel);
  let error: string | undefined;
  try {
    const loop = new DeviceLoop(
      new VirtioPciState(init.spec),
      new GuestMemory(init.memory),
      createBackend(init.backend),
    );
    self.postMessage({ type: "ready" } satisfies DeviceWorkerMessage);
    loop.run();
  } catch (e) {
    error = `${init.spec.name}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`;
  }
  self.postMessage({ type: "exited", error } satisfies DeviceWorkerMessage);
};
