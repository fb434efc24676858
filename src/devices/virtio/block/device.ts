/**
 * virtio-blk, the block device (OASIS virtio 1.2 §5.2), over a raw image: one or more request
 * queues (VIRTIO_BLK_F_MQ), each request going straight between the image and guest RAM.
 *
 * Reads, writes and flushes go to an io_uring ({@link UringDiskIo}): each is submitted without
 * waiting, many stay in flight across every queue, and each completes when its completion
 * arrives, in whatever order the kernel finishes them: those it finished during the submission
 * at once, the others when the ring's eventfd (one of the backend's
 * {@link VirtioBackend.eventFds}) says so. A flush starts only once every write submitted
 * before it has completed ({@link FlushBarrier}), and completes after its own `fdatasync`.
 * A reset or stop waits for every request in flight before the queues are dropped, so the kernel
 * never writes guest memory after them.
 *
 * Where io_uring is unavailable (ENOSYS, EPERM under `kernel.io_uring_disabled` or a container's
 * seccomp profile), a pool of threads ({@link PoolDiskIo}) takes its place, with the same
 * ordering: each thread makes one blocking call at a time, so requests still overlap and complete
 * out of order.
 *
 * The synchronous path (blocking `preadv`/`pwritev`/`fdatasync` through {@link DiskFile}) serves
 * the rest: every request when asynchronous I/O is not asked for (`async-executor=epoll`) or
 * neither engine can start; an O_DIRECT request whose guest buffers miss the alignment
 * (DiskFile's bounce buffer); a request with more buffers than one submission takes, or arriving
 * when every slot of the engine is taken. Discard and write-zeroes (`fallocate`) and GET_ID are
 * always served at once.
 *
 * Requests the guest gets wrong (too short, out of range, not whole sectors) complete with
 * VIRTIO_BLK_S_IOERR; unknown types with VIRTIO_BLK_S_UNSUPP; a failed host call (EIO, ENOSPC) or
 * a transfer cut short (the image shrank) with IOERR and a warning. None of them stops the device.
 *
 * io_uring's reads and writes are not seen by the process's seccomp filter (the kernel runs them
 * for the ring; the filter sees `io_uring_enter`): a known property, accepted by crosvm too.
 *
 * @module
 */

