// The Linux x86 64-bit boot protocol as loadBootImages and setBootVcpuState implement it:
// e820 map, zero page (Documentation/arch/x86/zero-page.rst, boot.rst), initrd placement,
// command line limits, the boot GDT (Intel SDM vol. 3A §3.4.5) and the identity-mapped page
// tables (SDM vol. 3A §4.5).

import assert from "node:assert/strict";
import {
  CmdlineError,
  e820Map,
  loadBootImages,
  setBootVcpuState,
} from "../../../src/arch/x86_64/boot/load.ts";
import {
  BOOT_FLAG_MAGIC,
  BootParams,
  E820_ENTRY_SIZE,
  type E820Entry,
  E820Type,
} from "../../../src/arch/x86_64/boot/boot_params.ts";
import {
  BOOT_GDT_ADDRESS,
  BOOT_IDT_ADDRESS,
  BOOT_STACK_POINTER,
  CMDLINE_ADDRESS,
  EBDA_START,
  FIRST_ADDR_PAST_32BITS,
  GIB,
  HIGH_MEMORY_START,
  MIB,
  MMIO_HOLE_START,
  PCIE_ECAM_BASE,
  PCIE_ECAM_SIZE,
  PML4_ADDRESS,
  ramRegions,
  ZERO_PAGE_ADDRESS,
} from "../../../src/arch/x86_64/layout.ts";
import {
  EFER_LMA,
  EFER_LME,
  gdtEntry,
  segmentFromGdt,
  setLongModeSregs,
  writeGdt,
  writeIdentityPageTables,
  X86_CR0_PE,
  X86_CR0_PG,
  X86_CR4_PAE,
} from "../../../src/arch/x86_64/boot/long_mode.ts";
import { getSegment, type Segment, type Sregs } from "../../../src/ffi/kvm.ts";
import { KVM_SREGS } from "../../../src/ffi/kvm_abi.ts";
import { StructBuffer } from "../../../src/ffi/struct.ts";
import { bytesImage, ImageError } from "../../../src/arch/x86_64/boot/image.ts";
import { GuestMemory } from "../../../src/memory.ts";
import {
  buildBzImage,
  debianBzImage,
  NO_DEBIAN_BZIMAGE,
  pattern,
  SetupHeader,
} from "../../helpers/bzimage.ts";
import { buildGuest } from "../../helpers/guests.ts";
import { kvmTest, withVcpu } from "../../helpers/vcpu.ts";

const HELLO_PATH = await buildGuest("hello");
const HELLO = bytesImage(HELLO_PATH, await Deno.readFile(HELLO_PATH));
/** The hello ELF's entry and where its last segment ends (code at 2 MiB, 0x30 bytes). */
const HELLO_ENTRY = 2 * MIB;
const HELLO_END = 2 * MIB + 0x30;
const PAGE_SIZE = 4096;
const CMDLINE = "console=ttyS0 panic=-1 root=/dev/vda";
const decoder = new TextDecoder();

/** The zero-page fields the boot protocol hands the kernel, read back from guest memory. */
function readZeroPage(mem: GuestMemory) {
  const at = (offset: number) => ZERO_PAGE_ADDRESS + offset;
  const count = mem.readU8(at(BootParams.E820_ENTRIES));
  const e820: E820Entry[] = Array.from({ length: count }, (_, i) => {
    const entry = at(BootParams.E820_TABLE + i * E820_ENTRY_SIZE);
    return {
      address: Number(mem.readU64(entry)),
      size: Number(mem.readU64(entry + 8)),
      type: mem.readU32(entry + 16),
    };
  });
  const cmdLinePtr = mem.readU32(at(BootParams.CMD_LINE_PTR)) +
    mem.readU32(at(BootParams.EXT_CMD_LINE_PTR)) * 2 ** 32;
  return {
    bootFlag: mem.readU16(at(BootParams.BOOT_FLAG)),
    header: decoder.decode(mem.read(at(BootParams.HEADER), 4)),
    version: mem.readU16(at(BootParams.VERSION)),
    typeOfLoader: mem.readU8(at(BootParams.TYPE_OF_LOADER)),
    cmdLinePtr,
    ramdiskImage: mem.readU32(at(BootParams.RAMDISK_IMAGE)),
    ramdiskSize: mem.readU32(at(BootParams.RAMDISK_SIZE)),
    initSize: mem.readU32(at(SetupHeader.INIT_SIZE)),
    e820,
  };
}

