// ELF64 kernel loading (System V gABI "ELF Header" and "Program Header"), on a real ELF that
// binutils links from tests/guests/hello.S, and on copies of it patched to be wrong.

import assert from "node:assert/strict";
import { MIB, ramRegions } from "../../../src/arch/x86_64/layout.ts";
import { loadElf } from "../../../src/arch/x86_64/boot/elf.ts";
import { bytesImage, ImageError } from "../../../src/arch/x86_64/boot/image.ts";
import { loadKernel } from "../../../src/arch/x86_64/boot/kernel.ts";
import { GuestMemory } from "../../../src/memory.ts";
import { buildGuest } from "../../helpers/guests.ts";

const PATH = await buildGuest("hello");
const HELLO = await Deno.readFile(PATH);
const MEM_SIZE = 64 * MIB;

/** Elf64_Ehdr and Elf64_Phdr field offsets (gABI). */
const E_IDENT_CLASS = 4;
const E_IDENT_DATA = 5;
const E_TYPE = 16;
const E_MACHINE = 18;
const E_ENTRY = 24;
const E_PHOFF = 32;
const E_PHNUM = 56;
const PHDR_SIZE = 56;
const P_TYPE = 0;
const P_OFFSET = 8;
const P_PADDR = 24;
const P_FILESZ = 32;
const P_MEMSZ = 40;
/** p_type values. */
const PT_LOAD = 1;
const PT_NOTE = 4;

const helloView = new DataView(HELLO.buffer);
const PHOFF = Number(helloView.getBigUint64(E_PHOFF, true));
const PHNUM = helloView.getUint16(E_PHNUM, true);
/** The hello guest links an empty trampoline segment, then its code: segment 1. */
const TEXT = 1;
const phdr = (i: number, field: number) => PHOFF + i * PHDR_SIZE + field;
const TEXT_PADDR = Number(helloView.getBigUint64(phdr(TEXT, P_PADDR), true));
const TEXT_OFFSET = Number(helloView.getBigUint64(phdr(TEXT, P_OFFSET), true));
const TEXT_FILESZ = Number(helloView.getBigUint64(phdr(TEXT, P_FILESZ), true));

/** A copy of the hello ELF with `patch` applied to its bytes. */
function patched(patch: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const bytes = HELLO.slice();
  patch(new DataView(bytes.buffer), bytes);
  return bytes;
}

/** Sets a u64 field of program header `i`. */
const setPhdr = (i: number, field: number, value: number) => (view: DataView) =>
  view.setBigUint64(phdr(i, field), BigInt(value), true);

Deno.test("the hello guest is the ELF these tests assume: ET_EXEC x86_64, code PT_LOAD at 2 MiB", () => {
  assert.equal(helloView.getUint16(E_TYPE, true), 2);
  assert.equal(helloView.getUint16(E_MACHINE, true), 62);
  assert.equal(PHNUM, 2);
  assert.equal(helloView.getUint32(phdr(TEXT, P_TYPE), true), PT_LOAD);
  assert.equal(TEXT_PADDR, 2 * MIB);
  assert.ok(TEXT_FILESZ > 0);
});

Deno.test("loadElf places each PT_LOAD segment at p_paddr and returns e_entry and the end", () => {
  const mem = GuestMemory.allocate(ramRegions(MEM_SIZE));
  const kernel = loadKernel(mem, bytesImage(PATH, HELLO));
  assert.equal(kernel.entry, Number(helloView.getBigUint64(E_ENTRY, true)));
  assert.equal(kernel.entry, 2 * MIB);
  assert.equal(kernel.end, TEXT_PADDR + TEXT_FILESZ);
  assert.equal(kernel.setupHeader, undefined, "an ELF kernel has no setup header");
  assert.deepEqual(
    mem.read(TEXT_PADDR, TEXT_FILESZ),
    HELLO.subarray(TEXT_OFFSET, TEXT_OFFSET + TEXT_FILESZ),
  );
});

Deno.test("loadElf zeroes a segment's bss (p_memsz beyond p_filesz) over dirty memory", () => {
  const BSS = 8192;
  const image = patched(setPhdr(TEXT, P_MEMSZ, TEXT_FILESZ + BSS));
  const mem = GuestMemory.allocate(ramRegions(MEM_SIZE));
  mem.slice(TEXT_PADDR, TEXT_FILESZ + BSS + 16).fill(0xee);
  const kernel = loadElf(mem, bytesImage(PATH, image));
  assert.equal(kernel.end, TEXT_PADDR + TEXT_FILESZ + BSS);
  assert.deepEqual(
    mem.read(TEXT_PADDR, TEXT_FILESZ),
    HELLO.subarray(TEXT_OFFSET, TEXT_OFFSET + TEXT_FILESZ),
    "file bytes",
  );
  assert.ok(mem.read(TEXT_PADDR + TEXT_FILESZ, BSS).every((b) => b === 0), "bss is zero");
  assert.ok(
    mem.read(kernel.end, 16).every((b) => b === 0xee),
    "memory past p_memsz is left alone",
  );
});

