/// <reference lib="deno.worker" />
// Rewrites one MSI route many times through a GsiRouter whose "KVM" is a shared table that each
// submission replaces whole, as KVM_SET_GSI_ROUTING does.

import { GsiRouter } from "../../src/irq_routing.ts";

/** What the main thread asks of this Worker. */
export interface RouterJob {
  router: SharedArrayBuffer;
  /** The "kernel" table: cell 0 the entry count, then `[gsi, data]` per MSI route. */
  kernel: SharedArrayBuffer;
  gsi: number;
  rounds: number;
}

self.onmessage = (event: MessageEvent<RouterJob>) => {
  const { router, kernel, gsi, rounds } = event.data;
  const table = new Int32Array(kernel);
  const routes = new GsiRouter(router, (submitted) => {
    const msi = submitted.filter((r) => r.type === "msi");
    msi.forEach((r, i) => {
      Atomics.store(table, 1 + 2 * i, r.gsi);
      Atomics.store(table, 2 + 2 * i, r.type === "msi" ? r.data : 0);
    });
    Atomics.store(table, 0, msi.length);
  });
  for (let data = 1; data <= rounds; data++) {
    routes.setMsiRoute(gsi, { addressLo: 0xfee0_0000, addressHi: 0, data });
  }
  self.postMessage("done");
};
