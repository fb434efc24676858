/**
 * What register accesses on the VM's buses have in common: their widths, the byte lanes of a
 * dword, and what a read that no device answers returns.
 *
 * @module
 */

/** Bytes in a dword: the widest I/O port access, and one PCI configuration register. */
export const DWORD = 4;
/** Bytes in a qword. */
export const QWORD = 8;

/**
 * The byte a read returns where no device drives the data lines: all ones. On the ISA bus the
 * pull-ups read as ones; on PCI a read of a function that does not exist, or one that ends in a
 * Master Abort, returns all ones (PCI Local Bus Spec 3.0 §6.1, which is why Vendor ID FFFFh is
 * invalid).
 */
export const NO_DEVICE_BYTE = 0xff;

/** The value a read of `size` bytes (1 to 4) returns where no device answers: all ones. */
export function noDeviceValue(size: number): number {
  return 0xffff_ffff >>> (32 - 8 * size);
}

/**
 * The `size`-byte register (1, 2 or 4) at byte `offset` of the dword holding it, from that
 * dword's value; the register must not cross into the next dword.
 */
export function dwordLanes(dword: number, offset: number, size: number): number {
  if (size === DWORD) return dword >>> 0;
  return (dword >>> (8 * (offset % DWORD))) & ((1 << (8 * size)) - 1);
}
