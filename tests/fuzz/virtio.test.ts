// Every virtio device's back end, fuzzed through guest memory (tests/fuzz/virtqueue_fuzzer.ts):
// generated and mutated chains, indirect tables, ring indices, feature subsets and resets, against
// real host resources. Deterministic: the seed is printed, and FUZZ_SEED=N FUZZ_CASES=M reruns a
// failure; `deno task fuzz` runs the long mode.

import assert from "node:assert/strict";
import { openTap, type Tap, TUN_DEVICE } from "../../src/ffi/tap.ts";
import { close } from "../../src/ffi/libc.ts";
import { exists } from "../helpers/paths.ts";
import { runCases, runSeed } from "./random.ts";
import { fuzzDevice, type FuzzTarget, openDescriptors } from "./virtqueue_fuzzer.ts";
import { balloonTarget, blockTarget, netTarget, rngTarget, vsockTarget } from "./virtio_targets.ts";

/** Cases per device in the suite (the long mode takes FUZZ_CASES). */
const CASES = runCases(150);
const SEED = runSeed();
console.log(`virtio fuzz: seed ${SEED}, ${CASES} cases per device (FUZZ_SEED, FUZZ_CASES)`);

/** Fuzzes the target `make` builds, and checks no descriptor outlives it. */
async function fuzz(make: (cleanup: AsyncDisposableStack) => Promise<FuzzTarget> | FuzzTarget) {
  const before = openDescriptors();
  {
    await using cleanup = new AsyncDisposableStack();
    const target = await make(cleanup);
    const report = fuzzDevice(target, SEED, CASES);
    console.log(
      `  ${target.name}: ${report.cases} cases, ${report.chains} chains served, ` +
        `${report.faults} queues that met a malformed chain or ring, ${report.resets} resets`,
    );
    assert.equal(report.cases, CASES);
    assert.ok(report.chains > 0, "the device served chains");
    assert.ok(report.resets >= CASES, "every case ends with a reset");
  }
  assert.equal(openDescriptors(), before, "no descriptor left open");
}

Deno.test("fuzz: virtio-rng", () => fuzz(rngTarget));
Deno.test("fuzz: virtio-blk, writable", () => fuzz((c) => blockTarget(false, c)));
Deno.test("fuzz: virtio-blk, read-only (its bytes never change)", () =>
  fuzz((c) => blockTarget(true, c)));
Deno.test("fuzz: virtio-vsock", () => fuzz(vsockTarget));
Deno.test("fuzz: virtio-balloon", () => fuzz(balloonTarget));

const CAN_TAP = Deno.uid() === 0 && await exists(TUN_DEVICE);
Deno.test({
  name: CAN_TAP
    ? "fuzz: virtio-net on a two-queue TAP (control queue and multiqueue on)"
    : "fuzz: virtio-net [ignored: needs root and /dev/net/tun for a TAP]",
  ignore: !CAN_TAP,
  fn: () =>
    fuzz(async (cleanup) => {
      // The TAP stays down, in our namespace: what the guest sends goes nowhere.
      const first = openTap("fuzz%d", true);
      const taps: Tap[] = [first, openTap(first.name, true)];
      cleanup.defer(() => taps.forEach((t) => close(t.fd)));
      return await Promise.resolve(netTarget(taps));
    }),
});
