/**
 * An 8250/16550A UART, the PC's COM port. Its registers and receive FIFO live in a
 * SharedArrayBuffer, so every thread's {@link Serial} over the same state is the same UART.
 *
 * The transmitter is always ready: a byte written to THR goes to the host at once, so THR and
 * the transmit shift register always read as empty.
 *
 * @module
 */

import type { BusDevice } from "../../bus.ts";
import type { InterruptLine } from "../../irq.ts";
import { NO_DEVICE_BYTE } from "../access.ts";
import { LockedRegisters } from "../locked_registers.ts";

/** How many I/O ports a UART decodes (16550A datasheet: register select lines A0-A2). */
export const UART_REGISTER_COUNT = 8;

// Register offsets from the base port (16550A datasheet, "Register Addresses" table).
const RBR_THR_DLL = 0; // receiver buffer (read), transmitter holding (write); DLL when DLAB = 1
const IER_DLM = 1; // interrupt enable; DLM when DLAB = 1
const IIR_FCR = 2; // interrupt identification (read), FIFO control (write)
const LCR = 3; // line control
const MCR = 4; // modem control
const LSR = 5; // line status
const MSR = 6; // modem status
const SCR = 7; // scratch

// 16550A datasheet, IER bits 0-3. They double as our interrupt-source bits.
const IER_RX_DATA = 0x01; // ERBFI: received data available (and character timeout)
const IER_THRE = 0x02; // ETBEI: transmitter holding register empty
const IER_LINE_STATUS = 0x04; // ELSI: receiver line status
const IER_MODEM_STATUS = 0x08; // EDSSI: modem status
const IER_WRITABLE = 0x0f; // 16550A datasheet: IER bits 4-7 are always 0

// 16550A datasheet, "Interrupt Control Functions" table: IIR bits 0-3, highest priority first.
const IIR_NONE = 0x01; // bit 0 set: no interrupt pending
const IIR_LINE_STATUS = 0x06;
const IIR_RX_DATA = 0x04;
const IIR_RX_TIMEOUT = 0x0c; // character timeout: data below the trigger level is waiting
const IIR_THRE = 0x02;
const IIR_MODEM_STATUS = 0x00;
const IIR_ID_MASK = 0x0f;
const IIR_FIFOS_ENABLED = 0xc0; // 16550A datasheet: IIR bits 6-7 set when FCR bit 0 is set

// 16550A datasheet, FCR bits.
const FCR_ENABLE = 0x01; // FIFO enable; the other bits are only programmed with it set
const FCR_CLEAR_RX = 0x02; // RCVR FIFO reset
const FCR_TRIGGER = 0xc0; // bits 6-7: RCVR trigger level
const FCR_TRIGGER_SHIFT = 6;
const RX_TRIGGER_LEVELS = [1, 4, 8, 14]; // 16550A datasheet: trigger levels for FCR bits 7-6

const LCR_DLAB = 0x80; // 16550A datasheet: LCR bit 7, divisor latch access

// 16550A datasheet, MCR bits.
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10; // local loopback
const MCR_WRITABLE = 0x1f; // 16550A datasheet: MCR bits 5-7 are always 0

// 16550A datasheet, LSR bits.
const LSR_DATA_READY = 0x01;
const LSR_OVERRUN = 0x02; // OE, cleared by reading LSR
const LSR_THRE = 0x20; // transmitter holding register empty
const LSR_TEMT = 0x40; // transmitter empty

// 16550A datasheet, MSR bits 4-7 (line states); bits 0-3 are their deltas, the state bit >> 4
// (DCTS, DDSR, TERI, DDCD), with TERI set only on the trailing edge of RI.
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const MSR_DELTA_SHIFT = 4;

/** The host end is always connected: CTS, DSR and DCD asserted (as crosvm and QEMU report). */
const HOST_MODEM_LINES = MSR_CTS | MSR_DSR | MSR_DCD;
/** Divisor the latch holds at power-on: 1.8432 MHz / (16 × 12) = 9600 baud, the PC BIOS rate. */
const DEFAULT_DIVISOR = 12;
/** Receive FIFO depth. A real 16550A holds 16; deeper lets the host hand over larger bursts. */
const RX_FIFO_SIZE = 64;

// Offsets of the UART's state in its shared register bytes.
const State = {
  ier: 0,
  lcr: 1,
  mcr: 2,
  scr: 3,
  dll: 4,
  dlm: 5,
  fcr: 6,
  lineErrors: 7, // LSR bits 1-4 waiting to be read
  msrDeltas: 8, // MSR bits 0-3 waiting to be read
  threPending: 9, // 1 while a THRE interrupt is latched
  rxHead: 10,
  rxCount: 11,
  rxFifo: 12,
} as const;
const STATE_BYTES = State.rxFifo + RX_FIFO_SIZE;

/** A 16550A UART over `UART_REGISTER_COUNT` ports, one per register. */
export class Serial implements BusDevice {
  /** Fresh power-on state for one UART, to share between threads. */
  static createState(): SharedArrayBuffer {
    return LockedRegisters.createState(STATE_BYTES, (r) => {
      r[State.dll] = DEFAULT_DIVISOR;
    });
  }

