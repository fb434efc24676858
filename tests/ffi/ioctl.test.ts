// The _IO* encoders of src/ffi/ioctl.ts. The KVM numbers built with them are held against
// <linux/kvm.h> in kvm_abi.test.ts; here, a non-KVM number and the field limits.

import assert from "node:assert/strict";
import { BLKGETSIZE64 } from "../../src/disk/image.ts";
import { _IO, _IOR, _IOW, _IOWR } from "../../src/ffi/ioctl.ts";

Deno.test("_IOR encodes BLKGETSIZE64 as <linux/fs.h> does: _IOR(0x12, 114, size_t)", () => {
  assert.equal(_IOR(0x12, 114, BigUint64Array.BYTES_PER_ELEMENT), BLKGETSIZE64);
});

Deno.test("_IO, _IOW and _IOWR give KVM_RUN, KVM_IRQFD and KVM_GET_SUPPORTED_CPUID", () => {
  assert.equal(_IO(0xae, 0x80), 0xae80);
  assert.equal(_IOW(0xae, 0x76, 32), 0x4020_ae76);
  assert.equal(_IOWR(0xae, 0x05, 8), 0xc008_ae05);
});

Deno.test("a field too wide for its bits is refused", () => {
  assert.throws(() => _IOR(0x100, 0, 8), RangeError);
  assert.throws(() => _IOR(0xae, 0x100, 8), RangeError);
  assert.throws(() => _IOW(0xae, 0, 1 << 14), RangeError);
});
