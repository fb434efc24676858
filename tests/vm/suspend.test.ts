/**
 * Suspend and resume through the library's API, on this host's KVM, seen by a guest that counts
 * in memory as long as its vCPU runs (tests/guests/count.S).
 */

import assert from "node:assert/strict";
import { Vm, VmControlError, type VmEvent } from "../../mod.ts";
import { buildGuest } from "../helpers/guests.ts";
import { kvmTest } from "../helpers/kvm.ts";

/** Where count.S counts. */
const COUNTER = 0x300000;
/** How long a suspended guest is watched for a count that moves. */
const STILL_MS = 300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Boots count.S and hands `fn` the running VM and a reader of its count; stops it after. */
async function withCountingGuest(
  fn: (vm: Vm, count: () => bigint) => Promise<void>,
): Promise<VmEvent[]> {
  const vm = await Vm.create({
    kernel: await buildGuest("count"),
    memMiB: 64,
    cpus: 1,
    params: [],
    serials: [{ num: 1, type: "stream", console: false, stdin: false }],
    disks: [],
    rng: false,
    logLevel: "warn",
  });
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
  const vm = await Vm.create({
    kernel: await buildGuest("count"),
    memMiB: 64,
    cpus: 1,
    params: [],
    serials: [],
    disks: [],
    rng: false,
    logLevel: "warn",
  });
  await assert.rejects(vm.suspend(), /cannot suspend: the VM is not running yet/);
  await vm.stop();
  await vm.run();
  assert.equal(vm.state, "stopped");
  await assert.rejects(vm.resume(), /cannot resume: the VM has stopped/);
});
