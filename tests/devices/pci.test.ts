import assert from "node:assert/strict";
import { PCIE_ECAM_BASE, PCIE_ECAM_SIZE } from "../../src/arch/x86_64/layout.ts";
import { Bus } from "../../src/bus.ts";
import { PCI_CONFIG_IO_PORT_COUNT, PciConfigIo } from "../../src/devices/pci/config_io.ts";
import type { PciDevice } from "../../src/devices/pci/config_space.ts";
import { PciEcam } from "../../src/devices/pci/ecam.ts";
import { devfn, PciRoot } from "../../src/devices/pci/root.ts";

const CONFIG_ADDRESS = 0xcf8;
const CONFIG_DATA = 0xcfc;
const ENABLE = 0x8000_0000;

const HOST_BRIDGE_ID = 0x0d57_8086; // device 0D57h, vendor Intel
const HOST_BRIDGE_CLASS = 0x0600_0000; // class 06h (bridge), sub-class 00h (host), revision 0

/** Linux's PCI_CONF1_ADDRESS(bus, devfn, reg). */
function conf1Address(bus: number, device: number, func: number, register: number): number {
  return (ENABLE | (bus << 16) | (device << 11) | (func << 8) | (register & 0xfc)) >>> 0;
}

/** Little-endian value of a bus access's bytes. */
function value(data: Uint8Array): number {
  return data.reduceRight((acc, byte) => acc * 256 + byte, 0);
}

/** Both access mechanisms on real buses: 0xCF8 on PIO, ECAM on MMIO, over one root each. */
function buses() {
  const pio = new Bus("pio");
  const mmio = new Bus("mmio");
  const root = new PciRoot();
  const state = PciConfigIo.createState();
  pio.insert(
    new PciConfigIo("pci-config-io", state, root),
    CONFIG_ADDRESS,
    PCI_CONFIG_IO_PORT_COUNT,
  );
  mmio.insert(new PciEcam("pci-ecam", root), PCIE_ECAM_BASE, PCIE_ECAM_SIZE);
  const access = (bus: Bus) => ({
    read(address: number, size: number): number {
      const data = new Uint8Array(size);
      assert.ok(bus.read(address, data));
      return value(data);
    },
    write(address: number, data: number, size: number): void {
      const bytes = Uint8Array.from({ length: size }, (_, i) => data >>> (8 * i));
      assert.ok(bus.write(address, bytes));
    },
  });
  return { root, state, pio: access(pio), mmio: access(mmio), mmioBus: mmio };
}

/** pci_conf1_read(): latch the address with a dword write, read CONFIG_DATA's byte lanes. */
function conf1Read(
  { pio }: ReturnType<typeof buses>,
  bus: number,
  device: number,
  func: number,
  register: number,
  size: number,
): number {
  pio.write(CONFIG_ADDRESS, conf1Address(bus, device, func, register), 4);
  return pio.read(CONFIG_DATA + (register & 3), size);
}

/** An ECAM address: bus << 20 | device << 15 | function << 12 | register. */
function ecam(bus: number, device: number, func: number, register: number): number {
  return PCIE_ECAM_BASE + bus * (1 << 20) + (device << 15) + (func << 12) + register;
}

Deno.test("the host bridge answers at 00:00.0 through 0xCF8/0xCFC dwords", () => {
  const pci = buses();
  assert.equal(conf1Read(pci, 0, 0, 0, 0x00, 4), HOST_BRIDGE_ID);
  assert.equal(conf1Read(pci, 0, 0, 0, 0x08, 4), HOST_BRIDGE_CLASS);
  assert.equal(conf1Read(pci, 0, 0, 0, 0x0c, 4), 0, "header type 0, single function");
  assert.equal(pci.pio.read(CONFIG_ADDRESS, 4), conf1Address(0, 0, 0, 0x0c), "address reads back");
});

Deno.test("byte and word reads of CONFIG_DATA pick the right lanes", () => {
  const pci = buses();
  assert.equal(conf1Read(pci, 0, 0, 0, 0x00, 2), 0x8086, "vendor");
  assert.equal(conf1Read(pci, 0, 0, 0, 0x02, 2), 0x0d57, "device");
  assert.equal(conf1Read(pci, 0, 0, 0, 0x0b, 1), 0x06, "base class: bridge");
  assert.equal(conf1Read(pci, 0, 0, 0, 0x0a, 1), 0x00, "sub-class: host bridge");
  assert.equal(conf1Read(pci, 0, 0, 0, 0x0e, 1), 0x00, "header type");
  assert.deepEqual(
    [0, 1, 2, 3].map((lane) => conf1Read(pci, 0, 0, 0, lane, 1)),
    [0x86, 0x80, 0x57, 0x0d],
  );
  assert.equal(conf1Read(pci, 0, 0, 0, 0x03, 2), 0xffff, "a word across the dword end");
});

Deno.test("absent functions and other buses read all ones; writes there vanish", () => {
  const pci = buses();
  assert.equal(conf1Read(pci, 0, 1, 0, 0x00, 4), 0xffff_ffff);
  assert.equal(conf1Read(pci, 0, 0, 1, 0x00, 2), 0xffff);
  assert.equal(conf1Read(pci, 1, 0, 0, 0x00, 4), 0xffff_ffff);
  assert.equal(conf1Read(pci, 0, 31, 7, 0xfc, 1), 0xff);
  pci.pio.write(CONFIG_DATA, 0x1234_5678, 4);
  assert.equal(pci.pio.read(CONFIG_DATA, 4), 0xffff_ffff);
});