/** The NUL-terminated string at `address`. */
function readCString(mem: GuestMemory, address: number): string {
  let end = address;
  while (mem.readU8(end) !== 0) end++;
  return decoder.decode(mem.read(address, end - address));
}

// --- e820 ------------------------------------------------------------------------------

const ram = (address: number, size: number): E820Entry => ({ address, size, type: E820Type.RAM });
/** The ECAM window every map reserves (PCI Firmware 3.3 §4.1.2: MCFG ranges must be reserved). */
const ECAM: E820Entry = { address: PCIE_ECAM_BASE, size: PCIE_ECAM_SIZE, type: E820Type.RESERVED };

Deno.test("e820Map, 64 MiB: conventional RAM up to the EBDA, then RAM from 1 MiB to the top", () => {
  assert.deepEqual(e820Map(GuestMemory.allocate(ramRegions(64 * MIB))), [
    ram(0, 0x9fc00),
    ram(0x10_0000, 63 * MIB),
    ECAM,
  ]);
  assert.equal(EBDA_START, 0x9fc00);
  assert.equal(HIGH_MEMORY_START, 0x10_0000);
});

Deno.test("e820Map, 4 GiB: low RAM stops at the 32-bit MMIO hole, the rest is RAM at 4 GiB", () => {
  const mem = GuestMemory.allocate(ramRegions(4 * GIB)); // SharedArrayBuffer pages are touched lazily
  assert.deepEqual(e820Map(mem), [
    ram(0, EBDA_START),
    ram(HIGH_MEMORY_START, MMIO_HOLE_START - HIGH_MEMORY_START),
    ECAM,
    ram(FIRST_ADDR_PAST_32BITS, 4 * GIB - MMIO_HOLE_START),
  ]);
  const total = e820Map(mem).filter((e) => e.type === E820Type.RAM)
    .reduce((sum, e) => sum + e.size, 0);
  assert.equal(total, 4 * GIB - (HIGH_MEMORY_START - EBDA_START), "only the legacy hole is lost");
});

Deno.test("e820Map: a guest smaller than 640 KiB is one RAM range, no high memory", () => {
  assert.deepEqual(e820Map(GuestMemory.allocate(ramRegions(512 * 1024))), [
    ram(0, 512 * 1024),
    ECAM,
  ]);
});

// --- zero page ---------------------------------------------------------------------------

Deno.test("loadBootImages (ELF): zero page has boot_flag, HdrS, loader type, cmdline, e820", () => {
  const mem = GuestMemory.allocate(ramRegions(64 * MIB));
  const entry = loadBootImages(mem, { kernel: HELLO, cmdline: CMDLINE });
  assert.equal(entry, HELLO_ENTRY, "returns the ELF's e_entry");
  const zp = readZeroPage(mem);
  assert.equal(zp.bootFlag, BOOT_FLAG_MAGIC);
  assert.equal(zp.bootFlag, 0xaa55);
  assert.equal(zp.header, "HdrS");
  assert.equal(zp.typeOfLoader, 0xff, "boot.rst: 0xFF, undefined boot loader");
  assert.equal(zp.cmdLinePtr, CMDLINE_ADDRESS);
  assert.equal(readCString(mem, zp.cmdLinePtr), CMDLINE);
  assert.equal(mem.readU8(CMDLINE_ADDRESS + CMDLINE.length), 0, "NUL-terminated");
  assert.deepEqual(zp.e820, e820Map(mem));
  assert.equal(zp.ramdiskImage, 0, "no initrd");
  assert.equal(zp.ramdiskSize, 0);
});

