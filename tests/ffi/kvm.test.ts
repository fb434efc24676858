// The typed KVM layer against the real /dev/kvm. Every test closes the descriptors it opens.

import assert from "node:assert/strict";
import {
  KVM_IDENTITY_MAP_ADDRESS,
  KVM_TSS_ADDRESS,
  ramRegions,
} from "../../src/arch/x86_64/layout.ts";
import { SyscallError } from "../../src/ffi/errno.ts";
import {
  getSegment,
  Kvm,
  type Segment,
  setSegment,
  type VcpuFd,
  type VmFd,
} from "../../src/ffi/kvm.ts";
import {
  Cap,
  Exit,
  Ioctl,
  KVM_API_VERSION,
  KVM_EXIT_IO_OUT,
  KVM_RUN_LAYOUT,
  MpState,
} from "../../src/ffi/kvm_abi.ts";
import {
  close,
  EFD_NONBLOCK,
  eventfd,
  ioctl,
  munmap,
  read,
  viewOf,
  writeAll,
} from "../../src/ffi/libc.ts";
import { GuestMemory } from "../../src/memory.ts";
import { getIoapic } from "../helpers/irqchip.ts";
import { kvmTest } from "../helpers/kvm.ts";

/** A KVM system fd and one VM, plus a place to register what else must be closed. */
interface VmFixture {
  kvm: Kvm;
  vm: VmFd;
  /** Runs `release` when the test ends, last registered first. */
  defer(release: () => void): void;
  /** Creates vCPU `id`, closed when the test ends. */
  vcpu(id?: number): VcpuFd;
}

interface VmOptions {
  /** Create the in-kernel irqchip (PIC, IOAPIC, LAPICs) before anything else. */
  irqchip?: boolean;
}

/**
 * Declares a test on a fresh VM (with the in-kernel irqchip unless `options` say otherwise);
 * where KVM is unusable it is ignored, saying why.
 */
function vmTest(name: string, fn: (t: VmFixture) => void, options: VmOptions = {}): void {
  kvmTest(name, () => withVm(fn, options));
}

function withVm(fn: (t: VmFixture) => void, { irqchip = true }: VmOptions): void {
  const releases: (() => void)[] = [];
  const defer = (release: () => void) => void releases.push(release);
  try {
    const kvm = Kvm.open();
    defer(() => kvm.close());
    const vm = kvm.createVm();
    defer(() => vm.close());
    if (irqchip) vm.createIrqchip();
    const vcpu = (id = 0) => {
      const fd = vm.createVcpu(id);
      defer(() => fd.close());
      return fd;
    };
    fn({ kvm, vm, defer, vcpu });
  } finally {
    for (const release of releases.reverse()) release();
  }
}

/** An eventfd closed when the test ends. */
function testEventfd(t: VmFixture, flags = 0): number {
  const fd = eventfd(0, flags);
  t.defer(() => close(fd));
  return fd;
}

function assertErrno(fn: () => unknown, errno: "EEXIST" | "EBUSY" | "ENOENT", call: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SyscallError, `expected a SyscallError, got ${e}`);
    assert.equal(e.call, call);
    assert.ok(e.is(errno), e.message);
    return true;
  });
}

vmTest("the KVM API version is 12 and the vCPU mapping holds kvm_run", ({ kvm }) => {
  assert.equal(ioctl(kvm.fd, Ioctl.KVM_GET_API_VERSION), KVM_API_VERSION);
  assert.ok(kvm.vcpuMmapSize() >= KVM_RUN_LAYOUT.size);
  assert.equal(kvm.vcpuMmapSize() % 4096, 0);
});

