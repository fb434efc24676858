// virtio-rng end to end in a real VM: the guest (tests/guests/virtio_rng.S) programs the function
// through ECAM and its BAR from a vCPU Worker, rings the doorbell through KVM's ioeventfd, and
// sleeps until the device Worker's completion arrives as an MSI through the GSI routing table.

import assert from "node:assert/strict";
import { kvmTest } from "../../helpers/kvm.ts";
import { runGuest } from "../../helpers/run_guest.ts";

kvmTest("a guest driver gets 64 random bytes and the MSI-X interrupt", async () => {
  const { result, output } = await runGuest("virtio_rng", { config: { rng: true } });
  assert.equal(output, "IOK\n");
  assert.equal(result.reason, "reset");
  assert.equal(result.error, undefined);
  const mmioExits = result.stats.reduce((sum, s) => sum + s.mmioExits, 0);
  assert.ok(mmioExits > 0, "register accesses trapped");
});
