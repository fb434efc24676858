import assert from "node:assert/strict";
import { pciMmio64Window } from "../../src/arch/x86_64/acpi/dsdt.ts";
import { buildMadt } from "../../src/arch/x86_64/acpi/madt.ts";
import { SDT_HEADER_SIZE } from "../../src/arch/x86_64/acpi/sdt.ts";
import { type AcpiTables, buildAcpiTables } from "../../src/arch/x86_64/acpi/tables.ts";
import { E820Type } from "../../src/arch/x86_64/boot/boot_params.ts";
import { GIB } from "../../src/arch/x86_64/layout.ts";
import { acpiexec, compile, disassemble } from "../helpers/acpica.ts";

/** COM1–COM4 as the VM has them. */
const COM_PORTS = [
  { base: 0x3f8, irq: 4 },
  { base: 0x2f8, irq: 3 },
  { base: 0x3e8, irq: 4 },
  { base: 0x2e8, irq: 3 },
];
/** 1 GiB of RAM: everything below the MMIO hole. */
const MEMORY_TOP_1G = GIB;

function vmTables(cpus: number, memoryTop = MEMORY_TOP_1G): AcpiTables {
  return buildAcpiTables({
    cpus,
    memoryTop,
    isa: { serialPorts: COM_PORTS, i8042: true, rtc: true },
  });
}

function table(tables: AcpiTables, signature: string): Uint8Array {
  const t = tables.tables.find((t) => t.signature === signature);
  assert.ok(t, `no ${signature} table`);
  return t.bytes;
}

function addressOf(tables: AcpiTables, signature: string): number {
  const t = tables.tables.find((t) => t.signature === signature);
  assert.ok(t, `no ${signature} table`);
  return t.address;
}

/** `[0xxh nnnn  n]   Field Name : value` lines of iasl's data table disassembly. */
function field(dsl: string, label: string): string[] {
  const escaped = label.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  return [...dsl.matchAll(new RegExp(`^\\[[^\\]]*\\]\\s+${escaped} : (.*)$`, "gm"))].map((m) =>
    m[1].trim()
  );
}

/** `  Decoded flag name : 1` lines under a flags field. */
function flag(dsl: string, label: string): string {
  const escaped = label.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const m = dsl.match(new RegExp(`^\\s+${escaped} : (\\d)$`, "m"));
  assert.ok(m, `no flag "${label}" in the disassembly`);
  return m[1];
}

const hex = (n: number, digits: number) => n.toString(16).toUpperCase().padStart(digits, "0");

/** Disassembles a table and checks that iasl found nothing wrong with it. */
async function cleanDisassembly(bytes: Uint8Array): Promise<string> {
  const { code, log, dsl } = await disassemble(bytes);
  assert.equal(code, 0, log);
  assert.doesNotMatch(log, /incorrect checksum|warning|error|invalid/i, log);
  assert.doesNotMatch(dsl, /incorrect checksum|terminates in the middle|invalid/i, dsl);
  assert.match(dsl, /\S/, "empty disassembly");
  return dsl;
}

Deno.test("the tables sit in the BIOS area from 0xE0000, 16-byte aligned, without overlap", () => {
  const t = vmTables(4);
  assert.equal(t.address, 0xe_0000);
  assert.equal(t.rsdpAddress, 0xe_0000);
  assert.equal(t.tables[0].signature, "RSD PTR ");
  assert.deepEqual(t.tables.map((x) => x.signature), [
    "RSD PTR ",
    "XSDT",
    "FACP",
    "APIC",
    "MCFG",
    "DSDT",
  ]);
  let end = t.address;
  for (const x of t.tables) {
    assert.equal(x.address % 16, 0, `${x.signature} is not 16-byte aligned`);
    assert.ok(x.address >= end, `${x.signature} overlaps the table before it`);
    end = x.address + x.bytes.length;
    const offset: number = x.address - t.address;
    assert.deepEqual(t.blob.subarray(offset, offset + x.bytes.length), x.bytes);
  }
  assert.ok(end <= t.address + t.blob.length);
  // Below 1 MiB, and clear of the reset-vector stub at 0xFFFF0.
  assert.ok(t.address + t.blob.length <= 0xf_fff0, "the tables leave the BIOS area");
});

