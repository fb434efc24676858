import assert from "node:assert/strict";
import { Bus } from "../../../src/bus.ts";
import { ACPI_PM_PORT, ACPI_PM_PORT_COUNT, AcpiPm } from "../../../src/devices/legacy/acpi_pm.ts";
import type { GuestExitReason } from "../../../src/devices/context.ts";
import { buildBuses } from "../../../src/devices/registry.ts";

// The ports the FADT gives the guest (see tests/arch/acpi.test.ts).
const SLEEP_CONTROL = 0x600;
const SLEEP_STATUS = 0x601;
const RESET = 0x602;
// What Linux writes, from ACPICA (include/acpi/actypes.h, hwxfsleep.c / hwesleep.c).
const ACPI_X_SLEEP_TYPE_POSITION = 2;
const ACPI_X_SLEEP_TYPE_MASK = 0x1c;
const ACPI_X_SLEEP_ENABLE = 0x20;
const ACPI_X_WAKE_STATUS = 0x80;
/** The first value of the DSDT's \_S5 package. */
const S5_TYPE = 5;
/** `acpi_hw_extended_sleep`'s sleep control value for S5. */
const S5_SLEEP_CONTROL = ((S5_TYPE << ACPI_X_SLEEP_TYPE_POSITION) & ACPI_X_SLEEP_TYPE_MASK) |
  ACPI_X_SLEEP_ENABLE;
/** The FADT's RESET_VALUE. */
const RESET_VALUE = 0x06;

/** The PM registers on a real PIO bus, recording the exits they ask for. */
function pm() {
  const exits: GuestExitReason[] = [];
  const bus = new Bus("pio");
  bus.insert(
    new AcpiPm("acpi-pm", { requestExit: (r) => exits.push(r) }),
    SLEEP_CONTROL,
    ACPI_PM_PORT_COUNT,
  );
  const outb = (port: number, value: number) => assert.ok(bus.write(port, Uint8Array.of(value)));
  const inb = (port: number) => {
    const data = Uint8Array.of(0xff);
    assert.ok(bus.read(port, data));
    return data[0];
  };
  return { bus, exits, outb, inb };
}

Deno.test("Linux's S5 sequence (clear WAK_STS, then SLP_TYP|SLP_EN) asks for shutdown once", () => {
  const { exits, outb, inb } = pm();
  outb(SLEEP_STATUS, ACPI_X_WAKE_STATUS);
  assert.deepEqual(exits, []);
  outb(SLEEP_CONTROL, S5_SLEEP_CONTROL);
  assert.deepEqual(exits, ["shutdown"]);
  // Linux then polls WAK_STS; it never sets.
  assert.equal(inb(SLEEP_STATUS) & ACPI_X_WAKE_STATUS, 0);
});

Deno.test("a 16-bit write covering sleep control and status powers off too", () => {
  const { bus, exits } = pm();
  assert.ok(bus.write(SLEEP_CONTROL, Uint8Array.of(S5_SLEEP_CONTROL, ACPI_X_WAKE_STATUS)));
  assert.deepEqual(exits, ["shutdown"]);
});

Deno.test("RESET_VALUE in the reset register asks for reset", () => {
  const { exits, outb } = pm();
  outb(RESET, RESET_VALUE);
  assert.deepEqual(exits, ["reset"]);
});

Deno.test("other writes do nothing", () => {
  const { exits, outb } = pm();
  outb(SLEEP_CONTROL, S5_TYPE << ACPI_X_SLEEP_TYPE_POSITION); // S5 without SLP_EN
  outb(SLEEP_CONTROL, (3 << ACPI_X_SLEEP_TYPE_POSITION) | ACPI_X_SLEEP_ENABLE); // S3: not offered
  outb(SLEEP_CONTROL, ACPI_X_SLEEP_ENABLE); // SLP_TYP 0
  outb(SLEEP_CONTROL, RESET_VALUE);
  outb(SLEEP_STATUS, S5_SLEEP_CONTROL);
  outb(RESET, S5_SLEEP_CONTROL);
  for (const value of [0x00, 0x01, 0x02, 0x04, 0x07, 0x0e, 0xfe, 0xff]) outb(RESET, value);
  assert.deepEqual(exits, []);
});

Deno.test("every register reads 0", () => {
  const { inb, outb } = pm();
  outb(SLEEP_CONTROL, S5_TYPE << ACPI_X_SLEEP_TYPE_POSITION);
  for (const port of [SLEEP_CONTROL, SLEEP_STATUS, RESET]) assert.equal(inb(port), 0);
});

Deno.test("the acpi-pm spec maps the registers at 0x600-0x602 of the PIO bus", () => {
  const exits: GuestExitReason[] = [];
  const { pio } = buildBuses([{ kind: "acpi-pm", base: ACPI_PM_PORT }], {
    requestExit: (r) => exits.push(r),
  });
  assert.equal(ACPI_PM_PORT_COUNT, 3);
  assert.equal(pio.find(SLEEP_CONTROL - 1), undefined);
  assert.equal(pio.find(RESET + 1), undefined);
  assert.equal(pio.find(SLEEP_CONTROL)?.device.name, "acpi-pm");
  assert.ok(pio.write(RESET, Uint8Array.of(RESET_VALUE)));
  assert.deepEqual(exits, ["reset"]);
});
