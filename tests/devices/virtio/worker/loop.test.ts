// The device Worker's loop, run in the test's own thread one step at a time, against the same
// buses and driver as a guest would use.

import assert from "node:assert/strict";
import { drainEventfd, signalEventfd } from "../../../../src/ffi/eventfd.ts";
import { close, EFD_NONBLOCK, eventfd } from "../../../../src/ffi/libc.ts";
import type { KernelQueueSetup, VirtioBackend } from "../../../../src/devices/virtio/device.ts";
import { VirtioDeviceType } from "../../../../src/devices/virtio/spec.ts";
import { type BackendSpec, createBackend } from "../../../../src/devices/virtio/kinds.ts";
import { VirtioDeviceThread } from "../../../../src/devices/virtio/worker/thread.ts";
import { DeviceLoop } from "../../../../src/devices/virtio/worker/loop.ts";
import { capacityUpdate } from "../../../../src/devices/virtio/block/config.ts";
import { CommonCfg } from "../../../../src/devices/virtio/transport/pci/layout.ts";
import { VirtioPciState } from "../../../../src/devices/virtio/transport/pci/state.ts";
import { CFG, ModernDriver, NO_VECTOR, RING, S, TestBed } from "../../../helpers/virtio_driver.ts";

const VERSION_1 = 1n << 32n;
/** How long a step may wait for an event that must already be there. */
const STEP_MS = 1000;

async function withLoop(fn: (bed: TestBed, driver: ModernDriver, loop: DeviceLoop) => unknown) {
  const bed = new TestBed();
  try {
    const spec = bed.device.spec;
    const loop = new DeviceLoop(
      new VirtioPciState(spec),
      bed.memory,
      createBackend({ kind: "rng" }),
    );
    const driver = new ModernDriver(bed);
    driver.probe();
    driver.enable();
    await driver.initialise(VERSION_1);
    await fn(bed, driver, loop);
  } finally {
    bed.close();
  }
}

Deno.test("without MSI-X a completion sets the ISR queue bit and asserts INTx", () =>
  withLoop((bed, driver, loop) => {
    driver.setupQueue0(8, NO_VECTOR);
    driver.addStatus(S.DRIVER_OK);
    assert.ok(loop.step(STEP_MS) && loop.active, "DRIVER_OK started the queues");
    driver.publishWritable([48]);
    driver.notify();
    assert.ok(loop.step(STEP_MS));
    assert.deepEqual(driver.used(0), { id: 0, len: 48 });
    assert.equal(drainEventfd(bed.device.spec.intx!.irqfd), 1n, "INTx asserted");
    assert.equal(bed.read(driver.region(CFG.ISR), 1), 1, "queue interrupt");
  }));

Deno.test("a reset with live queues completes when the loop has dropped them", () =>
  withLoop((_bed, driver, loop) => {
    driver.setupQueue0(8, NO_VECTOR);
    driver.addStatus(S.DRIVER_OK);
    assert.ok(loop.step(STEP_MS) && loop.active);
    driver.setCommon(CommonCfg.DEVICE_STATUS, 0, 1);
    assert.notEqual(driver.status, 0, "§4.1.4.3.2: not 0 until the reset is done");
    driver.setCommon(CommonCfg.QUEUE_SELECT, 0, 2);
    assert.equal(driver.common(CommonCfg.QUEUE_ENABLE, 2), 1, "nothing changes meanwhile");
    assert.ok(loop.step(STEP_MS) && !loop.active);
    assert.equal(driver.status, 0, "done");
    assert.equal(driver.common(CommonCfg.QUEUE_ENABLE, 2), 0);

    driver.addStatus(S.ACKNOWLEDGE | S.DRIVER);
    assert.ok(driver.negotiate(VERSION_1));
    driver.setupQueue0(8, NO_VECTOR);
    driver.addStatus(S.DRIVER_OK);
    assert.ok(loop.step(STEP_MS) && loop.active, "and the device starts again");
  }));

