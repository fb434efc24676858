/**
 * One thread of the disk engine's thread pool ({@link ./pool_io.ts}): it takes requests from the
 * pool's shared submission ring, makes the blocking `preadv`/`pwritev`/`fdatasync` call, puts
 * the result in the request's slot and its index in the completion ring, and signals the
 * pool's eventfd.
 *
 * {@link poolThreadMain} runs in a Worker started from a `data:` URL of its own source text, so
 * that a thread starting in a jailed device process, under its seccomp filter, opens no file
 * (there is none to open in the jail; `dlopen` of the already loaded libc opens nothing). So it
 * uses nothing from outside its own body: the ring's layout arrives in its first message.
 *
 * @module
 */

/** Where each field of the pool's shared words lives (indices into one `Int32Array`). */
export interface PoolLayout {
  /** Next submission-ring entry a thread takes (threads advance it with compare-and-swap). */
  readonly sqHead: number;
  /** Next submission-ring entry the device fills (published by `submit`). */
  readonly sqTail: number;
  /** Next completion-ring entry a thread claims (advanced with an atomic add). */
  readonly cqTail: number;
  /** Nonzero: the pool is closing, every thread ends. */
  readonly stop: number;
  /** Threads that have started and wait for requests. */
  readonly ready: number;
  /** First entry of the submission ring: slot indices. */
  readonly sq: number;
  /** First entry of the completion ring: slot index + 1, 0 while not yet filled. */
  readonly cq: number;
  /** Entries in each ring: a power of two, at least the slots. */
  readonly size: number;
  /** First word of the slots' fields, `slotWords` words each. */
  readonly slots: number;
  readonly slotWords: number;
  /** Float64s per slot in `numbers`: the iovec array's address, then the file offset. */
  readonly slotNumbers: number;
  /** Fields of a slot: its operation, descriptor, iovec count and result (bytes or `-errno`). */
  readonly op: number;
  readonly fd: number;
  readonly count: number;
  readonly result: number;
  /** Operation codes. */
  readonly read: number;
  readonly write: number;
  readonly datasync: number;
}

/** The first message a pool thread gets. */
export interface PoolThreadInit {
  /** The shared words ({@link PoolLayout}). */
  readonly words: SharedArrayBuffer;
  /** Per slot, `slotNumbers` float64s: the iovec array's address and the file offset. */
  readonly numbers: SharedArrayBuffer;
  readonly layout: PoolLayout;
  /** The eventfd signalled after every completion. */
  readonly eventFd: number;
}

/** The Worker's global scope, as the body uses it (this module is loaded by windows too). */
interface ThreadScope {
  onmessage: ((event: MessageEvent<PoolThreadInit>) => void) | null;
  close(): void;
}

/** The thread's body: waits for its {@link PoolThreadInit}, then serves requests until `stop`. */
export function poolThreadMain(): void {
  const libc = Deno.dlopen("libc.so.6", {
    preadv: { parameters: ["i32", "pointer", "i32", "i64"], result: "isize" },
    pwritev: { parameters: ["i32", "pointer", "i32", "i64"], result: "isize" },
    fdatasync: { parameters: ["i32"], result: "i32" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    __errno_location: { parameters: [], result: "pointer" },
  });
  const { preadv, pwritev, fdatasync, write, __errno_location } = libc.symbols;
  const one = new BigUint64Array([1n]);
  const scope = globalThis as unknown as ThreadScope;
  scope.onmessage = (event) => {
    const { words: shared, numbers, layout: L, eventFd } = event.data;
    const words = new Int32Array(shared);
    const values = new Float64Array(numbers);
    const mask = L.size - 1;
    const serve = (slot: number): number => {
      const at = L.slots + slot * L.slotWords;
      const fd = words[at + L.fd];
      const op = words[at + L.op];
      if (op === L.datasync) return fdatasync(fd);
      const iovecs = Deno.UnsafePointer.create(BigInt(values[L.slotNumbers * slot]));
      const offset = BigInt(values[L.slotNumbers * slot + 1]);
      const call = op === L.read ? preadv : pwritev;
      return Number(call(fd, iovecs, words[at + L.count], offset));
    };
    Atomics.add(words, L.ready, 1);
    Atomics.notify(words, L.ready);
    for (;;) {
      if (Atomics.load(words, L.stop) !== 0) break;
      const head = Atomics.load(words, L.sqHead);
      if (head === Atomics.load(words, L.sqTail)) {
        Atomics.wait(words, L.sqTail, head);
        continue;
      }
      if (Atomics.compareExchange(words, L.sqHead, head, (head + 1) | 0) !== head) continue;
      if (Atomics.load(words, L.stop) !== 0) break;
      const slot = Atomics.load(words, L.sq + (head & mask));
      let result = serve(slot);
      if (result < 0) result = -new Deno.UnsafePointerView(__errno_location()!).getInt32(0);
      words[L.slots + slot * L.slotWords + L.result] = result;
      const entry = L.cq + (Atomics.add(words, L.cqTail, 1) & mask);
      Atomics.store(words, entry, slot + 1);
      Atomics.notify(words, entry);
      write(eventFd, one, BigInt(one.byteLength));
    }
    libc.close();
    scope.close();
  };
}
