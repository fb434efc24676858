// The virtio-pci transport driven as Linux's virtio_pci_modern driver drives it, through a real
// MMIO bus (ECAM + BAR window) and PCI root, with a real device Worker where queues run.

import assert from "node:assert/strict";
import { PCI_MMIO_32_BASE } from "../../../../../src/arch/x86_64/layout.ts";
import { drainEventfd, signalEventfd } from "../../../../../src/ffi/eventfd.ts";
import { MSI_GSI_BASE } from "../../../../../src/irq_routing.ts";
import { VirtioDeviceThread } from "../../../../../src/devices/virtio/worker/thread.ts";
import { CommonCfg } from "../../../../../src/devices/virtio/transport/pci/layout.ts";
import {
  CFG,
  ModernDriver,
  NO_VECTOR,
  PCI,
  RELOCATED_BAR,
  RING,
  S,
  TestBed,
  waitSignalled,
} from "../../../../helpers/virtio_driver.ts";

const VERSION_1 = 1n << 32n;
const INDIRECT_DESC = 1n << 28n;
const EVENT_IDX = 1n << 29n;
const RNG_BAR_SIZE = 0x8000;
const RNG_VECTORS = 2; // one queue + configuration

/** Runs `fn` with a fresh bed and driver, closing the bed's eventfds afterwards. */
async function withBed(fn: (bed: TestBed, driver: ModernDriver) => void | Promise<void>) {
  const bed = new TestBed();
  try {
    await fn(bed, new ModernDriver(bed));
  } finally {
    bed.close();
  }
}

/** Starts the device's Worker and stops it after `fn`, asserting it ended cleanly. */
async function withWorker(bed: TestBed, fn: () => Promise<void>): Promise<void> {
  const thread = await VirtioDeviceThread.start({
    spec: bed.device.spec,
    backend: bed.device.backend,
    memory: bed.memory.shared,
    logLevel: "error",
  });
  try {
    await fn();
  } finally {
    assert.equal(await thread.stop(), undefined, "the device Worker failed");
  }
}

/** Everything up to DRIVER_OK with MSI-X: queue 0 of `size` on vector 1, config on vector 0. */
async function bringUp(driver: ModernDriver, size = 16): Promise<void> {
  driver.probe();
  driver.enable();
  await driver.initialise(VERSION_1 | EVENT_IDX);
  driver.enableMsix(RNG_VECTORS);
  assert.equal(driver.setConfigVector(0), 0);
  driver.setupQueue0(size, 1);
  driver.addStatus(S.DRIVER_OK);
}

