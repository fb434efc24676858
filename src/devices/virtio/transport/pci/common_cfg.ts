/**
 * The common configuration structure of a virtio-pci function (OASIS virtio 1.2 §4.1.4.3), as
 * register fields over {@link VirtioRegs}.
 *
 * §4.1.3.1: drivers access each field with its natural width (64-bit fields as two 32-bit
 * halves). Reads of any width return the fields' bytes; a write must cover whole fields (one, or a
 * run of them) or it is dropped. Must run under the device's lock.
 *
 * @module
 */

import { CommonCfg } from "./layout.ts";
import type { QueueArea, StatusChange, VirtioRegs } from "../../registers.ts";

/** One register of the structure. */
interface Field {
  readonly offset: number;
  readonly size: 1 | 2 | 4;
  read(): number;
  /** Absent for read-only fields (writes to them are dropped). */
  write?(value: number): void;
}

/** The common configuration registers of one device. */
export class CommonConfig {
  readonly #fields: Field[];
  /** Field index by byte offset. */
  readonly #byOffset: (Field | undefined)[] = [];

  /**
   * Lays the fields out over `regs`.
   * @param regs the device's registers
   * @param onStatus what the transport must do after a device_status write
   */
  constructor(private readonly regs: VirtioRegs, onStatus: (change: StatusChange) => void) {
    const r = regs;
    const C = CommonCfg;
    const field = (
      offset: number,
      size: 1 | 2 | 4,
      read: () => number,
      write?: (value: number) => void,
    ): Field => ({ offset, size, read, write });
    // Queue registers act on the selected queue; §4.1.4.3.1: an absent queue reads 0.
    const queue = (
      offset: number,
      size: 2 | 4,
      read: (q: number) => number,
      write?: (q: number, value: number) => void,
    ): Field =>
      field(
        offset,
        size,
        () => (r.hasQueue(r.queueSelect) ? read(r.queueSelect) : 0),
        write && ((value) => r.hasQueue(r.queueSelect) && write(r.queueSelect, value)),
      );
    const address = (offset: number, area: QueueArea, high: boolean) =>
      queue(
        offset,
        4,
        (q) => r.queueAddressHalf(q, area, high),
        (q, v) => r.setQueueAddressHalf(q, area, high, v),
      );
    this.#fields = [
      field(C.DEVICE_FEATURE_SELECT, 4, () => r.deviceFeatureSelect, (v) => {
        r.deviceFeatureSelect = v;
      }),
      field(C.DEVICE_FEATURE, 4, () => r.deviceFeature),
      field(C.DRIVER_FEATURE_SELECT, 4, () => r.driverFeatureSelect, (v) => {
        r.driverFeatureSelect = v;
      }),
      field(C.DRIVER_FEATURE, 4, () => r.driverFeature, (v) => {
        r.driverFeature = v;
      }),
      field(C.CONFIG_MSIX_VECTOR, 2, () => r.configVector, (v) => {
        r.configVector = v;
      }),
      field(C.NUM_QUEUES, 2, () => r.numQueues),
      field(C.DEVICE_STATUS, 1, () => r.status, (v) => onStatus(r.writeStatus(v))),
      field(C.CONFIG_GENERATION, 1, () => r.configGeneration),
      field(C.QUEUE_SELECT, 2, () => r.queueSelect, (v) => {
        r.queueSelect = v;
      }),
      queue(C.QUEUE_SIZE, 2, (q) => r.queueSize(q), (q, v) => r.setQueueSize(q, v)),
      queue(C.QUEUE_MSIX_VECTOR, 2, (q) => r.queueVector(q), (q, v) => r.setQueueVector(q, v)),
      queue(C.QUEUE_ENABLE, 2, (q) => (r.queueEnabled(q) ? 1 : 0), (q, v) => r.enableQueue(q, v)),
      // §4.1.4.4: queue q's doorbell is at q * notify_off_multiplier.
      queue(C.QUEUE_NOTIFY_OFF, 2, (q) => q),
      address(C.QUEUE_DESC_LO, "desc", false),
      address(C.QUEUE_DESC_HI, "desc", true),
      address(C.QUEUE_DRIVER_LO, "driver", false),
      address(C.QUEUE_DRIVER_HI, "driver", true),
      address(C.QUEUE_DEVICE_LO, "device", false),
      address(C.QUEUE_DEVICE_HI, "device", true),
      // VIRTIO_F_NOTIF_CONFIG_DATA and VIRTIO_F_RING_RESET are not offered: both read 0.
      field(C.QUEUE_NOTIFY_DATA, 2, () => 0),
      field(C.QUEUE_RESET, 2, () => 0),
    ];
    for (const field of this.#fields) {
      for (let i = 0; i < field.size; i++) this.#byOffset[field.offset + i] = field;
    }
  }

  /** Reads `data.length` bytes at `offset`; bytes outside any field read 0. */
  read(offset: number, data: Uint8Array): void {
    let field: Field | undefined;
    let value = 0;
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const here = this.#byOffset[at];
      if (here === undefined) {
        data[i] = 0;
        continue;
      }
      if (here !== field) {
        field = here;
        value = here.read();
      }
      data[i] = value >>> (8 * (at - here.offset));
    }
  }

  /**
   * Writes whole fields. While a reset waits for the device Worker, the driver must only poll
   * device_status (§4.1.4.3.2), so writes are dropped until it reads 0.
   */
  write(offset: number, data: Uint8Array): void {
    if (this.regs.resetPending) return;
    const fields: Field[] = [];
    for (let at = offset; at < offset + data.length;) {
      const field = this.#byOffset[at];
      if (field === undefined || field.offset !== at) return; // not whole fields: drop it
      fields.push(field);
      at += field.size;
    }
    if (fields.length === 0) return;
    const last = fields[fields.length - 1];
    if (last.offset + last.size !== offset + data.length) return;
    for (const field of fields) {
      let value = 0;
      for (let i = field.size - 1; i >= 0; i--) {
        value = value * 256 + data[field.offset - offset + i];
      }
      field.write?.(value >>> 0);
    }
  }
}
