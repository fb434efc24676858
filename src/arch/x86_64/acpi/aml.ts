/**
 * A small encoder for ACPI Machine Language (ACPI 6.5 §20, "ACPI Machine Language (AML)
 * Specification") and for the resource descriptors of `_CRS` buffers (ACPI 6.5 §6.4): just
 * what our DSDT needs. Every function returns encoded bytes; the two branded types keep AML
 * objects and resource descriptors from being mixed up.
 *
 * @module
 */

declare const amlBrand: unique symbol;
declare const resourceBrand: unique symbol;

/** Encoded AML: a term or data object (a Name, Device, Scope, Package, integer…). */
export type Aml = Uint8Array & { readonly [amlBrand]: true };
/** One encoded resource descriptor (ACPI 6.5 §6.4), to put in a {@link resourceTemplate}. */
export type ResourceDescriptor = Uint8Array & { readonly [resourceBrand]: true };

// Opcodes and prefixes, ACPI 6.5 §20.2 ("AML Grammar Definition").
/** §20.2.3 Data Objects Encoding: ZeroOp. */
const ZERO_OP = 0x00;
/** §20.2.3: OneOp. */
const ONE_OP = 0x01;
/** §20.2.3: BytePrefix, then ByteData. */
const BYTE_PREFIX = 0x0a;
/** §20.2.3: WordPrefix, then WordData. */
const WORD_PREFIX = 0x0b;
/** §20.2.3: DWordPrefix, then DWordData. */
const DWORD_PREFIX = 0x0c;
/** §20.2.3: StringPrefix, then AsciiCharList and NullChar. */
const STRING_PREFIX = 0x0d;
/** §20.2.3: QWordPrefix, then QWordData. */
const QWORD_PREFIX = 0x0e;
/** §20.2.5.1 Namespace Modifier Objects Encoding: DefName := NameOp NameString DataRefObject. */
const NAME_OP = 0x08;
/** §20.2.5.1: DefScope := ScopeOp PkgLength NameString TermList. */
const SCOPE_OP = 0x10;
/** §20.2.5.4 Expression Opcodes Encoding: DefBuffer := BufferOp PkgLength BufferSize ByteList. */
const BUFFER_OP = 0x11;
/** §20.2.5.4: DefPackage := PackageOp PkgLength NumElements PackageElementList. */
const PACKAGE_OP = 0x12;
/** §20.2.5.2 Named Objects Encoding: ExtOpPrefix, first byte of two-byte opcodes. */
const EXT_OP_PREFIX = 0x5b;
/** §20.2.5.2: DefDevice := DeviceOp PkgLength NameString TermList, DeviceOp = ExtOpPrefix 0x82. */
const DEVICE_OP = 0x82;
/** ACPI 6.5 §20.2.5.2 MethodOp. */
const METHOD_OP = 0x14;
/** ACPI 6.5 §20.2.5.3 NotifyOp. */
const NOTIFY_OP = 0x86;
/** §20.2.5.2 MethodFlags bits 0–2: ArgCount, 0–7. */
const METHOD_MAX_ARGS = 7;
/** §20.2.2 Name Objects Encoding: RootChar `\`. */
const ROOT_CHAR = 0x5c;
/** §20.2.2: ParentPrefixChar `^`. */
const PARENT_PREFIX_CHAR = 0x5e;
/** §20.2.2: DualNamePrefix, then two NameSegs. */
const DUAL_NAME_PREFIX = 0x2e;
/** §20.2.2: MultiNamePrefix, then SegCount and that many NameSegs. */
const MULTI_NAME_PREFIX = 0x2f;
/** §20.2.2: NameSeg is four characters; shorter names are padded with `_`. */
const NAME_SEG_LENGTH = 4;
/** §20.2.2: SegCount is a ByteData of 1–255. */
const MAX_SEGMENTS = 255;
/** §20.2.3: a Package's NumElements is one ByteData. */
const MAX_PACKAGE_ELEMENTS = 255;

// PkgLength, ACPI 6.5 §20.2.4 ("Package Length Encoding").
/** A one-byte PkgLength holds lengths below 64 in bits 0–5. */
const PKG_LENGTH_ONE_BYTE_LIMIT = 1 << 6;
/** Longer forms: bits 6–7 of the lead byte count the bytes that follow (1–3). */
const PKG_LENGTH_COUNT_SHIFT = 6;
/** Longer forms: the lead byte's bits 0–3 hold the length's low nibble. */
const PKG_LENGTH_NIBBLE_MASK = 0x0f;
/** The longest PkgLength: four bytes, 28 bits. */
const PKG_LENGTH_MAX_BYTES = 4;