Deno.test("the e820 entry reserves the tables' pages as ACPI memory", () => {
  const t = vmTables(2);
  assert.deepEqual(t.e820, {
    address: 0xe_0000,
    size: Math.ceil(t.blob.length / 4096) * 4096,
    type: E820Type.ACPI,
  });
});

Deno.test("RSDP: iasl compiles the same bytes from its fields (both checksums right)", async () => {
  const t = vmTables(1);
  const rsdp = table(t, "RSD PTR ");
  const source = `
[0008]                          Signature : "RSD PTR "
[0001]                           Checksum : 00
[0006]                             Oem ID : "CROSVM"
[0001]                           Revision : 02
[0004]                       RSDT Address : 00000000
[0004]                             Length : 00000024
[0008]                       XSDT Address : ${hex(addressOf(t, "XSDT"), 16)}
[0001]                  Extended Checksum : 00
[0003]                           Reserved : 000000
`;
  const { aml } = await compile(source);
  assert.deepEqual(rsdp, aml);
});

Deno.test("XSDT lists the FADT, MADT and MCFG", async () => {
  const t = vmTables(1);
  const dsl = await cleanDisassembly(table(t, "XSDT"));
  assert.deepEqual(
    field(dsl, "ACPI Table Address   0").concat(
      field(dsl, "ACPI Table Address   1"),
      field(dsl, "ACPI Table Address   2"),
    ),
    ["FACP", "APIC", "MCFG"].map((s) => hex(addressOf(t, s), 16)),
  );
});

Deno.test("FADT: revision 6.5, hardware-reduced, sleep and reset registers on the PM ports", async () => {
  const t = vmTables(1);
  const dsl = await cleanDisassembly(table(t, "FACP"));
  assert.deepEqual(field(dsl, "Table Length"), ["00000114"]); // 276 bytes
  assert.deepEqual(field(dsl, "Revision"), ["06"]);
  assert.deepEqual(field(dsl, "FADT Minor Revision"), ["05"]);
  assert.equal(flag(dsl, "Hardware Reduced (V5)"), "1");
  assert.equal(flag(dsl, "Control Method Power Button (V1)"), "1");
  assert.equal(flag(dsl, "Reset Register Supported (V2)"), "1");
  assert.equal(flag(dsl, "Legacy Devices Supported (V2)"), "1");
  assert.equal(flag(dsl, "8042 Present on ports 60/64 (V2)"), "1");
  assert.equal(flag(dsl, "CMOS RTC Not Present (V5)"), "0");
  assert.equal(flag(dsl, "MSI Not Supported (V4)"), "0");
  assert.deepEqual(field(dsl, "SCI Interrupt"), ["0000"]);
  // 64-bit DSDT pointer; the 32-bit one and the FACS stay empty.
  assert.deepEqual(field(dsl, "DSDT Address"), ["00000000", hex(addressOf(t, "DSDT"), 16)]);
  assert.deepEqual(field(dsl, "FACS Address"), ["00000000", "0000000000000000"]);
  // Generic Address Structures, in table order: reset, eight empty X_ blocks, sleep control,
  // sleep status.
  const spaces = field(dsl, "Space ID");
  const addresses = field(dsl, "Address");
  const widths = field(dsl, "Bit Width");
  const reg = (i: number) => [spaces[i], widths[i], addresses[i]];
  assert.equal(spaces.length, 11);
  assert.deepEqual(reg(0), ["01 [SystemIO]", "08", "0000000000000602"]);
  assert.deepEqual(reg(9), ["01 [SystemIO]", "08", "0000000000000600"]);
  assert.deepEqual(reg(10), ["01 [SystemIO]", "08", "0000000000000601"]);
  assert.deepEqual(field(dsl, "Value to cause reset"), ["06"]);
});

