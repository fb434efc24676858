// bzImage loading per the Linux x86 boot protocol (Documentation/arch/x86/boot.rst), on
// synthetic images, on a real Debian kernel when the test bed has cached one, and the
// dispatch in kernel.ts between ELF, bzImage and anything else.

import assert from "node:assert/strict";
import { BootParams } from "../../../src/arch/x86_64/boot/boot_params.ts";
import { HIGH_MEMORY_START, MIB, ramRegions } from "../../../src/arch/x86_64/layout.ts";
import { isBzImage, loadBzImage } from "../../../src/arch/x86_64/boot/bzimage.ts";
import { bytesImage, ImageError } from "../../../src/arch/x86_64/boot/image.ts";
import { loadKernel } from "../../../src/arch/x86_64/boot/kernel.ts";
import { GuestMemory } from "../../../src/memory.ts";
import {
  buildBzImage,
  type BzImageSpec,
  debianBzImage,
  NO_DEBIAN_BZIMAGE,
  pattern,
  SetupHeader,
  XLF_KERNEL_64,
} from "../../helpers/bzimage.ts";

const PATH = "/boot/vmlinuz-test";
const MEM_SIZE = 64 * MIB;
/** boot.rst, "64-bit BOOT PROTOCOL": the 64-bit entry is 0x200 into the protected-mode kernel. */
const STARTUP_64 = HIGH_MEMORY_START + 0x200;

/** Asserts that loading `image` fails with an ImageError for PATH whose message matches `says`. */
function assertImageError(load: () => unknown, says: RegExp): void {
  assert.throws(load, (e: unknown) => {
    assert.ok(e instanceof ImageError, `${e}`);
    assert.equal(e.path, PATH);
    assert.match(e.message, says);
    return true;
  });
}

Deno.test('isBzImage needs both boot_flag 0xAA55 at 0x1FE and "HdrS" at 0x202', () => {
  const image = buildBzImage();
  assert.equal(isBzImage(image), true);
  for (const at of [BootParams.BOOT_FLAG, BootParams.HEADER]) {
    const broken = image.slice();
    broken[at] ^= 0xff;
    assert.equal(isBzImage(broken), false, `0x${at.toString(16)} corrupted`);
  }
  assert.equal(isBzImage(image.slice(0, BootParams.HEADER + 3)), false, "too short for HdrS");
});

Deno.test("a bzImage's protected-mode kernel lands at 1 MiB and is entered at 1 MiB + 0x200", () => {
  const payload = pattern(12_345, 3);
  const image = buildBzImage({ setupSects: 1, payload, initSize: 2 * MIB });
  const mem = GuestMemory.allocate(ramRegions(MEM_SIZE));
  const kernel = loadKernel(mem, bytesImage(PATH, image));
  assert.equal(kernel.entry, STARTUP_64);
  assert.deepEqual(mem.read(HIGH_MEMORY_START, payload.length), payload);
  assert.equal(kernel.end, HIGH_MEMORY_START + 2 * MIB, "the kernel reserves init_size");
  assert.deepEqual(
    kernel.setupHeader,
    image.slice(BootParams.SETUP_HEADER, SetupHeader.END),
    "setup header: 0x1F1 up to 0x202 + the jump displacement at 0x201",
  );
});

Deno.test("bzImage: setup_sects 0 means 4 setup sectors (boot.rst)", () => {
  const payload = pattern(1024, 9);
  const mem = GuestMemory.allocate(ramRegions(MEM_SIZE));
  loadBzImage(mem, bytesImage(PATH, buildBzImage({ setupSects: 0, payload })));
  assert.deepEqual(mem.read(HIGH_MEMORY_START, payload.length), payload);
});

Deno.test("bzImage: a payload larger than init_size reserves the payload's size", () => {
  const payload = pattern(64 * 1024);
  const mem = GuestMemory.allocate(ramRegions(MEM_SIZE));
  const kernel = loadBzImage(mem, bytesImage(PATH, buildBzImage({ payload, initSize: 4096 })));
  assert.equal(kernel.end, HIGH_MEMORY_START + payload.length);
});