const UINT8_MAX = 0xff;
const UINT16_MAX = 0xffff;
const UINT32_MAX = 0xffff_ffff;
const UINT64_MAX = (1n << 64n) - 1n;

const aml = (bytes: Uint8Array) => bytes as Aml;
const resource = (bytes: Uint8Array) => bytes as ResourceDescriptor;

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Encodes a PkgLength (ACPI 6.5 §20.2.4) for `contentLength` bytes that follow it. The encoded
 * length counts the PkgLength bytes themselves, so the form is chosen for the total.
 */
export function pkgLength(contentLength: number): Uint8Array {
  if (!Number.isInteger(contentLength) || contentLength < 0) {
    throw new RangeError(`bad AML package length ${contentLength}`);
  }
  if (contentLength + 1 < PKG_LENGTH_ONE_BYTE_LIMIT) return Uint8Array.of(contentLength + 1);
  for (let bytes = 2; bytes <= PKG_LENGTH_MAX_BYTES; bytes++) {
    const total = contentLength + bytes;
    // A lead nibble plus (bytes - 1) full bytes.
    if (total >= 2 ** (4 + 8 * (bytes - 1))) continue;
    const out = new Uint8Array(bytes);
    out[0] = ((bytes - 1) << PKG_LENGTH_COUNT_SHIFT) | (total & PKG_LENGTH_NIBBLE_MASK);
    for (let i = 1; i < bytes; i++) out[i] = Math.floor(total / 2 ** (4 + 8 * (i - 1))) & 0xff;
    return out;
  }
  throw new RangeError(`AML package of ${contentLength} bytes is too long for a PkgLength`);
}

/** An opcode (one or two bytes), then a PkgLength covering `body`, then `body`. */
function withPkgLength(opcode: readonly number[], body: readonly Uint8Array[]): Aml {
  const content = concat(body);
  return aml(concat([Uint8Array.from(opcode), pkgLength(content.length), content]));
}

/**
 * Encodes one NameSeg (ACPI 6.5 §20.2.2): a lead character `A`–`Z` or `_`, then up to three of
 * `A`–`Z`, `0`–`9`, `_`, padded with `_` to four.
 */
export function nameSeg(seg: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) throw new RangeError(`bad AML NameSeg "${seg}"`);
  return new TextEncoder().encode(seg.padEnd(NAME_SEG_LENGTH, "_"));
}

/**
 * Encodes a NameString (ACPI 6.5 §20.2.2): an optional `\` (root) or `^` prefixes (parent), then
 * dot-separated NameSegs, e.g. `\_SB_.PCI0` or `_HID`.
 */
export function nameString(path: string): Uint8Array {
  let rest = path;
  const prefix: number[] = [];
  if (rest.startsWith("\\")) {
    prefix.push(ROOT_CHAR);
    rest = rest.slice(1);
  } else {
    while (rest.startsWith("^")) {
      prefix.push(PARENT_PREFIX_CHAR);
      rest = rest.slice(1);
    }
  }
  const segs = rest === "" ? [] : rest.split(".").map(nameSeg);
  if (segs.length > MAX_SEGMENTS) throw new RangeError(`AML name "${path}" has too many segments`);
  let namePath: Uint8Array[];
  if (segs.length === 0) namePath = [Uint8Array.of(ZERO_OP)]; // NullName
  else if (segs.length === 1) namePath = segs;
  else if (segs.length === 2) namePath = [Uint8Array.of(DUAL_NAME_PREFIX), ...segs];
  else namePath = [Uint8Array.of(MULTI_NAME_PREFIX, segs.length), ...segs];
  return concat([Uint8Array.from(prefix), ...namePath]);
}

/**
 * Encodes an integer (ACPI 6.5 §20.2.3) in its shortest form: ZeroOp, OneOp, or a Byte, Word,
 * DWord or QWord prefix and its little-endian data.
 */
