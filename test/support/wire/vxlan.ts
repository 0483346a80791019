/**
 * Test support for src/wire/vxlan.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { inBounds, readU24, writeU24 } from '../../../src/wire/bytes.js';
import { VXLAN_HEADER_LENGTH, VxlanField, VxlanFlags } from '../../../src/wire/vxlan.js';

export * from '../../../src/wire/vxlan.js';

export class VxlanView {
  constructor(
    public buf: Uint8Array,
    public off = 0,
  ) {}

  bind(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** Flags byte (R|R|R|R|I|R|R|R). */
  get flags(): number {
    return this.buf[this.off + VxlanField.Flags]!;
  }
  set flags(value: number) {
    this.buf[this.off + VxlanField.Flags] = value;
  }

  /** The 24-bit Reserved field after the flags. */
  get reservedAfterFlags(): number {
    return readU24(this.buf, this.off + VxlanField.ReservedAfterFlags);
  }
  set reservedAfterFlags(value: number) {
    writeU24(this.buf, this.off + VxlanField.ReservedAfterFlags, value);
  }

  /** VXLAN Network Identifier (VNI), 24 bits. */
  get vni(): number {
    return readU24(this.buf, this.off + VxlanField.Vni);
  }
  set vni(value: number) {
    writeU24(this.buf, this.off + VxlanField.Vni, value);
  }

  /** The 8-bit Reserved field after the VNI. */
  get reservedAfterVni(): number {
    return this.buf[this.off + VxlanField.ReservedAfterVni]!;
  }
  set reservedAfterVni(value: number) {
    this.buf[this.off + VxlanField.ReservedAfterVni] = value;
  }

  /** True when the I flag is set (RFC 7348 §5: the VNI is valid). */
  get hasInstance(): boolean {
    return (this.flags & VxlanFlags.Instance) !== 0;
  }

  /** True when every reserved bit (the seven R flags and both Reserved fields) is zero. */
  get reservedBitsClear(): boolean {
    return (this.flags & ~VxlanFlags.Instance) === 0 && this.reservedAfterFlags === 0 && this.reservedAfterVni === 0;
  }

  /** Offset in `buf` of the inner Ethernet frame. */
  get payloadOffset(): number {
    return this.off + VXLAN_HEADER_LENGTH;
  }
}

export function tryVxlan(buf: Uint8Array, off: number, len: number): boolean {
  return inBounds(buf, off, len) && len >= VXLAN_HEADER_LENGTH;
}

export interface VxlanRepr {
  vni: number;
}

/** Null when the I flag is clear; reserved bits are ignored, as RFC 7348 §5 says receivers do. */
export function parseVxlan(view: VxlanView): VxlanRepr | null {
  if (!view.hasInstance) return null;
  return { vni: view.vni };
}

/** Writes flags = I, both Reserved fields zero, and the VNI. */
export function emitVxlan(repr: VxlanRepr, view: VxlanView): void {
  view.flags = VxlanFlags.Instance;
  view.reservedAfterFlags = 0;
  view.vni = repr.vni;
  view.reservedAfterVni = 0;
}

export function vxlanLen(_repr: VxlanRepr): number {
  return VXLAN_HEADER_LENGTH;
}