vmTest("the capabilities the VMM relies on are present", ({ kvm, vm }) => {
  for (
    const cap of [
      "KVM_CAP_IRQCHIP",
      "KVM_CAP_USER_MEMORY",
      "KVM_CAP_SET_TSS_ADDR",
      "KVM_CAP_EXT_CPUID",
      "KVM_CAP_MP_STATE",
      "KVM_CAP_IRQFD",
      "KVM_CAP_PIT2",
      "KVM_CAP_IOEVENTFD",
      "KVM_CAP_IMMEDIATE_EXIT",
    ] as const
  ) {
    assert.ok(kvm.checkExtension(Cap[cap]) > 0, `${cap} is not supported`);
  }
  assert.ok(vm.checkExtension(Cap.KVM_CAP_NR_MEMSLOTS) >= 2);
  const max = kvm.maxVcpus();
  assert.ok(max >= 1 && max >= kvm.checkExtension(Cap.KVM_CAP_NR_VCPUS), `maxVcpus ${max}`);
  assert.equal(kvm.checkExtension(0x7fff_ffff), 0, "an unknown capability must read as 0");
});

vmTest("supportedCpuid has leaf 0 (vendor) and leaf 1 (features)", ({ kvm }) => {
  const cpuid = kvm.supportedCpuid();
  const leaf0 = cpuid.find((e) => e.function === 0);
  const leaf1 = cpuid.find((e) => e.function === 1);
  assert.ok(leaf0 && leaf1, "leaf 0 or 1 missing");
  assert.ok(leaf0.eax >= 1, `highest basic leaf ${leaf0.eax}`);
  const vendor = new TextDecoder().decode(new Uint32Array([leaf0.ebx, leaf0.edx, leaf0.ecx]));
  const vendors = ["GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls", "  Shanghai  "];
  assert.ok(vendors.includes(vendor), `unknown CPU vendor ${JSON.stringify(vendor)}`);
  const APIC = 1 << 9;
  assert.ok(leaf1.edx & APIC, "leaf 1 must report an APIC");
  assert.ok(cpuid.some((e) => e.function === 0x8000_0001), "extended leaves missing");
});

vmTest("a VM gets one irqchip and one PIT, and refuses seconds", ({ vm }) => {
  vm.createPit2();
  assertErrno(() => vm.createIrqchip(), "EEXIST", "ioctl(KVM_CREATE_IRQCHIP)");
  assertErrno(() => vm.createPit2(), "EEXIST", "ioctl(KVM_CREATE_PIT2)");
});

vmTest("KVM_IRQ_LINE raises and lowers an IOAPIC pin", ({ vm }) => {
  const pin4 = 1 << 4;
  assert.equal(getIoapic(vm).irr & pin4, 0);
  vm.irqLine(4, true);
  assert.equal(getIoapic(vm).irr & pin4, pin4, "the IOAPIC sees pin 4 high");
  vm.irqLine(4, false);
  assert.equal(getIoapic(vm).irr & pin4, 0, "and low again");
});

vmTest("vCPU ids are unique per VM", (t) => {
  assert.equal(t.vcpu(0).id, 0);
  assertErrno(() => t.vm.createVcpu(0), "EEXIST", "ioctl(KVM_CREATE_VCPU)");
});

vmTest("getRegs/setRegs round-trip rip and rsp", (t) => {
  const vcpu = t.vcpu();
  const regs = vcpu.getRegs();
  assert.equal(regs.u64("rip"), 0xfff0n, "reset vector offset");
  regs.setU64("rip", 0x1234);
  regs.setU64("rsp", 0x8000);
  vcpu.setRegs(regs);
  const back = vcpu.getRegs();
  assert.equal(back.u64("rip"), 0x1234n);
  assert.equal(back.u64("rsp"), 0x8000n);
  assert.equal(back.u64("rflags"), regs.u64("rflags"));
});

vmTest("getSregs/setSregs round-trip cr0, efer and a segment", (t) => {
  const vcpu = t.vcpu();
  vcpu.setCpuid(t.kvm.supportedCpuid());
  const sregs = vcpu.getSregs();
  const cs = getSegment(sregs, "cs");
  assert.equal(cs.selector, 0xf000, "reset CS selector");
  assert.equal(cs.base, 0xffff_0000n, "reset CS base");
  assert.equal(cs.limit, 0xffff);
  assert.equal(cs.present, 1);
  const PE = 1n;
  const EFER_LME = 1n << 8n;
  sregs.setU64("cr0", sregs.u64("cr0") | PE);
  sregs.setU64("efer", EFER_LME);
  const flat: Segment = { ...cs, base: 0n, selector: 0x10, limit: 0xffff_ffff, db: 1, g: 1 };
  setSegment(sregs, "ds", flat);
  vcpu.setSregs(sregs);
  const back = vcpu.getSregs();
  assert.equal(back.u64("cr0") & PE, PE);
  assert.equal(back.u64("efer"), EFER_LME);
  assert.deepEqual(getSegment(back, "ds"), flat);
  assert.deepEqual(getSegment(back, "cs"), cs);
});

