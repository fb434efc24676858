/**
 * io_uring (`io_uring_setup(2)`, `io_uring_enter(2)`, `io_uring_register(2)`) through FFI: a ring
 * whose submission and completion queues are mmapped and read and written here through
 * `Deno.UnsafePointerView.getArrayBuffer` views, no liburing. Enough for block I/O: vectored
 * reads and writes, `fsync` (optionally data only), and an eventfd the kernel signals when
 * completions arrive (`IORING_REGISTER_EVENTFD`).
 *
 * Every number below is from `<linux/io_uring.h>` (the x86_64 syscall numbers from
 * `<asm/unistd_64.h>`), and `tests/ffi/io_uring_abi.test.ts` holds them to the headers.
 *
 * Requests are never submitted by a kernel thread (no SQPOLL): an SQE is read by the kernel
 * during {@link IoUring.submit}, so its slot is free again when that returns.
 *
 * @module
 */

import { SyscallError } from "./errno.ts";
import type { StructLayout } from "./kvm_abi.ts";
import {
  check,
  lastError,
  libc,
  MAP_SHARED,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
  viewOf,
} from "./libc.ts";
import { U32_RANGE } from "./struct.ts";

/** `__NR_io_uring_setup` (`<asm/unistd_64.h>`). */
export const NR_IO_URING_SETUP = 425;
/** `__NR_io_uring_enter`. */
export const NR_IO_URING_ENTER = 426;
/** `__NR_io_uring_register`. */
export const NR_IO_URING_REGISTER = 427;

/** `enum io_uring_op`: `preadv2`. */
export const IORING_OP_READV = 1;
/** `enum io_uring_op`: `pwritev2`. */
export const IORING_OP_WRITEV = 2;
/** `enum io_uring_op`: `fsync`, or `fdatasync` with {@link IORING_FSYNC_DATASYNC}. */
export const IORING_OP_FSYNC = 3;
/** `sqe->fsync_flags`: data only, as `fdatasync(2)`. */
export const IORING_FSYNC_DATASYNC = 1;
/** `io_uring_enter(2)` flag: wait for `min_complete` completions. */
export const IORING_ENTER_GETEVENTS = 1;
/** `io_uring_register(2)` opcode: signal an eventfd on every completion. */
export const IORING_REGISTER_EVENTFD = 4;
/** `io_uring_params->flags`: `cq_entries` is given, not twice `sq_entries`. */
export const IORING_SETUP_CQSIZE = 1 << 3;
/** `mmap(2)` offset of the submission ring. */
export const IORING_OFF_SQ_RING = 0;
/** `mmap(2)` offset of the completion ring. */
export const IORING_OFF_CQ_RING = 0x8000000;
/** `mmap(2)` offset of the SQE array. */
export const IORING_OFF_SQES = 0x10000000;

/** `struct io_uring_params` (with its `io_sqring_offsets` and `io_cqring_offsets` flattened). */
export const IO_URING_PARAMS: StructLayout = {
  name: "io_uring_params",
  size: 120,
  fields: {
    sq_entries: 0,
    cq_entries: 4,
    flags: 8,
    features: 20,
    "sq_off.head": 40,
    "sq_off.tail": 44,
    "sq_off.ring_mask": 48,
    "sq_off.ring_entries": 52,
    "sq_off.array": 64,
    "cq_off.head": 80,
    "cq_off.tail": 84,
    "cq_off.ring_mask": 88,
    "cq_off.ring_entries": 92,
    "cq_off.cqes": 100,
  },
};
/** `struct io_uring_sqe`: the members a read, write or fsync uses. */
export const IO_URING_SQE: StructLayout = {
  name: "io_uring_sqe",
  size: 64,
  fields: {
    opcode: 0,
    flags: 1,
    ioprio: 2,
    fd: 4,
    off: 8,
    addr: 16,
    len: 24,
    fsync_flags: 28,
    user_data: 32,
  },
};
/** `struct io_uring_cqe` (without IORING_SETUP_CQE32). */
export const IO_URING_CQE: StructLayout = {
  name: "io_uring_cqe",
  size: 16,
  fields: { user_data: 0, res: 8, flags: 12 },
};

const P = IO_URING_PARAMS.fields;
const SQE = IO_URING_SQE.fields;
const CQE = IO_URING_CQE.fields;
/** Bytes of a `u32` ring cell (head, tail, mask, array entries). */
const CELL = Uint32Array.BYTES_PER_ELEMENT;

/** One mapping of the ring's memory. */
interface Mapping {
  readonly address: bigint;
  readonly length: number;
}