Deno.test("loadBootImages: the e820 table in the zero page lists high RAM above 4 GiB", () => {
  const mem = GuestMemory.allocate(ramRegions(MMIO_HOLE_START + 2 * MIB));
  loadBootImages(mem, { kernel: HELLO, cmdline: "" });
  const { e820 } = readZeroPage(mem);
  assert.equal(e820.length, 4);
  assert.deepEqual(e820[3], ram(FIRST_ADDR_PAST_32BITS, 2 * MIB));
  assert.equal(readCString(mem, CMDLINE_ADDRESS), "", "an empty command line is just a NUL");
});

Deno.test("loadBootImages: the initrd goes page aligned, above the kernel, below low RAM's top", () => {
  const MEM = 64 * MIB;
  const initrd = pattern(MIB + 123, 1); // not a whole number of pages
  const mem = GuestMemory.allocate(ramRegions(MEM));
  loadBootImages(mem, {
    kernel: HELLO,
    initrd: bytesImage("initrd.img", initrd),
    cmdline: "",
  });
  const { ramdiskImage, ramdiskSize } = readZeroPage(mem);
  assert.equal(ramdiskSize, initrd.length);
  assert.equal(ramdiskImage % PAGE_SIZE, 0, "page aligned");
  assert.ok(ramdiskImage >= HELLO_END, "above the kernel");
  assert.ok(ramdiskImage + ramdiskSize <= MEM, "inside low RAM");
  assert.ok(MEM - (ramdiskImage + ramdiskSize) < PAGE_SIZE, "as high as it can go");
  assert.deepEqual(mem.read(ramdiskImage, ramdiskSize), initrd);
});

Deno.test("loadBootImages: an initrd that cannot fit above the kernel is an ImageError", () => {
  for (const size of [63 * MIB, 64 * MIB, 100 * MIB]) {
    const mem = GuestMemory.allocate(ramRegions(64 * MIB));
    const initrd = bytesImage("/tmp/huge.img", new Uint8Array(size));
    assert.throws(
      () => loadBootImages(mem, { kernel: HELLO, initrd, cmdline: "" }),
      (e: unknown) =>
        e instanceof ImageError && e.path === initrd.path &&
        e.message.includes(`initrd of ${size} bytes does not fit in guest memory`),
      `${size} bytes`,
    );
  }
});

Deno.test("loadBootImages: a command line longer than the kernel accepts is a CmdlineError", () => {
  const mem = GuestMemory.allocate(ramRegions(64 * MIB));
  const cmdline = "x".repeat(2049); // an ELF kernel states no cmdline_size: Linux's 2048 applies
  assert.throws(
    () => loadBootImages(mem, { kernel: HELLO, cmdline }),
    (e: unknown) =>
      e instanceof CmdlineError && /2049 bytes, the kernel accepts at most 204[78]/.test(e.message),
  );
});

// --- bzImage setup header ----------------------------------------------------------------

Deno.test("loadBootImages (bzImage): the zero page carries the kernel's setup header", () => {
  const image = buildBzImage({ initSize: 3 * MIB });
  const mem = GuestMemory.allocate(ramRegions(64 * MIB));
  const entry = loadBootImages(mem, { kernel: bytesImage("bz", image), cmdline: CMDLINE });
  assert.equal(entry, HIGH_MEMORY_START + 0x200);
  const zp = readZeroPage(mem);
  assert.equal(zp.version, 0x020f, "copied from the image");
  assert.equal(zp.initSize, 3 * MIB, "copied from the image");
  assert.equal(zp.bootFlag, 0xaa55);
  assert.equal(zp.header, "HdrS");
  assert.equal(zp.typeOfLoader, 0xff, "set by the loader over the image's 0");
  assert.equal(readCString(mem, zp.cmdLinePtr), CMDLINE);
  assert.deepEqual(zp.e820, e820Map(mem));
});

