import assert from "node:assert/strict";
import { KVM_CPUID2, KVM_CPUID_ENTRY2, KVM_SEGMENT, KVM_SREGS } from "../../src/ffi/kvm_abi.ts";
import { StructBuffer } from "../../src/ffi/struct.ts";

Deno.test("StructBuffer is sized by its layout plus the extra bytes asked for", () => {
  assert.equal(new StructBuffer(KVM_SREGS).bytes.length, KVM_SREGS.size);
  const cpuid = new StructBuffer(KVM_CPUID2, 3 * KVM_CPUID_ENTRY2.size);
  assert.equal(cpuid.bytes.length, KVM_CPUID2.size + 3 * KVM_CPUID_ENTRY2.size);
  assert.ok(cpuid.bytes.every((b) => b === 0));
});

Deno.test("StructBuffer accessors are little-endian at the member's offset", () => {
  const sregs = new StructBuffer(KVM_SREGS);
  sregs.setU64("cr3", 0x1122_3344_5566_7788n);
  const at = KVM_SREGS.fields.cr3;
  assert.deepEqual([...sregs.bytes.subarray(at, at + 8)], [
    0x88,
    0x77,
    0x66,
    0x55,
    0x44,
    0x33,
    0x22,
    0x11,
  ]);
  assert.equal(sregs.u64("cr3"), 0x1122_3344_5566_7788n);
  assert.equal(sregs.u32("cr3"), 0x5566_7788);
  assert.equal(sregs.u16("cr3"), 0x7788);
  assert.equal(sregs.u8("cr3"), 0x88);
  // Neighbours are untouched.
  assert.equal(sregs.u64("cr2"), 0n);
  assert.equal(sregs.u64("cr4"), 0n);
});

Deno.test("StructBuffer deltas address members of a nested struct", () => {
  const sregs = new StructBuffer(KVM_SREGS);
  sregs.setU16("cs", 0xf000, KVM_SEGMENT.fields.selector);
  sregs.setU8("cs", 1, KVM_SEGMENT.fields.present);
  sregs.setU32("ds", 0xffff, KVM_SEGMENT.fields.limit);
  assert.equal(sregs.offset("cs", KVM_SEGMENT.fields.selector), 12);
  assert.equal(sregs.view.getUint16(KVM_SREGS.fields.cs + 12, true), 0xf000);
  assert.equal(sregs.view.getUint8(KVM_SREGS.fields.cs + 15), 1);
  assert.equal(sregs.u32("ds", KVM_SEGMENT.fields.limit), 0xffff);
});

Deno.test("StructBuffer setters wrap values to the member's width", () => {
  const entry = new StructBuffer(KVM_CPUID_ENTRY2);
  entry.setU32("eax", -1);
  assert.equal(entry.u32("eax"), 0xffff_ffff);
  entry.setU64("function", 5);
  assert.equal(entry.u64("function"), 5n);
  assert.throws(() => entry.setU64("eax", 1, KVM_CPUID_ENTRY2.size), RangeError);
});
