/**
 * The 8042 keyboard controller, with no keyboard or mouse behind it: enough for Linux's i8042
 * driver to probe it quickly, and for the guest to reset the machine through it. Writes are
 * taken at once, so the input buffer full bit (status bit 1) never shows. The VM's A20 line is
 * always enabled, whatever the output port says.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";
import { NO_DEVICE_BYTE } from "../access.ts";
import type { DeviceContext } from "../context.ts";
import { LockedRegisters } from "../locked_registers.ts";

/** The controller's first I/O port, its data port (IBM PC/AT port map). */
export const I8042_PORT = 0x60;
/** Mapped as one device over ports 0x60-0x64: offset 0 is the data port, offset 4 status/command. */
export const I8042_PORT_COUNT = 5;

const DATA_PORT = 0; // port 0x60
const COMMAND_PORT = 4; // port 0x64: status register (read), controller command (write)

// Status register bits (IBM PC AT Technical Reference, "Keyboard Controller", status register;
// bit 5 from the IBM PS/2 Hardware Interface Technical Reference).
const STATUS_OUTPUT_FULL = 0x01; // OBF: a byte waits at port 0x60
const STATUS_SYSTEM = 0x04; // system flag, as written in command byte bit 2
const STATUS_LAST_WRITE_COMMAND = 0x08; // A2: the last write went to port 0x64
const STATUS_NOT_INHIBITED = 0x10; // keyboard lock switch open
const STATUS_AUX_DATA = 0x20; // PS/2: the waiting byte comes from the auxiliary device

// Controller command byte bits (IBM PC AT Technical Reference; AUX bits from the PS/2 reference).
const CTR_KBD_INTERRUPT = 0x01;
const CTR_SYSTEM = 0x04;
const CTR_KBD_DISABLE = 0x10;
const CTR_AUX_DISABLE = 0x20;
const CTR_TRANSLATE = 0x40;
/** The command byte a PC BIOS leaves after POST: keyboard interrupt, system flag, translation. */
const CTR_AFTER_POST = CTR_KBD_INTERRUPT | CTR_SYSTEM | CTR_TRANSLATE;

// 8042 controller commands, IBM PC AT Technical Reference ("Commands (I/O Address Hex 64)").
const CMD_READ_COMMAND_BYTE = 0x20;
const CMD_WRITE_COMMAND_BYTE = 0x60;
const CMD_SELF_TEST = 0xaa;
const CMD_KBD_INTERFACE_TEST = 0xab;
const CMD_DISABLE_KBD = 0xad;
const CMD_ENABLE_KBD = 0xae;
const CMD_READ_OUTPUT_PORT = 0xd0;
const CMD_WRITE_OUTPUT_PORT = 0xd1;
const CMD_PULSE_OUTPUT_PORT = 0xf0; // 0xF0-0xFF: pulse the output port bits whose command bit is 0
const CMD_PULSE_MASK = 0xf0;
// 8042 controller commands added by the IBM PS/2 Hardware Interface Technical Reference.
const CMD_DISABLE_AUX = 0xa7;
const CMD_ENABLE_AUX = 0xa8;
const CMD_AUX_INTERFACE_TEST = 0xa9;
const CMD_WRITE_KBD_OUTPUT = 0xd2; // next data byte appears as if sent by the keyboard
const CMD_WRITE_AUX_OUTPUT = 0xd3; // next data byte appears as if sent by the auxiliary device

const SELF_TEST_PASSED = 0x55; // IBM PC AT Technical Reference: 0xAA answers 0x55
const INTERFACE_TEST_PASSED = 0x00; // 0xAB (and PS/2 0xA9) answer 0 for no error

// Output port bits (IBM PC AT Technical Reference, "8042 output port").
const OUTPUT_PORT_NOT_RESET = 0x01; // system reset, active low
const OUTPUT_PORT_A20 = 0x02; // gate A20 (the VM's A20 is always on)

// Offsets of the controller's state in its shared register bytes.
const State = {
  flags: 0, // the status bits we store: OBF, AUX data, last write was a command
  output: 1, // the output buffer (port 0x60)
  commandByte: 2,
  outputPort: 3,
  awaiting: 4, // the command whose data byte the next port 0x60 write is, or 0
} as const;
const STATE_BYTES = State.awaiting + 1;

/** The PC's keyboard controller, without devices behind it. */
export class I8042 implements BusDevice {
  /** Fresh state for one controller, as a BIOS leaves it, to share between threads. */
  static createState(): SharedArrayBuffer {
    return LockedRegisters.createState(STATE_BYTES, (r) => {
      r[State.commandByte] = CTR_AFTER_POST;
      r[State.outputPort] = OUTPUT_PORT_NOT_RESET | OUTPUT_PORT_A20;
    });
  }

  readonly #regs: LockedRegisters;
  readonly #r: Uint8Array;