for (const cpus of [1, 4, 254]) {
  Deno.test(`MADT: ${cpus} enabled local APIC(s), the I/O APIC, NMI on LINT1`, async () => {
    const dsl = await cleanDisassembly(table(vmTables(cpus), "APIC"));
    assert.deepEqual(field(dsl, "Local Apic Address"), ["FEE00000"]);
    assert.equal(flag(dsl, "PC-AT Compatibility"), "1");
    const types = field(dsl, "Subtable Type");
    assert.equal(types.filter((s) => s === "00 [Processor Local APIC]").length, cpus);
    assert.deepEqual(
      field(dsl, "Local Apic ID"),
      Array.from({ length: cpus }, (_, i) => hex(i, 2)),
    );
    assert.deepEqual(
      [...dsl.matchAll(/^\s+Processor Enabled : (\d)$/gm)].map((m) => m[1]),
      Array(cpus).fill("1"),
    );
    assert.equal(types.filter((s) => s === "01 [I/O APIC]").length, 1);
    assert.deepEqual(field(dsl, "I/O Apic ID"), [hex(cpus, 2)]);
    assert.deepEqual(field(dsl, "Address"), ["FEC00000"]);
    assert.deepEqual(field(dsl, "Interrupt"), ["00000000"]); // GSI base
    assert.equal(types.filter((s) => s === "04 [Local APIC NMI]").length, 1);
    assert.deepEqual(field(dsl, "Interrupt Input LINT"), ["01"]);
    // KVM routes ISA IRQs to the same-numbered I/O APIC pins: no overrides.
    assert.equal(types.filter((s) => s.includes("Interrupt Source Override")).length, 0);
    assert.equal(types.length, cpus + 2);
  });
}

Deno.test("MADT: refuses vCPU counts it cannot describe", () => {
  assert.throws(() => buildMadt(0), RangeError);
  assert.throws(() => buildMadt(255), RangeError);
});

Deno.test("MCFG: one ECAM allocation at 0xE0000000 for segment 0, buses 0-255", async () => {
  const dsl = await cleanDisassembly(table(vmTables(1), "MCFG"));
  assert.deepEqual(field(dsl, "Base Address"), ["00000000E0000000"]);
  assert.deepEqual(field(dsl, "Segment Group Number"), ["0000"]);
  assert.deepEqual(field(dsl, "Start Bus Number"), ["00"]);
  assert.deepEqual(field(dsl, "End Bus Number"), ["FF"]);
});

/** The body of `Device (NAME) { … }` in iasl's DSDT disassembly, up to the next device. */
function deviceBody(dsl: string, name: string): string {
  const start = dsl.indexOf(`Device (${name})`);
  assert.ok(start >= 0, `no Device (${name})`);
  const next = dsl.indexOf("Device (", start + 1);
  return dsl.slice(start, next < 0 ? undefined : next);
}

/** The `Range Minimum`/`Range Maximum` pairs of every descriptor in `text`. */
function ranges(text: string): [string, string][] {
  const mins = [...text.matchAll(/(0x[0-9A-F]+),\s+\/\/ Range Minimum/g)].map((m) => m[1]);
  const maxs = [...text.matchAll(/(0x[0-9A-F]+),\s+\/\/ Range Maximum/g)].map((m) => m[1]);
  return mins.map((min, i) => [min, maxs[i]]);
}