Deno.test("00:01.0 enumerates as a modern virtio-rng with every capability Linux looks for", () =>
  withBed((_bed, driver) => {
    assert.equal(driver.cfgRead(PCI.DEVICE_ID, 2), 0x1044, "1040h + device ID 4");
    assert.equal(driver.cfgRead(PCI.REVISION_ID, 1), 1, "§4.1.2.1: revision 1");
    assert.equal(driver.cfgRead(PCI.REVISION_ID, 4) >>> 8, 0xff_0000, "class FFh");
    assert.equal(driver.cfgRead(PCI.SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
    assert.ok(driver.cfgRead(PCI.SUBSYSTEM_ID, 2) >= 0x40, "§4.1.2.1: subsystem ID ≥ 40h");
    assert.equal(driver.cfgRead(PCI.INTERRUPT_PIN, 1), 1, "INTA#");
    assert.equal(driver.cfgRead(PCI.INTERRUPT_LINE, 1), 10);
    driver.probe();
    const common = driver.caps.get(CFG.COMMON)!;
    const notify = driver.caps.get(CFG.NOTIFY)!;
    const isr = driver.caps.get(CFG.ISR)!;
    assert.ok(common.length >= 56, "at least sizeof(struct virtio_pci_common_cfg)");
    assert.equal(notify.notifyOffMultiplier, 4);
    assert.equal(notify.length, 4, "one doorbell for the one queue");
    assert.equal(isr.length, 1);
    assert.ok(driver.caps.has(CFG.PCI), "§4.1.4.9: a PCI configuration access capability");
    assert.ok(!driver.caps.has(CFG.DEVICE), "virtio-rng has no device configuration");
    for (const cap of [common, notify, isr]) {
      assert.equal(cap.bar, 0);
      assert.ok(cap.offset + cap.length <= RNG_BAR_SIZE, "inside the BAR");
    }
    assert.ok(driver.msixCap > 0, "an MSI-X capability");
    const flags = driver.cfgRead(driver.msixCap + PCI.MSIX_FLAGS, 2);
    assert.equal(flags & 0x7ff, RNG_VECTORS - 1, "table size N-1");
    assert.equal(flags & (PCI.MSIX_FLAGS_ENABLE | PCI.MSIX_FLAGS_MASKALL), 0, "off at reset");
  }));

Deno.test("BAR sizing reads back the size mask; the BAR window follows the guest's BAR", () =>
  withBed((bed, driver) => {
    assert.equal(driver.cfgRead(PCI.BAR0, 4), bed.barAddress, "placed by the VMM, 32-bit memory");
    assert.equal(driver.sizeBar0(), ~(RNG_BAR_SIZE - 1) >>> 0, "write ones, read the size mask");
    assert.equal(driver.cfgRead(PCI.BAR0, 4), bed.barAddress, "restored");
    driver.probe();
    driver.bar = bed.barAddress;
    const status = driver.region(CFG.COMMON, CommonCfg.NUM_QUEUES);
    assert.equal(bed.read(status, 2), 0xffff, "memory decoding off: nothing answers");
    assert.deepEqual(bed.doorbellLog, []);

    driver.enable();
    assert.equal(driver.common(CommonCfg.NUM_QUEUES, 2), 1);
    const fd = bed.device.spec.queueFds[0];
    const notifyAt = (base: number) => base + driver.caps.get(CFG.NOTIFY)!.offset;
    assert.deepEqual(bed.doorbellLog, [`assign ${fd}@0x${notifyAt(bed.barAddress).toString(16)}`]);

    driver.enable(RELOCATED_BAR);
    assert.equal(bed.read(status, 2), 0xffff, "the old address is free");
    assert.equal(driver.common(CommonCfg.NUM_QUEUES, 2), 1, "the new one answers");
    assert.deepEqual(bed.doorbellLog.slice(1), [
      `deassign ${fd}@0x${notifyAt(bed.barAddress).toString(16)}`,
      `assign ${fd}@0x${notifyAt(RELOCATED_BAR).toString(16)}`,
    ], "the doorbell moved with the BAR");
    driver.cfgWrite(PCI.COMMAND, driver.cfgRead(PCI.COMMAND, 2) & ~PCI.COMMAND_MEMORY, 2);
    assert.equal(
      bed.doorbellLog.at(-1),
      `deassign ${fd}@0x${notifyAt(RELOCATED_BAR).toString(16)}`,
    );
    assert.ok(RELOCATED_BAR >= PCI_MMIO_32_BASE);
  }));

Deno.test("features: the transport bits are offered, unoffered bits and no VERSION_1 are refused", () =>
  withBed(async (_bed, driver) => {
    driver.probe();
    driver.enable();
    const offered = driver.deviceFeatures();
    assert.equal(
      offered,
      VERSION_1 | INDIRECT_DESC | EVENT_IDX,
      "virtio-rng adds no bits of its own",
    );

    await driver.reset();
    driver.addStatus(S.ACKNOWLEDGE | S.DRIVER);
    assert.equal(driver.negotiate(VERSION_1 | (1n << 5n)), false, "bit 5 was not offered");
    await driver.reset();
    driver.addStatus(S.ACKNOWLEDGE | S.DRIVER);
    assert.equal(driver.negotiate(INDIRECT_DESC), false, "§6.1: VERSION_1 is required");
    await driver.reset();
    driver.addStatus(S.ACKNOWLEDGE | S.DRIVER);
    assert.equal(driver.negotiate(VERSION_1 | INDIRECT_DESC), true);

    driver.setCommon(CommonCfg.DRIVER_FEATURE_SELECT, 0, 4);
    driver.setCommon(CommonCfg.DRIVER_FEATURE, 0, 4);
    assert.equal(driver.common(CommonCfg.DRIVER_FEATURE, 4), Number(INDIRECT_DESC), "frozen");
    driver.setCommon(CommonCfg.DEVICE_FEATURE_SELECT, 2, 4);
    assert.equal(driver.common(CommonCfg.DEVICE_FEATURE, 4), 0, "no bits past 63");
  }));

Deno.test("DRIVER_OK without FEATURES_OK sets DEVICE_NEEDS_RESET", () =>
  withBed(async (_bed, driver) => {
    driver.probe();
    driver.enable();
    await driver.reset();
    driver.addStatus(S.ACKNOWLEDGE | S.DRIVER);
    driver.addStatus(S.DRIVER_OK);
    assert.ok(driver.status & S.NEEDS_RESET);
    await driver.reset();
    assert.equal(driver.status, 0, "a reset clears it");
  }));

Deno.test("queue registers: defaults, absent queues, whole-field writes, reset to NO_VECTOR", () =>
  withBed(async (_bed, driver) => {
    driver.probe();
    driver.enable();
    await driver.initialise(VERSION_1);
    driver.setCommon(CommonCfg.QUEUE_SELECT, 0, 2);
    assert.equal(driver.common(CommonCfg.QUEUE_SIZE, 2), 256, "the maximum at reset");
    assert.equal(driver.common(CommonCfg.QUEUE_MSIX_VECTOR, 2), NO_VECTOR);
    assert.equal(driver.common(CommonCfg.CONFIG_MSIX_VECTOR, 2), NO_VECTOR);
    assert.equal(driver.common(CommonCfg.QUEUE_NOTIFY_OFF, 2), 0);

    driver.setCommon(CommonCfg.QUEUE_SELECT, 1, 2);
    assert.equal(driver.common(CommonCfg.QUEUE_SIZE, 2), 0, "§4.1.4.3.1: absent queue reads 0");
    driver.setCommon(CommonCfg.QUEUE_SIZE, 8, 2);
    assert.equal(driver.common(CommonCfg.QUEUE_SIZE, 2), 0);

    driver.setCommon(CommonCfg.QUEUE_SELECT, 0, 2);
    driver.setCommon(CommonCfg.QUEUE_SIZE + 1, 0x12, 1);
    assert.equal(driver.common(CommonCfg.QUEUE_SIZE, 2), 256, "half a field is dropped");
    driver.setCommon(CommonCfg.QUEUE_MSIX_VECTOR, 7, 2);
    assert.equal(driver.common(CommonCfg.QUEUE_MSIX_VECTOR, 2), NO_VECTOR, "no vector 7");
    driver.setCommon(CommonCfg.QUEUE_MSIX_VECTOR, 1, 2);
    driver.setCommon(CommonCfg.CONFIG_MSIX_VECTOR, 0, 2);
    driver.setCommon(CommonCfg.QUEUE_SIZE, 64, 2);
    driver.setCommon(CommonCfg.QUEUE_ENABLE, 1, 2);
    driver.setCommon(CommonCfg.QUEUE_SIZE, 32, 2);
    assert.equal(driver.common(CommonCfg.QUEUE_SIZE, 2), 64, "frozen while enabled");

    await driver.reset();
    assert.equal(driver.common(CommonCfg.QUEUE_ENABLE, 2), 0);
    assert.equal(driver.common(CommonCfg.QUEUE_SIZE, 2), 256);
    assert.equal(driver.common(CommonCfg.QUEUE_MSIX_VECTOR, 2), NO_VECTOR);
    assert.equal(driver.common(CommonCfg.CONFIG_MSIX_VECTOR, 2), NO_VECTOR);
  }));

Deno.test("MSI-X: unmasked entries get MSI routes, the whole table is resubmitted, masking pends", () =>
  withBed((bed, driver) => {
    driver.probe();
    driver.enable();
    driver.enableMsix(RNG_VECTORS);
    const last = bed.tables.at(-1)!;
    const msi = last.filter((r) => r.type === "msi");
    assert.deepEqual(msi, [
      { gsi: MSI_GSI_BASE, type: "msi", addressLo: 0xfee0_0000, addressHi: 0, data: 0x40 },
      { gsi: MSI_GSI_BASE + 1, type: "msi", addressLo: 0xfee0_0000, addressHi: 0, data: 0x41 },
    ]);
    assert.equal(last.length - msi.length, 24 + 16, "KVM's default irqchip routes come along");
    const submissions = bed.tables.length;
    driver.cfgWrite(driver.msixCap + PCI.MSIX_FLAGS, PCI.MSIX_FLAGS_ENABLE, 2);
    assert.equal(bed.tables.length, submissions, "an unchanged table is not resubmitted");

    const { interrupt, msix } = bed.fn.state;
    const vectorFd = bed.device.spec.vectorFds[1];
    bed.fn.state.regs.setQueueVector(0, 1);
    driver.maskVector(1, true);
    interrupt.queue(0);
    assert.equal(drainEventfd(vectorFd), 0n, "masked: not sent");
    assert.ok(msix.pending(1), "§6.8.2.9: pending bit set");
    const pbaOffset = driver.cfgRead(driver.msixCap + PCI.MSIX_PBA, 4) & ~7;
    assert.equal(bed.read(driver.bar + pbaOffset, 8), 2, "the PBA shows vector 1");
    driver.maskVector(1, false);
    assert.equal(drainEventfd(vectorFd), 1n, "unmasking delivers it");
    assert.ok(!msix.pending(1));
    interrupt.queue(0);
    assert.equal(drainEventfd(vectorFd), 1n, "unmasked: sent at once");
    assert.equal(bed.fn.state.regs.isr, 0, "§4.1.4.5.1: no ISR queue bit with MSI-X");
  }));

Deno.test("MSI-X: a vector's irqfd is bound to its GSI only while the vector is deliverable", () =>
  withBed((bed, driver) => {
    driver.probe();
    driver.enable();
    const [fd0, fd1] = bed.device.spec.vectorFds;
    const [gsi0, gsi1] = [MSI_GSI_BASE, MSI_GSI_BASE + 1];
    assert.deepEqual(bed.irqfdLog, [], "nothing bound before MSI-X is on");
    driver.enableMsix(RNG_VECTORS);
    assert.deepEqual(bed.irqfdLog, [`bind ${fd0}@${gsi0}`, `bind ${fd1}@${gsi1}`]);
    bed.irqfdLog.length = 0;
    // What the kernel signals into a masked vector's irqfd waits in its count for the binding.
    driver.maskVector(1, true);
    driver.maskVector(1, true);
    assert.deepEqual(bed.irqfdLog, [`unbind ${fd1}@${gsi1}`], "once");
    driver.maskVector(1, false);
    assert.deepEqual(bed.irqfdLog, [`unbind ${fd1}@${gsi1}`, `bind ${fd1}@${gsi1}`]);
    bed.irqfdLog.length = 0;
    const flags = driver.cfgRead(driver.msixCap + PCI.MSIX_FLAGS, 2);
    driver.cfgWrite(driver.msixCap + PCI.MSIX_FLAGS, flags | PCI.MSIX_FLAGS_MASKALL, 2);
    assert.deepEqual(bed.irqfdLog, [`unbind ${fd0}@${gsi0}`, `unbind ${fd1}@${gsi1}`]);
    bed.irqfdLog.length = 0;
    driver.cfgWrite(driver.msixCap + PCI.MSIX_FLAGS, flags & ~PCI.MSIX_FLAGS_ENABLE, 2);
    assert.deepEqual(bed.irqfdLog, [], "already unbound");
    assert.equal(bed.fn.state.msix.directIrqfd(1), undefined, "MSI-X off: no direct irqfd");
    driver.cfgWrite(driver.msixCap + PCI.MSIX_FLAGS, flags, 2);
    assert.deepEqual(bed.irqfdLog, [`bind ${fd0}@${gsi0}`, `bind ${fd1}@${gsi1}`]);
    assert.equal(bed.fn.state.msix.directIrqfd(1), fd1);
    assert.equal(bed.fn.state.msix.directIrqfd(RNG_VECTORS), undefined, "no such vector");
  }));

Deno.test("INTx: with MSI-X off, the ISR and status bit follow the level, reading ISR clears it", () =>
  withBed((bed, driver) => {
    driver.probe();
    driver.enable();
    const { interrupt } = bed.fn.state;
    const intx = bed.device.spec.intx!;
    interrupt.queue(0);
    assert.equal(drainEventfd(intx.irqfd), 1n, "INTx asserted");
    assert.ok(driver.cfgRead(PCI.STATUS, 2) & PCI.STATUS_INTERRUPT, "status shows it");
    interrupt.resample();
    assert.equal(drainEventfd(intx.irqfd), 1n, "EOI with the ISR unread: asserted again");
    assert.equal(bed.read(driver.region(CFG.ISR), 1), 1, "queue interrupt bit");
    assert.equal(bed.read(driver.region(CFG.ISR), 1), 0, "read clears");
    assert.equal(driver.cfgRead(PCI.STATUS, 2) & PCI.STATUS_INTERRUPT, 0);
    interrupt.resample();
    assert.equal(drainEventfd(intx.irqfd), 0n, "EOI after the read: stays low");
    interrupt.config();
    assert.equal(bed.read(driver.region(CFG.ISR), 1), 2, "configuration change bit");
    driver.cfgWrite(PCI.COMMAND, driver.cfgRead(PCI.COMMAND, 2) | PCI.COMMAND_INTX_DISABLE, 2);
    interrupt.queue(0);
    assert.equal(drainEventfd(intx.irqfd), 1n, "only the earlier config interrupt's assertion");
    assert.equal(drainEventfd(intx.irqfd), 0n, "INTx disabled: nothing more");
  }));

Deno.test("the PCI configuration access capability reaches the BAR through config space", () =>
  withBed((_bed, driver) => {
    driver.probe();
    driver.enable();
    const cap = driver.caps.get(CFG.PCI)!.at;
    const common = driver.caps.get(CFG.COMMON)!;
    driver.cfgWrite(cap + 4, 0, 1); // bar 0
    driver.cfgWrite(cap + 8, common.offset + CommonCfg.NUM_QUEUES, 4);
    driver.cfgWrite(cap + 12, 2, 4);
    assert.equal(driver.cfgRead(cap + 16, 2), 1, "num_queues through pci_cfg_data");
    driver.cfgWrite(cap + 8, common.offset + CommonCfg.QUEUE_SELECT, 4);
    driver.cfgWrite(cap + 16, 5, 2);
    assert.equal(driver.common(CommonCfg.QUEUE_SELECT, 2), 5, "and writes too");
    driver.cfgWrite(cap + 12, 3, 4);
    assert.equal(driver.cfgRead(cap + 16, 4), 0, "a 3-byte window is not supported");
  }));

Deno.test("a device Worker serves 64 random bytes, signals the vector, and survives unload/reload", () =>
  withBed((bed, driver) =>
    withWorker(bed, async () => {
      await bringUp(driver);
      const vectorFd = bed.device.spec.vectorFds[1];
      const { head, buffers } = driver.publishWritable([64]);
      driver.notify();
      await driver.waitUsed(1);
      assert.deepEqual(driver.used(0), { id: head, len: 64 });
      const bytes = bed.memory.read(buffers[0], 64);
      assert.ok(bytes.some((b) => b !== 0), "random bytes arrived");
      assert.equal(await waitSignalled(vectorFd), 1n, "the queue's vector fired");

      // The test writes the ioeventfd itself, as KVM would on the doorbell write.
      driver.publishWritable([16, 16]);
      signalEventfd(bed.device.spec.queueFds[0]);
      await driver.waitUsed(2);
      assert.equal(driver.used(1).len, 32, "both buffers of the chain filled");

      // Driver unload: reset waits for the Worker to drop its queues (§4.1.4.3.2).
      await driver.reset();
      assert.equal(bed.fn.state.regs.workerActive, false);
      assert.equal(driver.common(CommonCfg.CONFIG_MSIX_VECTOR, 2), NO_VECTOR);
      // Reload: the same steps again, on fresh rings.
      drainEventfd(vectorFd);
      await bringUp(driver, 8);
      driver.publishWritable([100]);
      driver.notify();
      await driver.waitUsed(1);
      assert.equal(driver.used(0).len, 100);
      assert.equal(await waitSignalled(vectorFd), 1n);
    })
  ));

Deno.test("a malformed chain completes with length 0 and sets DEVICE_NEEDS_RESET", () =>
  withBed((bed, driver) =>
    withWorker(bed, async () => {
      await bringUp(driver);
      const configFd = bed.device.spec.vectorFds[0];
      // A buffer outside guest RAM.
      const mem = bed.memory;
      const { head } = driver.publishWritable([64]);
      mem.writeU64(RING.desc + head * 16, 0x4_0000_0000n);
      driver.notify();
      await driver.waitUsed(1);
      assert.deepEqual(driver.used(0), { id: head, len: 0 });
      const deadline = Date.now() + 5000;
      while (!(driver.status & S.NEEDS_RESET)) {
        assert.ok(Date.now() < deadline, "DEVICE_NEEDS_RESET never set");
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      assert.equal(drainEventfd(configFd), 1n, "§2.1.2: a configuration change notification");
      await driver.reset();
      assert.equal(driver.status, 0);
    })
  ));
