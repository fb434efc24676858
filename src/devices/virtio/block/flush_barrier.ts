/**
 * The one ordering virtio-blk owes its driver while requests complete out of order (OASIS virtio
 * 1.2 §5.2.6.1: a FLUSH makes durable every write completed before it): a flush is started only
 * once every write submitted before it has completed; writes submitted after it do not hold it.
 *
 * Writes are counted by epoch: each flush that arrives closes the current epoch. A waiting flush
 * may start once no write of its epoch or an earlier one is in flight.
 *
 * @module
 */

/** Holds flushes back behind the writes submitted before them; `F` is a flush request. */
export class FlushBarrier<F> {
  #epoch = 0;
  /** Writes in flight per epoch, oldest first (epochs only grow, so insertion order is age). */
  readonly #writes = new Map<number, number>();
  /** Flushes waiting, oldest first, with the epoch each closed. */
  readonly #waiting: { epoch: number; flush: F }[] = [];

  /** A write was submitted; returns its epoch, to hand to {@link writeDone}. */
  writeStarted(): number {
    this.#writes.set(this.#epoch, (this.#writes.get(this.#epoch) ?? 0) + 1);
    return this.#epoch;
  }

  /** The write of `epoch` completed; returns the flushes that may start now, oldest first. */
  writeDone(epoch: number): F[] {
    const left = (this.#writes.get(epoch) ?? 0) - 1;
    if (left > 0) this.#writes.set(epoch, left);
    else this.#writes.delete(epoch);
    const oldest = this.#writes.keys().next();
    const ready: F[] = [];
    while (this.#waiting.length > 0 && (oldest.done || oldest.value > this.#waiting[0].epoch)) {
      ready.push(this.#waiting.shift()!.flush);
    }
    return ready;
  }

  /**
   * A flush arrived. Returns true when it may start now (no earlier write in flight); otherwise
   * it waits, and a later {@link writeDone} returns it.
   */
  flushArrived(flush: F): boolean {
    const epoch = this.#epoch++;
    if (this.#writes.size === 0) return true;
    this.#waiting.push({ epoch, flush });
    return false;
  }

  /** Forgets every write and flush (the device was reset, with nothing left in flight). */
  clear(): void {
    this.#writes.clear();
    this.#waiting.length = 0;
  }
}