Deno.test("a misplaced ring is refused at DRIVER_OK with DEVICE_NEEDS_RESET", () =>
  withLoop((bed, driver, loop) => {
    driver.setCommon(CommonCfg.QUEUE_SELECT, 0, 2);
    driver.setCommon(CommonCfg.QUEUE_SIZE, 8, 2);
    driver.setCommon(CommonCfg.QUEUE_DESC_LO, RING.desc, 4);
    driver.setCommon(CommonCfg.QUEUE_DRIVER_LO, RING.avail, 4);
    driver.setCommon(CommonCfg.QUEUE_DEVICE_LO, RING.used + 2, 4); // §2.7: 4-byte alignment
    driver.setCommon(CommonCfg.QUEUE_ENABLE, 1, 2);
    driver.addStatus(S.DRIVER_OK);
    assert.ok(loop.step(STEP_MS));
    assert.ok(driver.status & S.NEEDS_RESET);
    assert.equal(bed.read(driver.region(CFG.ISR), 1), 2, "configuration change interrupt");
    assert.equal(drainEventfd(bed.device.spec.intx!.irqfd), 1n);
  }));

Deno.test("a stop request ends the loop", () =>
  withLoop((bed, _driver, loop) => {
    assert.equal(loop.step(0), true, "nothing to do yet");
    bed.fn.state.regs.requestStop();
    signalEventfd(bed.device.spec.controlFd);
    assert.equal(loop.step(STEP_MS), false);
  }));

Deno.test("a device Worker that cannot start makes start() fail", async () => {
  const bed = new TestBed();
  try {
    const init = {
      spec: bed.device.spec,
      backend: { kind: "no-such-device" } as unknown as BackendSpec,
      memory: bed.memory.shared,
      logLevel: "off" as const,
    };
    await assert.rejects(VirtioDeviceThread.start(init), /unknown virtio backend/);
  } finally {
    bed.close();
  }
});

Deno.test("a quiesced device serves nothing and raises nothing until woken, then catches up", () =>
  withLoop((bed, driver, loop) => {
    driver.setupQueue0(8, NO_VECTOR);
    driver.addStatus(S.DRIVER_OK);
    assert.ok(loop.step(STEP_MS) && loop.active);
    const { regs } = bed.fn.state;
    regs.requestQuiesce();
    signalEventfd(bed.device.spec.controlFd);
    assert.ok(loop.step(STEP_MS));
    assert.ok(regs.quiesced, "the loop confirmed");
    driver.publishWritable([16]);
    driver.notify();
    assert.ok(loop.step(50), "a doorbell while quiet wakes nothing");
    assert.equal(driver.usedIdx(), 0, "nothing served");
    assert.equal(drainEventfd(bed.device.spec.intx!.irqfd), 0n, "no interrupt");
    regs.endQuiesce();
    signalEventfd(bed.device.spec.controlFd);
    assert.ok(loop.step(STEP_MS));
    assert.equal(driver.usedIdx(), 1, "the waiting request is served");
    assert.deepEqual(driver.used(0), { id: 0, len: 16 });
    assert.equal(drainEventfd(bed.device.spec.intx!.irqfd), 1n);
  }));

Deno.test("a configuration update from the VMM is taken in and confirmed; the generation moves", () => {
  // The disk is never read here: the loop only hands the backend its new configuration.
  const backendSpec: BackendSpec = {
    kind: "block",
    fd: -1,
    sizeBytes: 64 * 512,
    readOnly: false,
    sparse: true,
    direct: false,
    id: "",
    blockSize: 512,
    numQueues: 1,
    engine: "epoll",
    eventFd: -1,
  };
  const bed = new TestBed({ backend: backendSpec });
  try {
    const backend = createBackend(backendSpec);
    const taken: Uint8Array[] = [];
    backend.configChanged = (config) => void taken.push(config.slice());
    const loop = new DeviceLoop(new VirtioPciState(bed.device.spec), bed.memory, backend);
    const { regs, lock } = bed.fn.state;
    const generation = regs.configGeneration;
    const update = capacityUpdate(128 * 512);
    const epoch = lock.with(() => regs.updateConfig(update.offset, update.bytes));
    assert.equal(regs.configSeen, epoch - 1, "not yet");
    signalEventfd(bed.device.spec.controlFd);
    assert.ok(loop.step(STEP_MS));
    assert.equal(regs.configSeen, epoch, "confirmed");
    assert.equal(taken.length, 1);
    assert.deepEqual(taken[0].subarray(update.offset, update.offset + 8), update.bytes);
    assert.notEqual(regs.configGeneration, generation, "§4.1.4.3.1: config_generation changed");
  } finally {
    bed.close();
  }
});