import { DiskFile, ShortTransferError } from "../../../disk/file.ts";
import type { DiskIo } from "../../../disk/disk_io.ts";
import { POOL_THREADS, PoolDiskIo } from "../../../disk/pool_io.ts";
import { UringDiskIo } from "../../../disk/uring_io.ts";
import { SyscallError } from "../../../ffi/errno.ts";
import { drainEventfd } from "../../../ffi/eventfd.ts";
import { ioUringUnavailable } from "../../../ffi/io_uring.ts";
import { syscallError } from "../../../ffi/libc.ts";
import * as log from "../../../log.ts";
import type { BufferRange, GuestMemory } from "../../../memory.ts";
import type { VirtioBackend, VirtQueue } from "../device.ts";
import {
  BLK_MAX_DISCARD_SEG,
  BLK_QUEUE_SIZE,
  BLK_REQ_HEADER_SIZE,
  BLK_REQ_SECTOR,
  BLK_REQ_STATUS_SIZE,
  BLK_REQ_TYPE,
  BLK_SEGMENT_FLAGS,
  BLK_SEGMENT_NUM_SECTORS,
  BLK_SEGMENT_SIZE,
  BlkConfigOffset,
  blockConfig,
  blockFeatures,
  capacitySectors,
  SECTOR_SIZE,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from "./config.ts";
import { sliceRanges } from "../../../memory.ts";
import { DWORD } from "../../access.ts";
import { U32_RANGE } from "../../../ffi/struct.ts";
import type { DescriptorChain } from "../queue.ts";
import { FlushBarrier } from "./flush_barrier.ts";
import { VirtioDeviceType } from "../spec.ts";

/** PCI class 01h (mass storage controller), sub-class 80h (other), as QEMU's virtio-blk. */
export const PCI_CLASS_STORAGE_OTHER = 0x01_8000;

/** How a disk's reads, writes and flushes are done: crosvm's `async-executor` kinds. */
export type BlockEngine = "uring" | "epoll";

/** A disk, as the main thread hands it to the device Worker (structured-cloneable). */
export interface BlockSpec {
  /** Selects virtio-blk. */
  kind: "block";
  /** The open, locked image ({@link openDiskImage}); process-wide. */
  fd: number;
  /** Its size in bytes. */
  sizeBytes: number;
  /** Read-only to the guest (the descriptor is read-only too). */
  readOnly: boolean;
  /** Discard punches holes; write-zeroes may. */
  sparse: boolean;
  /** The descriptor was opened with O_DIRECT. */
  direct: boolean;
  /** The device ID string (at most {@link VIRTIO_BLK_ID_BYTES} bytes of UTF-8). */
  id: string;
  /** The block size the guest is told (`blk_size`). */
  blockSize: number;
  /** Request queues (more than one: VIRTIO_BLK_F_MQ). */
  numQueues: number;
  /** `uring`: io_uring where the host allows it, else a thread pool; `epoll`: synchronous only. */
  engine: BlockEngine;
  /** A non-blocking eventfd the engine signals on completions (the VMM's, like the image). */
  eventFd: number;
}

/** A request that cannot be served, with the status to complete it with. */
class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** `#execute`'s answer for a request left in flight: it completes when its completion arrives. */
const IN_FLIGHT = -1;

/** A request submitted to the engine, with what its completion needs. */
interface Submitted {
  readonly op: "read" | "write" | "flush";
  readonly queue: VirtQueue;
  readonly chain: DescriptorChain;
  /** Bytes before the status byte in the writable part: where the status goes. */
  readonly dataRoom: number;
  /** Data bytes the request writes into the chain when it succeeds (a read's data). */
  readonly written: number;
  /** Guest buffers and file offset of a read or write. */
  readonly ranges: readonly BufferRange[];
  readonly offset: number;
  /** Bytes a read or write moves. */
  readonly bytes: number;
  /** A write's epoch in the {@link FlushBarrier}. */
  epoch: number;
}

/** The block device. */
export class BlockBackend implements VirtioBackend {
  /** §5.2.1. */
  readonly deviceType: number = VirtioDeviceType.BLOCK;
  /** §5.2.3, from the disk's options. */
  readonly features: bigint;
  /** §5.2.2: `num_queues` request queues. */
  readonly queueSizes: readonly number[];
  /** §5.2.4. */
  readonly configBytes: Uint8Array;
  /** Class 0180h. */
  readonly pciClass: number = PCI_CLASS_STORAGE_OTHER;
  /** The engine's completion eventfd, watched by the device loop. */
  readonly eventFds: readonly number[];
  #capacityBytes: number;
  readonly #id: Uint8Array;
  readonly #header = new Uint8Array(BLK_REQ_HEADER_SIZE);
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #status = new Uint8Array(BLK_REQ_STATUS_SIZE);
  readonly #barrier = new FlushBarrier<Submitted>();
  #file: DiskFile | undefined;
  /** The engine, once the queues first started; null on the synchronous path. */
  #io: DiskIo<Submitted> | null | undefined;

  /** @param spec the disk */
  constructor(readonly spec: BlockSpec) {
    this.features = blockFeatures(spec);
    this.configBytes = blockConfig(spec);
    this.queueSizes = new Array(spec.numQueues).fill(BLK_QUEUE_SIZE);
    this.eventFds = [spec.eventFd];
    this.#capacityBytes = capacitySectors(spec) * SECTOR_SIZE;
    const id = new TextEncoder().encode(spec.id);
    if (id.length > VIRTIO_BLK_ID_BYTES) {
      throw new RangeError(`virtio-blk: id "${spec.id}" is over ${VIRTIO_BLK_ID_BYTES} bytes`);
    }
    this.#id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    this.#id.set(id);
  }

  /** The VMM resized the disk: requests are checked against the new capacity from now on. */
  configChanged(config: Uint8Array): void {
    const sectors = new DataView(config.buffer, config.byteOffset).getBigUint64(
      BlkConfigOffset.CAPACITY,
      true,
    );
    this.#capacityBytes = Number(sectors) * SECTOR_SIZE;
  }

  /**
   * Whether requests go to an asynchronous engine, io_uring or the thread pool (false on the
   * synchronous path; undefined before start).
   */
  get asynchronous(): boolean | undefined {
    return this.#io === undefined ? undefined : this.#io !== null;
  }

  /** Requests submitted to the engine and not yet completed. */
  get inFlight(): number {
    return this.#io?.inFlight ?? 0;
  }

  /**
   * §5.2.6: takes every available request; reads, writes and flushes go to the engine, and those
   * it finished during their submission (io_uring's inline completions: a read from the page
   * cache, any request to a RAM disk) complete at once, in the same batch as their interrupt,
   * their signals on the eventfd taken with them ({@link onEvent} after the submission). The rest
   * stay in flight until the eventfd says they completed.
   */
  processQueue(_index: number, queue: VirtQueue, memory: GuestMemory): void {
    const file = this.#fileFor(memory);
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      this.#serve(queue, chain, file);
    }
    if (this.#io) {
      this.#io.submit();
      this.onEvent(0);
    }
  }

  /**
   * The engine's eventfd: completes every request whose completion arrived. The eventfd is
   * drained first, so a completion it has signalled is in the engine when it reaps, and one that
   * comes after signals it again.
   */
  onEvent(_index: number): void {
    drainEventfd(this.spec.eventFd);
    this.#io?.reap(this.#complete);
  }

  /** A full suspend: completes every request in flight (waiting for each), flushes included. */
  quiesce(): void {
    this.#io?.drain(this.#complete);
  }

  /** A reset (or a stop with the queues running): waits out every request in flight, drops them. */
  reset(): void {
    this.#io?.drain(() => {});
    this.#barrier.clear();
  }

  /** Closes the engine (the eventfd and image are the VMM's). */
  close(): void {
    this.#io?.drain(() => {});
    this.#io?.close();
    this.#io = null;
  }

  /** The image's {@link DiskFile} over `memory`, and the engine on first use. */
  #fileFor(memory: GuestMemory): DiskFile {
    this.#file ??= new DiskFile(this.spec.fd, memory.bytes, memory.hostAddress(0), {
      direct: this.spec.direct,
      alignment: this.spec.blockSize,
    });
    this.#io ??= this.#openEngine();
    return this.#file;
  }

  /**
   * io_uring for this disk; where the host has none, a thread pool; null for the synchronous path
   * (saying why, when it is the host's).
   */
  #openEngine(): DiskIo<Submitted> | null {
    if (this.spec.engine === "epoll") return null;
    const { fd, eventFd, numQueues } = this.spec;
    const depth = numQueues * BLK_QUEUE_SIZE;
    let why: string;
    try {
      return new UringDiskIo(fd, eventFd, depth);
    } catch (e) {
      if (!ioUringUnavailable(e)) throw e;
      why = `no io_uring (${e.message})`;
    }
    try {
      const pool = new PoolDiskIo<Submitted>(fd, eventFd, depth);
      log.info(`virtio-blk: ${why}; serving requests on ${POOL_THREADS} threads`);
      return pool;
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      log.info(`virtio-blk: ${why}, no thread pool (${reason}); serving requests synchronously`);
      return null;
    }
  }

  /** Takes one request: completes it now, or leaves it in flight. */
  #serve(queue: VirtQueue, chain: DescriptorChain, file: DiskFile): void {
    const writable = chain.writableLength;
    if (writable < BLK_REQ_STATUS_SIZE) {
      log.warn("virtio-blk: a request without room for its status byte");
      queue.pushUsed(chain, 0);
      return;
    }
    const dataRoom = writable - BLK_REQ_STATUS_SIZE;
    let written = 0;
    let status = VIRTIO_BLK_S_OK;
    try {
      written = this.#execute(queue, chain, file, dataRoom);
    } catch (e) {
      status = failureStatus(e);
    }
    if (written !== IN_FLIGHT) this.#finish(queue, chain, dataRoom, status, written);
  }

  /** Writes a request's status byte and returns its chain with `written` data bytes. */
  #finish(
    queue: VirtQueue,
    chain: DescriptorChain,
    dataRoom: number,
    status: number,
    written: number,
  ): void {
    this.#status[0] = status;
    chain.write(this.#status, dataRoom);
    queue.pushUsed(chain, (status === VIRTIO_BLK_S_OK ? written : 0) + BLK_REQ_STATUS_SIZE);
  }

  /**
   * Executes a request whose writable part has `dataRoom` bytes before the status byte.
   * @returns the data bytes written into the chain, or {@link IN_FLIGHT}
   * @throws RequestError for a request the device refuses
   */
  #execute(queue: VirtQueue, chain: DescriptorChain, file: DiskFile, dataRoom: number): number {
    if (chain.readInto(this.#header) < BLK_REQ_HEADER_SIZE) {
      throw new RequestError(VIRTIO_BLK_S_IOERR, "request shorter than its header");
    }
    const header = this.#headerView;
    const type = header.getUint32(BLK_REQ_TYPE, true);
    const sectorLow = header.getUint32(BLK_REQ_SECTOR, true);
    const sectorHigh = header.getUint32(BLK_REQ_SECTOR + DWORD, true);
    const body = chain.readableLength - BLK_REQ_HEADER_SIZE;
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        const offset = this.#checkRange(sectorLow, sectorHigh, dataRoom);
        const ranges = sliceRanges(chain.writableRanges(), 0, dataRoom);
        const read = submitted("read", queue, chain, dataRoom, dataRoom, ranges, offset, dataRoom);
        if (this.#submit(file, read)) return IN_FLIGHT;
        file.read(ranges, offset);
        return dataRoom;
      }
      case VIRTIO_BLK_T_OUT: {
        this.#checkWritable();
        const offset = this.#checkRange(sectorLow, sectorHigh, body);
        const ranges = sliceRanges(chain.readableRanges(), BLK_REQ_HEADER_SIZE, body);
        const write = submitted("write", queue, chain, dataRoom, 0, ranges, offset, body);
        if (this.#submit(file, write)) return IN_FLIGHT;
        file.write(ranges, offset);
        return 0;
      }
      case VIRTIO_BLK_T_FLUSH: {
        if (this.spec.readOnly || !this.#io) {
          if (!this.spec.readOnly) file.flush();
          return 0;
        }
        const flush = submitted("flush", queue, chain, dataRoom, 0, NO_RANGES, 0, 0);
        if (this.#barrier.flushArrived(flush)) this.#startFlush(file, flush);
        return IN_FLIGHT;
      }
      case VIRTIO_BLK_T_GET_ID:
        return chain.write(this.#id.subarray(0, Math.min(dataRoom, VIRTIO_BLK_ID_BYTES)));
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES:
        this.#discardOrZero(chain, file, type, body);
        return 0;
      default:
        throw new RequestError(VIRTIO_BLK_S_UNSUPP, `request type ${type}`);
    }
  }

  /** Submits a read or write to the engine when it can take it; false: serve it synchronously. */
  #submit(file: DiskFile, request: Submitted): boolean {
    const io = this.#io;
    if (
      !io || !io.accepts(request.ranges.length) || file.needsBounce(request.ranges, request.offset)
    ) {
      return false;
    }
    if (request.op === "read") {
      io.read(file.ramBase, request.ranges, request.offset, request);
    } else {
      request.epoch = this.#barrier.writeStarted();
      io.write(file.ramBase, request.ranges, request.offset, request);
    }
    return true;
  }

  /** A flush whose earlier writes have all completed: its `fdatasync`, queued if there is room. */
  #startFlush(file: DiskFile, flush: Submitted): void {
    if (this.#io?.accepts(0)) {
      this.#io.datasync(flush);
      return;
    }
    let status = VIRTIO_BLK_S_OK;
    try {
      file.flush();
    } catch (e) {
      status = failureStatus(e);
    }
    this.#finish(flush.queue, flush.chain, flush.dataRoom, status, 0);
  }

  /** {@link #completed}, bound once for the engine's reaps. */
  readonly #complete = (request: Submitted, result: number) => this.#completed(request, result);

  /** A submitted request's completion: `result` bytes moved, or `-errno`. */
  #completed(request: Submitted, result: number): void {
    const { op, ranges, offset, bytes } = request;
    const file = this.#file!;
    let status = VIRTIO_BLK_S_OK;
    try {
      if (result < 0) throw syscallError(`${op} at byte ${offset}`, -result);
      // A transfer cut short goes on synchronously: it ends, or says where the image ends.
      if (result < bytes) {
        const rest = sliceRanges(ranges, result, bytes - result);
        if (op === "read") file.read(rest, offset + result);
        else file.write(rest, offset + result);
      }
    } catch (e) {
      status = failureStatus(e);
    }
    this.#finish(request.queue, request.chain, request.dataRoom, status, request.written);
    if (op === "write") {
      for (const flush of this.#barrier.writeDone(request.epoch)) this.#startFlush(file, flush);
    }
  }

  /** §5.2.6: every segment of a discard or write-zeroes request. */
  #discardOrZero(chain: DescriptorChain, file: DiskFile, type: number, body: number): void {
    const discard = type === VIRTIO_BLK_T_DISCARD;
    if (discard && !this.spec.sparse) {
      throw new RequestError(VIRTIO_BLK_S_UNSUPP, "discard on a disk that is not sparse");
    }
    this.#checkWritable();
    const count = body / BLK_SEGMENT_SIZE;
    if (!Number.isInteger(count) || count < 1 || count > BLK_MAX_DISCARD_SEG) {
      throw new RequestError(VIRTIO_BLK_S_IOERR, `discard/write-zeroes body of ${body} bytes`);
    }
    const segments = new DataView(chain.read(body, BLK_REQ_HEADER_SIZE).buffer);
    const ranges: [number, number, boolean][] = [];
    for (let i = 0; i < count; i++) {
      const at = i * BLK_SEGMENT_SIZE;
      const sectorLow = segments.getUint32(at, true);
      const sectorHigh = segments.getUint32(at + DWORD, true);
      const bytes = segments.getUint32(at + BLK_SEGMENT_NUM_SECTORS, true) * SECTOR_SIZE;
      const flags = segments.getUint32(at + BLK_SEGMENT_FLAGS, true);
      const allowed = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
      if (flags & ~allowed) {
        throw new RequestError(VIRTIO_BLK_S_UNSUPP, `segment flags 0x${flags.toString(16)}`);
      }
      const unmap = (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0;
      ranges.push([this.#checkRange(sectorLow, sectorHigh, bytes), bytes, unmap]);
    }
    for (const [offset, bytes, unmap] of ranges) {
      if (bytes === 0) continue;
      if (discard) this.#discard(file, offset, bytes);
      else if (unmap && this.spec.sparse) file.punchHole(offset, bytes);
      else file.writeZeroes(offset, bytes);
    }
  }

  /** Discard is a hint: a file system that cannot punch holes just keeps the blocks. */
  #discard(file: DiskFile, offset: number, bytes: number): void {
    try {
      file.punchHole(offset, bytes);
    } catch (e) {
      if (!(e instanceof SyscallError && e.is("EOPNOTSUPP"))) throw e;
    }
  }

  #checkWritable(): void {
    if (this.spec.readOnly) throw new RequestError(VIRTIO_BLK_S_IOERR, "write to a read-only disk");
  }

  /**
   * Checks that `bytes` from the sector whose le64 has the halves `low` and `high` are whole
   * sectors inside the disk.
   * @returns the byte offset of the sector
   */
  #checkRange(low: number, high: number, bytes: number): number {
    const capacity = this.#capacityBytes;
    // Sectors below 2^44 are exact as Numbers, and so are their byte offsets; no image is 2^53
    // bytes, so any other sector is past the end.
    const offset = high < SECTOR_HIGH_LIMIT ? (high * U32_RANGE + low) * SECTOR_SIZE : Infinity;
    if (bytes % SECTOR_SIZE !== 0 || offset > capacity || bytes > capacity - offset) {
      const sector = (BigInt(high) << 32n) | BigInt(low);
      throw new RequestError(VIRTIO_BLK_S_IOERR, `${bytes} bytes at sector ${sector}`);
    }
    return offset;
  }
}

/** The high half of the first le64 sector number whose byte offset is 2^53 or more. */
const SECTOR_HIGH_LIMIT = 2 ** (53 - 32 - Math.log2(SECTOR_SIZE));

/** A flush's guest buffers: none. */
const NO_RANGES: readonly BufferRange[] = [];

/** A request for the engine (one object shape for every kind, so the paths stay monomorphic). */
function submitted(
  op: Submitted["op"],
  queue: VirtQueue,
  chain: DescriptorChain,
  dataRoom: number,
  written: number,
  ranges: readonly BufferRange[],
  offset: number,
  bytes: number,
): Submitted {
  return { op, queue, chain, dataRoom, written, ranges, offset, bytes, epoch: 0 };
}

/**
 * The status a request's failure calls for: a refused request's own, IOERR with one warning for
 * a failed host call or a short transfer.
 * @throws what is neither (a bug)
 */
function failureStatus(e: unknown): number {
  if (e instanceof RequestError) {
    log.debug(`virtio-blk: ${e.message}`);
    return e.status;
  }
  if (e instanceof SyscallError || e instanceof ShortTransferError) {
    log.warn(`virtio-blk: ${e.message}`);
    return VIRTIO_BLK_S_IOERR;
  }
  throw e;
}
