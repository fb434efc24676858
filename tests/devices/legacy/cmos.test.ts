import assert from "node:assert/strict";
import { Bus } from "../../../src/bus.ts";
import { Cmos, CMOS_PORT_COUNT } from "../../../src/devices/legacy/cmos.ts";

const CMOS_INDEX = 0x70;
const CMOS_DATA = 0x71;
const NMI_DISABLE = 0x80;
const MIB = 1 << 20;
const GIB = 1 << 30;

// MC146818A register indices and bits, as Linux's <linux/mc146818rtc.h> names them.
const RTC_SECONDS = 0x00;
const RTC_SECONDS_ALARM = 0x01;
const RTC_MINUTES = 0x02;
const RTC_HOURS = 0x04;
const RTC_DAY_OF_WEEK = 0x06;
const RTC_DAY_OF_MONTH = 0x07;
const RTC_MONTH = 0x08;
const RTC_YEAR = 0x09;
const RTC_FREQ_SELECT = 0x0a;
const RTC_CONTROL = 0x0b;
const RTC_INTR_FLAGS = 0x0c;
const RTC_VALID = 0x0d;
const RTC_CENTURY = 0x32; // the ACPI FADT's usual century index
const RTC_UIP = 0x80;
const RTC_24H = 0x02;
const RTC_DM_BINARY = 0x04;
const RTC_VRT = 0x80;
const RTC_PM = 0x80;

/** A CMOS on ports 0x70-0x71 of a real PIO bus, whose clock shows `clock.now`. */
function cmosAt(now: Date, memBelow4G = 512 * MIB, memAbove4G = 0) {
  const clock = { now };
  const cmos = new Cmos("cmos", Cmos.createState(memBelow4G, memAbove4G), () => clock.now);
  const bus = new Bus("pio");
  bus.insert(cmos, CMOS_INDEX, CMOS_PORT_COUNT);
  /** CMOS_READ: select the register, then read the data port. */
  const cmosRead = (index: number) => {
    const data = new Uint8Array(1);
    assert.ok(bus.write(CMOS_INDEX, Uint8Array.of(index)));
    assert.ok(bus.read(CMOS_DATA, data));
    return data[0];
  };
  /** CMOS_WRITE. */
  const cmosWrite = (index: number, value: number) => {
    assert.ok(bus.write(CMOS_INDEX, Uint8Array.of(index)));
    assert.ok(bus.write(CMOS_DATA, Uint8Array.of(value)));
  };
  /** What Linux's mc146818_get_time() reads, in register order. */
  const time = () =>
    [
      RTC_SECONDS,
      RTC_MINUTES,
      RTC_HOURS,
      RTC_DAY_OF_WEEK,
      RTC_DAY_OF_MONTH,
      RTC_MONTH,
      RTC_YEAR,
      RTC_CENTURY,
    ].map(cmosRead);
  return { clock, bus, cmosRead, cmosWrite, time };
}

// A Thursday afternoon in a leap year.
const LEAP_DAY = new Date("2024-02-29T13:05:09Z");
const THURSDAY = 5; // 1 = Sunday

Deno.test("power-on status registers: BCD, 24-hour, no update in progress, time valid", () => {
  const { cmosRead } = cmosAt(LEAP_DAY);
  assert.equal(cmosRead(RTC_FREQ_SELECT), 0x26, "32.768 kHz time base, UIP clear");
  assert.equal(cmosRead(RTC_CONTROL), RTC_24H);
  assert.equal(cmosRead(RTC_INTR_FLAGS), 0);
  assert.equal(cmosRead(RTC_VALID), RTC_VRT);
});

Deno.test("the time registers show the injected UTC time in BCD", () => {
  const { time } = cmosAt(LEAP_DAY);
  assert.deepEqual(time(), [0x09, 0x05, 0x13, THURSDAY, 0x29, 0x02, 0x24, 0x20]);
});

Deno.test("setting DM in register B switches the time registers to binary", () => {
  const { cmosWrite, time } = cmosAt(LEAP_DAY);
  cmosWrite(RTC_CONTROL, RTC_24H | RTC_DM_BINARY);
  assert.deepEqual(time(), [9, 5, 13, THURSDAY, 29, 2, 24, 20]);
});