/** A completion: the `user_data` the request was submitted with and its result. */
export type CompletionHandler = (userData: number, result: number) => void;

/** An io_uring instance with its three mappings. */
export class IoUring {
  /** Submission entries the ring holds. */
  readonly sqEntries: number;
  readonly #mappings: Mapping[];
  readonly #sqHead: Uint32Array;
  readonly #sqTail: Uint32Array;
  readonly #sqMask: number;
  readonly #sqes: DataView;
  readonly #cqHead: Uint32Array;
  readonly #cqTail: Uint32Array;
  readonly #cqMask: number;
  readonly #cqes: DataView;
  /** SQEs written since the last {@link submit}. */
  #unsubmitted = 0;
  #closed = false;

  private constructor(readonly fd: number, params: DataView, mappings: Mapping[]) {
    this.#mappings = mappings;
    const [sq, cq, sqes] = mappings;
    const cell = (m: Mapping, at: number) => new Uint32Array(viewOf(m.address, m.length), at, 1);
    this.sqEntries = params.getUint32(P.sq_entries, true);
    this.#sqHead = cell(sq, params.getUint32(P["sq_off.head"], true));
    this.#sqTail = cell(sq, params.getUint32(P["sq_off.tail"], true));
    this.#sqMask = cell(sq, params.getUint32(P["sq_off.ring_mask"], true))[0];
    this.#cqHead = cell(cq, params.getUint32(P["cq_off.head"], true));
    this.#cqTail = cell(cq, params.getUint32(P["cq_off.tail"], true));
    this.#cqMask = cell(cq, params.getUint32(P["cq_off.ring_mask"], true))[0];
    const cqEntries = params.getUint32(P.cq_entries, true);
    this.#cqes = new DataView(
      viewOf(cq.address, cq.length),
      params.getUint32(P["cq_off.cqes"], true),
      cqEntries * IO_URING_CQE.size,
    );
    this.#sqes = new DataView(viewOf(sqes.address, sqes.length));
    // SQ array entry i always names SQE i: the SQEs are filled in ring order.
    const array = new Uint32Array(
      viewOf(sq.address, sq.length),
      params.getUint32(P["sq_off.array"], true),
      this.sqEntries,
    );
    for (let i = 0; i < this.sqEntries; i++) array[i] = i;
  }

  /**
   * `io_uring_setup(2)` with `entries` submission entries and twice as many completion entries,
   * and the mmaps of its rings.
   * @throws SyscallError when the kernel has no io_uring (ENOSYS), forbids it (EPERM under
   *   `kernel.io_uring_disabled`, or a seccomp filter), or is out of memory
   */
  static create(entries: number): IoUring {
    const params = new Uint8Array(IO_URING_PARAMS.size);
    const view = new DataView(params.buffer);
    view.setUint32(P.flags, IORING_SETUP_CQSIZE, true);
    view.setUint32(P.cq_entries, entries * 2, true);
    const fd = Number(libc().syscall_io_uring_setup(BigInt(NR_IO_URING_SETUP), entries, params));
    if (fd < 0) throw lastError("io_uring_setup");
    const mappings: Mapping[] = [];
    try {
      const sqEntries = view.getUint32(P.sq_entries, true);
      const cqEntries = view.getUint32(P.cq_entries, true);
      const map = (length: number, offset: number) => {
        const address = mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
        mappings.push({ address, length });
      };
      map(view.getUint32(P["sq_off.array"], true) + sqEntries * CELL, IORING_OFF_SQ_RING);
      map(
        view.getUint32(P["cq_off.cqes"], true) + cqEntries * IO_URING_CQE.size,
        IORING_OFF_CQ_RING,
      );
      map(sqEntries * IO_URING_SQE.size, IORING_OFF_SQES);
      return new IoUring(fd, view, mappings);
    } catch (e) {
      for (const m of mappings) munmap(m.address, m.length);
      libc().close(fd);
      throw e;
    }
  }

  /** `IORING_REGISTER_EVENTFD`: the kernel signals `eventFd` whenever a completion is posted. */
  registerEventfd(eventFd: number): void {
    const arg = new Int32Array([eventFd]);
    const r = libc().syscall_io_uring_register(
      BigInt(NR_IO_URING_REGISTER),
      this.fd,
      IORING_REGISTER_EVENTFD,
      new Uint8Array(arg.buffer),
      1,
    );
    if (r < 0n) throw lastError("io_uring_register(IORING_REGISTER_EVENTFD)");
  }

  /** Free submission entries (written but not yet submitted ones count as taken). */
  get sqSpace(): number {
    return this.sqEntries - (Atomics.load(this.#sqTail, 0) - Atomics.load(this.#sqHead, 0));
  }

  /**
   * Queues a vectored read (`IORING_OP_READV`) of `count` iovecs at `iovecs` (an address that
   * must stay valid until the completion) from `fd` at file `offset`.
   */
  readv(fd: number, iovecs: bigint, count: number, offset: number, userData: number): void {
    this.#push(IORING_OP_READV, fd, iovecs, count, offset, 0, userData);
  }

  /** Queues a vectored write (`IORING_OP_WRITEV`); as {@link readv}. */
  writev(fd: number, iovecs: bigint, count: number, offset: number, userData: number): void {
    this.#push(IORING_OP_WRITEV, fd, iovecs, count, offset, 0, userData);
  }

  /** Queues an `fdatasync` of `fd` (`IORING_OP_FSYNC` with {@link IORING_FSYNC_DATASYNC}). */
  fdatasync(fd: number, userData: number): void {
    this.#push(IORING_OP_FSYNC, fd, 0n, 0, 0, IORING_FSYNC_DATASYNC, userData);
  }

  #push(
    opcode: number,
    fd: number,
    address: bigint,
    length: number,
    offset: number,
    opFlags: number,
    userData: number,
  ): void {
    if (this.sqSpace === 0) throw new Error("io_uring: the submission queue is full");
    const tail = Atomics.load(this.#sqTail, 0);
    const at = (tail & this.#sqMask) * IO_URING_SQE.size;
    const sqe = this.#sqes;
    for (let i = 0; i < IO_URING_SQE.size; i += 8) sqe.setBigUint64(at + i, 0n);
    sqe.setUint8(at + SQE.opcode, opcode);
    sqe.setInt32(at + SQE.fd, fd, true);
    sqe.setBigUint64(at + SQE.off, BigInt(offset), true);
    sqe.setBigUint64(at + SQE.addr, address, true);
    sqe.setUint32(at + SQE.len, length, true);
    sqe.setUint32(at + SQE.fsync_flags, opFlags, true);
    sqe.setUint32(at + SQE.user_data, userData % U32_RANGE, true);
    sqe.setUint32(at + SQE.user_data + CELL, Math.floor(userData / U32_RANGE), true);
    // Publish the entry (the kernel loads the tail with acquire semantics).
    Atomics.store(this.#sqTail, 0, (tail + 1) >>> 0);
    this.#unsubmitted++;
  }

  /** `io_uring_enter(2)`: hands every queued entry to the kernel. */
  submit(): void {
    while (this.#unsubmitted > 0) this.#unsubmitted -= this.#enter(this.#unsubmitted, 0, 0);
  }

  /** Submits what is queued and waits until at least `count` completions are in the ring. */
  wait(count: number): void {
    this.submit();
    this.#enter(0, count, IORING_ENTER_GETEVENTS);
  }

  #enter(toSubmit: number, minComplete: number, flags: number): number {
    for (;;) {
      const r = libc().syscall_io_uring_enter(
        BigInt(NR_IO_URING_ENTER),
        this.fd,
        toSubmit,
        minComplete,
        flags,
        null,
        0n,
      );
      if (r >= 0n) return Number(r);
      const error = lastError("io_uring_enter");
      if (!error.is("EINTR")) throw error;
    }
  }

  /** Calls `handler` for every completion in the ring, in ring order; returns how many. */
  reap(handler: CompletionHandler): number {
    let head = Atomics.load(this.#cqHead, 0);
    const tail = Atomics.load(this.#cqTail, 0);
    let count = 0;
    while (head !== tail) {
      const at = (head & this.#cqMask) * IO_URING_CQE.size;
      const cqe = this.#cqes;
      const userData = cqe.getUint32(at + CQE.user_data, true) +
        cqe.getUint32(at + CQE.user_data + CELL, true) * U32_RANGE;
      const result = cqe.getInt32(at + CQE.res, true);
      head = (head + 1) >>> 0;
      // The entry is read: give it back before the handler may submit more.
      Atomics.store(this.#cqHead, 0, head);
      handler(userData, result);
      count++;
    }
    return count;
  }

  /** Unmaps the rings and closes the ring's descriptor (in-flight requests must be reaped first). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.#mappings) munmap(m.address, m.length);
    check(libc().close(this.fd), () => `close(io_uring ${this.fd})`);
  }
}

/** Whether `error` says this host or sandbox gives no io_uring: ENOSYS, EPERM, EACCES. */
export function ioUringUnavailable(error: unknown): error is SyscallError {
  return error instanceof SyscallError &&
    (error.is("ENOSYS") || error.is("EPERM") || error.is("EACCES"));
}
