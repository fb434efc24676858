/// <reference lib="deno.worker" />
// The host side of a UART in another thread: builds its own Serial over the shared state and
// feeds bytes into the receive FIFO as fast as the guest side drains it.

import { Serial } from "../../../src/devices/legacy/serial.ts";
import { IrqfdLine } from "../../../src/irq.ts";

/** What the main thread sends. */
export interface FeedJob {
  /** From Serial.createState(), shared with the main thread's Serial. */
  state: SharedArrayBuffer;
  /** The eventfd behind the UART's interrupt line. */
  irqFd: number;
  /** The bytes to feed, in order. */
  bytes: Uint8Array;
}

self.onmessage = (event: MessageEvent<FeedJob>) => {
  const { state, irqFd, bytes } = event.data;
  const serial = new Serial("serial@worker", state, new IrqfdLine(irqFd), null);
  let fed = 0;
  while (fed < bytes.length) fed += serial.receive(bytes.subarray(fed));
  self.postMessage(fed);
};
