import assert from "node:assert/strict";
import { Bus } from "../../../src/bus.ts";
import { Serial, UART_REGISTER_COUNT } from "../../../src/devices/legacy/serial.ts";
import { Errno, SyscallError } from "../../../src/ffi/errno.ts";
import { close, EFD_NONBLOCK, eventfd, read } from "../../../src/ffi/libc.ts";
import { IrqfdLine } from "../../../src/irq.ts";
import { askWorker } from "../../helpers/worker.ts";
import type { FeedJob } from "./serial_worker.ts";

const COM1 = 0x3f8;

// Register offsets and bits as Linux's <linux/serial_reg.h> names them (16550A datasheet).
const RX = 0; // also TX, and DLL with DLAB
const IER = 1; // also DLM with DLAB
const IIR = 2; // also FCR on writes, and EFR on chips that have one
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;
const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;
const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_RX_TIMEOUT = 0x0c;
const IIR_FIFOS = 0xc0;
const IIR_64BYTE_FIFO = 0x20;
const FCR_ENABLE_FIFO = 0x01;
const FCR_CLEAR_RCVR = 0x02;
const FCR_R_TRIG_14 = 0xc0;
const FCR7_64BYTE = 0x20;
const LCR_DLAB = 0x80;
const LCR_WLEN8 = 0x03;
const LCR_CONF_MODE_B = 0xbf; // Linux: the LCR value that opens the EFR on 16650s
const LCR_NS_BANK2 = 0xe0; // Linux: National Semiconductor SuperIO bank 2
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const MSR_DDSR = 0x02;
const MSR_TERI = 0x04;
const MSR_DDCD = 0x08;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const MSR_STATE = 0xf0;

/** A UART on COM1 of a real PIO bus, its interrupt line a real non-blocking eventfd. */
interface Uart {
  serial: Serial;
  state: SharedArrayBuffer;
  irqFd: number;
  sent: number[];
  inb(register: number): number;
  outb(register: number, value: number): void;
}

function uartTest(name: string, fn: (uart: Uart) => void | Promise<void>): void {
  Deno.test(name, async () => {
    const state = Serial.createState();
    const irqFd = eventfd(0, EFD_NONBLOCK);
    const sent: number[] = [];
    const serial = new Serial("serial@0x3f8", state, new IrqfdLine(irqFd), (bytes) => {
      sent.push(...bytes);
    });
    const bus = new Bus("pio");
    bus.insert(serial, COM1, UART_REGISTER_COUNT);
    const inb = (register: number) => {
      const data = new Uint8Array(1);
      assert.ok(bus.read(COM1 + register, data));
      return data[0];
    };
    const outb = (register: number, value: number) => {
      assert.ok(bus.write(COM1 + register, Uint8Array.of(value)));
    };
    try {
      await fn({ serial, state, irqFd, sent, inb, outb });
    } finally {
      close(irqFd);
    }
  });
}

/** How many times the line was pulsed since the last call: the eventfd counter, 0 on EAGAIN. */
function interrupts(fd: number): number {
  const counter = new BigUint64Array(1);
  try {
    read(fd, new Uint8Array(counter.buffer));
  } catch (e) {
    if (e instanceof SyscallError && e.errno === Errno.EAGAIN) return 0;
    throw e;
  }
  return Number(counter[0]);
}

