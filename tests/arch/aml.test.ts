import assert from "node:assert/strict";
import {
  buffer,
  device,
  dwordMemory,
  eisaId,
  eisaIdValue,
  endTag,
  extendedInterrupt,
  integer,
  io,
  irq,
  MemoryCaching,
  method,
  name,
  nameSeg,
  nameString,
  notify,
  pkg,
  pkgLength,
  qwordMemory,
  resourceTemplate,
  scope,
  string,
  wordBusNumber,
  wordIo,
} from "../../src/arch/x86_64/acpi/aml.ts";
import { SDT_HEADER_SIZE } from "../../src/arch/x86_64/acpi/sdt.ts";
import { compile } from "../helpers/acpica.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);
const ascii = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("PkgLength: one byte holds a total length below 64, counting itself", () => {
  assert.deepEqual(pkgLength(0), bytes(0x01));
  assert.deepEqual(pkgLength(62), bytes(0x3f));
});

Deno.test("PkgLength: two bytes, the low nibble in the lead byte (ACPI 6.5 §20.2.4)", () => {
  // 63 content bytes + 2 = 65 = 0x041: lead 0x40 | 0x1, then 0x04.
  assert.deepEqual(pkgLength(63), bytes(0x41, 0x04));
  // The largest two-byte length, 4095 = 0xFFF.
  assert.deepEqual(pkgLength(4093), bytes(0x4f, 0xff));
});

Deno.test("PkgLength: three and four bytes", () => {
  // 4094 + 3 = 4097 = 0x1001.
  assert.deepEqual(pkgLength(4094), bytes(0x81, 0x00, 0x01));
  // The largest three-byte length, 2^20 - 1.
  assert.deepEqual(pkgLength(2 ** 20 - 4), bytes(0x8f, 0xff, 0xff));
  // 2^20 - 3 + 4 = 0x100001.
  assert.deepEqual(pkgLength(2 ** 20 - 3), bytes(0xc1, 0x00, 0x00, 0x01));
  // The largest length of all, 2^28 - 1.
  assert.deepEqual(pkgLength(2 ** 28 - 5), bytes(0xcf, 0xff, 0xff, 0xff));
  assert.throws(() => pkgLength(2 ** 28 - 4), RangeError);
  assert.throws(() => pkgLength(-1), RangeError);
});

Deno.test("EISAID compresses a PNP ID into a DWord", () => {
  assert.equal(eisaIdValue("PNP0A08"), 0x080a_d041);
  assert.equal(eisaIdValue("PNP0A03"), 0x030a_d041);
  assert.equal(eisaIdValue("PNP0C0C"), 0x0c0c_d041);
  assert.equal(eisaIdValue("PNP0501"), 0x0105_d041);
  // Always a DWordPrefix, even where a shorter integer would hold it.
  assert.deepEqual(eisaId("PNP0A08"), bytes(0x0c, 0x41, 0xd0, 0x0a, 0x08));
  assert.throws(() => eisaIdValue("pnp0a08"), RangeError);
  assert.throws(() => eisaIdValue("PNP0A0"), RangeError);
});

Deno.test("NameSegs are padded with underscores; NameStrings take root, parent and dual/multi paths", () => {
  assert.deepEqual(nameSeg("_SB"), Uint8Array.from(ascii("_SB_")));
  assert.deepEqual(nameString("_HID"), Uint8Array.from(ascii("_HID")));
  assert.deepEqual(nameString("\\_SB_.PCI0"), bytes(0x5c, 0x2e, ...ascii("_SB_PCI0")));
  assert.deepEqual(nameString("\\_SB.PCI0.PWRB"), bytes(0x5c, 0x2f, 3, ...ascii("_SB_PCI0PWRB")));
  assert.deepEqual(nameString("^^FOO"), bytes(0x5e, 0x5e, ...ascii("FOO_")));
  assert.deepEqual(nameString("\\"), bytes(0x5c, 0x00));
  assert.throws(() => nameSeg("1ABC"), RangeError);
  assert.throws(() => nameSeg("ABCDE"), RangeError);
  assert.throws(() => nameSeg("ab"), RangeError);
});

Deno.test("integers take their shortest encoding", () => {
  assert.deepEqual(integer(0), bytes(0x00));
  assert.deepEqual(integer(1), bytes(0x01));
  assert.deepEqual(integer(0xff), bytes(0x0a, 0xff));
  assert.deepEqual(integer(0x100), bytes(0x0b, 0x00, 0x01));
  assert.deepEqual(integer(0x1_0000), bytes(0x0c, 0x00, 0x00, 0x01, 0x00));
  assert.deepEqual(integer(2 ** 32), bytes(0x0e, 0, 0, 0, 0, 1, 0, 0, 0));
  assert.deepEqual(integer((1n << 64n) - 1n), bytes(0x0e, ...Array(8).fill(0xff)));
  assert.throws(() => integer(-1), RangeError);
  assert.throws(() => integer(1n << 64n), RangeError);
});

Deno.test("strings are NUL-terminated ASCII", () => {
  assert.deepEqual(string("hi"), bytes(0x0d, 0x68, 0x69, 0x00));
  assert.throws(() => string("é"), RangeError);
});

Deno.test("a package counts its elements after its length", () => {
  assert.deepEqual(
    name("\\_S5", pkg([integer(5), integer(0)])),
    bytes(0x08, 0x5c, ...ascii("_S5_"), 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00),
  );
});

