import assert from "node:assert/strict";
import { PCI_INTX_GSIS } from "../../src/arch/x86_64/layout.ts";
import { intxGsiForSlot, PciIntxPin } from "../../src/arch/x86_64/pci_intx.ts";

Deno.test("INTA# of slot s is PCI_INTX_GSIS[s % 4], as the virtio devices had it", () => {
  assert.deepEqual(PCI_INTX_GSIS, [5, 9, 10, 11]);
  for (let slot = 0; slot < 32; slot++) {
    assert.equal(intxGsiForSlot(slot, PciIntxPin.INTA), PCI_INTX_GSIS[slot % 4]);
  }
});

Deno.test("the pins rotate over the GSIs: (slot + pin) % 4", () => {
  assert.deepEqual([0, 1, 2, 3].map((pin) => intxGsiForSlot(0, pin)), [5, 9, 10, 11]);
  assert.deepEqual([0, 1, 2, 3].map((pin) => intxGsiForSlot(1, pin)), [9, 10, 11, 5]);
  assert.deepEqual([0, 1, 2, 3].map((pin) => intxGsiForSlot(31, pin)), [11, 5, 9, 10]);
  assert.equal(intxGsiForSlot(6, PciIntxPin.INTD), 9); // (6 + 3) % 4 = 1
});

Deno.test("other GSI lists rotate the same way", () => {
  assert.equal(intxGsiForSlot(3, PciIntxPin.INTB, [16, 17]), 16);
  assert.equal(intxGsiForSlot(2, PciIntxPin.INTA, [20]), 20);
});

Deno.test("slots, pins and GSI lists out of range are refused", () => {
  assert.throws(() => intxGsiForSlot(32, 0), RangeError);
  assert.throws(() => intxGsiForSlot(-1, 0), RangeError);
  assert.throws(() => intxGsiForSlot(1.5, 0), RangeError);
  assert.throws(() => intxGsiForSlot(0, 4), RangeError);
  assert.throws(() => intxGsiForSlot(0, -1), RangeError);
  assert.throws(() => intxGsiForSlot(0, 0, []), RangeError);
});