/** Each way a setup header can be unusable, and what the error must say. */
const BAD_HEADERS: { what: string; image: () => Uint8Array; says: RegExp }[] = [
  {
    what: "protocol 2.11, older than the 2.12 that brought xloadflags",
    image: () => buildBzImage({ version: 0x020b }),
    says: /boot protocol 2\.11 is too old \(need 2\.12\)/,
  },
  {
    what: "no XLF_KERNEL_64 in xloadflags",
    image: () => buildBzImage({ xloadflags: 0 }),
    says: /no 64-bit entry point/,
  },
  {
    what: "no LOADED_HIGH in loadflags (a zImage)",
    image: () => buildBzImage({ loadflags: 0 }),
    says: /does not load high/,
  },
  {
    what: "a file that ends inside the setup header",
    image: () => buildBzImage().slice(0, SetupHeader.XLOADFLAGS),
    says: /truncated setup header/,
  },
  {
    what: "nothing after the setup sectors",
    image: () => buildBzImage({ setupSects: 1 }).slice(0, 2 * 512),
    says:
      /truncated: 1 setup sectors and the kernel after them need more than 1024 bytes, the file has 1024/,
  },
  {
    what: "a protected-mode kernel cut short of the syssize its header declares",
    image: () => buildBzImage({ setupSects: 1, payload: pattern(8192) }).slice(0, 1024 + 4096),
    says: new RegExp(
      "truncated: the setup header declares 8192 bytes of protected-mode kernel after 1024 " +
        "bytes of setup, the file has 4096",
    ),
  },
  {
    what: "init_size larger than the memory above 1 MiB",
    image: () => buildBzImage({ initSize: MEM_SIZE }),
    says: new RegExp(`kernel needs ${MEM_SIZE} bytes from 1 MiB, more than guest memory has`),
  },
];

for (const { what, image, says } of BAD_HEADERS) {
  Deno.test(`loadKernel refuses a bzImage with ${what}: ImageError`, () => {
    assertImageError(
      () => loadKernel(GuestMemory.allocate(ramRegions(MEM_SIZE)), bytesImage(PATH, image())),
      says,
    );
  });
}

Deno.test("bzImage: init_size that exactly fits between 1 MiB and the end of RAM loads", () => {
  const spec: BzImageSpec = { initSize: MEM_SIZE - HIGH_MEMORY_START };
  const kernel = loadBzImage(
    GuestMemory.allocate(ramRegions(MEM_SIZE)),
    bytesImage(PATH, buildBzImage(spec)),
  );
  assert.equal(kernel.end, MEM_SIZE);
});

Deno.test("loadKernel: bytes that are neither ELF nor bzImage are not a kernel", () => {
  const junk = crypto.getRandomValues(new Uint8Array(8192));
  junk[0] = 0; // not \x7fELF
  junk[BootParams.BOOT_FLAG] = 0; // not 0xAA55
  for (const image of [junk, new Uint8Array(0)]) {
    assertImageError(
      () => loadKernel(GuestMemory.allocate(ramRegions(MEM_SIZE)), bytesImage(PATH, image)),
      /not a kernel: neither an ELF vmlinux nor a bzImage/,
    );
  }
});

const DEBIAN = await debianBzImage();
Deno.test({
  name: DEBIAN
    ? `a real Debian bzImage (${DEBIAN.split("/").pop()}) loads at 1 MiB with a 64-bit entry`
    : `a real Debian bzImage loads at 1 MiB [ignored: ${NO_DEBIAN_BZIMAGE}]`,
  ignore: DEBIAN === undefined,
  fn: async () => {
    const image = await Deno.readFile(DEBIAN!);
    const view = new DataView(image.buffer);
    assert.ok(isBzImage(image));
    assert.ok(view.getUint16(BootParams.VERSION, true) >= 0x020c, "protocol 2.12 or later");
    assert.ok(image[SetupHeader.XLOADFLAGS] & XLF_KERNEL_64, "XLF_KERNEL_64");
    const setupSects = image[BootParams.SETUP_HEADER];
    const initSize = view.getUint32(SetupHeader.INIT_SIZE, true);
    const mem = GuestMemory.allocate(ramRegions(256 * MIB));
    const kernel = loadKernel(mem, bytesImage(DEBIAN!, image));
    assert.equal(kernel.entry, STARTUP_64);
    assert.equal(kernel.end, HIGH_MEMORY_START + initSize, "init_size exceeds the image");
    const protectedMode = image.subarray((setupSects + 1) * 512);
    assert.deepEqual(mem.read(HIGH_MEMORY_START, protectedMode.length), protectedMode);
    const headerEnd = 0x202 + image[SetupHeader.JUMP + 1];
    assert.deepEqual(kernel.setupHeader, image.slice(BootParams.SETUP_HEADER, headerEnd));
    // Its first 200,000 bytes (the setup code and a sliver of the kernel) are refused.
    assert.throws(
      () =>
        loadKernel(
          GuestMemory.allocate(ramRegions(256 * MIB)),
          bytesImage(DEBIAN!, image.slice(0, 200_000)),
        ),
      /truncated: the setup header declares \d+ bytes of protected-mode kernel after \d+ bytes of setup, the file has \d+/,
    );
  },
});
