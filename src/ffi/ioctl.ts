/**
 * ioctl request numbers, encoded as `<asm-generic/ioctl.h>` (the x86 encoding) packs them: the
 * data direction, the size of the argument, the driver's type byte and the command number in one
 * 32-bit value.
 *
 * @module
 */

// Field widths and positions of a request number (`<asm-generic/ioctl.h>`).
const IOC_NRBITS = 8;
const IOC_TYPEBITS = 8;
const IOC_SIZEBITS = 14;
const IOC_NRSHIFT = 0;
const IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS;

// Data directions, as userspace sees them (`<asm-generic/ioctl.h>`).
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

/**
 * `_IOC(dir, type, nr, size)`: the request number of command `nr` of driver type `type`, whose
 * argument of `size` bytes moves in direction `dir`.
 * @throws RangeError when a field does not fit its bits
 */
function ioc(dir: number, type: number, nr: number, size: number): number {
  if (nr >>> IOC_NRBITS || type >>> IOC_TYPEBITS || size >>> IOC_SIZEBITS) {
    throw new RangeError(`ioctl type ${type}, nr ${nr}, size ${size} does not fit _IOC`);
  }
  return ((dir << IOC_DIRSHIFT) | (size << IOC_SIZESHIFT) | (type << IOC_TYPESHIFT) |
    (nr << IOC_NRSHIFT)) >>> 0;
}

/** `_IO(type, nr)`: a command without an argument (or with an integer passed by value). */
export function _IO(type: number, nr: number): number {
  return ioc(IOC_NONE, type, nr, 0);
}

/** `_IOR(type, nr, size)`: the kernel writes a `size`-byte struct for userspace to read. */
export function _IOR(type: number, nr: number, size: number): number {
  return ioc(IOC_READ, type, nr, size);
}

/** `_IOW(type, nr, size)`: userspace passes a `size`-byte struct for the kernel to read. */
export function _IOW(type: number, nr: number, size: number): number {
  return ioc(IOC_WRITE, type, nr, size);
}

/** `_IOWR(type, nr, size)`: a `size`-byte struct the kernel both reads and writes. */
export function _IOWR(type: number, nr: number, size: number): number {
  return ioc(IOC_READ | IOC_WRITE, type, nr, size);
}
