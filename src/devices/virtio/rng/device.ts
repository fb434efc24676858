/**
 * virtio-rng, the entropy device (OASIS virtio 1.2 §5.4): one request queue of device-writable
 * buffers, each filled with random bytes from the host (`crypto.getRandomValues`). No feature
 * bits, no device configuration.
 *
 * @module
 */

import type { GuestMemory } from "../../../memory.ts";
import type { VirtioBackend, VirtQueue } from "../device.ts";
import { VirtioDeviceType } from "../spec.ts";

/** Entries in the request queue (crosvm's size for it). */
const RNG_QUEUE_SIZE = 256;
/**
 * Bytes served per request at most. `crypto.getRandomValues` fills at most 65536 bytes per call
 * (WebCrypto's quota), and the guest asks for far less (Linux's hw_random reads 32–64 bytes).
 */
export const RNG_MAX_BYTES_PER_REQUEST = 64 * 1024;
/** PCI class FFh (device does not fit a defined class), sub-class 00h, as QEMU's virtio-rng. */
const PCI_CLASS_OTHER = 0xff_0000;

/** The entropy device. */
export class RngBackend implements VirtioBackend {
  /** §5.4.1. */
  readonly deviceType: number = VirtioDeviceType.ENTROPY;
  /** §5.4.3: none. */
  readonly features = 0n;
  /** §5.4.2: a single queue, `requestq`. */
  readonly queueSizes: readonly number[] = [RNG_QUEUE_SIZE];
  /** §5.4.4: none. */
  readonly configBytes = new Uint8Array(0);
  /** Class FFh. */
  readonly pciClass: number = PCI_CLASS_OTHER;
  readonly #random: Uint8Array;

  /**
   * An entropy device.
   * @param maxBytesPerRequest cap on the bytes written into one chain (at most 64 KiB)
   */
  constructor(readonly maxBytesPerRequest = RNG_MAX_BYTES_PER_REQUEST) {
    if (maxBytesPerRequest < 1 || maxBytesPerRequest > RNG_MAX_BYTES_PER_REQUEST) {
      throw new RangeError(`virtio-rng: ${maxBytesPerRequest} bytes per request`);
    }
    this.#random = new Uint8Array(maxBytesPerRequest);
  }

  /**
   * §5.4.6: fills the device-writable part of each chain with random bytes, up to the cap, and
   * returns it with the count written. Readable buffers (none in a valid request) are ignored.
   */
  processQueue(_index: number, queue: VirtQueue, _memory: GuestMemory): void {
    for (let chain = queue.pop(); chain !== null; chain = queue.pop()) {
      const length = Math.min(chain.writableLength, this.maxBytesPerRequest);
      const random = this.#random.subarray(0, length);
      crypto.getRandomValues(random);
      queue.pushUsed(chain, chain.write(random));
    }
  }
}
