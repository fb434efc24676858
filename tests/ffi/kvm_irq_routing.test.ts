// GSI routing and resample irqfds: the layouts against <linux/kvm.h>, then the ioctls on a real VM
// with an in-kernel irqchip, through the virtio-pci function as the vCPU Workers use it, and an
// irqfd's interrupt watched all the way to a guest (tests/guests/irq_count.S) and its EOI.

import assert from "node:assert/strict";
import { SyscallError } from "../../src/ffi/errno.ts";
import { Kvm, type VmFd } from "../../src/ffi/kvm.ts";
import { Exit } from "../../src/ffi/kvm_abi.ts";
import * as routing from "../../src/ffi/kvm_irq_routing.ts";
import { close, EFD_NONBLOCK, eventfd } from "../../src/ffi/libc.ts";
import { drainEventfd, signalEventfd } from "../../src/ffi/eventfd.ts";
import { GsiRouter, kvmRouteSubmitter, MSI_GSI_BASE } from "../../src/irq_routing.ts";
import { assertMatchesC, cValues } from "../helpers/c_values.ts";
import { withFlatGuest } from "../helpers/flat_guest.ts";
import {
  enableLapic,
  getIoapic,
  IRQCHIP_C_CLAIMS,
  Lapic,
  lapicBit,
  Redirection,
  setIoapicRedirection,
  waitForLapicIrr,
} from "../helpers/irqchip.ts";
import { kvmTest } from "../helpers/kvm.ts";
import { CFG, ModernDriver, RELOCATED_BAR, TestBed } from "../helpers/virtio_driver.ts";

Deno.test("the routing structs, ioctl number and constants match <linux/kvm.h>", async () => {
  const claims = new Map<string, number>([
    ["KVM_SET_GSI_ROUTING", routing.KVM_SET_GSI_ROUTING],
    ["KVM_IRQ_ROUTING_IRQCHIP", routing.KVM_IRQ_ROUTING_IRQCHIP],
    ["KVM_IRQ_ROUTING_MSI", routing.KVM_IRQ_ROUTING_MSI],
    ["KVM_IRQCHIP_PIC_MASTER", routing.KVM_IRQCHIP_PIC_MASTER],
    ["KVM_IRQCHIP_PIC_SLAVE", routing.KVM_IRQCHIP_PIC_SLAVE],
    ["KVM_IRQCHIP_IOAPIC", routing.KVM_IRQCHIP_IOAPIC],
    ["KVM_CAP_IRQ_ROUTING", routing.KVM_CAP_IRQ_ROUTING],
    ["KVM_CAP_IRQFD_RESAMPLE", routing.KVM_CAP_IRQFD_RESAMPLE],
    ["KVM_IRQFD_FLAG_RESAMPLE", routing.KVM_IRQFD_FLAG_RESAMPLE],
    ["KVM_IOAPIC_NUM_PINS", routing.KVM_IOAPIC_NUM_PINS],
  ]);
  for (const layout of [routing.KVM_IRQ_ROUTING, routing.KVM_IRQ_ROUTING_ENTRY]) {
    claims.set(`sizeof(struct ${layout.name})`, layout.size);
    for (const [path, offset] of Object.entries(layout.fields)) {
      claims.set(`offsetof(struct ${layout.name}, ${path})`, offset);
    }
  }
  const actual = await cValues(["linux/kvm.h"], [...claims.keys()]);
  for (const [expression, value] of claims) assert.equal(value, actual.get(expression), expression);
});

Deno.test("the irqchip ioctls and IOAPIC state offsets the tests use match <linux/kvm.h>", async () => {
  await assertMatchesC(["linux/kvm.h"], IRQCHIP_C_CLAIMS);
});

/** Declares a test on a fresh VM with an irqchip; where KVM is unusable it is ignored, saying why. */
function vmTest(name: string, fn: (vm: VmFd) => void | Promise<void>): void {
  kvmTest(name, async () => {
    const kvm = Kvm.open();
    try {
      const vm = kvm.createVm();
      try {
        vm.createIrqchip();
        await fn(vm);
      } finally {
        vm.close();
      }
    } finally {
      kvm.close();
    }
  });
}