Deno.test("loadBootImages (bzImage): the initrd ends at or below initrd_addr_max", () => {
  const initrdAddrMax = 32 * MIB - 1;
  const image = buildBzImage({ initrdAddrMax, initSize: 4 * MIB });
  const initrd = pattern(3 * PAGE_SIZE + 1, 2);
  const mem = GuestMemory.allocate(ramRegions(64 * MIB));
  loadBootImages(mem, {
    kernel: bytesImage("bz", image),
    initrd: bytesImage("initrd", initrd),
    cmdline: "",
  });
  const { ramdiskImage, ramdiskSize } = readZeroPage(mem);
  assert.ok(ramdiskImage + ramdiskSize - 1 <= initrdAddrMax, "last byte within initrd_addr_max");
  assert.ok(ramdiskImage >= HIGH_MEMORY_START + 4 * MIB, "above the kernel's init_size");
  assert.equal(ramdiskImage % PAGE_SIZE, 0);
  assert.deepEqual(mem.read(ramdiskImage, ramdiskSize), initrd);
});

Deno.test("loadBootImages (bzImage): cmdline_size bytes are accepted, one more byte is not", () => {
  const image = buildBzImage({ cmdlineSize: 255 }); // boot.rst: the limit before protocol 2.06
  const load = (cmdline: string) =>
    loadBootImages(GuestMemory.allocate(ramRegions(16 * MIB)), {
      kernel: bytesImage("bz", image),
      cmdline,
    });
  load("y".repeat(255));
  assert.throws(() => load("y".repeat(256)), CmdlineError);
  assert.throws(
    () => load("é".repeat(128)), // 256 bytes of UTF-8 in 128 characters
    (e: unknown) => e instanceof CmdlineError && e.message.includes("256 bytes"),
  );
});

const DEBIAN = await debianBzImage();
Deno.test({
  name: DEBIAN
    ? "a real Debian bzImage: its setup header reaches the zero page, its cmdline_size binds"
    : `a real Debian bzImage's setup header reaches the zero page [ignored: ${NO_DEBIAN_BZIMAGE}]`,
  ignore: DEBIAN === undefined,
  fn: async () => {
    const bytes = await Deno.readFile(DEBIAN!);
    const kernel = bytesImage(DEBIAN!, bytes);
    const header = new DataView(bytes.buffer);
    const cmdlineSize = header.getUint32(BootParams.CMDLINE_SIZE, true);
    const mem = GuestMemory.allocate(ramRegions(256 * MIB));
    loadBootImages(mem, { kernel, cmdline: "z".repeat(cmdlineSize) });
    const zp = readZeroPage(mem);
    assert.equal(zp.version, header.getUint16(BootParams.VERSION, true));
    assert.equal(zp.initSize, header.getUint32(SetupHeader.INIT_SIZE, true));
    assert.equal(zp.typeOfLoader, 0xff);
    assert.equal(readCString(mem, zp.cmdLinePtr).length, cmdlineSize);
    assert.throws(
      () => loadBootImages(mem, { kernel, cmdline: "z".repeat(cmdlineSize + 1) }),
      CmdlineError,
    );
  },
});

// --- GDT -----------------------------------------------------------------------------------

/** Decodes a segment descriptor per Intel SDM vol. 3A §3.4.5, figure 3-8. */
function decodeDescriptor(d: bigint) {
  const bits = (shift: bigint, width: bigint) => Number((d >> shift) & ((1n << width) - 1n));
  return {
    base: bits(16n, 24n) | (bits(56n, 8n) << 24),
    limit: bits(0n, 16n) | (bits(48n, 4n) << 16),
    type: bits(40n, 4n),
    s: bits(44n, 1n),
    dpl: bits(45n, 2n),
    present: bits(47n, 1n),
    avl: bits(52n, 1n),
    l: bits(53n, 1n),
    db: bits(54n, 1n),
    g: bits(55n, 1n),
  };
}

