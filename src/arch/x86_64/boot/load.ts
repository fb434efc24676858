/**
 * Puts everything the Linux 64-bit boot protocol needs into guest memory and the
 * boot vCPU: kernel, initrd, command line, zero page with the e820 map, GDT,
 * identity page tables, and the entry registers.
 *
 * @module
 */

import { UserError } from "../../../errors.ts";
import type { VcpuFd } from "../../../ffi/kvm.ts";
import { cString } from "../../../ffi/libc.ts";
import { type BootImage, ImageError } from "./image.ts";
import { loadKernel } from "./kernel.ts";
import type { GuestMemory } from "../../../memory.ts";
import {
  BootParams,
  buildBootParams,
  DEFAULT_CMDLINE_SIZE,
  type E820Entry,
  E820Type,
} from "./boot_params.ts";
import {
  CMDLINE_ADDRESS,
  EBDA_START,
  HIGH_MEMORY_START,
  PCIE_ECAM_BASE,
  PCIE_ECAM_SIZE,
  ZERO_PAGE_ADDRESS,
} from "../layout.ts";
import { setEntryRegs, setLongModeSregs, writeGdt, writeIdentityPageTables } from "./long_mode.ts";

/** Highest initrd address a kernel accepts when it does not say (boot.rst: `initrd_addr_max`). */
const DEFAULT_INITRD_ADDR_MAX = 0x37ff_ffff;
/** Initrds are page aligned. */
const PAGE_SIZE = 4096;

/** What to boot. */
export interface BootSource {
  /** The kernel image. */
  kernel: BootImage;
  /** The initrd, if any. */
  initrd?: BootImage;
  /** The full kernel command line. */
  cmdline: string;
  /** The ACPI tables, already in guest memory: where the RSDP is and the range they occupy. */
  acpi?: { rsdpAddress: number; e820: E820Entry };
}

/** Thrown for a command line longer than the kernel accepts. */
export class CmdlineError extends UserError {
  /** @param length the command line's length @param limit the kernel's `cmdline_size` */
  constructor(length: number, limit: number) {
    super(`kernel command line is ${length} bytes, the kernel accepts at most ${limit}`);
  }
}

/**
 * The e820 map: conventional RAM below the EBDA, every RAM region from 1 MiB up, and the
 * reserved ECAM window.
 */
export function e820Map(mem: GuestMemory): E820Entry[] {
  const map: E820Entry[] = [];
  for (const r of mem.regions) {
    if (r.guestAddress === 0) {
      map.push({ address: 0, size: Math.min(r.size, EBDA_START), type: E820Type.RAM });
      if (r.size > HIGH_MEMORY_START) {
        map.push({
          address: HIGH_MEMORY_START,
          size: r.size - HIGH_MEMORY_START,
          type: E820Type.RAM,
        });
      }
    } else {
      map.push({ address: r.guestAddress, size: r.size, type: E820Type.RAM });
    }
  }
  // The ECAM window, reserved so Linux trusts the MCFG at early boot (PCI Firmware 3.3 §4.1.2).
  map.push({ address: PCIE_ECAM_BASE, size: PCIE_ECAM_SIZE, type: E820Type.RESERVED });
  return map.sort((a, b) => a.address - b.address);
}

/** Loads the kernel, initrd and boot data into guest memory; returns the 64-bit entry point. */
export function loadBootImages(mem: GuestMemory, source: BootSource): number {
  const kernel = loadKernel(mem, source.kernel);
  const header = kernel.setupHeader;
  const headerU32 = (offset: number, fallback: number) => {
    const at = offset - BootParams.SETUP_HEADER;
    if (!header || header.length < at + 4) return fallback;
    return new DataView(header.buffer, header.byteOffset).getUint32(at, true) || fallback;
  };

  const cmdlineLimit = headerU32(BootParams.CMDLINE_SIZE, DEFAULT_CMDLINE_SIZE);
  const cmdline = cString(source.cmdline);
  if (cmdline.length - 1 > cmdlineLimit) throw new CmdlineError(cmdline.length - 1, cmdlineLimit);
  mem.write(CMDLINE_ADDRESS, cmdline);

  let initrd: { address: number; size: number } | undefined;
  if (source.initrd) {
    const { path, size } = source.initrd;
    const lowTop = mem.regions[0].size;
    const top = Math.min(
      headerU32(BootParams.INITRD_ADDR_MAX, DEFAULT_INITRD_ADDR_MAX) + 1,
      lowTop,
    );
    const address = Math.floor((top - size) / PAGE_SIZE) * PAGE_SIZE;
    if (address < kernel.end) {
      throw new ImageError(path, `initrd of ${size} bytes does not fit in guest memory`);
    }
    source.initrd.read(0, mem.slice(address, size));
    initrd = { address, size };
  }

  mem.write(
    ZERO_PAGE_ADDRESS,
    buildBootParams({
      cmdlineAddress: CMDLINE_ADDRESS,
      e820: source.acpi ? [...e820Map(mem), source.acpi.e820] : e820Map(mem),
      setupHeader: header,
      initrd,
      acpiRsdpAddress: source.acpi?.rsdpAddress,
    }),
  );
  writeGdt(mem);
  writeIdentityPageTables(mem);
  return kernel.entry;
}

/** Puts the boot vCPU in 64-bit mode at `entry` with RSI at the zero page. */
export function setBootVcpuState(vcpu: VcpuFd, entry: number): void {
  const sregs = vcpu.getSregs();
  setLongModeSregs(sregs);
  vcpu.setSregs(sregs);
  const regs = vcpu.getRegs();
  setEntryRegs(regs, entry, ZERO_PAGE_ADDRESS);
  vcpu.setRegs(regs);
}