Deno.test("with the enable bit clear CONFIG_DATA reads all ones", () => {
  const pci = buses();
  pci.pio.write(CONFIG_ADDRESS, 0x0000_0000, 4); // 00:00.0 register 0, not enabled
  assert.equal(pci.pio.read(CONFIG_DATA, 4), 0xffff_ffff);
  assert.equal(pci.pio.read(CONFIG_DATA + 2, 2), 0xffff);
});

Deno.test("only dword accesses reach CONFIG_ADDRESS, as Linux's type 1 probe relies on", () => {
  const pci = buses();
  pci.pio.write(CONFIG_ADDRESS + 3, 0x01, 1); // pci_check_type1(): outb(0x01, 0xCFB)
  assert.equal(pci.pio.read(CONFIG_ADDRESS, 4), 0, "a byte write does not latch");
  pci.pio.write(CONFIG_ADDRESS, ENABLE, 4);
  assert.equal(pci.pio.read(CONFIG_ADDRESS, 4), ENABLE);
  pci.pio.write(CONFIG_ADDRESS, 0x7f00_0003 | ENABLE, 4);
  assert.equal(pci.pio.read(CONFIG_ADDRESS, 4), ENABLE, "reserved bits 30-24 and 1-0 read 0");
  pci.pio.write(CONFIG_ADDRESS, 0, 2);
  assert.equal(pci.pio.read(CONFIG_ADDRESS, 2), 0xffff, "a word read is not the address");
  assert.equal(pci.pio.read(CONFIG_ADDRESS, 4), ENABLE, "nor did the word write change it");
});

Deno.test("CONFIG_ADDRESS lives in the shared state, seen by every thread's PciConfigIo", () => {
  const pci = buses();
  const other = new PciConfigIo("pci-config-io@vcpu1", pci.state, new PciRoot());
  pci.pio.write(CONFIG_ADDRESS, conf1Address(0, 0, 0, 0x08), 4);
  const data = new Uint8Array(4);
  other.read(4, data);
  assert.equal(value(data), HOST_BRIDGE_CLASS);
});

Deno.test("ECAM reads the same configuration space", () => {
  const pci = buses();
  assert.equal(pci.mmio.read(ecam(0, 0, 0, 0x00), 4), HOST_BRIDGE_ID);
  assert.equal(pci.mmio.read(ecam(0, 0, 0, 0x08), 4), HOST_BRIDGE_CLASS);
  assert.equal(pci.mmio.read(ecam(0, 0, 0, 0x02), 2), 0x0d57);
  assert.equal(pci.mmio.read(ecam(0, 0, 0, 0x0b), 1), 0x06);
  assert.equal(pci.mmio.read(ecam(0, 0, 0, 0x100), 4), 0, "past the header of a PCI device");
  assert.equal(pci.mmio.read(ecam(0, 2, 0, 0x00), 4), 0xffff_ffff);
  assert.equal(pci.mmio.read(ecam(255, 31, 7, 0xffc), 4), 0xffff_ffff);
  const wide = new Uint8Array(8);
  pci.mmioBus.read(ecam(0, 0, 0, 0x00), wide);
  assert.deepEqual([...wide], Array(8).fill(0xff), "wider than a dword reads all ones");
});

Deno.test("the host bridge is read-only", () => {
  const pci = buses();
  pci.mmio.write(ecam(0, 0, 0, 0x04), 0x0007, 2);
  pci.pio.write(CONFIG_ADDRESS, conf1Address(0, 0, 0, 0x00), 4);
  pci.pio.write(CONFIG_DATA, 0xdead_beef, 4);
  assert.equal(pci.mmio.read(ecam(0, 0, 0, 0x04), 2), 0, "command register unchanged");
  assert.equal(pci.mmio.read(ecam(0, 0, 0, 0x00), 4), HOST_BRIDGE_ID);
});

Deno.test("added functions get their writes and reads; a taken slot is refused", () => {
  const pci = buses();
  const writes: [number, number[]][] = [];
  const device: PciDevice = {
    readConfigDword: (register) => register === 0 ? 0x1234_1af4 : register,
    writeConfig: (offset, data) => writes.push([offset, [...data]]),
  };
  pci.root.add(devfn(3, 1), device);
  assert.equal(conf1Read(pci, 0, 3, 1, 0x00, 4), 0x1234_1af4);
  assert.equal(pci.mmio.read(ecam(0, 3, 1, 0x14), 4), 5, "dword index 5");
  pci.pio.write(CONFIG_ADDRESS, conf1Address(0, 3, 1, 0x10), 4);
  pci.pio.write(CONFIG_DATA + 2, 0xabcd, 2);
  pci.mmio.write(ecam(0, 3, 1, 0x3c), 0x0b, 1);
  assert.deepEqual(writes, [[0x12, [0xcd, 0xab]], [0x3c, [0x0b]]]);
  assert.throws(() => pci.root.add(devfn(3, 1), device), RangeError);
  assert.throws(() => devfn(32, 0), RangeError);
});