  readonly #regs: LockedRegisters;
  readonly #r: Uint8Array;

  /**
   * @param name for logs, e.g. `serial@0x3f8`
   * @param state from {@link Serial.createState}, shared by every thread's Serial of this UART
   * @param irq the UART's interrupt line, pulsed when an enabled interrupt becomes pending
   * @param output receives every byte the guest transmits
   */
  constructor(
    readonly name: string,
    state: SharedArrayBuffer,
    private readonly irq: InterruptLine | null,
    private readonly output: ((bytes: Uint8Array) => void) | null,
  ) {
    this.#regs = new LockedRegisters(state);
    this.#r = this.#regs.bytes;
  }

  /** Reads registers; a wide access reads consecutive registers, as the ISA bus splits it. */
  read(offset: number, data: Uint8Array): void {
    this.#access(() => {
      for (let i = 0; i < data.length; i++) data[i] = this.#readRegister(offset + i);
      return 0;
    });
  }

  /** Writes registers; a wide access writes consecutive registers. */
  write(offset: number, data: Uint8Array): void {
    this.#access((sent) => {
      let fired = 0;
      for (let i = 0; i < data.length; i++) fired |= this.#writeRegister(offset + i, data[i], sent);
      return fired;
    });
  }

  /** Host input: queues as many of `bytes` as the receive FIFO has room for; returns that count. */
  receive(bytes: Uint8Array): number {
    let accepted = 0;
    this.#access(() => {
      accepted = Math.min(bytes.length, this.#rxSpace());
      for (let i = 0; i < accepted; i++) this.#pushRx(bytes[i]);
      return 0;
    });
    return accepted;
  }

  /** How many bytes {@link receive} would accept now. */
  rxSpace(): number {
    return this.#regs.with(() => this.#rxSpace());
  }

  /**
   * Runs `op` under the lock, then passes on what it transmitted and pulses the interrupt line
   * when an enabled source became pending. `op` returns sources that fired anew even if they
   * were already pending (a THR write re-arms THRE), as a mask of IER bits.
   */
  #access(op: (sent: number[]) => number): void {
    const sent: number[] = [];
    const raise = this.#regs.with(() => {
      const before = this.#pending();
      const fired = op(sent);
      return (this.#pending() & (~before | fired)) !== 0;
    });
    if (sent.length > 0) this.output?.(Uint8Array.from(sent));
    if (raise) this.irq?.trigger();
  }

  /** The interrupt sources that are both active and enabled, as IER bits. */
  #pending(): number {
    const r = this.#r;
    const active = (r[State.rxCount] > 0 ? IER_RX_DATA : 0) |
      (r[State.threPending] !== 0 ? IER_THRE : 0) |
      (r[State.lineErrors] !== 0 ? IER_LINE_STATUS : 0) |
      (r[State.msrDeltas] !== 0 ? IER_MODEM_STATUS : 0);
    return active & r[State.ier];
  }

  #readRegister(offset: number): number {
    const r = this.#r;
    const dlab = (r[State.lcr] & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR_DLL:
        return dlab ? r[State.dll] : this.#popRx();
      case IER_DLM:
        return dlab ? r[State.dlm] : r[State.ier];
      case IIR_FCR:
        return this.#readIir();
      case LCR:
        return r[State.lcr];
      case MCR:
        return r[State.mcr];
      case LSR:
        return this.#readLsr();
      case MSR:
        return this.#readMsr();
      case SCR:
        return r[State.scr];
      default:
        // No register answers (a wide access past the last port): nothing drives the bus.
        return NO_DEVICE_BYTE;
    }
  }

  /** Returns the sources the write fired anew (see {@link #access}). */
  #writeRegister(offset: number, value: number, sent: number[]): number {
    const r = this.#r;
    const dlab = (r[State.lcr] & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR_DLL:
        if (dlab) r[State.dll] = value;
        else return this.#transmit(value, sent);
        break;
      case IER_DLM:
        if (dlab) r[State.dlm] = value;
        else this.#writeIer(value);
        break;
      case IIR_FCR:
        this.#writeFcr(value);
        break;
      case LCR:
        r[State.lcr] = value;
        break;
      case MCR:
        this.#writeMcr(value);
        break;
      case SCR:
        r[State.scr] = value;
        break;
      default:
        // LSR and MSR are read-only (16550A datasheet: writing them is for factory test only).
        break;
    }
    return 0;
  }

  /** THR write: the byte leaves at once (or loops back to the receiver) and THR is empty again. */
  #transmit(value: number, sent: number[]): number {
    if (this.#r[State.mcr] & MCR_LOOP) this.#pushRx(value);
    else sent.push(value);
    this.#r[State.threPending] = 1;
    return IER_THRE;
  }

  /** Enabling ETBEI while THR is empty raises THRE, as on real 16550As (Linux tests for it). */
  #writeIer(value: number): void {
    const r = this.#r;
    if (value & ~r[State.ier] & IER_THRE) r[State.threPending] = 1;
    r[State.ier] = value & IER_WRITABLE;
  }

  /** Reading IIR when it reports THRE clears that THRE interrupt (16550A datasheet). */
  #readIir(): number {
    const iir = this.#identify();
    if ((iir & IIR_ID_MASK) === IIR_THRE) this.#r[State.threPending] = 0;
    return iir;
  }

  #identify(): number {
    const pending = this.#pending();
    let id = IIR_NONE;
    if (pending & IER_LINE_STATUS) id = IIR_LINE_STATUS;
    else if (pending & IER_RX_DATA) id = this.#belowTrigger() ? IIR_RX_TIMEOUT : IIR_RX_DATA;
    else if (pending & IER_THRE) id = IIR_THRE;
    else if (pending & IER_MODEM_STATUS) id = IIR_MODEM_STATUS;
    return id | (this.#fifoEnabled() ? IIR_FIFOS_ENABLED : 0);
  }

  /**
   * With FIFOs on, data below the trigger level is reported as a character timeout. The host
   * hands over bytes in bursts, so the four character times of silence count as gone at once.
   */
  #belowTrigger(): boolean {
    const r = this.#r;
    return this.#fifoEnabled() &&
      r[State.rxCount] < RX_TRIGGER_LEVELS[r[State.fcr] >> FCR_TRIGGER_SHIFT];
  }

  /** Changing FCR bit 0 clears the FIFOs; the other bits only take with bit 0 set. */
  #writeFcr(value: number): void {
    const r = this.#r;
    const enable = value & FCR_ENABLE;
    const toggled = enable !== (r[State.fcr] & FCR_ENABLE);
    if (toggled || (enable && value & FCR_CLEAR_RX)) r[State.rxCount] = 0;
    r[State.fcr] = enable ? value & (FCR_ENABLE | FCR_TRIGGER) : 0;
  }

  #fifoEnabled(): boolean {
    return (this.#r[State.fcr] & FCR_ENABLE) !== 0;
  }

  #readLsr(): number {
    const r = this.#r;
    const lsr = (r[State.rxCount] > 0 ? LSR_DATA_READY : 0) | r[State.lineErrors] | LSR_THRE |
      LSR_TEMT;
    r[State.lineErrors] = 0;
    return lsr;
  }

  #readMsr(): number {
    const msr = this.#modemLines() | this.#r[State.msrDeltas];
    this.#r[State.msrDeltas] = 0;
    return msr;
  }

  /** Loopback (16550A datasheet, MCR bit 4): DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD. */
  #modemLines(): number {
    const mcr = this.#r[State.mcr];
    if (!(mcr & MCR_LOOP)) return HOST_MODEM_LINES;
    return (mcr & MCR_DTR ? MSR_DSR : 0) | (mcr & MCR_RTS ? MSR_CTS : 0) |
      (mcr & MCR_OUT1 ? MSR_RI : 0) | (mcr & MCR_OUT2 ? MSR_DCD : 0);
  }

  /** Records the MSR deltas of the lines an MCR write changes (entering or leaving loopback). */
  #writeMcr(value: number): void {
    const before = this.#modemLines();
    this.#r[State.mcr] = value & MCR_WRITABLE;
    const after = this.#modemLines();
    const changed = ((before ^ after) & ~MSR_RI) | (before & ~after & MSR_RI);
    this.#r[State.msrDeltas] |= changed >> MSR_DELTA_SHIFT;
  }

  /** In FIFO mode the RCVR FIFO; in 16450 mode the one-byte RBR. Loopback cuts off the host. */
  #rxSpace(): number {
    const r = this.#r;
    if (r[State.mcr] & MCR_LOOP) return 0;
    return this.#rxCapacity() - r[State.rxCount];
  }

  #rxCapacity(): number {
    return this.#fifoEnabled() ? RX_FIFO_SIZE : 1;
  }

  /**
   * Queues a received byte. When full, the byte is an overrun (LSR OE): in FIFO mode it is
   * lost, in 16450 mode it overwrites RBR (16550A datasheet, LSR bit 1).
   */
  #pushRx(value: number): void {
    const r = this.#r;
    const count = r[State.rxCount];
    if (count < this.#rxCapacity()) {
      r[State.rxFifo + (r[State.rxHead] + count) % RX_FIFO_SIZE] = value;
      r[State.rxCount] = count + 1;
      return;
    }
    r[State.lineErrors] |= LSR_OVERRUN;
    if (!this.#fifoEnabled()) r[State.rxFifo + r[State.rxHead]] = value;
  }

  /** Pops the oldest byte; with nothing queued RBR still holds the last byte received. */
  #popRx(): number {
    const r = this.#r;
    if (r[State.rxCount] > 0) {
      r[State.rxHead] = (r[State.rxHead] + 1) % RX_FIFO_SIZE;
      r[State.rxCount]--;
    }
    return r[State.rxFifo + (r[State.rxHead] + RX_FIFO_SIZE - 1) % RX_FIFO_SIZE];
  }
}