/** The segment register a processor loads from a descriptor: limit scaled by G. */
function segmentFromDescriptor(d: bigint, selector: number): Segment {
  const { limit, base, ...rest } = decodeDescriptor(d);
  return {
    ...rest,
    base: BigInt(base),
    limit: rest.g ? limit * 4096 + 4095 : limit,
    selector,
    unusable: 0,
  };
}

Deno.test("gdtEntry encodes the well-known flat descriptors (Linux's GDT_ENTRY)", () => {
  assert.equal(gdtEntry(0xa09b), 0x00af_9b00_0000_ffffn, "64-bit code");
  assert.equal(gdtEntry(0xc093), 0x00cf_9300_0000_ffffn, "data");
  assert.equal(gdtEntry(0x808b), 0x008f_8b00_0000_ffffn, "TSS");
  const d = decodeDescriptor(gdtEntry(0xc093, 0x1234_5678, 0xabcde));
  assert.equal(d.base, 0x1234_5678, "base split across bits 16-39 and 56-63");
  assert.equal(d.limit, 0xabcde, "limit split across bits 0-15 and 48-51");
});

Deno.test("segmentFromGdt decodes what gdtEntry encodes: code, data, TSS and odd flag words", () => {
  for (const flags of [0xa09b, 0xc093, 0x808b, 0x009b, 0x4093, 0xf0ff, 0x1000]) {
    for (const selector of [0x08, 0x10, 0x18]) {
      assert.deepEqual(
        segmentFromGdt(flags, selector),
        segmentFromDescriptor(gdtEntry(flags), selector),
        `flags 0x${flags.toString(16)}`,
      );
    }
  }
});

/** Fresh long-mode sregs, as setLongModeSregs leaves them. */
function longModeSregs(): Sregs {
  const sregs = new StructBuffer(KVM_SREGS);
  setLongModeSregs(sregs);
  return sregs;
}

Deno.test("the boot GDT in memory is what the segment registers are loaded from", () => {
  const mem = GuestMemory.allocate(ramRegions(16 * MIB));
  writeGdt(mem);
  const sregs = longModeSregs();
  assert.equal(sregs.u64("gdt"), BigInt(BOOT_GDT_ADDRESS));
  assert.equal(mem.readU64(BOOT_GDT_ADDRESS), 0n, "descriptor 0 is the null descriptor");
  for (const name of ["cs", "ds", "es", "fs", "gs", "ss", "tr"] as const) {
    const seg = getSegment(sregs, name);
    const descriptor = mem.readU64(BOOT_GDT_ADDRESS + (seg.selector & ~7));
    assert.deepEqual(seg, segmentFromDescriptor(descriptor, seg.selector), name);
  }
  assert.equal(mem.readU64(BOOT_IDT_ADDRESS), 0n, "empty IDT");
});

Deno.test("long mode: CS is a 64-bit code segment (L=1, D=0), data segments are flat", () => {
  const sregs = longModeSregs();
  const cs = getSegment(sregs, "cs");
  assert.equal(cs.l, 1, "SDM 3.4.5: L=1 selects 64-bit mode");
  assert.equal(cs.db, 0, "SDM 3.4.5: with L=1, D must be 0");
  assert.equal(cs.type & 0b1000, 0b1000, "code");
  assert.equal(cs.present, 1);
  assert.equal(cs.dpl, 0);
  const ss = getSegment(sregs, "ss");
  assert.equal(ss.type & 0b1010, 0b0010, "writable data");
  assert.equal(ss.base, 0n);
  assert.equal(ss.limit, 0xffff_ffff);
  const tr = getSegment(sregs, "tr");
  assert.equal(tr.type, 0b1011, "busy 64-bit TSS");
  assert.equal(tr.s, 0, "a system descriptor");
  const cr0 = sregs.u64("cr0");
  assert.equal(cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE | X86_CR0_PG);
  assert.equal(sregs.u64("cr4") & X86_CR4_PAE, X86_CR4_PAE);
  assert.equal(sregs.u64("efer"), EFER_LME | EFER_LMA);
  assert.equal(sregs.u64("cr3"), BigInt(PML4_ADDRESS));
});