// KVM_GET_FPU/KVM_SET_FPU never transfer mxcsr (the kernel copies only the x87 state and the
// XMM registers), so those are what can round-trip here.
vmTest("getFpu/setFpu round-trip the x87 control word and all 16 XMM registers", (t) => {
  const vcpu = t.vcpu();
  const fpu = vcpu.getFpu();
  const XMM_BYTES = 16 * 16;
  const pattern = Uint8Array.from({ length: XMM_BYTES }, (_, i) => (i * 7 + 1) & 0xff);
  fpu.bytes.set(pattern, fpu.offset("xmm"));
  fpu.setU16("fcw", 0x27f);
  vcpu.setFpu(fpu);
  const back = vcpu.getFpu();
  assert.equal(back.u16("fcw"), 0x27f);
  const xmm = back.offset("xmm");
  assert.deepEqual(back.bytes.subarray(xmm, xmm + XMM_BYTES), pattern);
});

vmTest("setMsrs/getMsrs round-trip the SYSENTER MSRs; unknown MSRs are refused", (t) => {
  const vcpu = t.vcpu();
  vcpu.setCpuid(t.kvm.supportedCpuid());
  const msrs = [
    { index: 0x174, data: 0x10n }, // IA32_SYSENTER_CS
    { index: 0x175, data: 0xffff_8000_0000_1000n }, // IA32_SYSENTER_ESP
    { index: 0x176, data: 0xffff_8000_0000_2000n }, // IA32_SYSENTER_EIP
  ];
  vcpu.setMsrs(msrs);
  assert.deepEqual(vcpu.getMsrs(msrs.map((m) => m.index)), msrs);
  assert.throws(
    () => vcpu.setMsrs([{ index: 0x174, data: 0n }, { index: 0xdead_beef, data: 1n }]),
    /KVM refused MSR 0xdeadbeef/,
  );
  // KVM_GET_MSRS stops at the first MSR it does not know.
  assert.deepEqual(vcpu.getMsrs([0x174, 0xdead_beef, 0x175]), [{ index: 0x174, data: 0n }]);
});

vmTest("getLapic reports the APIC ID; setLapic round-trips the TPR", (t) => {
  const vcpu = t.vcpu(1);
  const LAPIC_ID = 0x20;
  const LAPIC_TPR = 0x80;
  const lapic = vcpu.getLapic();
  const view = new DataView(lapic.buffer);
  assert.equal(view.getUint32(LAPIC_ID, true) >>> 24, 1);
  view.setUint32(LAPIC_TPR, 0x20, true);
  vcpu.setLapic(lapic);
  assert.equal(new DataView(vcpu.getLapic().buffer).getUint32(LAPIC_TPR, true), 0x20);
});

vmTest("the BSP starts runnable and an AP waits for INIT/SIPI", (t) => {
  const bsp = t.vcpu(0);
  const ap = t.vcpu(1);
  assert.equal(bsp.getMpState(), MpState.KVM_MP_STATE_RUNNABLE);
  assert.equal(ap.getMpState(), MpState.KVM_MP_STATE_UNINITIALIZED);
  ap.setMpState(MpState.KVM_MP_STATE_RUNNABLE);
  assert.equal(ap.getMpState(), MpState.KVM_MP_STATE_RUNNABLE);
});

vmTest("an eventfd binds to one GSI with KVM_IRQFD and unbinds", (t) => {
  const fd = testEventfd(t);
  t.vm.irqfd(fd, 4);
  assertErrno(() => t.vm.irqfd(fd, 5), "EBUSY", "ioctl(KVM_IRQFD)");
  writeAll(fd, new Uint8Array(new BigUint64Array([1n]).buffer));
  t.vm.irqfd(fd, 4, true);
  t.vm.irqfd(fd, 5);
});

