/**
 * The VM's four legacy COM ports: their I/O ports and IRQs, where their output
 * goes (stdout, a file, nowhere, or a stream for library users), and which one
 * reads the host's standard input.
 *
 * @module
 */

import type { SerialConfig } from "../../config.ts";
import type { SerialSpec } from "../registry.ts";
import { Serial } from "./serial.ts";
import {
  close,
  eventfd,
  O_CREAT,
  O_TRUNC,
  O_WRONLY,
  open,
  pipe,
  readAsync,
} from "../../ffi/libc.ts";
import type { VmFd } from "../../ffi/kvm.ts";

/** stdout's file descriptor. */
const STDOUT_FD = 1;
/** Read size for the output stream. */
const STREAM_CHUNK = 4096;

/** Where the platform puts one COM port: its first I/O port and its interrupt line (GSI). */
export interface ComPort {
  /** First I/O port of the UART's eight registers. */
  readonly base: number;
  /** The GSI (ISA IRQ) it raises. */
  readonly irq: number;
}

/** The serial ports of one VM, ready to hand to the vCPU Workers. */
export interface SerialPorts {
  /** One spec per COM port. */
  specs: SerialSpec[];
  /** The port that reads stdin, if any. */
  stdinPort?: SerialSpec;
  /** The port the kernel console is on (1–4), if any. */
  consolePort?: number;
  /** Output of the ports configured as `stream`, merged. */
  output?: ReadableStream<Uint8Array>;
}

/**
 * Opens every port's output and irqfd: COMn is `comPorts[n - 1]`. Descriptors are registered on `cleanup`, so a
 * failure part-way leaves nothing open.
 */
export function openSerialPorts(
  vm: VmFd,
  configs: readonly SerialConfig[],
  comPorts: readonly ComPort[],
  cleanup: DisposableStack,
): SerialPorts {
  const ports: SerialPorts = { specs: [] };
  let streamFd: number | undefined;
  for (let num = 1; num <= comPorts.length; num++) {
    const config = configs.find((c) => c.num === num);
    const { base, irq } = comPorts[num - 1];
    const irqFd = eventfd();
    cleanup.defer(() => close(irqFd));
    vm.irqfd(irqFd, irq);
    cleanup.defer(() => vm.irqfd(irqFd, irq, true));
    let outFd = -1;
    if (config?.type === "stdout") outFd = STDOUT_FD;
    else if (config?.type === "file") {
      const fd = open(config.path ?? "", O_WRONLY | O_CREAT | O_TRUNC, 0o644);
      cleanup.defer(() => close(fd));
      outFd = fd;
    } else if (config?.type === "stream") {
      if (streamFd === undefined) {
        const [readFd, writeFd] = pipe();
        cleanup.defer(() => close(writeFd));
        streamFd = writeFd;
        ports.output = pipeStream(readFd);
      }
      outFd = streamFd;
    }
    const spec: SerialSpec = {
      kind: "serial",
      name: `COM${num}`,
      base,
      state: Serial.createState(),
      irqFd,
      outFd,
    };
    ports.specs.push(spec);
    if (config?.stdin) ports.stdinPort = spec;
    if (config?.console) ports.consolePort = num;
  }
  return ports;
}

/**
 * A stream of what is written to a pipe, drained eagerly so a slow reader never
 * blocks a vCPU; it closes (and closes `readFd`) once every writer is gone.
 */
function pipeStream(readFd: number): ReadableStream<Uint8Array> {
  const drain = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    for (;;) {
      const buf = new Uint8Array(STREAM_CHUNK);
      const n = await readAsync(readFd, buf).catch(() => 0);
      if (n <= 0) break;
      controller.enqueue(buf.subarray(0, n));
    }
    close(readFd);
    controller.close();
  };
  return new ReadableStream({ start: (controller) => void drain(controller) });
}