vmTest("KVM takes the default table plus MSI routes, and irqfds on MSI GSIs", async (vm) => {
  const kvm = Kvm.open();
  try {
    assert.ok(kvm.checkExtension(routing.KVM_CAP_IRQ_ROUTING) > MSI_GSI_BASE);
  } finally {
    kvm.close();
  }
  const router = new GsiRouter(GsiRouter.createState(), kvmRouteSubmitter(vm.fd));
  const gsi = router.allocate(2);
  assert.ok(router.setMsiRoute(gsi, { addressLo: 0xfee0_0000, addressHi: 0, data: 0x30 }));
  assert.ok(router.setMsiRoute(gsi + 1, { addressLo: 0xfee0_1000, addressHi: 0, data: 0x31 }));
  const vcpu = vm.createVcpu(0);
  const fd = eventfd(0, EFD_NONBLOCK);
  try {
    enableLapic(vcpu);
    vm.irqfd(fd, gsi);
    signalEventfd(fd);
    assert.ok(
      await waitForLapicIrr(vcpu, 0x30),
      "the MSI (APIC ID 0, vector 0x30) is pending at vCPU 0's local APIC",
    );
    assert.equal(lapicBit(vcpu.getLapic(), Lapic.IRR, 0x31), false, "the other route's is not");
    vm.irqfd(fd, gsi, true);
  } finally {
    close(fd);
    vcpu.close();
  }
  assert.throws(
    () => routing.setGsiRouting(vm.fd, [{ gsi: 1, type: "irqchip", irqchip: 7, pin: 0 }]),
    (e: unknown) => e instanceof SyscallError && e.is("EINVAL"),
    "KVM checks what it is given",
  );
});

/** The IOAPIC pin of the resample test, and the vector tests/guests/irq_count.S counts. */
const INTX_GSI = 10;
const IRQ_COUNT_VECTOR = 0x3a;
/** The port irq_count.S reports its count on. */
const IRQ_COUNT_PORT = 0x10;

kvmTest(
  "a resample irqfd holds its IOAPIC GSI up until the guest EOIs, then fires the resample fd",
  () =>
    withFlatGuest("irq_count", { irqchip: true }, async ({ vm, vcpu, run }) => {
      // Pin 10: fixed delivery of IRQ_COUNT_VECTOR to APIC ID 0, level-triggered, unmasked.
      setIoapicRedirection(vm, INTX_GSI, BigInt(IRQ_COUNT_VECTOR) | Redirection.LEVEL);
      enableLapic(vcpu);
      const [irqfd, resamplefd] = [eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)];
      try {
        routing.irqfdResample(vm.fd, irqfd, INTX_GSI, resamplefd);
        const pin = 1 << INTX_GSI;
        for (let n = 1; n <= 2; n++) {
          signalEventfd(irqfd);
          assert.ok(
            await waitForLapicIrr(vcpu, IRQ_COUNT_VECTOR),
            `interrupt ${n} reaches the local APIC`,
          );
          assert.ok(lapicBit(vcpu.getLapic(), Lapic.TMR, IRQ_COUNT_VECTOR), "as a level");
          const held = getIoapic(vm);
          assert.equal(held.irr & pin, pin, "the irqfd holds the line up");
          assert.equal(held.redirection[INTX_GSI] & Redirection.REMOTE_IRR, Redirection.REMOTE_IRR);
          assert.equal(drainEventfd(resamplefd), 0n, "no resample before the EOI");

          assert.deepEqual(
            run(),
            { reason: Exit.KVM_EXIT_IO, io: { port: IRQ_COUNT_PORT, out: true, data: [n] } },
            `the guest took interrupt ${n} and EOI'd it`,
          );
          const released = getIoapic(vm);
          assert.equal(released.irr & pin, 0, "the EOI lowered the line");
          assert.equal(released.redirection[INTX_GSI] & Redirection.REMOTE_IRR, 0n);
          assert.equal(drainEventfd(resamplefd), 1n, "and fired the resample fd once");
        }
        routing.irqfdResample(vm.fd, irqfd, INTX_GSI, resamplefd, true);
      } finally {
        close(irqfd);
        close(resamplefd);
      }
    }),
);

vmTest("the virtio function registers its doorbell with KVM and moves it with the BAR", (vm) => {
  const bed = new TestBed({ vm });
  try {
    const driver = new ModernDriver(bed);
    const probe = eventfd(0, EFD_NONBLOCK);
    const taken = (address: number) => {
      try {
        vm.ioeventfd(probe, address, 2);
      } catch (e) {
        if (e instanceof SyscallError && e.is("EEXIST")) return true;
        throw e;
      }
      vm.ioeventfd(probe, address, 2, { deassign: true });
      return false;
    };
    try {
      driver.probe();
      const notify = driver.caps.get(CFG.NOTIFY)!.offset;
      assert.equal(taken(bed.barAddress + notify), false, "decoding off: not registered");
      driver.enable();
      assert.equal(taken(bed.barAddress + notify), true, "registered at the BAR");
      driver.enable(RELOCATED_BAR);
      assert.equal(taken(bed.barAddress + notify), false, "gone from the old address");
      assert.equal(taken(RELOCATED_BAR + notify), true, "registered at the new one");
      driver.enableMsix(2);
      bed.fn.state.interrupt.config();
    } finally {
      close(probe);
    }
  } finally {
    bed.close();
  }
});