vmTest("ioeventfds register for PIO and MMIO, once each, and deregister", (t) => {
  const pio = testEventfd(t);
  const mmio = testEventfd(t);
  t.vm.ioeventfd(pio, 0x3f8, 1, { pio: true });
  t.vm.ioeventfd(mmio, 0xd000_0000n, 4, { datamatch: 7n });
  assertErrno(() => t.vm.ioeventfd(pio, 0x3f8, 1, { pio: true }), "EEXIST", "ioctl(KVM_IOEVENTFD)");
  t.vm.ioeventfd(pio, 0x3f8, 1, { pio: true, deassign: true });
  assertErrno(
    () => t.vm.ioeventfd(pio, 0x3f8, 1, { pio: true, deassign: true }),
    "ENOENT",
    "ioctl(KVM_IOEVENTFD)",
  );
  t.vm.ioeventfd(mmio, 0xd000_0000n, 4, { datamatch: 7n, deassign: true });
});

vmTest("guest memory registers as slots, and a slot cannot overlap another", (t) => {
  const mem = GuestMemory.allocate(ramRegions(2 << 20));
  mem.register(t.vm);
  assertErrno(
    () => t.vm.setUserMemoryRegion(1, 0x1000, 4096, mem.hostAddress(0)),
    "EEXIST",
    "ioctl(KVM_SET_USER_MEMORY_REGION)",
  );
});

vmTest("a real-mode guest's OUT and HLT exit to userspace through kvm_run", (t) => {
  t.vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
  t.vm.setTssAddress(KVM_TSS_ADDRESS);
  const mem = GuestMemory.allocate(ramRegions(2 << 20));
  mem.register(t.vm);
  // mov al, 0x42; out 0x10, al; hlt
  mem.write(0x1000, new Uint8Array([0xb0, 0x42, 0xe6, 0x10, 0xf4]));

  const vcpu = t.vcpu();
  const sregs = vcpu.getSregs();
  setSegment(sregs, "cs", { ...getSegment(sregs, "cs"), base: 0n, selector: 0 });
  vcpu.setSregs(sregs);
  const regs = vcpu.getRegs();
  regs.setU64("rip", 0x1000);
  regs.setU64("rflags", 2);
  vcpu.setRegs(regs);

  const size = t.kvm.vcpuMmapSize();
  const address = vcpu.mapRun(size);
  t.defer(() => munmap(address, size));
  const run = new DataView(viewOf(address, size));
  const f = KVM_RUN_LAYOUT.fields;

  vcpu.run();
  assert.equal(run.getUint32(f.exit_reason, true), Exit.KVM_EXIT_IO);
  assert.equal(run.getUint8(f["io.direction"]), KVM_EXIT_IO_OUT);
  assert.equal(run.getUint8(f["io.size"]), 1);
  assert.equal(run.getUint16(f["io.port"], true), 0x10);
  assert.equal(run.getUint32(f["io.count"], true), 1);
  const data = Number(run.getBigUint64(f["io.data_offset"], true));
  assert.equal(run.getUint8(data), 0x42);

  vcpu.run();
  assert.equal(run.getUint32(f.exit_reason, true), Exit.KVM_EXIT_HLT);
  assert.equal(vcpu.getRegs().u64("rip"), 0x1005n);
}, { irqchip: false });

vmTest("an irqfd-bound eventfd is consumed by KVM, not left for userspace", (t) => {
  const fd = testEventfd(t, EFD_NONBLOCK);
  t.vm.irqfd(fd, 4);
  writeAll(fd, new Uint8Array(new BigUint64Array([1n]).buffer));
  assert.throws(
    () => read(fd, new Uint8Array(8)),
    (e: unknown) => e instanceof SyscallError && e.is("EAGAIN"),
  );
  t.vm.irqfd(fd, 4, true);
});

Deno.test("opening a missing KVM device gives ENOENT naming the path", () => {
  const path = "/dev/kvm-does-not-exist";
  assert.throws(() => Kvm.open(path), (e: unknown) => {
    assert.ok(e instanceof SyscallError);
    assert.ok(e.is("ENOENT"));
    assert.equal(e.call, `open(${path})`);
    return true;
  });
});
