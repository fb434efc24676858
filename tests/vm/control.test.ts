/**
 * The library's control API on this host's KVM: suspend and resume seen by a guest that counts
 * in memory as long as its vCPU runs (tests/guests/spin.S), and disk resizes seen in the image
 * and the device, with the devices in Workers and in jailed processes.
 */

import assert from "node:assert/strict";
import { defaultSandbox, Vm, type VmConfig, VmControlError, type VmEvent } from "../../mod.ts";
import { buildGuest } from "../helpers/guests.ts";
import { kvmTest } from "../helpers/kvm.ts";
import { testGuestConfig } from "../helpers/run_guest.ts";

/** Where spin.S counts. */
const COUNTER = 0x300000;
/** How long a suspended guest is watched for a count that moves. */
const STILL_MS = 300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Boots spin.S and hands `fn` the running VM and a reader of its count; stops it after. */
async function withCountingGuest(
  fn: (vm: Vm, count: () => bigint) => Promise<void>,
  config: Partial<VmConfig> = {},
): Promise<VmEvent[]> {
  const vm = await Vm.create(testGuestConfig(await buildGuest("spin"), config));
  const events: VmEvent[] = [];
  const recorded = vm.events().pipeTo(new WritableStream({ write: (e) => void events.push(e) }));
  const output = new Response(vm.serialOutput).text();
  const ran = vm.run();
  const count = () => vm.memory.readU64(COUNTER);
  try {
    await vm.running;
    await waitUntil(() => count() > 0n);
    await fn(vm, count);
  } finally {
    await vm.stop();
  }
  assert.equal((await ran).reason, "stop");
  assert.equal(await output, "R");
  await recorded;
  return events;
}

/** Polls `condition` every millisecond until it holds (the test's own timeout bounds it). */
async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(1);
}

/** Suspends `vm` and checks that its count stands still, then resumes it and sees it move. */
async function suspendAndResume(vm: Vm, count: () => bigint, full: boolean): Promise<void> {
  await vm.suspend({ full });
  assert.equal(vm.state, "suspended");
  const stopped = count();
  await sleep(STILL_MS);
  assert.equal(count(), stopped, "no vCPU runs while suspended");
  if (full) {
    await assert.rejects(
      vm.resume(),
      (e: Error) => e instanceof VmControlError && e.errno === 22 && /in full/.test(e.message),
    );
    assert.equal(vm.state, "suspended", "a refused resume leaves it suspended");
  }
  await vm.resume({ full });
  assert.equal(vm.state, "running");
  await waitUntil(() => count() > stopped);
}

kvmTest("suspend parks the vCPUs until resume; the events say so", async () => {
  const events = await withCountingGuest((vm, count) => suspendAndResume(vm, count, false));
  assert.deepEqual(events.map((e) => e.type === "state" ? e.state : e.message), [
    "running",
    "suspended",
    "running",
    "stopped",
  ]);
});

kvmTest("a full suspend needs a full resume (EINVAL otherwise, as crosvm)", async () => {
  await withCountingGuest((vm, count) => suspendAndResume(vm, count, true));
});

kvmTest("suspend twice, resume twice, and a stop while suspended", async () => {
  await withCountingGuest(async (vm, count) => {
    await Promise.all([vm.suspend(), vm.suspend({ full: true })]);
    const stopped = count();
    await vm.resume({ full: true });
    await vm.resume();
    await waitUntil(() => count() > stopped);
    await vm.suspend();
  });
});

kvmTest("control of a VM that is not running is refused in one line", async () => {
  const vm = await Vm.create(testGuestConfig(await buildGuest("spin"), { serials: [] }));
  await assert.rejects(vm.suspend(), /cannot suspend: the VM is not running yet/);
  await vm.stop();
  await vm.run();
  assert.equal(vm.state, "stopped");
  await assert.rejects(vm.resume(), /cannot resume: the VM has stopped/);
});

/** Runs `fn` with two fresh images: a writable one of `sectors` sectors and a read-only one. */
async function withImages(fn: (writable: string, readOnly: string) => Promise<unknown>) {
  const dir = await Deno.makeTempDir({ prefix: "resize_" });
  try {
    const writable = `${dir}/rw.img`;
    const readOnly = `${dir}/ro.img`;
    for (const path of [writable, readOnly]) await Deno.writeFile(path, new Uint8Array(1 << 20));
    await fn(writable, readOnly);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const disk = (path: string, readOnly: boolean) => ({
  path,
  readOnly,
  root: false,
  sparse: true,
  direct: false,
  blockSize: 512,
});

for (const jailed of [false, true]) {
  const where = jailed ? "a jailed device process" : "a device Worker";
  kvmTest(
    `resizeDisk grows and shrinks the image, ${where} confirming; bad disks are refused`,
    async () => {
      await withImages((writable, readOnly) =>
        withCountingGuest(async (vm) => {
          await vm.resizeDisk(0, 4 << 20);
          assert.equal(Deno.statSync(writable).size, 4 << 20);
          await vm.resizeDisk(0, 512 << 10);
          assert.equal(Deno.statSync(writable).size, 512 << 10);
          await assert.rejects(
            vm.resizeDisk(1, 2 << 20),
            (e: Error) =>
              e instanceof VmControlError && e.errno === 30 &&
              /disk 1 is read-only/.test(e.message),
          );
          assert.equal(Deno.statSync(readOnly).size, 1 << 20, "untouched");
          await assert.rejects(
            vm.resizeDisk(2, 1 << 20),
            (e: Error) =>
              e instanceof VmControlError && e.errno === 19 &&
              /no disk 2: the VM has 2/.test(e.message),
          );
          // Quiet devices still take a new size in, and the VM goes on after.
          await vm.suspend({ full: true });
          await vm.resizeDisk(0, 1 << 20);
          await vm.resume({ full: true });
          assert.equal(Deno.statSync(writable).size, 1 << 20);
        }, {
          disks: [disk(writable, false), disk(readOnly, true)],
          sandbox: jailed ? defaultSandbox() : { ...defaultSandbox(), enabled: false },
        })
      );
    },
  );
}
