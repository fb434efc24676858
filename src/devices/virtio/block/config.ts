/**
 * virtio-blk's numbers (OASIS virtio 1.2 §5.2): feature bits, the device configuration layout,
 * request types and status values, and the configuration a disk offers the driver.
 *
 * @module
 */

import { featureBit } from "../spec.ts";

/** §5.2.3: `size_max` holds the largest size of any single segment. */
export const VIRTIO_BLK_F_SIZE_MAX = 1;
/** §5.2.3: `seg_max` holds the most segments in a request. */
export const VIRTIO_BLK_F_SEG_MAX = 2;
/** §5.2.3: the device is read-only. */
export const VIRTIO_BLK_F_RO = 5;
/** §5.2.3: `blk_size` holds the disk's block size. */
export const VIRTIO_BLK_F_BLK_SIZE = 6;
/** §5.2.3: the device takes VIRTIO_BLK_T_FLUSH (a volatile write cache). */
export const VIRTIO_BLK_F_FLUSH = 9;
/** §5.2.3: `num_queues` holds the number of request queues. */
export const VIRTIO_BLK_F_MQ = 12;
/** §5.2.3: the device takes VIRTIO_BLK_T_DISCARD. */
export const VIRTIO_BLK_F_DISCARD = 13;
/** §5.2.3: the device takes VIRTIO_BLK_T_WRITE_ZEROES. */
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;

/** §5.2.6: read. */
export const VIRTIO_BLK_T_IN = 0;
/** §5.2.6: write. */
export const VIRTIO_BLK_T_OUT = 1;
/** §5.2.6: flush the write cache. */
export const VIRTIO_BLK_T_FLUSH = 4;
/** §5.2.6: the device ID string. */
export const VIRTIO_BLK_T_GET_ID = 8;
/** §5.2.6: discard sectors. */
export const VIRTIO_BLK_T_DISCARD = 11;
/** §5.2.6: write zeroes to sectors. */
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;

/** §5.2.6: success. */
export const VIRTIO_BLK_S_OK = 0;
/** §5.2.6: device or driver error. */
export const VIRTIO_BLK_S_IOERR = 1;
/** §5.2.6: request unsupported by the device. */
export const VIRTIO_BLK_S_UNSUPP = 2;

/** §5.2.6: `struct virtio_blk_req` header: le32 type, le32 reserved, le64 sector. */
export const BLK_REQ_HEADER_SIZE = 16;
/** §5.2.6: offset of `type` in the header. */
export const BLK_REQ_TYPE = 0;
/** §5.2.6: offset of `sector` in the header. */
export const BLK_REQ_SECTOR = 8;
/** §5.2.6: the `status` byte that ends every request. */
export const BLK_REQ_STATUS_SIZE = 1;
/** §5.2.6: `sector` counts 512-byte units whatever `blk_size` says. */
export const SECTOR_SIZE = 512;
/** §5.2.6: the ID string's length (`VIRTIO_BLK_ID_BYTES`), NUL-padded, not terminated. */
export const VIRTIO_BLK_ID_BYTES = 20;

/** §5.2.6: `struct virtio_blk_discard_write_zeroes`: le64 sector, le32 num_sectors, le32 flags. */
export const BLK_SEGMENT_SIZE = 16;
/** §5.2.6: offset of `num_sectors` in a discard/write-zeroes segment. */
export const BLK_SEGMENT_NUM_SECTORS = 8;
/** §5.2.6: offset of `flags` in a discard/write-zeroes segment. */
export const BLK_SEGMENT_FLAGS = 12;
/** §5.2.6: the `unmap` flag of a write-zeroes segment (reserved, must be 0, for discard). */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;

/** §5.2.4 `struct virtio_blk_config` offsets used here. */
export const BlkConfigOffset = {
  CAPACITY: 0,
  SIZE_MAX: 8,
  SEG_MAX: 12,
  BLK_SIZE: 20,
  NUM_QUEUES: 34,
  MAX_DISCARD_SECTORS: 36,
  MAX_DISCARD_SEG: 40,
  DISCARD_SECTOR_ALIGNMENT: 44,
  MAX_WRITE_ZEROES_SECTORS: 48,
  MAX_WRITE_ZEROES_SEG: 52,
  WRITE_ZEROES_MAY_UNMAP: 56,
} as const;
/** §5.2.4: the configuration up to and including `write_zeroes_may_unmap` and its padding. */
export const BLK_CONFIG_SIZE = 60;