// --- identity page tables ------------------------------------------------------------------

const PTE_PRESENT = 1n;
const PTE_WRITABLE = 2n;
const PTE_PS = 1n << 7n;
/** Bits 51:12 of a paging-structure entry: the next table's address (SDM vol. 3A §4.5). */
const ADDRESS_MASK = 0x000f_ffff_ffff_f000n;

/**
 * Translates `linear` through 4-level paging rooted at `cr3`, as SDM vol. 3A §4.5 does for
 * a 2 MiB page: PML4E -> PDPTE -> PDE with PS=1. Returns undefined for a non-present entry.
 */
function translate(mem: GuestMemory, cr3: bigint, linear: number): number | undefined {
  const va = BigInt(linear);
  let table = cr3 & ADDRESS_MASK;
  for (const shift of [39n, 30n]) {
    const entry = mem.readU64(Number(table + ((va >> shift) & 511n) * 8n));
    if (!(entry & PTE_PRESENT)) return undefined;
    assert.equal(entry & PTE_PS, 0n, "no 1 GiB pages");
    assert.ok(entry & PTE_WRITABLE);
    table = entry & ADDRESS_MASK;
  }
  const pde = mem.readU64(Number(table + ((va >> 21n) & 511n) * 8n));
  if (!(pde & PTE_PRESENT)) return undefined;
  assert.equal(pde & PTE_PS, PTE_PS, "PDE maps a 2 MiB page");
  assert.ok(pde & PTE_WRITABLE);
  return Number((pde & 0x000f_ffff_ffe0_0000n) | (va & 0x1f_ffffn));
}

Deno.test("the boot page tables identity-map the first 4 GiB with 2 MiB pages", () => {
  const mem = GuestMemory.allocate(ramRegions(16 * MIB));
  writeIdentityPageTables(mem);
  const cr3 = longModeSregs().u64("cr3");
  const addresses = [0, 0x1234, 2 * MIB, 2 * MIB + 0xabc, 3 * GIB + 0x12_3456, 4 * GIB - 2 * MIB];
  for (const address of [...addresses, 4 * GIB - 1]) {
    assert.equal(translate(mem, cr3, address), address, `0x${address.toString(16)}`);
  }
  assert.equal(translate(mem, cr3, 4 * GIB), undefined, "nothing above 4 GiB is mapped");
});

// --- boot vCPU ---------------------------------------------------------------------------

kvmTest(
  "setBootVcpuState: KVM takes the long-mode state; RIP at entry, RSI at the zero page",
  () => {
    withVcpu(({ vcpu }) => {
      setBootVcpuState(vcpu, HELLO_ENTRY);
      const regs = vcpu.getRegs();
      assert.equal(regs.u64("rip"), BigInt(HELLO_ENTRY));
      assert.equal(regs.u64("rsi"), BigInt(ZERO_PAGE_ADDRESS), "boot.rst: RSI = boot_params");
      assert.equal(regs.u64("rsp"), BigInt(BOOT_STACK_POINTER));
      assert.equal(regs.u64("rflags"), 2n);
      const sregs = vcpu.getSregs();
      assert.deepEqual(getSegment(sregs, "cs"), getSegment(longModeSregs(), "cs"));
      assert.equal(sregs.u64("efer") & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
      assert.equal(sregs.u64("cr3"), BigInt(PML4_ADDRESS));
    });
  },
);
