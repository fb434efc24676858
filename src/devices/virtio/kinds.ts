/**
 * The device types the device Worker can run, by name: a structured-cloneable
 * {@link BackendSpec} crosses to the Worker, which builds the backend there.
 *
 * @module
 */

import type { VirtioBackend } from "./device.ts";
import { BlockBackend, type BlockSpec } from "./block/device.ts";
import type { VirtioDeviceInfo } from "./transport/pci/state.ts";
import { RngBackend } from "./rng/device.ts";

/** virtio-rng. */
export interface RngSpec {
  /** Selects virtio-rng. */
  kind: "rng";
  /** Cap on the bytes served per request (default 64 KiB). */
  maxBytesPerRequest?: number;
}

export type { BlockSpec };

/** Any backend the device Worker can build. */
export type BackendSpec = RngSpec | BlockSpec;

/**
 * Builds the backend `spec` names (in the device Worker, and on the main thread for its info).
 * @throws Error for a kind this build does not know
 */
export function createBackend(spec: BackendSpec): VirtioBackend {
  switch (spec.kind) {
    case "rng":
      return new RngBackend(spec.maxBytesPerRequest);
    case "block":
      return new BlockBackend(spec);
    default:
      // A spec from another build (it crossed a message boundary untyped).
      throw new Error(`unknown virtio backend ${JSON.stringify(spec)}`);
  }
}

/** What the transport needs to know of a backend. */
export function deviceInfo(backend: VirtioBackend): VirtioDeviceInfo {
  return {
    deviceType: backend.deviceType,
    features: backend.features,
    queueSizes: [...backend.queueSizes],
    config: backend.configBytes.slice(),
    pciClass: backend.pciClass,
  };
}
