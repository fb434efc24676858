import assert from "node:assert/strict";
import {
  defaultIrqchipRoutes,
  type IrqRoute,
  KVM_IRQCHIP_IOAPIC,
  KVM_IRQCHIP_PIC_MASTER,
  KVM_IRQCHIP_PIC_SLAVE,
} from "../src/ffi/kvm_irq_routing.ts";
import { GsiRouter, MSI_GSI_BASE } from "../src/irq_routing.ts";
import { askWorker } from "./helpers/worker.ts";
import type { RouterJob } from "./helpers/router_worker.ts";

const MESSAGE = { addressLo: 0xfee0_0000, addressHi: 0, data: 0x31 };

Deno.test("the default table is KVM's: IOAPIC pins 0-23, and 8259 pins for GSIs 0-15", () => {
  const routes = defaultIrqchipRoutes();
  assert.equal(routes.length, 24 + 16);
  const of = (gsi: number) => routes.filter((r) => r.gsi === gsi);
  assert.deepEqual(of(2), [
    { gsi: 2, type: "irqchip", irqchip: KVM_IRQCHIP_IOAPIC, pin: 2 },
    { gsi: 2, type: "irqchip", irqchip: KVM_IRQCHIP_PIC_MASTER, pin: 2 },
  ], "irq_comm.c routes GSI 2 to the master PIC too");
  assert.deepEqual(of(9)[1], { gsi: 9, type: "irqchip", irqchip: KVM_IRQCHIP_PIC_SLAVE, pin: 1 });
  assert.deepEqual(of(23), [{ gsi: 23, type: "irqchip", irqchip: KVM_IRQCHIP_IOAPIC, pin: 23 }]);
});

Deno.test("MSI GSIs are allocated from 24 up and submitted only when a route changes", () => {
  const submitted: (readonly IrqRoute[])[] = [];
  const router = new GsiRouter(GsiRouter.createState(), (r) => void submitted.push(r));
  assert.equal(router.allocate(2), MSI_GSI_BASE);
  assert.equal(router.allocate(3), MSI_GSI_BASE + 2);
  assert.equal(router.setMsiRoute(MSI_GSI_BASE + 3, MESSAGE), true);
  assert.equal(router.setMsiRoute(MSI_GSI_BASE + 3, { ...MESSAGE }), false, "unchanged");
  assert.equal(submitted.length, 1);
  assert.deepEqual(submitted[0].slice(40), [{ gsi: MSI_GSI_BASE + 3, type: "msi", ...MESSAGE }]);
  router.setMsiRoute(MSI_GSI_BASE + 3, null);
  assert.equal(submitted.at(-1)!.length, 40, "a removed route leaves the defaults");
  assert.throws(() => router.setMsiRoute(MSI_GSI_BASE + 5, MESSAGE), RangeError, "unallocated");
  assert.throws(() => router.allocate(1000), RangeError);
});

Deno.test("Workers rewriting routes concurrently never leave a stale table behind", async () => {
  const state = GsiRouter.createState();
  const first = new GsiRouter(state, () => {}).allocate(2);
  const kernel = new SharedArrayBuffer(4 * 16);
  const rounds = 2000;
  const url = new URL("./helpers/router_worker.ts", import.meta.url);
  await Promise.all(
    [0, 1].map((i) =>
      askWorker<string>(url, { router: state, kernel, gsi: first + i, rounds } satisfies RouterJob)
    ),
  );
  const table = new Int32Array(kernel);
  assert.equal(table[0], 2);
  assert.deepEqual([...table.subarray(1, 5)], [first, rounds, first + 1, rounds]);
});
