/**
 * virtio-blk, the block device (OASIS virtio 1.2 §5.2), over a raw image: one request queue whose
 * requests are served in order in the device's Worker — reads and writes go straight between the
 * image and guest RAM ({@link DiskFile}), a flush is an `fdatasync` that returns before the
 * request completes, discard punches holes in sparse images, write-zeroes zeroes in place.
 *
 * Requests the guest gets wrong (too short, out of range, not whole sectors) complete with
 * VIRTIO_BLK_S_IOERR; unknown types with VIRTIO_BLK_S_UNSUPP; a failed host call with IOERR and
 * a warning. None of them stops the device.
 *
 * @module
 */

import { DiskFile, ShortTransferError } from "../../../disk/file.ts";
import { SyscallError } from "../../../ffi/errno.ts";
import * as log from "../../../log.ts";
import type { GuestMemory } from "../../../memory.ts";
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
import type { DescriptorChain } from "../queue.ts";
import { VirtioDeviceType } from "../spec.ts";

/** PCI class 01h (mass storage controller), sub-class 80h (other), as QEMU's virtio-blk. */
export const PCI_CLASS_STORAGE_OTHER = 0x01_8000;

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
}

/** A request that cannot be served, with the status to complete it with. */
class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The block device. */
export class BlockBackend implements VirtioBackend {
  /** §5.2.1. */
  readonly deviceType: number = VirtioDeviceType.BLOCK;
  /** §5.2.3, from the disk's options. */
  readonly features: bigint;
  /** §5.2.2: one request queue. */
  readonly queueSizes: readonly number[] = [BLK_QUEUE_SIZE];
  /** §5.2.4. */
  readonly configBytes: Uint8Array;
  /** Class 0180h. */
  readonly pciClass: number = PCI_CLASS_STORAGE_OTHER;
  #capacityBytes: number;
  readonly #id: Uint8Array;
  readonly #header = new Uint8Array(BLK_REQ_HEADER_SIZE);
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #status = new Uint8Array(BLK_REQ_STATUS_SIZE);
  #file: DiskFile | undefined;

  /** @param spec the disk */
  constructor(readonly spec: BlockSpec) {
    this.features = blockFeatures(spec);
    this.configBytes = blockConfig(spec);
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

  /** §5.2.6: serves every available request, in order. */
  processQueue(_index: number, queue: VirtQueue, memory: GuestMemory): void {
    this.#file ??= new DiskFile(this.spec.fd, memory.bytes, memory.hostAddress(0), {
      direct: this.spec.direct,
      alignment: this.spec.blockSize,
    });
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      queue.pushUsed(chain, this.#serve(chain, this.#file));
    }
  }

  /** Serves one request; returns the bytes written into its writable part. */
  #serve(chain: DescriptorChain, file: DiskFile): number {
    const writable = chain.writableLength;
    if (writable < BLK_REQ_STATUS_SIZE) {
      log.warn("virtio-blk: a request without room for its status byte");
      return 0;
    }
    let written = 0;
    let status = VIRTIO_BLK_S_OK;
    try {
      written = this.#execute(chain, file, writable - BLK_REQ_STATUS_SIZE);
    } catch (e) {
      if (e instanceof RequestError) {
        status = e.status;
        log.debug(`virtio-blk: ${e.message}`);
      } else if (e instanceof SyscallError || e instanceof ShortTransferError) {
        status = VIRTIO_BLK_S_IOERR;
        log.warn(`virtio-blk: ${e.message}`);
      } else {
        throw e;
      }
    }
    this.#status[0] = status;
    chain.write(this.#status, writable - BLK_REQ_STATUS_SIZE);
    return written + BLK_REQ_STATUS_SIZE;
  }

  /**
   * Executes a request whose writable part has `dataRoom` bytes before the status byte.
   * @returns the data bytes written into the chain
   * @throws RequestError for a request the device refuses
   */
  #execute(chain: DescriptorChain, file: DiskFile, dataRoom: number): number {
    if (chain.readInto(this.#header) < BLK_REQ_HEADER_SIZE) {
      throw new RequestError(VIRTIO_BLK_S_IOERR, "request shorter than its header");
    }
    const type = this.#headerView.getUint32(BLK_REQ_TYPE, true);
    const sector = this.#headerView.getBigUint64(BLK_REQ_SECTOR, true);
    const body = chain.readableLength - BLK_REQ_HEADER_SIZE;
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        const offset = this.#checkRange(sector, dataRoom);
        file.read(sliceRanges(chain.writableRanges(), 0, dataRoom), offset);
        return dataRoom;
      }
      case VIRTIO_BLK_T_OUT: {
        this.#checkWritable();
        const offset = this.#checkRange(sector, body);
        file.write(sliceRanges(chain.readableRanges(), BLK_REQ_HEADER_SIZE, body), offset);
        return 0;
      }
      case VIRTIO_BLK_T_FLUSH:
        if (!this.spec.readOnly) file.flush();
        return 0;
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
      const sector = segments.getBigUint64(at, true);
      const bytes = segments.getUint32(at + BLK_SEGMENT_NUM_SECTORS, true) * SECTOR_SIZE;
      const flags = segments.getUint32(at + BLK_SEGMENT_FLAGS, true);
      const allowed = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
      if (flags & ~allowed) {
        throw new RequestError(VIRTIO_BLK_S_UNSUPP, `segment flags 0x${flags.toString(16)}`);
      }
      const unmap = (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0;
      ranges.push([this.#checkRange(sector, bytes), bytes, unmap]);
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
   * Checks that `bytes` from `sector` are whole sectors inside the disk.
   * @returns the byte offset of `sector`
   */
  #checkRange(sector: bigint, bytes: number): number {
    const capacity = BigInt(this.#capacityBytes);
    const offset = sector * BigInt(SECTOR_SIZE);
    if (bytes % SECTOR_SIZE !== 0 || offset > capacity || BigInt(bytes) > capacity - offset) {
      throw new RequestError(VIRTIO_BLK_S_IOERR, `${bytes} bytes at sector ${sector}`);
    }
    return Number(offset);
  }
}