/** Each way an ELF can be wrong, how to make hello.elf so, and what the error must say. */
const BAD_ELVES: { what: string; image: () => Uint8Array; says: RegExp }[] = [
  {
    what: "a header cut short of sizeof(Elf64_Ehdr) = 64 bytes",
    image: () => HELLO.slice(0, 40),
    says: /truncated ELF header/,
  },
  {
    what: "ELFCLASS32 (e_ident[EI_CLASS] = 1)",
    image: () => patched((_, b) => void (b[E_IDENT_CLASS] = 1)),
    says: /not a little-endian ELF64/,
  },
  {
    what: "big-endian ELFDATA2MSB (e_ident[EI_DATA] = 2)",
    image: () => patched((_, b) => void (b[E_IDENT_DATA] = 2)),
    says: /not a little-endian ELF64/,
  },
  {
    what: "e_machine EM_386 instead of EM_X86_64",
    image: () => patched((v) => v.setUint16(E_MACHINE, 3, true)),
    says: /not for x86_64/,
  },
  {
    what: "e_type ET_DYN instead of ET_EXEC",
    image: () => patched((v) => v.setUint16(E_TYPE, 3, true)),
    says: /not an executable/,
  },
  {
    what: "no program headers (e_phnum = 0)",
    image: () => patched((v) => v.setUint16(E_PHNUM, 0, true)),
    says: /no usable program headers/,
  },
  {
    what: "program headers past the end of the file",
    image: () => patched((v) => v.setBigUint64(E_PHOFF, BigInt(HELLO.length - 8), true)),
    says: /truncated: \d+ program headers end at byte \d+, the file has \d+/,
  },
  {
    what: "no PT_LOAD segment (all PT_NOTE)",
    image: () =>
      patched((v) => {
        for (let i = 0; i < PHNUM; i++) v.setUint32(phdr(i, P_TYPE), PT_NOTE, true);
      }),
    says: /no PT_LOAD segment/,
  },
  {
    what: "a segment whose p_offset + p_filesz runs past the end of the file",
    image: () => patched(setPhdr(TEXT, P_OFFSET, HELLO.length - TEXT_FILESZ + 1)),
    says: new RegExp(
      `truncated: segment 1 ends at byte ${HELLO.length + 1}, the file has ${HELLO.length}`,
    ),
  },
  {
    what: "p_filesz > p_memsz",
    image: () => patched(setPhdr(TEXT, P_MEMSZ, TEXT_FILESZ - 1)),
    says: /segment 1 is larger in the file than in memory/,
  },
  {
    what: "a segment at the end of RAM that does not fit",
    image: () => patched(setPhdr(TEXT, P_PADDR, MEM_SIZE - TEXT_FILESZ + 1)),
    says: new RegExp(`segment 1 at 0x${(MEM_SIZE - TEXT_FILESZ + 1).toString(16)} .* does not fit`),
  },
  {
    what: "a segment in the 32-bit MMIO hole",
    image: () => patched(setPhdr(TEXT, P_PADDR, 0xfee0_0000)),
    says: /segment 1 at 0xfee00000 \(\+\d+ bytes\) does not fit in guest memory/,
  },
  {
    what: "e_entry outside RAM",
    image: () => patched((v) => v.setBigUint64(E_ENTRY, 0xfec0_0000n, true)),
    says: /entry point 0xfec00000 is not in RAM/,
  },
];

for (const { what, image, says } of BAD_ELVES) {
  Deno.test(`loadKernel refuses an ELF with ${what}: ImageError naming the file`, () => {
    const mem = GuestMemory.allocate(ramRegions(MEM_SIZE));
    assert.throws(() => loadKernel(mem, bytesImage(PATH, image())), (e: unknown) => {
      assert.ok(e instanceof ImageError, `${e}`);
      assert.equal(e.path, PATH);
      assert.ok(e.message.startsWith(`${PATH}: `), e.message);
      assert.match(e.message, says);
      return true;
    });
  });
}