/** PCI class ffh: a device that fits no class. */
const PCI_CLASS_OTHER = 0xff_0000;

/** A one-queue device whose queue the kernel serves (as vhost's are): records what the loop does. */
class KernelServedBackend implements VirtioBackend {
  readonly deviceType: number = VirtioDeviceType.ENTROPY;
  readonly features = 0n;
  readonly queueSizes: readonly number[] = [8];
  readonly configBytes: Uint8Array = new Uint8Array(0);
  readonly pciClass: number = PCI_CLASS_OTHER;
  readonly kernelQueues;
  readonly activations: KernelQueueSetup[][] = [];
  resets = 0;

  constructor(callFd: number) {
    this.kernelQueues = [{ index: 0, callFd }];
  }

  activate(_features: bigint, queues: readonly KernelQueueSetup[]): void {
    this.activations.push([...queues]);
  }

  processQueue(): void {
    throw new Error("the loop served a queue the kernel serves");
  }

  reset(): void {
    this.resets++;
  }
}

Deno.test("a queue the kernel serves: its doorbells are left for the kernel, its call eventfd interrupts", async () => {
  const bed = new TestBed();
  const callFd = eventfd(0, EFD_NONBLOCK);
  try {
    const backend = new KernelServedBackend(callFd);
    const loop = new DeviceLoop(new VirtioPciState(bed.device.spec), bed.memory, backend);
    const driver = new ModernDriver(bed);
    driver.probe();
    driver.enable();
    await driver.initialise(VERSION_1);
    const { queueFds, intx } = bed.device.spec;
    driver.setupQueue0(8, NO_VECTOR);
    driver.notify(); // before DRIVER_OK: the kernel finds it once it has the ring
    driver.addStatus(S.DRIVER_OK);
    assert.ok(loop.step(STEP_MS) && loop.active);
    assert.deepEqual(
      backend.activations.map((qs) => qs.map((q) => [q.index, q.size, q.kickFd, q.irqFd])),
      [[[0, 8, queueFds[0], undefined]]],
      "the backend got the ring and its doorbell to hand on; with INTx, no irqfd",
    );
    driver.publishWritable([16]);
    driver.notify();
    assert.ok(loop.step(50), "a doorbell the kernel takes wakes nothing");
    assert.equal(driver.usedIdx(), 0, "the loop served nothing");
    assert.equal(drainEventfd(queueFds[0]), 2n, "both doorbells are still there, for the kernel");

    signalEventfd(callFd);
    assert.ok(loop.step(STEP_MS));
    assert.equal(drainEventfd(callFd), 0n, "the call eventfd was drained");
    assert.equal(drainEventfd(intx!.irqfd), 1n, "INTx asserted");
    assert.equal(bed.read(driver.region(CFG.ISR), 1), 1, "queue interrupt");

    driver.setCommon(CommonCfg.DEVICE_STATUS, 0, 1);
    assert.ok(loop.step(STEP_MS) && !loop.active);
    assert.equal(backend.resets, 1, "a reset takes the ring back");
    signalEventfd(callFd);
    assert.ok(loop.step(50));
    assert.equal(drainEventfd(intx!.irqfd), 0n, "no interrupt while the device is reset");
    assert.equal(drainEventfd(callFd), 1n, "nor is the call eventfd watched");

    driver.addStatus(S.ACKNOWLEDGE | S.DRIVER);
    assert.ok(driver.negotiate(VERSION_1));
    driver.enableMsix(bed.device.spec.vectorFds.length);
    driver.setupQueue0(8, 1);
    driver.addStatus(S.DRIVER_OK);
    assert.ok(loop.step(STEP_MS) && loop.active);
    assert.equal(backend.activations.length, 2, "the ring is handed over again");
    assert.equal(
      backend.activations[1][0].irqFd,
      bed.device.spec.vectorFds[1],
      "with MSI-X, the kernel gets the irqfd of the queue's vector",
    );
    bed.fn.state.regs.requestStop();
    signalEventfd(bed.device.spec.controlFd);
    assert.equal(loop.step(STEP_MS), false);
    assert.equal(backend.resets, 2, "a stop with the queues running takes the ring back too");
  } finally {
    close(callFd);
    bed.close();
  }
});
