import assert from "node:assert/strict";
import { Bus, BusOverlapError } from "../src/bus.ts";
import type { BusDevice } from "../src/bus.ts";

/** A device that records every access and answers reads with `fill`. */
class RecordingDevice implements BusDevice {
  readonly accesses: { kind: "read" | "write"; offset: number; data: number[] }[] = [];

  constructor(readonly name: string, readonly fill = 0xaa) {}

  read(offset: number, data: Uint8Array): void {
    data.fill(this.fill);
    this.accesses.push({ kind: "read", offset, data: [...data] });
  }

  write(offset: number, data: Uint8Array): void {
    this.accesses.push({ kind: "write", offset, data: [...data] });
  }
}

/** A PIO bus with a serial port at 0x3f8..0x3ff and an RTC at 0x70..0x71. */
function pioBus() {
  const bus = new Bus("pio");
  const serial = new RecordingDevice("serial", 0x11);
  const rtc = new RecordingDevice("rtc", 0x22);
  bus.insert(serial, 0x3f8, 8);
  bus.insert(rtc, 0x70, 2);
  return { bus, serial, rtc };
}

Deno.test("ranges are kept in address order whatever the insertion order", () => {
  const { bus, serial, rtc } = pioBus();
  assert.deepEqual(bus.ranges.map((r) => [r.device, r.base, r.length]), [
    [rtc, 0x70, 2],
    [serial, 0x3f8, 8],
  ]);
});

Deno.test("find hits the first and last address of a range and misses either side", () => {
  const { bus, serial, rtc } = pioBus();
  assert.equal(bus.find(0x3f8)?.device, serial);
  assert.equal(bus.find(0x3ff)?.device, serial);
  assert.equal(bus.find(0x3f7), undefined);
  assert.equal(bus.find(0x400), undefined);
  assert.equal(bus.find(0x70)?.device, rtc);
  assert.equal(bus.find(0x71)?.device, rtc);
  assert.equal(bus.find(0x72), undefined);
  assert.equal(bus.find(0), undefined);
});

Deno.test("find works across many adjacent ranges", () => {
  const bus = new Bus("mmio");
  const devices = Array.from({ length: 64 }, (_, i) => new RecordingDevice(`dev${i}`));
  // Insert in a scrambled order; each device owns 0x1000 bytes from 0x1000 * (i + 1).
  for (let k = 0; k < devices.length; k++) {
    const i = (k * 37) % devices.length;
    bus.insert(devices[i], 0x1000 * (i + 1), 0x1000);
  }
  devices.forEach((device, i) => {
    const base = 0x1000 * (i + 1);
    assert.equal(bus.find(base)?.device, device);
    assert.equal(bus.find(base + 0xfff)?.device, device);
  });
  assert.equal(bus.find(0xfff), undefined);
  assert.equal(bus.find(0x1000 * 65), undefined);
});

Deno.test("reads and writes reach the device with offsets relative to its base", () => {
  const { bus, serial, rtc } = pioBus();
  const data = new Uint8Array(2);
  assert.equal(bus.read(0x3fd, data), true);
  assert.deepEqual([...data], [0x11, 0x11]);
  assert.equal(bus.write(0x3f8, new Uint8Array([0x41])), true);
  assert.equal(bus.write(0x71, new Uint8Array([0x80])), true);
  assert.deepEqual(serial.accesses, [
    { kind: "read", offset: 5, data: [0x11, 0x11] },
    { kind: "write", offset: 0, data: [0x41] },
  ]);
  assert.deepEqual(rtc.accesses, [{ kind: "write", offset: 1, data: [0x80] }]);
});

Deno.test("accesses to unclaimed addresses return false and reach no device", () => {
  const { bus, serial, rtc } = pioBus();
  const data = new Uint8Array([0x5a]);
  assert.equal(bus.read(0x3f7, data), false);
  assert.equal(bus.write(0x400, data), false);
  assert.equal(bus.read(0x80, data), false);
  assert.deepEqual([...data], [0x5a], "a missed read leaves the buffer alone");
  assert.equal(new Bus("empty").write(0, data), false);
  assert.deepEqual([...serial.accesses, ...rtc.accesses], []);
});

Deno.test("overlapping ranges are refused with both devices named", () => {
  const { bus } = pioBus();
  const cases: [number, number][] = [
    [0x3f8, 8], // identical
    [0x3f0, 9], // overlaps the first byte
    [0x3ff, 4], // overlaps the last byte
    [0x3fa, 2], // inside
    [0x300, 0x200], // encloses
  ];
  for (const [base, length] of cases) {
    const intruder = new RecordingDevice("intruder");
    assert.throws(() => bus.insert(intruder, base, length), (e: unknown) => {
      assert.ok(e instanceof BusOverlapError);
      assert.match(e.message, /intruder .*overlaps serial \[0x3f8, 0x400\)/);
      assert.ok(e.message.includes(`0x${base.toString(16)}`), e.message);
      return true;
    });
  }
  assert.equal(bus.ranges.length, 2, "a refused range is not added");
});

Deno.test("ranges that only touch are accepted; empty ranges are not", () => {
  const { bus } = pioBus();
  const below = new RecordingDevice("below");
  const above = new RecordingDevice("above");
  bus.insert(below, 0x3f0, 8);
  bus.insert(above, 0x400, 1);
  assert.equal(bus.find(0x3f7)?.device, below);
  assert.equal(bus.find(0x400)?.device, above);
  assert.throws(() => bus.insert(new RecordingDevice("empty"), 0x500, 0), RangeError);
  assert.throws(() => bus.insert(new RecordingDevice("negative"), 0x500, -1), RangeError);
});
