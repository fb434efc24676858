// GSI routing and resample irqfds: the layouts against <linux/kvm.h>, then the ioctls on a real VM
// with an in-kernel irqchip, through the virtio-pci function as the vCPU Workers use it.

import assert from "node:assert/strict";
import { SyscallError } from "../../src/ffi/errno.ts";
import { Kvm, type VmFd } from "../../src/ffi/kvm.ts";
import * as routing from "../../src/ffi/kvm_irq_routing.ts";
import { close, EFD_NONBLOCK, eventfd } from "../../src/ffi/libc.ts";
import { signalEventfd } from "../../src/ffi/poll.ts";
import { GsiRouter, kvmRouteSubmitter, MSI_GSI_BASE } from "../../src/irq_routing.ts";
import { cValues } from "../helpers/c_values.ts";
import { HAVE_KVM, NO_KVM } from "../helpers/run_guest.ts";
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

/** Declares a test on a fresh VM with an irqchip; ignored, saying why, without /dev/kvm. */
function kvmTest(name: string, fn: (vm: VmFd) => void): void {
  Deno.test({
    name: HAVE_KVM ? name : `${name} [ignored: ${NO_KVM}]`,
    ignore: !HAVE_KVM,
    fn: () => {
      const kvm = Kvm.open();
      try {
        const vm = kvm.createVm();
        try {
          vm.createIrqchip();
          fn(vm);
        } finally {
          vm.close();
        }
      } finally {
        kvm.close();
      }
    },
  });
}

kvmTest("KVM takes the default table plus MSI routes, and irqfds on MSI GSIs", (vm) => {
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
  const fd = eventfd(0, EFD_NONBLOCK);
  try {
    vm.irqfd(fd, gsi);
    signalEventfd(fd);
    vm.irqfd(fd, gsi, true);
  } finally {
    close(fd);
  }
  assert.throws(
    () => routing.setGsiRouting(vm.fd, [{ gsi: 1, type: "irqchip", irqchip: 7, pin: 0 }]),
    (e: unknown) => e instanceof SyscallError && e.is("EINVAL"),
    "KVM checks what it is given",
  );
});

kvmTest("a resample irqfd binds to an IOAPIC GSI", (vm) => {
  const fds = [eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)];
  try {
    routing.irqfdResample(vm.fd, fds[0], 10, fds[1]);
    signalEventfd(fds[0]);
    routing.irqfdResample(vm.fd, fds[0], 10, fds[1], true);
  } finally {
    fds.forEach(close);
  }
});

kvmTest("the virtio function registers its doorbell with KVM and moves it with the BAR", (vm) => {
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
