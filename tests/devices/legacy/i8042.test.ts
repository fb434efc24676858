import assert from "node:assert/strict";
import { Bus } from "../../../src/bus.ts";
import type { GuestExitReason } from "../../../src/devices/context.ts";
import { I8042, I8042_PORT_COUNT } from "../../../src/devices/legacy/i8042.ts";

const DATA = 0x60;
const STATUS = 0x64; // and COMMAND on writes

// Names from Linux's drivers/input/serio/i8042.h.
const STR_OBF = 0x01;
const STR_IBF = 0x02;
const STR_SYSFLAG = 0x04;
const STR_CMDDAT = 0x08;
const STR_KEYLOCK = 0x10;
const STR_AUXDATA = 0x20;
const CTR_KBDINT = 0x01;
const CTR_KBDDIS = 0x10;
const CTR_AUXDIS = 0x20;
const CMD_CTL_RCTR = 0x20;
const CMD_CTL_WCTR = 0x60;
const CMD_AUX_DISABLE = 0xa7;
const CMD_AUX_ENABLE = 0xa8;
const CMD_AUX_TEST = 0xa9;
const CMD_CTL_TEST = 0xaa;
const CMD_KBD_TEST = 0xab;
const CMD_KBD_DISABLE = 0xad;
const CMD_KBD_ENABLE = 0xae;
const CMD_READ_OUTPUT_PORT = 0xd0;
const CMD_WRITE_OUTPUT_PORT = 0xd1;
const CMD_AUX_LOOP = 0xd3;
const CMD_PULSE_RESET = 0xfe;
const RET_CTL_TEST = 0x55;
const OUTPUT_PORT_NOT_RESET = 0x01;
const OUTPUT_PORT_A20 = 0x02;
/** Linux's i8042_wait_read/i8042_wait_write give up after I8042_CTL_TIMEOUT polls. */
const CTL_TIMEOUT = 10_000;

/** An i8042 on ports 0x60-0x64 of a real PIO bus, recording the exits it asks for. */
function controller() {
  const exits: GuestExitReason[] = [];
  const i8042 = new I8042("i8042", I8042.createState(), {
    requestExit: (reason) => exits.push(reason),
  });
  const bus = new Bus("pio");
  bus.insert(i8042, DATA, I8042_PORT_COUNT);
  const inb = (port: number) => {
    const data = new Uint8Array(1);
    assert.ok(bus.read(port, data));
    return data[0];
  };
  const outb = (port: number, value: number) => {
    assert.ok(bus.write(port, Uint8Array.of(value)));
  };
  const waitStatus = (bit: number, set: boolean) => {
    for (let i = 0; i < CTL_TIMEOUT; i++) if (((inb(STATUS) & bit) !== 0) === set) return;
    throw new Error(`timed out waiting for status bit ${bit} ${set ? "set" : "clear"}`);
  };
  /** Linux's __i8042_command(): the command, its parameters, then `replies` bytes read back. */
  const command = (cmd: number, params: number[] = [], replies = 0) => {
    waitStatus(STR_IBF, false);
    outb(STATUS, cmd);
    for (const param of params) {
      waitStatus(STR_IBF, false);
      outb(DATA, param);
    }
    return Array.from({ length: replies }, () => {
      waitStatus(STR_OBF, true);
      return inb(DATA);
    });
  };
  return { exits, inb, outb, command };
}

Deno.test("the status register shows an idle, unlocked controller", () => {
  const { inb } = controller();
  const status = inb(STATUS);
  assert.equal(status & (STR_OBF | STR_IBF), 0);
  assert.equal(status & STR_KEYLOCK, STR_KEYLOCK, "no keylock warning from Linux");
  assert.equal(status & STR_SYSFLAG, STR_SYSFLAG, "POST done");
  assert.deepEqual([0x61, 0x62, 0x63].map(inb), [0xff, 0xff, 0xff]);
});

