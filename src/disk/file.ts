/**
 * I/O on an open disk image, straight between the file and guest RAM: `preadv`/`pwritev` with
 * one iovec per guest buffer (no copy), `fdatasync` for flushes, and `fallocate` for discard and
 * write-zeroes. Runs in the block device's Worker, on a descriptor the main thread opened
 * ({@link ./image.ts}).
 *
 * With O_DIRECT the kernel wants every buffer address, length and file offset aligned to the
 * logical block size; a guest buffer that is not goes through an aligned bounce buffer.
 *
 * @module
 */

import type { BufferRange } from "../memory.ts";
import { SyscallError } from "../ffi/errno.ts";
import {
  addressOf,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  fallocate,
  fdatasync,
  IOV_MAX,
  IOVEC_WORDS,
  preadv,
  pwritev,
  setIovec,
} from "../ffi/libc.ts";

/**
 * Alignment of the bounce buffer: a page, the largest logical block size O_DIRECT may need.
 * Guest buffers only need the disk's own block size ({@link DiskFileOptions.alignment}).
 */
export const DIRECT_IO_ALIGNMENT = 4096;
/** Size of the bounce buffer for unaligned direct I/O, and of the zero buffer. */
export const BOUNCE_SIZE = 1 << 20;

/** A transfer ended early: the file is shorter than the range (it shrank underneath us). */
export class ShortTransferError extends Error {
  /**
   * @param what `read` or `write`
   * @param offset the file offset where no more bytes came
   */
  constructor(what: string, offset: number) {
    super(`${what} at byte ${offset}: end of the image`);
    this.name = "ShortTransferError";
  }
}

/** Options of a {@link DiskFile}. */
export interface DiskFileOptions {
  /** The descriptor was opened with O_DIRECT. */
  readonly direct: boolean;
  /**
   * With `direct`: the alignment O_DIRECT needs of buffers, lengths and offsets — the image's
   * logical block size (default {@link DIRECT_IO_ALIGNMENT}).
   */
  readonly alignment?: number;
}

/** A disk image descriptor and the guest RAM its transfers go to and from. */
export class DiskFile {
  readonly #iovecs = new BigUint64Array(IOV_MAX * IOVEC_WORDS);
  /** The iovecs as 32-bit halves: filled with Numbers, no BigInt per buffer. */
  readonly #iovecHalves = new Uint32Array(this.#iovecs.buffer);
  /** `ram[0]`'s host address; a Number is exact (user addresses are below 2^47). */
  readonly ramBase: number;
  readonly #alignment: number;
  #bounce: Uint8Array | undefined;
  #zeros: Uint8Array | undefined;

  /**
   * @param fd the open image (read-only or read-write)
   * @param ram the guest RAM buffer that {@link BufferRange} offsets index
   * @param ramAddress the host address of `ram[0]`
   * @param options how the descriptor was opened
   */
  constructor(
    readonly fd: number,
    private readonly ram: Uint8Array,
    ramAddress: bigint,
    private readonly options: DiskFileOptions,
  ) {
    this.ramBase = Number(ramAddress);
    this.#alignment = options.alignment ?? DIRECT_IO_ALIGNMENT;
  }

  /** Reads `[offset, offset + total)` of the file into `ranges` (total = their sum). */
  read(ranges: readonly BufferRange[], offset: number): void {
    this.#transfer(ranges, offset, false);
  }

  /** Writes `ranges` (in order) to the file at `offset`. */
  write(ranges: readonly BufferRange[], offset: number): void {
    this.#transfer(ranges, offset, true);
  }

  /** `fdatasync`: everything written so far is on stable storage when this returns. */
  flush(): void {
    fdatasync(this.fd);
  }