/** The steps of Linux's 8250_port.c autoconfig() and autoconfig_16550a(); the type it picks. */
function linuxAutoconfig({ inb, outb }: Uart): string {
  const savedIer = inb(IER);
  outb(IER, 0);
  const ierCleared = inb(IER) & 0x0f;
  outb(IER, 0x0f);
  const ierSet = inb(IER) & 0x0f;
  outb(IER, savedIer);
  if (ierCleared !== 0 || ierSet !== 0x0f) return "no UART (IER test)";

  const savedMcr = inb(MCR);
  outb(MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
  const looped = inb(MSR) & MSR_STATE;
  outb(MCR, savedMcr);
  if (looped !== (MSR_DCD | MSR_CTS)) return "no UART (loopback test)";

  const savedLcr = inb(LCR);
  outb(LCR, LCR_CONF_MODE_B);
  outb(IIR, 0); // EFR on a 16650, FCR on a 16550A
  outb(LCR, 0);
  outb(IIR, FCR_ENABLE_FIFO);
  const fifoBits = inb(IIR) >> 6;
  if (fifoBits !== 3) return ["8250/16450", "unknown", "16550"][fifoBits];

  outb(LCR, LCR_DLAB);
  if (inb(IIR) === 0) return "ST16C650V1 (EFR with DLAB)";
  outb(LCR, LCR_CONF_MODE_B);
  if (inb(IIR) === 0) return "16650 (EFRv2)";

  outb(LCR, 0);
  const mcr = inb(MCR);
  outb(LCR, LCR_NS_BANK2);
  if (!((inb(IIR) ^ mcr) & MCR_LOOP)) {
    outb(LCR, 0);
    outb(MCR, mcr ^ MCR_LOOP);
    outb(LCR, LCR_NS_BANK2);
    const excr1 = inb(IIR);
    outb(LCR, 0);
    outb(MCR, mcr);
    if ((excr1 ^ mcr) & MCR_LOOP) return "NS16550A";
  }

  outb(LCR, 0);
  outb(IIR, FCR_ENABLE_FIFO | FCR7_64BYTE);
  const plain = inb(IIR) & (IIR_FIFOS | IIR_64BYTE_FIFO);
  outb(IIR, FCR_ENABLE_FIFO);
  outb(LCR, LCR_DLAB);
  outb(IIR, FCR_ENABLE_FIFO | FCR7_64BYTE);
  const withDlab = inb(IIR) & (IIR_FIFOS | IIR_64BYTE_FIFO);
  outb(IIR, FCR_ENABLE_FIFO);
  outb(LCR, savedLcr);
  if (plain === IIR_FIFOS && withDlab === (IIR_FIFOS | IIR_64BYTE_FIFO)) return "16750";
  return "16550A";
}

uartTest("Linux's autoconfig identifies a 16550A and the UART is left idle", (uart) => {
  assert.equal(linuxAutoconfig(uart), "16550A");
  assert.equal(uart.inb(LCR), 0, "LCR restored");
  assert.equal(uart.inb(MCR), 0, "MCR restored, loopback off");
  assert.equal(uart.inb(LSR), LSR_THRE | LSR_TEMT);
  assert.deepEqual(uart.sent, [], "the probe transmits nothing");
});

uartTest("bytes written to THR reach the output at once", ({ inb, outb, sent }) => {
  assert.equal(inb(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
  for (const byte of new TextEncoder().encode("hi\n")) outb(RX, byte);
  assert.equal(new TextDecoder().decode(Uint8Array.from(sent)), "hi\n");
  assert.equal(inb(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT, "still empty");
});

uartTest("the divisor latch round-trips behind DLAB and hides THR and IER", (uart) => {
  const { inb, outb, sent } = uart;
  outb(IER, IER_RDI);
  outb(LCR, LCR_DLAB | LCR_WLEN8);
  assert.equal(inb(RX), 12, "power-on divisor: 9600 baud");
  outb(RX, 0x01); // 115200 baud
  outb(IER, 0x02);
  assert.deepEqual([inb(RX), inb(IER)], [0x01, 0x02]);
  outb(LCR, LCR_WLEN8);
  assert.equal(inb(IER), IER_RDI, "IER untouched by the DLM write");
  assert.deepEqual(sent, [], "DLL writes are not transmitted");
  outb(LCR, LCR_DLAB);
  assert.deepEqual([inb(RX), inb(IER)], [0x01, 0x02], "latch kept");
});

uartTest("the scratch register keeps what is written", ({ inb, outb }) => {
  for (const value of [0x00, 0x55, 0xaa, 0xff]) {
    outb(SCR, value);
    assert.equal(inb(SCR), value);
  }
});

uartTest("received bytes fill the FIFO, set DR and raise the RX interrupt", (uart) => {
  const { serial, inb, outb, irqFd } = uart;
  outb(IIR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR | FCR_R_TRIG_14);
  outb(IER, IER_RDI);
  assert.equal(interrupts(irqFd), 0, "nothing pending yet");
  const space = serial.rxSpace();
  assert.ok(space >= 16, `FIFO holds at least 16 bytes, has ${space}`);

  assert.equal(serial.receive(Uint8Array.of(0x61, 0x62, 0x63)), 3);
  assert.equal(interrupts(irqFd), 1);
  assert.equal(serial.rxSpace(), space - 3);
  assert.equal(inb(LSR) & LSR_DR, LSR_DR);
  assert.equal(inb(IIR), IIR_FIFOS | IIR_RX_TIMEOUT, "below the trigger level: timeout");

  serial.receive(new Uint8Array(11).fill(0x64));
  assert.equal(interrupts(irqFd), 0, "already pending: no new edge");
  assert.equal(inb(IIR), IIR_FIFOS | IIR_RDI, "14 bytes reach the trigger level");

  const drained: number[] = [];
  while (inb(LSR) & LSR_DR) drained.push(inb(RX));
  assert.deepEqual(drained, [0x61, 0x62, 0x63, ...Array(11).fill(0x64)]);
  assert.equal(inb(IIR), IIR_FIFOS | IIR_NO_INT);

  const flood = new Uint8Array(space + 10);
  assert.equal(serial.receive(flood), space, "only what fits is accepted");
  assert.equal(serial.rxSpace(), 0);
  assert.equal(interrupts(irqFd), 1);
  outb(IIR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR);
  assert.equal(inb(LSR) & LSR_DR, 0, "FCR bit 1 empties the FIFO");
  assert.equal(serial.rxSpace(), space);
});

uartTest("THRE interrupts behave as Linux's startup tests expect", ({ inb, outb, irqFd }) => {
  outb(IER, IER_THRI);
  assert.equal(interrupts(irqFd), 1, "enabling ETBEI with THR empty raises THRE");
  assert.equal(inb(LSR) & LSR_TEMT, LSR_TEMT);
  assert.equal(inb(IIR), IIR_THRI, "no UART_BUG_TXEN");
  assert.equal(inb(IIR), IIR_NO_INT, "reading IIR cleared THRE");
  outb(IER, 0);
  outb(IER, IER_THRI);
  assert.equal(inb(IIR), IIR_THRI, "re-enabling re-asserts THRE: no UART_BUG_THRE");
  assert.equal(interrupts(irqFd), 1);

  outb(RX, 0x41);
  assert.equal(interrupts(irqFd), 1, "THR write with ETBEI raises THRE");
  outb(RX, 0x42);
  assert.equal(interrupts(irqFd), 1, "and again, even though THRE was still pending");
  outb(IER, 0);
  outb(RX, 0x43);
  assert.equal(interrupts(irqFd), 0, "masked: no interrupt");
  assert.equal(inb(IIR), IIR_NO_INT);
  assert.throws(
    () => read(irqFd, new Uint8Array(8)),
    (e: unknown) => e instanceof SyscallError && e.is("EAGAIN"),
    "the eventfd counter is 0",
  );
});

uartTest("IIR reports line status, then RX data, then THRE, then modem status", (uart) => {
  const { serial, inb, outb, irqFd } = uart;
  outb(IIR, FCR_ENABLE_FIFO | FCR_R_TRIG_14);
  const fifoSize = serial.rxSpace();
  outb(MCR, MCR_LOOP); // DSR, CTS and DCD drop: modem status deltas
  assert.equal(serial.receive(new Uint8Array(8)), 0, "loopback cuts off the host");
  outb(IER, IER_RDI | IER_THRI | IER_RLSI | IER_MSI);
  for (let i = 0; i <= fifoSize; i++) outb(RX, i); // one byte too many
  assert.ok(interrupts(irqFd) > 0);
  assert.equal(inb(IIR), IIR_FIFOS | IIR_RLSI, "overrun: line status first");
  assert.equal(inb(LSR) & LSR_OE, LSR_OE);
  assert.equal(inb(LSR) & LSR_OE, 0, "reading LSR cleared OE");
  assert.equal(inb(IIR), IIR_FIFOS | IIR_RDI);
  const drained: number[] = [];
  while (inb(LSR) & LSR_DR) drained.push(inb(RX));
  assert.deepEqual(drained, Array.from({ length: fifoSize }, (_, i) => i), "the last byte lost");
  assert.equal(inb(IIR), IIR_FIFOS | IIR_THRI);
  assert.equal(inb(IIR), IIR_FIFOS | IIR_MSI, "THRE cleared by the read");
  assert.equal(inb(MSR) & MSR_DDSR, MSR_DDSR, "DSR changed on entering loopback");
  assert.equal(inb(IIR), IIR_FIFOS | IIR_NO_INT, "reading MSR cleared the deltas");
});

uartTest("loopback routes THR to RBR and MCR to the MSR lines", (uart) => {
  const { serial, inb, outb, sent } = uart;
  assert.equal(inb(MSR) & MSR_STATE, MSR_DCD | MSR_DSR | MSR_CTS, "host end connected");
  outb(MCR, MCR_LOOP);
  assert.equal(inb(MSR) & MSR_STATE, 0);
  outb(MCR, MCR_LOOP | MCR_DTR);
  assert.equal(inb(MSR) & MSR_STATE, MSR_DSR);
  outb(MCR, MCR_LOOP | MCR_RTS);
  assert.equal(inb(MSR) & MSR_STATE, MSR_CTS);
  outb(MCR, MCR_LOOP | MCR_OUT1);
  assert.equal(inb(MSR) & MSR_STATE, MSR_RI);
  outb(MCR, MCR_LOOP | MCR_OUT2);
  assert.equal(inb(MSR), MSR_DCD | MSR_DDCD | MSR_TERI, "DCD rose, RI fell");

  assert.equal(serial.rxSpace(), 0, "the host cannot send while looped");
  outb(RX, 0x5a);
  assert.deepEqual(sent, [], "looped bytes do not leave");
  assert.equal(inb(LSR) & LSR_DR, LSR_DR);
  assert.equal(inb(RX), 0x5a);
  outb(MCR, 0);
  outb(RX, 0x5b);
  assert.deepEqual(sent, [0x5b]);
  assert.equal(inb(LSR) & LSR_DR, 0);
});

uartTest("with FIFOs off the receiver holds one byte and IIR has no FIFO bits", (uart) => {
  const { serial, inb, outb, irqFd } = uart;
  outb(IER, IER_RDI);
  assert.equal(serial.rxSpace(), 1);
  assert.equal(serial.receive(Uint8Array.of(1, 2, 3)), 1);
  assert.equal(interrupts(irqFd), 1);
  assert.equal(inb(IIR), IIR_RDI, "16450 mode: received data, bits 6-7 clear");
  assert.equal(inb(RX), 1);
  assert.equal(inb(RX), 1, "an empty RBR still holds the last byte");
  assert.equal(inb(IIR), IIR_NO_INT);
});

uartTest("a Worker's Serial over the same state feeds the main thread's", async (uart) => {
  const { inb, outb, state, irqFd } = uart;
  outb(IIR, FCR_ENABLE_FIFO);
  outb(IER, IER_RDI);
  const bytes = Uint8Array.from({ length: 20_000 }, (_, i) => (i * 7) % 251);
  const job: FeedJob = { state, irqFd, bytes };
  const fed = askWorker<number>(new URL("./serial_worker.ts", import.meta.url), job);

  const received = new Uint8Array(bytes.length);
  let count = 0;
  const deadline = Date.now() + 20_000;
  while (count < bytes.length && Date.now() < deadline) {
    if (inb(LSR) & LSR_DR) received[count++] = inb(RX);
  }
  assert.equal(await fed, bytes.length);
  assert.equal(count, bytes.length, "every byte arrived");
  assert.deepEqual(received, bytes, "in order, none lost or repeated");
  assert.ok(interrupts(irqFd) > 0, "the Worker pulsed the shared eventfd");
  assert.equal(inb(IIR), IIR_FIFOS | IIR_NO_INT);
});
