/**
 * ELF64 kernel loading: PT_LOAD segments read from the file straight to their physical addresses
 * (`p_paddr`, as Linux's vmlinux needs), entered at `e_entry`.
 * Header layouts from the System V gABI, "ELF Header" and "Program Header".
 *
 * @module
 */

import type { GuestMemory } from "../../../memory.ts";
import { type BootImage, ImageError, type LoadedKernel, readBytes } from "./image.ts";

/** `\x7fELF`. */
const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
/** e_ident[EI_CLASS] = ELFCLASS64. */
const EI_CLASS = 4;
const ELFCLASS64 = 2;
/** e_ident[EI_DATA] = ELFDATA2LSB. */
const EI_DATA = 5;
const ELFDATA2LSB = 1;
/** e_type = ET_EXEC. */
const ET_EXEC = 2;
/** e_machine = EM_X86_64. */
const EM_X86_64 = 62;
/** p_type = PT_LOAD. */
const PT_LOAD = 1;
/** sizeof(Elf64_Ehdr). */
const EHDR_SIZE = 64;
/** sizeof(Elf64_Phdr). */
const PHDR_SIZE = 56;

/** Elf64_Ehdr field offsets. */
const Ehdr = { E_TYPE: 16, E_MACHINE: 18, E_ENTRY: 24, E_PHOFF: 32, E_PHENTSIZE: 54, E_PHNUM: 56 };
/** Elf64_Phdr field offsets. */
const Phdr = { P_TYPE: 0, P_OFFSET: 8, P_PADDR: 24, P_FILESZ: 32, P_MEMSZ: 40 };

/** True when `image` starts with the ELF magic. */
export function isElf(image: Uint8Array): boolean {
  return image.length >= ELF_MAGIC.length && ELF_MAGIC.every((b, i) => image[i] === b);
}

function u64(view: DataView, at: number): number {
  const value = view.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  return Number(value);
}

/** Loads an x86_64 ELF64 executable into guest memory. Throws ImageError on any inconsistency. */
export function loadElf(mem: GuestMemory, image: BootImage): LoadedKernel {
  const fail = (reason: string) => new ImageError(image.path, reason);
  if (image.size < EHDR_SIZE) throw fail("truncated ELF header");
  const header = readBytes(image, 0, EHDR_SIZE);
  const view = new DataView(header.buffer);
  if (header[EI_CLASS] !== ELFCLASS64 || header[EI_DATA] !== ELFDATA2LSB) {
    throw fail("not a little-endian ELF64 file");
  }
  if (view.getUint16(Ehdr.E_MACHINE, true) !== EM_X86_64) throw fail("ELF is not for x86_64");
  if (view.getUint16(Ehdr.E_TYPE, true) !== ET_EXEC) throw fail("ELF is not an executable");
  const phoff = u64(view, Ehdr.E_PHOFF);
  const phnum = view.getUint16(Ehdr.E_PHNUM, true);
  if (view.getUint16(Ehdr.E_PHENTSIZE, true) !== PHDR_SIZE || phnum === 0) {
    throw fail("ELF has no usable program headers");
  }
  if (phoff + phnum * PHDR_SIZE > image.size) {
    throw fail(
      `truncated: ${phnum} program headers end at byte ${phoff + phnum * PHDR_SIZE}, the file ` +
        `has ${image.size}`,
    );
  }
  const table = new DataView(readBytes(image, phoff, phnum * PHDR_SIZE).buffer);

  let end = 0;
  let loaded = 0;
  for (let i = 0; i < phnum; i++) {
    const at = i * PHDR_SIZE;
    if (table.getUint32(at + Phdr.P_TYPE, true) !== PT_LOAD) continue;
    const offset = u64(table, at + Phdr.P_OFFSET);
    const paddr = u64(table, at + Phdr.P_PADDR);
    const filesz = u64(table, at + Phdr.P_FILESZ);
    const memsz = u64(table, at + Phdr.P_MEMSZ);
    if (offset + filesz > image.size) {
      throw fail(
        `truncated: segment ${i} ends at byte ${offset + filesz}, the file has ${image.size}`,
      );
    }
    if (memsz < filesz) throw fail(`segment ${i} is larger in the file than in memory`);
    if (!mem.contains(paddr, memsz)) {
      throw fail(
        `segment ${i} at 0x${paddr.toString(16)} (+${memsz} bytes) does not fit in guest memory`,
      );
    }
    image.read(offset, mem.slice(paddr, filesz));
    mem.slice(paddr + filesz, memsz - filesz).fill(0);
    end = Math.max(end, paddr + memsz);
    loaded++;
  }
  if (loaded === 0) throw fail("ELF has no PT_LOAD segment");
  const entry = u64(view, Ehdr.E_ENTRY);
  if (!mem.contains(entry, 1)) throw fail(`entry point 0x${entry.toString(16)} is not in RAM`);
  return { entry, end };
}