  /**
   * @param name for logs, e.g. `i8042`
   * @param state from {@link I8042.createState}, shared by every thread's I8042
   * @param ctx receives the reset request (command 0xFE)
   */
  constructor(
    readonly name: string,
    state: SharedArrayBuffer,
    private readonly ctx: DeviceContext,
  ) {
    this.#regs = new LockedRegisters(state);
    this.#r = this.#regs.bytes;
  }

  /** Reads the data port (consuming the output buffer) or the status register. */
  read(offset: number, data: Uint8Array): void {
    this.#regs.with(() => {
      for (let i = 0; i < data.length; i++) data[i] = this.#readPort(offset + i);
    });
  }

  /** Writes a data byte or a controller command; a reset request goes to the context. */
  write(offset: number, data: Uint8Array): void {
    const reset = this.#regs.with(() => {
      let reset = false;
      for (let i = 0; i < data.length; i++) reset = this.#writePort(offset + i, data[i]) || reset;
      return reset;
    });
    if (reset) this.ctx.requestExit("reset");
  }

  #readPort(offset: number): number {
    const r = this.#r;
    switch (offset) {
      case DATA_PORT:
        r[State.flags] &= ~(STATUS_OUTPUT_FULL | STATUS_AUX_DATA);
        return r[State.output];
      case COMMAND_PORT:
        return r[State.flags] | STATUS_NOT_INHIBITED |
          (r[State.commandByte] & CTR_SYSTEM ? STATUS_SYSTEM : 0);
      default:
        // Ports 0x61-0x63 fall in our range, but nothing of ours drives the bus there.
        return NO_DEVICE_BYTE;
    }
  }

  /** Returns whether the write asks for a system reset. */
  #writePort(offset: number, value: number): boolean {
    const r = this.#r;
    switch (offset) {
      case DATA_PORT:
        r[State.flags] &= ~STATUS_LAST_WRITE_COMMAND;
        return this.#writeData(value);
      case COMMAND_PORT:
        r[State.flags] |= STATUS_LAST_WRITE_COMMAND;
        return this.#command(value);
      default:
        return false;
    }
  }

  /** A data byte: the parameter of the command awaiting one, else a byte for the keyboard. */
  #writeData(value: number): boolean {
    const r = this.#r;
    const command = r[State.awaiting];
    r[State.awaiting] = 0;
    switch (command) {
      case CMD_WRITE_COMMAND_BYTE:
        r[State.commandByte] = value;
        break;
      case CMD_WRITE_OUTPUT_PORT:
        r[State.outputPort] = value;
        return (value & OUTPUT_PORT_NOT_RESET) === 0;
      case CMD_WRITE_KBD_OUTPUT:
        this.#respond(value, 0);
        break;
      case CMD_WRITE_AUX_OUTPUT:
        this.#respond(value, STATUS_AUX_DATA);
        break;
      default:
        // A byte for the keyboard, and no keyboard is attached.
        break;
    }
    return false;
  }

  #command(command: number): boolean {
    const r = this.#r;
    r[State.awaiting] = 0;
    switch (command) {
      case CMD_READ_COMMAND_BYTE:
        this.#respond(r[State.commandByte], 0);
        break;
      case CMD_WRITE_COMMAND_BYTE:
      case CMD_WRITE_OUTPUT_PORT:
      case CMD_WRITE_KBD_OUTPUT:
      case CMD_WRITE_AUX_OUTPUT:
        r[State.awaiting] = command;
        break;
      case CMD_DISABLE_AUX:
        r[State.commandByte] |= CTR_AUX_DISABLE;
        break;
      case CMD_ENABLE_AUX:
        r[State.commandByte] &= ~CTR_AUX_DISABLE;
        break;
      case CMD_DISABLE_KBD:
        r[State.commandByte] |= CTR_KBD_DISABLE;
        break;
      case CMD_ENABLE_KBD:
        r[State.commandByte] &= ~CTR_KBD_DISABLE;
        break;
      case CMD_SELF_TEST:
        this.#respond(SELF_TEST_PASSED, 0);
        break;
      case CMD_KBD_INTERFACE_TEST:
      case CMD_AUX_INTERFACE_TEST:
        this.#respond(INTERFACE_TEST_PASSED, 0);
        break;
      case CMD_READ_OUTPUT_PORT:
        this.#respond(r[State.outputPort], 0);
        break;
      default:
        // 0xF0-0xFF pulse the output port lines whose command bit is 0; line 0 is the reset.
        return (command & CMD_PULSE_MASK) === CMD_PULSE_OUTPUT_PORT &&
          (command & OUTPUT_PORT_NOT_RESET) === 0;
    }
    return false;
  }

  /** Puts a byte in the output buffer; `source` is STATUS_AUX_DATA for auxiliary-device data. */
  #respond(value: number, source: number): void {
    const r = this.#r;
    r[State.output] = value;
    r[State.flags] = (r[State.flags] & STATUS_LAST_WRITE_COMMAND) | STATUS_OUTPUT_FULL | source;
  }
}