export function integer(value: number | bigint): Aml {
  const v = BigInt(value);
  if (v < 0n || v > UINT64_MAX) throw new RangeError(`AML integer ${value} is out of range`);
  if (v === 0n) return aml(Uint8Array.of(ZERO_OP));
  if (v === 1n) return aml(Uint8Array.of(ONE_OP));
  if (v <= BigInt(UINT8_MAX)) return aml(Uint8Array.of(BYTE_PREFIX, Number(v)));
  if (v <= BigInt(UINT16_MAX)) return aml(prefixed(WORD_PREFIX, 2, v));
  if (v <= BigInt(UINT32_MAX)) return aml(prefixed(DWORD_PREFIX, 4, v));
  return aml(prefixed(QWORD_PREFIX, 8, v));
}

/** A prefix byte, then `size` little-endian bytes of `value`. */
function prefixed(prefix: number, size: number, value: bigint): Uint8Array {
  const out = new Uint8Array(1 + size);
  out[0] = prefix;
  for (let i = 0; i < size; i++) out[1 + i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** Encodes a String (ACPI 6.5 §20.2.3): printable ASCII (0x01–0x7F), NUL-terminated. */
export function string(value: string): Aml {
  const ascii = [...value].every((c) => c.charCodeAt(0) >= 0x01 && c.charCodeAt(0) <= 0x7f);
  if (!ascii) throw new RangeError(`AML string "${value}" is not ASCII`);
  const text = new TextEncoder().encode(value);
  return aml(concat([Uint8Array.of(STRING_PREFIX), text, Uint8Array.of(0)]));
}

/**
 * The 32-bit compressed EISA ID of a PNP ID such as `PNP0A08` (ACPI 6.5 §6.1.5, `_HID`; the ASL
 * `EISAID()` macro of §19.6): three letters in five bits each, then four hex digits, stored
 * big-endian, which read as a little-endian DWord gives e.g. 0x080AD041.
 */
export function eisaIdValue(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`bad EISA ID "${id}"`);
  const letter = (i: number) => id.charCodeAt(i) - 0x40; // 'A' is 1
  const vendor = (letter(0) << 10) | (letter(1) << 5) | letter(2);
  const product = parseInt(id.slice(3), 16);
  const bytes = Uint8Array.of(vendor >> 8, vendor & 0xff, product >> 8, product & 0xff);
  return new DataView(bytes.buffer).getUint32(0, true);
}

/** Encodes an EISA ID as a DWord integer, as `EISAID()` compiles (never shortened). */
export function eisaId(id: string): Aml {
  return aml(prefixed(DWORD_PREFIX, 4, BigInt(eisaIdValue(id))));
}

/** `Name (path, value)`: ACPI 6.5 §20.2.5.1 DefName. */
export function name(path: string, value: Aml): Aml {
  return aml(concat([Uint8Array.of(NAME_OP), nameString(path), value]));
}

/** `Package () {…}`: ACPI 6.5 §20.2.5.4 DefPackage, at most 255 elements. */
export function pkg(elements: readonly Aml[]): Aml {
  if (elements.length > MAX_PACKAGE_ELEMENTS) {
    throw new RangeError(`AML package of ${elements.length} elements, at most 255`);
  }
  return withPkgLength([PACKAGE_OP], [Uint8Array.of(elements.length), ...elements]);
}

/** `Buffer () {…}`: ACPI 6.5 §20.2.5.4 DefBuffer, its size as an integer then the bytes. */
export function buffer(bytes: Uint8Array): Aml {
  return withPkgLength([BUFFER_OP], [integer(bytes.length), bytes]);
}

/** `Scope (path) {…}`: ACPI 6.5 §20.2.5.1 DefScope. */
export function scope(path: string, terms: readonly Aml[]): Aml {
  return withPkgLength([SCOPE_OP], [nameString(path), ...terms]);
}

/** `Device (path) {…}`: ACPI 6.5 §20.2.5.2 DefDevice. */
export function device(path: string, terms: readonly Aml[]): Aml {
  return withPkgLength([EXT_OP_PREFIX, DEVICE_OP], [nameString(path), ...terms]);
}

/**
 * `Method (path, argCount, NotSerialized) {…}`: ACPI 6.5 §20.2.5.2 DefMethod, sync level 0.
 */
export function method(path: string, argCount: number, terms: readonly Aml[]): Aml {
  if (!Number.isInteger(argCount) || argCount < 0 || argCount > METHOD_MAX_ARGS) {
    throw new RangeError(`AML method with ${argCount} arguments, at most ${METHOD_MAX_ARGS}`);
  }
  return withPkgLength([METHOD_OP], [nameString(path), Uint8Array.of(argCount), ...terms]);
}

/** `Notify (object, value)`: ACPI 6.5 §20.2.5.3 DefNotify, to a named object. */
export function notify(object: string, value: number): Aml {
  return aml(concat([Uint8Array.of(NOTIFY_OP), nameString(object), integer(value)]));
}

// Resource descriptors, ACPI 6.5 §6.4.
/** §6.4.2.9 End Tag: small item 0xF, length 1: tag byte 0x79, then the checksum. */
const END_TAG = 0x79;
/** §6.4.2.9: a checksum of 0 means "treat the template as correct". */
const END_TAG_CHECKSUM_IGNORED = 0;
/** §6.4.2.5 I/O Port Descriptor: small item 0x8, length 7. */
const IO_PORT_TAG = 0x47;
/** §6.4.2.5: information bit 0, the device decodes 16 address lines. */
const IO_DECODE_16 = 0x01;
/** §6.4.2.1 IRQ Descriptor: small item 0x4, length 2 (no information byte: edge, high). */
const IRQ_NO_FLAGS_TAG = 0x22;
/** §6.4.2.1: the same with an information byte (length 3). */
const IRQ_WITH_FLAGS_TAG = 0x23;
/** §6.4.2.1 information bit 0, _HE: edge-triggered. (Bit 3, _LL, clear: active-high.) */
const IRQ_FLAG_EDGE = 1 << 0;
/** §6.4.2.1 information bit 4, _SHR: shared with other devices. */
const IRQ_FLAG_SHARED = 1 << 4;
/** §6.4.2.1: the IRQ mask covers IRQs 0–15. */
const ISA_IRQ_COUNT = 16;
/** §6.4.3.5.3 Word Address Space Descriptor: large item 0x88, 13 bytes follow the length. */
const WORD_ADDRESS_TAG = 0x88;
const WORD_ADDRESS_LENGTH = 13;
/** §6.4.3.5.2 DWord Address Space Descriptor: large item 0x87, 23 bytes follow the length. */
const DWORD_ADDRESS_TAG = 0x87;
const DWORD_ADDRESS_LENGTH = 23;
/** §6.4.3.5.1 QWord Address Space Descriptor: large item 0x8A, 43 bytes follow the length. */
const QWORD_ADDRESS_TAG = 0x8a;
const QWORD_ADDRESS_LENGTH = 43;
/** §6.4.3.6 Extended Interrupt Descriptor: large item 0x89. */
const EXTENDED_INTERRUPT_TAG = 0x89;
/** §6.4.3.6 Interrupt Vector Flags bit 0: the device consumes the interrupt. */
const INTERRUPT_FLAG_CONSUMER = 1 << 0;
/** §6.4.3.6 Interrupt Vector Flags bit 1: edge-triggered (0: level). */
const INTERRUPT_FLAG_EDGE = 1 << 1;
/** §6.4.3.6 Interrupt Vector Flags bit 2: active-low (0: active-high). */
const INTERRUPT_FLAG_ACTIVE_LOW = 1 << 2;
/** §6.4.3.6 Interrupt Vector Flags bit 3: shared (0: exclusive). */
const INTERRUPT_FLAG_SHARED = 1 << 3;
/** Large items: the tag byte, then a 16-bit length. */
const LARGE_ITEM_HEADER = 3;

/** §6.4.3.5 Resource Type: memory range. */
const RESOURCE_TYPE_MEMORY = 0;
/** §6.4.3.5 Resource Type: I/O range. */
const RESOURCE_TYPE_IO = 1;
/** §6.4.3.5 Resource Type: bus number range. */
const RESOURCE_TYPE_BUS_NUMBER = 2;
/** §6.4.3.5 General Flags bit 0: this device consumes the range (0: it produces it, a bridge). */
const GENERAL_FLAG_CONSUMER = 1 << 0;
/** §6.4.3.5 General Flags bit 2: _MIF, the minimum address is fixed. */
const GENERAL_FLAG_MIN_FIXED = 1 << 2;
/** §6.4.3.5 General Flags bit 3: _MAF, the maximum address is fixed. */
const GENERAL_FLAG_MAX_FIXED = 1 << 3;
/** §6.4.3.5.5 I/O Resource Flag, _RNG = 3: the range covers ISA and non-ISA ports. */
const IO_FLAG_ENTIRE_RANGE = 0x03;
/** §6.4.3.5.5 Memory Resource Flag bit 0, _RW: read-write. */
const MEMORY_FLAG_READ_WRITE = 1 << 0;
/** §6.4.3.5.5 Memory Resource Flag bits 1–2, _MEM. */
const MEMORY_FLAG_CACHEABILITY_SHIFT = 1;

/** §6.4.3.5.5 _MEM: how a memory range may be cached. */
export const MemoryCaching = {
  NON_CACHEABLE: 0,
  CACHEABLE: 1,
  WRITE_COMBINING: 2,
  PREFETCHABLE: 3,
} as const;

/** One of {@link MemoryCaching}. */
export type MemoryCachingValue = (typeof MemoryCaching)[keyof typeof MemoryCaching];

/** A fixed address range for an address space descriptor: `[min, max]` inclusive. */
export interface AddressRange {
  /** First address (_MIN). */
  min: number;
  /** Last address (_MAX). */
  max: number;
  /** Whether the device consumes the range; false (default) for a bridge's window. */
  consumer?: boolean;
}

/** A memory range: an {@link AddressRange} with its caching. */
export interface MemoryRange extends AddressRange {
  /** Cacheability (_MEM); non-cacheable by default. */
  caching?: MemoryCachingValue;
}

/**
 * An Address Space Descriptor (ACPI 6.5 §6.4.3.5.1–3) for a fixed range with no translation and
 * granularity 0, fields `size` bytes wide.
 */
function addressSpace(
  tag: number,
  length: number,
  size: 2 | 4 | 8,
  resourceType: number,
  typeFlags: number,
  range: AddressRange,
): ResourceDescriptor {
  const limit = 2 ** (8 * size);
  const { min, max } = range;
  if (!(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min >= 0 && min <= max)) {
    throw new RangeError(`bad address range [${min}, ${max}]`);
  }
  if (max >= limit) throw new RangeError(`address ${max} does not fit a ${size}-byte descriptor`);
  const out = new Uint8Array(LARGE_ITEM_HEADER + length);
  const view = new DataView(out.buffer);
  out[0] = tag;
  view.setUint16(1, length, true);
  out[3] = resourceType;
  out[4] = GENERAL_FLAG_MIN_FIXED | GENERAL_FLAG_MAX_FIXED |
    (range.consumer ? GENERAL_FLAG_CONSUMER : 0);
  out[5] = typeFlags;
  // Granularity (6), then _MIN, _MAX, _TRA (translation, 0), _LEN, each `size` bytes.
  const field = (index: number, value: number) => {
    const at = 6 + index * size;
    for (let i = 0; i < size; i++) out[at + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  };
  field(1, min);
  field(2, max);
  field(4, max - min + 1);
  return resource(out);
}

/** `WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, …)` for buses `[min, max]`. */
export function wordBusNumber(range: AddressRange): ResourceDescriptor {
  return addressSpace(WORD_ADDRESS_TAG, WORD_ADDRESS_LENGTH, 2, RESOURCE_TYPE_BUS_NUMBER, 0, range);
}

/** `WordIO (…, MinFixed, MaxFixed, PosDecode, EntireRange, …)` for ports `[min, max]`. */
export function wordIo(range: AddressRange): ResourceDescriptor {
  return addressSpace(
    WORD_ADDRESS_TAG,
    WORD_ADDRESS_LENGTH,
    2,
    RESOURCE_TYPE_IO,
    IO_FLAG_ENTIRE_RANGE,
    range,
  );
}

const memoryFlags = (range: MemoryRange) =>
  MEMORY_FLAG_READ_WRITE |
  ((range.caching ?? MemoryCaching.NON_CACHEABLE) << MEMORY_FLAG_CACHEABILITY_SHIFT);

/** `DWordMemory (…, PosDecode, MinFixed, MaxFixed, <caching>, ReadWrite, …)` for `[min, max]`. */
export function dwordMemory(range: MemoryRange): ResourceDescriptor {
  return addressSpace(
    DWORD_ADDRESS_TAG,
    DWORD_ADDRESS_LENGTH,
    4,
    RESOURCE_TYPE_MEMORY,
    memoryFlags(range),
    range,
  );
}

/** `QWordMemory (…, PosDecode, MinFixed, MaxFixed, <caching>, ReadWrite, …)` for `[min, max]`. */
export function qwordMemory(range: MemoryRange): ResourceDescriptor {
  return addressSpace(
    QWORD_ADDRESS_TAG,
    QWORD_ADDRESS_LENGTH,
    8,
    RESOURCE_TYPE_MEMORY,
    memoryFlags(range),
    range,
  );
}

/** `IO (Decode16, base, base, alignment, length)`: ACPI 6.5 §6.4.2.5, a fixed port range. */
export function io(base: number, length: number, alignment = 1): ResourceDescriptor {
  if (base < 0 || base + length - 1 > UINT16_MAX || length < 1 || length > UINT8_MAX) {
    throw new RangeError(`bad I/O port range ${base}+${length}`);
  }
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  out[0] = IO_PORT_TAG;
  out[1] = IO_DECODE_16;
  view.setUint16(2, base, true); // _MIN
  view.setUint16(4, base, true); // _MAX
  out[6] = alignment; // _ALN
  out[7] = length; // _LEN
  return resource(out);
}

/**
 * An IRQ descriptor (ACPI 6.5 §6.4.2.1) for edge-triggered, active-high ISA IRQs: the short
 * `IRQNoFlags () {irqs}`, or `IRQ (Edge, ActiveHigh, Shared) {irqs}` when `shared`.
 */
export function irq(irqs: readonly number[], shared = false): ResourceDescriptor {
  let mask = 0;
  for (const n of irqs) {
    if (!Number.isInteger(n) || n < 0 || n >= ISA_IRQ_COUNT) {
      throw new RangeError(`ISA IRQ ${n} is not 0-15`);
    }
    mask |= 1 << n;
  }
  if (!shared) return resource(Uint8Array.of(IRQ_NO_FLAGS_TAG, mask & 0xff, mask >> 8));
  return resource(
    Uint8Array.of(IRQ_WITH_FLAGS_TAG, mask & 0xff, mask >> 8, IRQ_FLAG_EDGE | IRQ_FLAG_SHARED),
  );
}

/** How an {@link extendedInterrupt} is signalled. */
export interface InterruptMode {
  /** Edge-triggered (default: level). */
  readonly edge?: boolean;
  /** Active-low (default: active-high). */
  readonly activeLow?: boolean;
  /** Shared with other devices (default: exclusive). */
  readonly shared?: boolean;
}

/**
 * `Interrupt (ResourceConsumer, …) {gsis}`: an Extended Interrupt Descriptor (ACPI 6.5 §6.4.3.6),
 * for GSIs of any number, as the interrupts of a Generic Event Device (§5.6.9) are given.
 */
export function extendedInterrupt(
  gsis: readonly number[],
  mode: InterruptMode,
): ResourceDescriptor {
  if (gsis.length === 0 || gsis.length > UINT8_MAX) {
    throw new RangeError(`${gsis.length} interrupts in one descriptor: 1 to ${UINT8_MAX}`);
  }
  const length = 2 + 4 * gsis.length;
  const out = new Uint8Array(LARGE_ITEM_HEADER + length);
  const view = new DataView(out.buffer);
  out[0] = EXTENDED_INTERRUPT_TAG;
  view.setUint16(1, length, true);
  out[3] = INTERRUPT_FLAG_CONSUMER | (mode.edge ? INTERRUPT_FLAG_EDGE : 0) |
    (mode.activeLow ? INTERRUPT_FLAG_ACTIVE_LOW : 0) | (mode.shared ? INTERRUPT_FLAG_SHARED : 0);
  out[4] = gsis.length;
  gsis.forEach((gsi, i) => {
    if (!Number.isInteger(gsi) || gsi < 0 || gsi > UINT32_MAX) {
      throw new RangeError(`interrupt ${gsi} is not a 32-bit number`);
    }
    view.setUint32(5 + 4 * i, gsi, true);
  });
  return resource(out);
}

/** The End Tag (ACPI 6.5 §6.4.2.9) with checksum 0 ("correct"). */
export function endTag(): ResourceDescriptor {
  return resource(Uint8Array.of(END_TAG, END_TAG_CHECKSUM_IGNORED));
}

/** `ResourceTemplate () {…}`: a Buffer of the descriptors followed by the End Tag. */
export function resourceTemplate(descriptors: readonly ResourceDescriptor[]): Aml {
  return buffer(concat([...descriptors, endTag()]));
}
