/**
 * Typed access to a C struct held in a byte buffer, by member path, using one
 * {@link StructLayout} for offsets and size.
 *
 * @module
 */

import type { StructLayout } from "./kvm_abi.ts";

/** 2^32: the weight of the high dword of a 64-bit value kept as two 32-bit halves. */
export const U32_RANGE = 2 ** 32;

/** A struct's bytes plus little-endian accessors keyed by the layout's member paths. */
export class StructBuffer<F extends Record<string, number>> {
  /** The raw bytes, to hand to an ioctl. */
  readonly bytes: Uint8Array;
  /** A DataView over {@link bytes}. */
  readonly view: DataView;

  /**
   * @param layout the struct's layout
   * @param extra bytes to reserve after the struct (variable-length arrays)
   */
  constructor(readonly layout: StructLayout & { fields: F }, extra = 0) {
    this.bytes = new Uint8Array(layout.size + extra);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Offset of a member path, plus an optional byte delta into it. */
  offset(field: keyof F, delta = 0): number {
    return this.layout.fields[field] + delta;
  }

  /** Reads a u64 member. */
  u64(field: keyof F, delta = 0): bigint {
    return this.view.getBigUint64(this.offset(field, delta), true);
  }

  /** Writes a u64 member. */
  setU64(field: keyof F, value: bigint | number, delta = 0): void {
    this.view.setBigUint64(this.offset(field, delta), BigInt(value), true);
  }

  /** Reads a u32 member. */
  u32(field: keyof F, delta = 0): number {
    return this.view.getUint32(this.offset(field, delta), true);
  }

  /** Writes a u32 member. */
  setU32(field: keyof F, value: number, delta = 0): void {
    this.view.setUint32(this.offset(field, delta), value >>> 0, true);
  }

  /** Reads a u16 member. */
  u16(field: keyof F, delta = 0): number {
    return this.view.getUint16(this.offset(field, delta), true);
  }

  /** Writes a u16 member. */
  setU16(field: keyof F, value: number, delta = 0): void {
    this.view.setUint16(this.offset(field, delta), value, true);
  }

  /** Reads a u8 member. */
  u8(field: keyof F, delta = 0): number {
    return this.view.getUint8(this.offset(field, delta));
  }

  /** Writes a u8 member. */
  setU8(field: keyof F, value: number, delta = 0): void {
    this.view.setUint8(this.offset(field, delta), value);
  }
}