/** Entries in each request queue (crosvm's queue size). */
export const BLK_QUEUE_SIZE = 256;
/** Data segments per request: the queue size less the header and status descriptors. */
export const BLK_SEG_MAX = BLK_QUEUE_SIZE - 2;
/** Largest data segment (1 MiB): bounds one iovec's length without slowing large requests. */
export const BLK_SIZE_MAX = 1 << 20;
/** Most sectors one discard or write-zeroes segment may cover (the le32 maximum). */
export const BLK_MAX_DISCARD_SECTORS = 0xffff_ffff;
/** Most discard or write-zeroes segments per request. */
export const BLK_MAX_DISCARD_SEG = 32;

/** What shapes a disk's configuration and features. */
export interface BlockGeometry {
  /** Image size in bytes (the tail past the last whole sector is not shown to the guest). */
  readonly sizeBytes: number;
  /** Read-only to the guest. */
  readonly readOnly: boolean;
  /** Discard punches holes (and write-zeroes may unmap). */
  readonly sparse: boolean;
  /** The block size reported to the guest (`blk_size`), a power of two ≥ 512. */
  readonly blockSize: number;
  /** Request queues (`num_queues`; more than one offers VIRTIO_BLK_F_MQ). */
  readonly numQueues: number;
}

/** The disk's capacity in 512-byte sectors. */
export function capacitySectors(geometry: Pick<BlockGeometry, "sizeBytes">): number {
  return Math.floor(geometry.sizeBytes / SECTOR_SIZE);
}

/** The configuration bytes that say a disk of `sizeBytes` has its new capacity (§5.2.4). */
export function capacityUpdate(sizeBytes: number): { offset: number; bytes: Uint8Array } {
  const bytes = new Uint8Array(BigUint64Array.BYTES_PER_ELEMENT);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(capacitySectors({ sizeBytes })), true);
  return { offset: BlkConfigOffset.CAPACITY, bytes };
}

/** The device feature bits a disk offers (§5.2.3). */
export function blockFeatures(geometry: BlockGeometry): bigint {
  let features = featureBit(VIRTIO_BLK_F_SIZE_MAX) | featureBit(VIRTIO_BLK_F_SEG_MAX) |
    featureBit(VIRTIO_BLK_F_BLK_SIZE) | featureBit(VIRTIO_BLK_F_FLUSH);
  if (geometry.numQueues > 1) features |= featureBit(VIRTIO_BLK_F_MQ);
  if (geometry.readOnly) return features | featureBit(VIRTIO_BLK_F_RO);
  features |= featureBit(VIRTIO_BLK_F_WRITE_ZEROES);
  if (geometry.sparse) features |= featureBit(VIRTIO_BLK_F_DISCARD);
  return features;
}

/** The device configuration space (§5.2.4) of a disk. */
export function blockConfig(geometry: BlockGeometry): Uint8Array {
  const bytes = new Uint8Array(BLK_CONFIG_SIZE);
  const view = new DataView(bytes.buffer);
  const sectorsPerBlock = geometry.blockSize / SECTOR_SIZE;
  view.setBigUint64(BlkConfigOffset.CAPACITY, BigInt(capacitySectors(geometry)), true);
  view.setUint32(BlkConfigOffset.SIZE_MAX, BLK_SIZE_MAX, true);
  view.setUint32(BlkConfigOffset.SEG_MAX, BLK_SEG_MAX, true);
  view.setUint32(BlkConfigOffset.BLK_SIZE, geometry.blockSize, true);
  view.setUint16(BlkConfigOffset.NUM_QUEUES, geometry.numQueues, true);
  view.setUint32(BlkConfigOffset.MAX_DISCARD_SECTORS, BLK_MAX_DISCARD_SECTORS, true);
  view.setUint32(BlkConfigOffset.MAX_DISCARD_SEG, BLK_MAX_DISCARD_SEG, true);
  view.setUint32(BlkConfigOffset.DISCARD_SECTOR_ALIGNMENT, sectorsPerBlock, true);
  view.setUint32(BlkConfigOffset.MAX_WRITE_ZEROES_SECTORS, BLK_MAX_DISCARD_SECTORS, true);
  view.setUint32(BlkConfigOffset.MAX_WRITE_ZEROES_SEG, BLK_MAX_DISCARD_SEG, true);
  view.setUint8(BlkConfigOffset.WRITE_ZEROES_MAY_UNMAP, geometry.sparse ? 1 : 0);
  return bytes;
}