Deno.test("self test answers 0x55 and the interface tests answer 0", () => {
  const { inb, command } = controller();
  assert.deepEqual(command(CMD_CTL_TEST, [], 1), [RET_CTL_TEST]);
  assert.equal(inb(STATUS) & STR_OBF, 0, "reading port 0x60 emptied the output buffer");
  assert.equal(inb(STATUS) & STR_CMDDAT, STR_CMDDAT, "last write went to the command port");
  assert.deepEqual(command(CMD_KBD_TEST, [], 1), [0x00]);
  assert.deepEqual(command(CMD_AUX_TEST, [], 1), [0x00]);
});

Deno.test("Linux's controller init reads a stable command byte and writes it back", () => {
  const { inb, command } = controller();
  for (let i = 0; i < 16 && inb(STATUS) & STR_OBF; i++) inb(DATA); // i8042_flush()
  assert.equal(inb(STATUS) & STR_OBF, 0);
  const [first] = command(CMD_CTL_RCTR, [], 1);
  assert.deepEqual(command(CMD_CTL_RCTR, [], 1), [first], "stable CTR");
  assert.equal(first & CTR_KBDINT, CTR_KBDINT, "as a BIOS leaves it");
  const ctr = (first | CTR_KBDDIS) & ~CTR_KBDINT;
  command(CMD_CTL_WCTR, [ctr]);
  assert.equal(inb(STATUS) & STR_CMDDAT, 0, "last write went to the data port");
  assert.deepEqual(command(CMD_CTL_RCTR, [], 1), [ctr]);
});

Deno.test("enable and disable commands set the command byte's disable bits", () => {
  const { command } = controller();
  const ctr = () => command(CMD_CTL_RCTR, [], 1)[0] & (CTR_KBDDIS | CTR_AUXDIS);
  command(CMD_AUX_ENABLE);
  command(CMD_KBD_ENABLE);
  assert.equal(ctr(), 0);
  command(CMD_KBD_DISABLE);
  assert.equal(ctr(), CTR_KBDDIS);
  command(CMD_AUX_DISABLE);
  assert.equal(ctr(), CTR_KBDDIS | CTR_AUXDIS);
  command(CMD_KBD_ENABLE);
  assert.equal(ctr(), CTR_AUXDIS);
  command(CMD_AUX_ENABLE);
  assert.equal(ctr(), 0);
});

Deno.test("the AUX loop command echoes its byte as auxiliary-device data", () => {
  const { inb, command } = controller();
  command(CMD_AUX_LOOP, [0x5a]);
  assert.equal(inb(STATUS) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
  assert.equal(inb(DATA), 0x5a);
  assert.equal(inb(STATUS) & (STR_OBF | STR_AUXDATA), 0);
});

Deno.test("the output port reads back; clearing its reset bit resets the machine", () => {
  const { exits, command } = controller();
  assert.deepEqual(command(CMD_READ_OUTPUT_PORT, [], 1), [OUTPUT_PORT_NOT_RESET | OUTPUT_PORT_A20]);
  command(CMD_WRITE_OUTPUT_PORT, [OUTPUT_PORT_NOT_RESET]);
  assert.deepEqual(command(CMD_READ_OUTPUT_PORT, [], 1), [OUTPUT_PORT_NOT_RESET]);
  assert.deepEqual(exits, []);
  command(CMD_WRITE_OUTPUT_PORT, [OUTPUT_PORT_A20]);
  assert.deepEqual(exits, ["reset"]);
});

Deno.test("command 0xFE pulses the reset line: requestExit('reset')", () => {
  const { exits, outb } = controller();
  outb(DATA, 0xf4); // a keyboard command: no keyboard, no effect
  assert.deepEqual(exits, []);
  outb(STATUS, 0xff); // pulses no line
  assert.deepEqual(exits, []);
  outb(STATUS, CMD_PULSE_RESET);
  assert.deepEqual(exits, ["reset"]);
});