  /** Deallocates `[offset, offset + length)`; it reads back as zeros. */
  punchHole(offset: number, length: number): void {
    fallocate(this.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
  }

  /**
   * Makes `[offset, offset + length)` read as zeros, keeping it allocated; where the file system
   * (or block device) cannot do that in place, writes zeros.
   */
  writeZeroes(offset: number, length: number): void {
    try {
      fallocate(this.fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
      return;
    } catch (e) {
      if (!(e instanceof SyscallError && (e.is("EOPNOTSUPP") || e.is("EINVAL")))) throw e;
    }
    this.#zeros ??= this.#alignedBuffer();
    for (let done = 0; done < length;) {
      const n = Math.min(length - done, this.#zeros.length);
      this.#bufferIo(this.#zeros.subarray(0, n), offset + done, true);
      done += n;
    }
  }

  #transfer(ranges: readonly BufferRange[], offset: number, write: boolean): void {
    if (this.needsBounce(ranges, offset)) {
      this.#bounced(ranges, offset, write);
    } else {
      this.#vectored(this.ramBase, ranges, offset, write);
    }
  }

  /**
   * `preadv`/`pwritev` of `ranges` (offsets from host address `base`) at file `offset`, IOV_MAX
   * buffers at a time.
   */
  #vectored(base: number, ranges: readonly BufferRange[], offset: number, write: boolean): void {
    // Walk the ranges with a byte cursor, so a short transfer resumes where it stopped.
    let index = 0;
    let skip = 0;
    let position = offset;
    while (index < ranges.length) {
      let count = 0;
      for (let i = index; i < ranges.length && count < IOV_MAX; i++) {
        const range = ranges[i];
        const start = i === index ? skip : 0;
        if (range.length === start) continue;
        setIovec(this.#iovecHalves, count, base + range.offset + start, range.length - start);
        count++;
      }
      if (count === 0) return;
      const n = write
        ? pwritev(this.fd, this.#iovecs, count, position)
        : preadv(this.fd, this.#iovecs, count, position);
      if (n === 0) throw new ShortTransferError(write ? "write" : "read", position);
      position += n;
      // Advance the cursor by n bytes.
      let left = n;
      while (index < ranges.length && left >= ranges[index].length - skip) {
        left -= ranges[index].length - skip;
        index++;
        skip = 0;
      }
      skip += left;
    }
  }

  /**
   * Whether a transfer of `ranges` at `offset` goes through the bounce buffer: the descriptor is
   * O_DIRECT and a buffer or the file offset misses its alignment.
   */
  needsBounce(ranges: readonly BufferRange[], offset: number): boolean {
    if (!this.options.direct) return false;
    const mask = this.#alignment - 1;
    if (offset & mask) return true;
    const base = this.ramBase & mask;
    return ranges.some((r) => ((base + r.offset) & mask) !== 0 || (r.length & mask) !== 0);
  }

  /** Unaligned direct I/O, through the bounce buffer, a chunk at a time. */
  #bounced(ranges: readonly BufferRange[], offset: number, write: boolean): void {
    const bounce = this.#bounce ??= this.#alignedBuffer();
    let position = offset;
    /** The pieces of guest RAM in the current chunk, in order. */
    const pieces: BufferRange[] = [];
    let chunk = 0;
    const flushChunk = () => {
      const io = bounce.subarray(0, chunk);
      if (!write) this.#bufferIo(io, position, false);
      let at = 0;
      for (const piece of pieces) {
        const guest = this.ram.subarray(piece.offset, piece.offset + piece.length);
        if (write) io.set(guest, at);
        else guest.set(io.subarray(at, at + piece.length));
        at += piece.length;
      }
      if (write) this.#bufferIo(io, position, true);
      position += chunk;
      chunk = 0;
      pieces.length = 0;
    };
    for (const range of ranges) {
      for (let start = 0; start < range.length;) {
        const n = Math.min(range.length - start, bounce.length - chunk);
        pieces.push({ offset: range.offset + start, length: n });
        chunk += n;
        start += n;
        if (chunk === bounce.length) flushChunk();
      }
    }
    if (chunk > 0) flushChunk();
  }

  /** One whole transfer between a host buffer (aligned when direct) and the file. */
  #bufferIo(buffer: Uint8Array, offset: number, write: boolean): void {
    const whole = [{ offset: 0, length: buffer.length }];
    this.#vectored(Number(addressOf(buffer)), whole, offset, write);
  }

  /** A zeroed buffer of {@link BOUNCE_SIZE} bytes at an address aligned for direct I/O. */
  #alignedBuffer(): Uint8Array {
    const backing = new ArrayBuffer(BOUNCE_SIZE + DIRECT_IO_ALIGNMENT);
    const misalignment = Number(addressOf(backing) % BigInt(DIRECT_IO_ALIGNMENT));
    const start = misalignment === 0 ? 0 : DIRECT_IO_ALIGNMENT - misalignment;
    return new Uint8Array(backing, start, BOUNCE_SIZE);
  }
}