Deno.test("12-hour mode shows 1-12 with bit 7 for PM, in BCD and binary", () => {
  const { clock, cmosRead, cmosWrite } = cmosAt(LEAP_DAY);
  cmosWrite(RTC_CONTROL, 0);
  assert.equal(cmosRead(RTC_HOURS), RTC_PM | 0x01, "13:05 is 1 PM");
  clock.now = new Date("2024-02-29T00:30:00Z");
  assert.equal(cmosRead(RTC_HOURS), 0x12, "00:30 is 12 AM");
  clock.now = new Date("2024-02-29T12:00:00Z");
  assert.equal(cmosRead(RTC_HOURS), RTC_PM | 0x12, "noon is 12 PM");
  cmosWrite(RTC_CONTROL, RTC_DM_BINARY);
  clock.now = new Date("2024-02-29T23:59:59Z");
  assert.equal(cmosRead(RTC_HOURS), RTC_PM | 11, "binary 11 PM");
});

Deno.test("each read follows the clock, and guest writes cannot move it", () => {
  const { clock, cmosRead, cmosWrite, time } = cmosAt(LEAP_DAY);
  clock.now = new Date("2099-12-31T23:59:58Z");
  assert.deepEqual(time(), [0x58, 0x59, 0x23, 5, 0x31, 0x12, 0x99, 0x20]);
  clock.now = new Date("2100-01-01T00:00:00Z");
  assert.deepEqual(time(), [0x00, 0x00, 0x00, 6, 0x01, 0x01, 0x00, 0x21]);
  cmosWrite(RTC_SECONDS, 0x42);
  cmosWrite(RTC_HOURS, 0x07);
  assert.deepEqual([cmosRead(RTC_SECONDS), cmosRead(RTC_HOURS)], [0x00, 0x00]);
});

Deno.test("status A keeps its rate bits but never UIP; C and D are read-only", () => {
  const { cmosRead, cmosWrite } = cmosAt(LEAP_DAY);
  cmosWrite(RTC_FREQ_SELECT, RTC_UIP | 0x2f);
  assert.equal(cmosRead(RTC_FREQ_SELECT), 0x2f);
  cmosWrite(RTC_INTR_FLAGS, 0xf0);
  cmosWrite(RTC_VALID, 0x00);
  assert.equal(cmosRead(RTC_INTR_FLAGS), 0);
  assert.equal(cmosRead(RTC_VALID), RTC_VRT);
});

Deno.test("alarms and the rest of the 128 bytes are RAM; the NMI bit is ignored", () => {
  const { cmosRead, cmosWrite } = cmosAt(LEAP_DAY);
  cmosWrite(RTC_SECONDS_ALARM, 0x30);
  assert.equal(cmosRead(RTC_SECONDS_ALARM), 0x30);
  cmosWrite(0x40, 0xa5);
  cmosWrite(0x7f, 0x5a);
  assert.equal(cmosRead(NMI_DISABLE | 0x40), 0xa5);
  assert.equal(cmosRead(0x7f), 0x5a);
  assert.equal(cmosRead(NMI_DISABLE | RTC_SECONDS), 0x09, "NMI bit set still selects seconds");
});

Deno.test("memory size bytes count 64 KiB units above 16 MiB and above 4 GiB", () => {
  const { cmosRead } = cmosAt(LEAP_DAY, 3 * GIB, 5 * GIB);
  const ext = (3 * GIB - 16 * MIB) / (64 << 10);
  assert.equal(cmosRead(0x34) | (cmosRead(0x35) << 8), ext);
  const high = cmosRead(0x5b) | (cmosRead(0x5c) << 8) | (cmosRead(0x5d) << 16);
  assert.equal(high, (5 * GIB) / (64 << 10));

  const small = cmosAt(LEAP_DAY, 8 * MIB, 0);
  assert.deepEqual([0x34, 0x35, 0x5b, 0x5c, 0x5d].map(small.cmosRead), [0, 0, 0, 0, 0]);
});

Deno.test("the index port is write-only and a word write sets index and data", () => {
  const { bus, cmosRead } = cmosAt(LEAP_DAY);
  const data = new Uint8Array(1);
  bus.read(CMOS_INDEX, data);
  assert.equal(data[0], 0xff);
  bus.write(CMOS_INDEX, Uint8Array.of(0x50, 0x77)); // outw: index at 0x70, data at 0x71
  assert.equal(cmosRead(0x50), 0x77);
});