Deno.test("DSDT: the PCI Express host bridge with its bus, I/O and memory windows", async () => {
  // 8 GiB of RAM: 768 MiB of it above 4 GiB past the hole, top at 8.75 GiB.
  const memoryTop = 8 * GIB + 768 * 2 ** 20;
  const dsl = await cleanDisassembly(table(vmTables(2, memoryTop), "DSDT"));
  const pci = deviceBody(dsl, "PCI0");
  assert.match(dsl, /Scope \(\\_SB\)/);
  assert.match(pci, /Name \(_HID, EisaId \("PNP0A08"\)/);
  assert.match(pci, /Name \(_CID, EisaId \("PNP0A03"\)/);
  for (const n of ["_SEG", "_UID", "_BBN"]) assert.match(pci, new RegExp(`Name \\(${n}, Zero\\)`));
  assert.match(pci, /WordBusNumber \(ResourceProducer, MinFixed, MaxFixed, PosDecode,/);
  assert.match(pci, /WordIO \(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,/);
  assert.match(pci, /DWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed,/);
  assert.match(pci, /QWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed,/);
  assert.deepEqual(ranges(pci), [
    ["0x0000", "0x00FF"], // buses
    ["0x0CF8", "0x0CF8"], // configuration mechanism #1 ports
    ["0x0000", "0x0CF7"],
    ["0x0D00", "0xFFFF"],
    ["0xD0000000", "0xDFFFFFFF"], // 32-bit BARs, below ECAM
    ["0x0000000240000000", "0x000000123FFFFFFF"], // 64 GiB from 9 GiB, above RAM
  ]);
});

Deno.test("the 64-bit PCI window starts at 4 GiB or the next GiB above RAM", () => {
  assert.deepEqual(pciMmio64Window(GIB), { base: 4 * GIB, size: 64 * GIB });
  assert.deepEqual(pciMmio64Window(4 * GIB + 1), { base: 5 * GIB, size: 64 * GIB });
  assert.deepEqual(pciMmio64Window(5 * GIB), { base: 5 * GIB, size: 64 * GIB });
});

Deno.test("DSDT: power button, \\_S5, ECAM and PM ports reserved, ISA devices with IRQs", async () => {
  const dsl = await cleanDisassembly(table(vmTables(1), "DSDT"));
  assert.match(deviceBody(dsl, "PWRB"), /Name \(_HID, EisaId \("PNP0C0C"\)/);
  assert.match(dsl, /Name \(\\_S5, Package \(0x04\)[^{]*\{\s*0x05,\s*Zero,\s*Zero,\s*Zero\s*\}/);
  const board = deviceBody(dsl, "MBRD");
  assert.match(board, /Name \(_HID, EisaId \("PNP0C02"\)/);
  assert.match(board, /DWordMemory \(ResourceConsumer,/);
  assert.deepEqual(ranges(board), [["0xE0000000", "0xEFFFFFFF"], ["0x0600", "0x0600"]]);
  COM_PORTS.forEach((port, i) => {
    const com = deviceBody(dsl, `COM${i + 1}`);
    assert.match(com, /Name \(_HID, EisaId \("PNP0501"\)/);
    const base = `0x${hex(port.base, 4)}`;
    assert.deepEqual(ranges(com), [[base, base]]);
    // COM1/COM3 and COM2/COM4 share their IRQs.
    assert.match(com, new RegExp(`IRQ \\(Edge, ActiveHigh, Shared, \\)\\s*\\{${port.irq}\\}`));
  });
  const kbd = deviceBody(dsl, "KBD");
  assert.match(kbd, /EisaId \("PNP0303"\)/);
  assert.deepEqual(ranges(kbd), [["0x0060", "0x0060"], ["0x0064", "0x0064"]]);
  assert.match(kbd, /IRQNoFlags \(\)\s*\{1\}/);
  const rtc = deviceBody(dsl, "RTC");
  assert.match(rtc, /EisaId \("PNP0B00"\)/);
  assert.deepEqual(ranges(rtc), [["0x0070", "0x0070"]]);
  assert.doesNotMatch(rtc, /IRQ/);
});

Deno.test("DSDT: without ISA devices only the bridge, the board, the button and its GED remain", async () => {
  const t = buildAcpiTables({ cpus: 1, memoryTop: MEMORY_TOP_1G });
  const dsl = await cleanDisassembly(table(t, "DSDT"));
  assert.deepEqual([...dsl.matchAll(/Device \((\w+)\)/g)].map((m) => m[1]), [
    "PCI0",
    "MBRD",
    "PWRB",
    "GED0",
  ]);
});

Deno.test("DSDT: GED0 is a Generic Event Device on GSI 16, edge, whose _EVT presses PWRB", async () => {
  const dsl = await cleanDisassembly(table(vmTables(1), "DSDT"));
  const ged = deviceBody(dsl, "GED0");
  assert.match(ged, /Name \(_HID, "ACPI0013"/);
  assert.match(
    ged,
    /Interrupt \(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, \)\s*\{\s*0x00000010,\s*\}/,
  );
  assert.match(ged, /Method \(_EVT, 1, NotSerialized\)[^{]*\{\s*Notify \(\\_SB\.PWRB, 0x80\)/);
});

Deno.test("ACPICA runs GED0._EVT: the power button gets its notification", async () => {
  const t = vmTables(1);
  const tables = ["FACP", "DSDT", "APIC", "MCFG"].map((s) => table(t, s));
  const { log } = await acpiexec(tables, "Evaluate \\_SB.GED0._EVT 16; Resources \\_SB.GED0");
  assert.doesNotMatch(log, /ACPI (Error|Warning|Exception)|AE_AML/i, log);
  assert.match(log, /Received a Device Notify on \[PWRB\] \S+ Value 0x80/, log);
  assert.match(log, /Extended IRQ Resource[\s\S]*Triggering : Edge[\s\S]*Dword00 : 00000010/, log);
});

Deno.test("DSDT: iasl recompiles its disassembly into the very same AML", async () => {
  const dsdt = table(vmTables(4, 6 * GIB), "DSDT");
  const dsl = await cleanDisassembly(dsdt);
  const { aml } = await compile(dsl);
  assert.deepEqual(aml.subarray(SDT_HEADER_SIZE), dsdt.subarray(SDT_HEADER_SIZE));
});

Deno.test("ACPICA loads the tables and evaluates \\_S5 and every _CRS cleanly", async () => {
  const t = vmTables(2);
  const tables = ["FACP", "DSDT", "APIC", "MCFG"].map((s) => table(t, s));
  const devices = ["PCI0", "MBRD", "COM1", "COM2", "COM3", "COM4", "KBD", "RTC"];
  const commands = ["Evaluate \\_S5", ...devices.map((d) => `Resources \\_SB.${d}`)].join("; ");
  const { log } = await acpiexec(tables, commands);
  assert.match(log, /1 ACPI AML tables successfully acquired and loaded/, log);
  assert.doesNotMatch(log, /ACPI (Error|Warning|Exception)|AE_AML|Incorrect checksum/i, log);
  assert.match(
    log,
    /\[Package\] Contains 4 Elements:\s+\[Integer\] = 0000000000000005\s+\[Integer\] = 0+\s/,
    log,
  );
  assert.equal([...log.matchAll(/\[\d+\] EndTag Resource/g)].length, devices.length, log);
});

/** The GSIs of PCI INTx, written out: INTA#–INTD# of slot s go to GSI_ROTATION[(s + pin) % 4]. */
const GSI_ROTATION = [5, 9, 10, 11];

/** The `_PRT` entries we expect: every slot 0–31 and pin 0–3 of bus 0, swizzled over the GSIs. */
function expectedPrt(): number[][] {
  const out: number[][] = [];
  for (let slot = 0; slot < 32; slot++) {
    for (let pin = 0; pin < 4; pin++) {
      out.push([slot * 0x1_0000 + 0xffff, pin, 0, GSI_ROTATION[(slot + pin) % 4]]);
    }
  }
  return out;
}

/**
 * A reader for the little AML a `_PRT` holds (ACPI 6.5 §20.2): PkgLength, DefPackage and the
 * integer encodings.
 */
class AmlReader {
  constructor(readonly bytes: Uint8Array, public at: number) {}

  byte(): number {
    assert.ok(this.at < this.bytes.length, "AML ends early");
    return this.bytes[this.at++];
  }

  /** A PkgLength; returns the offset just past the package it measures. */
  pkgLengthEnd(): number {
    const start = this.at;
    const lead = this.byte();
    const follow = lead >> 6;
    if (follow === 0) return start + (lead & 0x3f);
    let length = lead & 0x0f;
    for (let i = 0; i < follow; i++) length += this.byte() * 2 ** (4 + 8 * i);
    return start + length;
  }

  integer(): number {
    const op = this.byte();
    const sizes: Record<number, number> = { 0x0a: 1, 0x0b: 2, 0x0c: 4, 0x0e: 8 };
    if (op === 0x00 || op === 0x01) return op; // ZeroOp, OneOp
    assert.ok(op in sizes, `not an integer: opcode 0x${op.toString(16)} at ${this.at - 1}`);
    let value = 0;
    for (let i = 0; i < sizes[op]; i++) value += this.byte() * 2 ** (8 * i);
    return value;
  }

  /** A DefPackage; `element` reads each element. */
  package<T>(element: () => T): T[] {
    assert.equal(this.byte(), 0x12, "PackageOp");
    const end = this.pkgLengthEnd();
    const count = this.byte();
    const out = Array.from({ length: count }, element);
    assert.equal(this.at, end, "the package's PkgLength covers exactly its elements");
    return out;
  }
}

Deno.test("DSDT: _PRT bytes route every slot and pin of bus 0 to a GSI, with no link device", () => {
  const dsdt = table(vmTables(1), "DSDT");
  // NameOp "_PRT" PackageOp: the only `_PRT` in the table.
  const needle = [0x08, ...new TextEncoder().encode("_PRT"), 0x12];
  const starts = [...dsdt.keys()].filter((i) => needle.every((b, j) => dsdt[i + j] === b));
  assert.equal(starts.length, 1, "one Name (_PRT, Package …)");
  const reader = new AmlReader(dsdt, starts[0] + 5);
  const entries = reader.package(() => reader.package(() => reader.integer()));
  assert.deepEqual(entries, expectedPrt());
  // Slot 1 is the first virtio function's: its INTA# stays on GSI 9.
  assert.deepEqual(entries[4], [0x1_ffff, 0, 0, 9]);
});

Deno.test("DSDT: iasl disassembles the _PRT under PCI0 with all 128 entries", async () => {
  const dsl = await cleanDisassembly(table(vmTables(1), "DSDT"));
  const pci = deviceBody(dsl, "PCI0");
  assert.match(pci, /Name \(_PRT, Package \(0x80\)/);
  const value = (s: string) => s === "Zero" ? 0 : s === "One" ? 1 : parseInt(s, 16);
  const entries = [
    ...pci.matchAll(
      /Package \(0x04\)\s*\{\s*(0x[0-9A-F]+),\s*(Zero|One|0x0[23]),\s*(Zero),\s*(0x[0-9A-F]+)\s*\}/g,
    ),
  ].map((m) => m.slice(1, 5).map(value));
  assert.deepEqual(entries, expectedPrt());
});

Deno.test("ACPICA evaluates _PRT without complaint: 128 packages of four integers", async () => {
  const t = vmTables(1);
  const tables = ["FACP", "DSDT", "APIC", "MCFG"].map((s) => table(t, s));
  const { log } = await acpiexec(tables, "Evaluate \\_SB.PCI0._PRT");
  assert.doesNotMatch(log, /ACPI (Error|Warning|Exception)|AE_AML|AE_AML_OPERAND/i, log);
  assert.match(log, /Evaluation of \\_SB.PCI0._PRT returned object/, log);
  assert.match(log, /\[Package\] Contains 128 Elements:/, log);
  const entries = [
    ...log.matchAll(
      /\[Package\] Contains 4 Elements:\s+\[Integer\] = ([0-9A-F]+)\s+\[Integer\] = ([0-9A-F]+)\s+\[Integer\] = ([0-9A-F]+)\s+\[Integer\] = ([0-9A-F]+)/g,
    ),
  ].map((m) => m.slice(1, 5).map((h) => parseInt(h, 16)));
  assert.deepEqual(entries, expectedPrt());
});
