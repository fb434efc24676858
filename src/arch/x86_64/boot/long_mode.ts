/**
 * CPU and memory state for entering a kernel in 64-bit long mode, as the Linux
 * x86 boot protocol's 64-bit entry requires (boot.rst, "64-bit Boot Protocol"):
 * flat segments from a GDT, identity-mapped paging, CR0.PE|PG, CR4.PAE, EFER.LME|LMA.
 *
 * @module
 */

import {
  type Regs,
  type Segment,
  type SegmentName,
  setDtable,
  setSegment,
  type Sregs,
} from "../../../ffi/kvm.ts";
import type { GuestMemory } from "../../../memory.ts";
import {
  BOOT_GDT_ADDRESS,
  BOOT_IDT_ADDRESS,
  BOOT_STACK_POINTER,
  PD_ADDRESS,
  PDPT_ADDRESS,
  PML4_ADDRESS,
} from "../layout.ts";

/** Control register bits (Intel SDM vol. 3A §2.5). */
export const X86_CR0_PE = 1n << 0n;
/** CR0.ET: extension type, hardwired to 1 on modern CPUs. */
export const X86_CR0_ET = 1n << 4n;
/** CR0.NE: native x87 error reporting. */
export const X86_CR0_NE = 1n << 5n;
/** CR0.PG: paging. */
export const X86_CR0_PG = 1n << 31n;
/** CR4.PAE: physical address extension, required for long mode. */
export const X86_CR4_PAE = 1n << 5n;
/** EFER.LME: long mode enable (Intel SDM vol. 3A §2.2.1). */
export const EFER_LME = 1n << 8n;
/** EFER.LMA: long mode active. */
export const EFER_LMA = 1n << 10n;
/** RFLAGS bit 1 is reserved and always set. */
export const RFLAGS_RESERVED = 2n;

/** Page-table entry bits (Intel SDM vol. 3A §4.5). */
const PTE_PRESENT = 1n << 0n;
const PTE_WRITABLE = 1n << 1n;
const PTE_PAGE_SIZE = 1n << 7n;
/** Entries per page-table page. */
const ENTRIES_PER_TABLE = 512;
/** The four page directories map 4 GiB with 2 MiB pages. */
const IDENTITY_MAPPED_GIB = 4;
const TWO_MIB = 2n << 20n;

/** GDT descriptor access/flag words (access byte in bits 0–7, flags nibble in bits 12–15). */
const GDT_CODE64 = 0xa09b; // G=1 L=1, present, DPL0, code execute/read accessed
const GDT_DATA = 0xc093; // G=1 D/B=1, present, DPL0, data read/write accessed
const GDT_TSS = 0x808b; // G=1, present, 64-bit busy TSS

/** The boot GDT: null, code, data, TSS — selectors 0x08, 0x10, 0x18. */
const BOOT_GDT = [0, GDT_CODE64, GDT_DATA, GDT_TSS] as const;
const CODE_SELECTOR = 0x08;
const DATA_SELECTOR = 0x10;
const TSS_SELECTOR = 0x18;
const GDT_ENTRY_SIZE = 8;

/** Encodes one flat GDT descriptor (base 0, limit 0xfffff) with the given access/flags word. */
export function gdtEntry(flags: number, base = 0, limit = 0xfffff): bigint {
  const b = BigInt(base);
  const l = BigInt(limit);
  const f = BigInt(flags & 0xf0ff);
  return ((b & 0xff00_0000n) << 32n) | ((b & 0x00ff_ffffn) << 16n) | (l & 0xffffn) |
    ((l & 0xf_0000n) << 32n) | (f << 40n);
}

/** Decodes the descriptor `flags` at `selector` into the KVM segment it loads. */
export function segmentFromGdt(flags: number, selector: number): Segment {
  const access = flags & 0xff;
  const g = (flags >> 15) & 1;
  return {
    base: 0n,
    limit: g ? 0xffff_ffff : 0xfffff,
    selector,
    type: access & 0xf,
    present: (access >> 7) & 1,
    dpl: (access >> 5) & 3,
    s: (access >> 4) & 1,
    db: (flags >> 14) & 1,
    l: (flags >> 13) & 1,
    g,
    avl: (flags >> 12) & 1,
    unusable: 0,
  };
}

/** Writes the boot GDT and an empty IDT into guest memory. */
export function writeGdt(mem: GuestMemory): void {
  BOOT_GDT.forEach((flags, i) => {
    mem.writeU64(BOOT_GDT_ADDRESS + i * GDT_ENTRY_SIZE, flags === 0 ? 0n : gdtEntry(flags));
  });
  mem.writeU64(BOOT_IDT_ADDRESS, 0n);
}

/** Writes page tables identity-mapping the first 4 GiB with 2 MiB pages. */
export function writeIdentityPageTables(mem: GuestMemory): void {
  const table = PTE_PRESENT | PTE_WRITABLE;
  mem.writeU64(PML4_ADDRESS, BigInt(PDPT_ADDRESS) | table);
  for (let gib = 0; gib < IDENTITY_MAPPED_GIB; gib++) {
    const pd = PD_ADDRESS + gib * 0x1000;
    mem.writeU64(PDPT_ADDRESS + gib * 8, BigInt(pd) | table);
    for (let i = 0; i < ENTRIES_PER_TABLE; i++) {
      const address = BigInt(gib * ENTRIES_PER_TABLE + i) * TWO_MIB;
      mem.writeU64(pd + i * 8, address | table | PTE_PAGE_SIZE);
    }
  }
}

/** Sets segment, descriptor-table and control registers for 64-bit long mode. */
export function setLongModeSregs(sregs: Sregs): void {
  const code = segmentFromGdt(GDT_CODE64, CODE_SELECTOR);
  const data = segmentFromGdt(GDT_DATA, DATA_SELECTOR);
  setSegment(sregs, "cs", code);
  for (const name of ["ds", "es", "fs", "gs", "ss"] as SegmentName[]) setSegment(sregs, name, data);
  setSegment(sregs, "tr", { ...segmentFromGdt(GDT_TSS, TSS_SELECTOR), s: 0 });
  setDtable(sregs, "gdt", BigInt(BOOT_GDT_ADDRESS), BOOT_GDT.length * GDT_ENTRY_SIZE - 1);
  setDtable(sregs, "idt", BigInt(BOOT_IDT_ADDRESS), GDT_ENTRY_SIZE - 1);
  sregs.setU64("cr0", X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG);
  sregs.setU64("cr3", BigInt(PML4_ADDRESS));
  sregs.setU64("cr4", X86_CR4_PAE);
  sregs.setU64("efer", EFER_LME | EFER_LMA);
}

/** Sets the general registers for the 64-bit entry: RIP at the kernel, RSI at the zero page. */
export function setEntryRegs(regs: Regs, entry: number, zeroPage: number): void {
  regs.bytes.fill(0);
  regs.setU64("rip", entry);
  regs.setU64("rsi", zeroPage);
  regs.setU64("rsp", BOOT_STACK_POINTER);
  regs.setU64("rbp", BOOT_STACK_POINTER);
  regs.setU64("rflags", RFLAGS_RESERVED);
}