Deno.test("descriptors: IO, IRQ, End Tag", () => {
  assert.deepEqual(io(0x3f8, 8), bytes(0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08));
  assert.deepEqual(irq([4]), bytes(0x22, 0x10, 0x00));
  assert.deepEqual(irq([3], true), bytes(0x23, 0x08, 0x00, 0x11));
  assert.deepEqual(endTag(), bytes(0x79, 0x00));
  assert.throws(() => irq([16]), RangeError);
  assert.throws(() => io(0xfffc, 8), RangeError);
  assert.throws(() => wordIo({ min: 0, max: 0x1_0000 }), RangeError);
  assert.throws(() => dwordMemory({ min: 2, max: 1 }), RangeError);
});

Deno.test("the encoder produces what iasl compiles from the same ASL", async () => {
  const asl = `DefinitionBlock ("", "SSDT", 2, "CROSVM", "CROSVMDN", 1)
{
    Name (\\_S5, Package (0x04) { 0x05, Zero, Zero, Zero })
    Scope (\\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (BIG, 0x123456789)
            Name (STR, "hi")
            Name (BUF, Buffer (0x03) { 0x01, 0x02, 0x03 })
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0, 0x0D00, 0xFFFF, 0, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
                    ReadWrite, 0, 0xD0000000, 0xDFFFFFFF, 0, 0x10000000)
                QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable,
                    ReadWrite, 0, 0x100000000, 0x10FFFFFFFF, 0, 0x1000000000)
                DWordMemory (ResourceConsumer, PosDecode, MinFixed, MaxFixed, NonCacheable,
                    ReadWrite, 0, 0xE0000000, 0xEFFFFFFF, 0, 0x10000000)
                IRQNoFlags () {1}
                IRQ (Edge, ActiveHigh, Shared) {4}
            })
        }
    }
}
`;
  const ours = [
    name("\\_S5", pkg([integer(5), integer(0), integer(0), integer(0)])),
    scope("\\_SB", [
      device("PCI0", [
        name("_HID", eisaId("PNP0A08")),
        name("BIG", integer(0x1_2345_6789)),
        name("STR", string("hi")),
        name("BUF", buffer(bytes(1, 2, 3))),
        name(
          "_CRS",
          resourceTemplate([
            wordBusNumber({ min: 0, max: 0xff }),
            io(0xcf8, 8),
            wordIo({ min: 0xd00, max: 0xffff }),
            dwordMemory({ min: 0xd000_0000, max: 0xdfff_ffff }),
            qwordMemory({ min: 2 ** 32, max: 0x10_ffff_ffff, caching: MemoryCaching.CACHEABLE }),
            dwordMemory({ min: 0xe000_0000, max: 0xefff_ffff, consumer: true }),
            irq([1]),
            irq([4], true),
          ]),
        ),
      ]),
    ]),
  ].flatMap((b) => [...b]);
  const { aml } = await compile(asl);
  assert.deepEqual([...aml.subarray(SDT_HEADER_SIZE)], ours);
});

Deno.test("a device long enough for a two-byte PkgLength matches iasl", async () => {
  const names = Array.from({ length: 12 }, (_, i) => `N${i.toString().padStart(3, "0")}`);
  const asl = `DefinitionBlock ("", "SSDT", 2, "CROSVM", "CROSVMDN", 1)
{
    Device (\\DEV0)
    {
${names.map((n, i) => `        Name (${n}, 0x${(0x1000 + i).toString(16)})`).join("\n")}
    }
}
`;
  const ours = device("\\DEV0", names.map((n, i) => name(n, integer(0x1000 + i))));
  assert.ok(ours.length > 64, "the test needs a PkgLength of two bytes");
  const { aml } = await compile(asl);
  assert.deepEqual(aml.subarray(SDT_HEADER_SIZE), ours);
});

Deno.test("packages of packages, as a _PRT is, match iasl", async () => {
  const asl = `DefinitionBlock ("", "SSDT", 2, "CROSVM", "CROSVMDN", 1)
{
    Device (\\PCI0)
    {
        Name (_PRT, Package (0x03)
        {
            Package (0x04) { 0xFFFF, Zero, Zero, 0x05 },
            Package (0x04) { 0x0001FFFF, One, Zero, 0x0A },
            Package (0x04) { 0x001FFFFF, 0x03, Zero, 0x0A }
        })
    }
}
`;
  const entry = (address: number, pin: number, gsi: number) =>
    pkg([integer(address), integer(pin), integer(0), integer(gsi)]);
  const ours = device("\\PCI0", [
    name("_PRT", pkg([entry(0xffff, 0, 5), entry(0x1_ffff, 1, 10), entry(0x1f_ffff, 3, 10)])),
  ]);
  const { aml } = await compile(asl);
  assert.deepEqual(aml.subarray(SDT_HEADER_SIZE), ours);
});

Deno.test("Method, Notify and the Extended Interrupt Descriptor encode as ACPI 6.5 says", () => {
  assert.deepEqual(
    [...method("_EVT", 1, [notify("PWRB", 0x80)])],
    // MethodOp, PkgLength 13 (itself included), "_EVT", flags (1 argument), then NotifyOp
    // "PWRB" BytePrefix 0x80.
    [0x14, 13, 0x5f, 0x45, 0x56, 0x54, 1, 0x86, 0x50, 0x57, 0x52, 0x42, 0x0a, 0x80],
  );
  assert.deepEqual(
    [...extendedInterrupt([16], { edge: true })],
    // Tag 0x89, length 6, consumer|edge, one interrupt, 16.
    [0x89, 6, 0, 0x03, 1, 16, 0, 0, 0],
  );
  assert.equal(extendedInterrupt([5], { activeLow: true, shared: true })[3], 0x01 | 0x04 | 0x08);
  assert.throws(() => method("BAD", 8, []), RangeError);
  assert.throws(() => extendedInterrupt([], {}), RangeError);
  assert.throws(() => extendedInterrupt([-1], {}), RangeError);
});
