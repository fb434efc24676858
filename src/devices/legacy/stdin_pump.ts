/**
 * Feeds the host's standard input to a guest serial port: raw mode when stdin is a
 * terminal (restored on every exit path), waiting while the UART's receive FIFO is full.
 *
 * @module
 */

import type { Serial } from "./serial.ts";

/** How long to wait for the guest to drain a full receive FIFO. */
const FIFO_FULL_RETRY_MS = 2;
/** Bytes read from stdin at once. */
const READ_CHUNK = 256;

/** Copies stdin into `serial` until stdin ends or {@link StdinPump.stop} is called. */
export class StdinPump {
  #stopped = false;
  #paused = false;
  #raw = false;

  /** @param serial the main thread's view of the UART that reads stdin */
  constructor(private readonly serial: Serial) {}

  /** Starts pumping; puts a terminal in raw mode so keys reach the guest as typed. */
  start(): void {
    if (Deno.stdin.isTerminal()) {
      Deno.stdin.setRaw(true);
      this.#raw = true;
    }
    void this.#pump();
  }

  /** Stops pumping and restores the terminal. Safe to call more than once. */
  stop(): void {
    this.#stopped = true;
    if (this.#raw) {
      Deno.stdin.setRaw(false);
      this.#raw = false;
    }
  }

  /** Holds input back (a full suspend) until {@link resume}: the guest sees none arrive. */
  pause(): void {
    this.#paused = true;
  }

  /** Lets held-back input reach the guest again. */
  resume(): void {
    this.#paused = false;
  }

  async #pump(): Promise<void> {
    const buf = new Uint8Array(READ_CHUNK);
    while (!this.#stopped) {
      const n = await Deno.stdin.read(buf).catch(() => null);
      if (n === null) return;
      let pending = buf.subarray(0, n);
      while (pending.length > 0 && !this.#stopped) {
        if (!this.#paused) pending = pending.subarray(this.serial.receive(pending));
        if (pending.length > 0) {
          await new Promise((resolve) => setTimeout(resolve, FIFO_FULL_RETRY_MS));
        }
      }
    }
  }
}
