/**
 * VXLAN header (RFC 7348 §5).
 *
 * Eight bytes between the outer UDP header and the inner Ethernet frame. Only the I flag and
 * the 24-bit VNI carry meaning; both reserved fields MUST be zero on send and are ignored on
 * receipt (§5), so `parseVxlan` ignores them and the data path decides separately whether to
 * count non-zero reserved bits (`reserved_bits` drop reason in strict mode).
 */

import { inBounds, readU24, writeU24 } from './bytes.js';

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |R|R|R|R|I|R|R|R|            Reserved                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                VXLAN Network Identifier (VNI) |   Reserved    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const VxlanField = {
  Flags: 0,
  ReservedAfterFlags: 1,
  Vni: 4,
  ReservedAfterVni: 7,
} as const;

export const VXLAN_HEADER_LENGTH = VxlanField.ReservedAfterVni + 1;

export const VxlanFlags = {
  /** I flag: the VNI is valid. MUST be 1 (RFC 7348 §5). */
  Instance: 0x08,
} as const;

/** Linux's default VXLAN port, which predates the IANA assignment; flannel uses it too. */
export const VXLAN_DEFAULT_PORT_LINUX = 8472;
/** The IANA-assigned VXLAN port (RFC 7348 §5). */
export const VXLAN_IANA_PORT = 4789;

/**
 * Bytes an IPv4 underlay adds around each inner IP packet: outer IPv4 (20, no options) + UDP (8)
 * + VXLAN (8) + inner Ethernet (14). The pod MTU is the underlay MTU minus this (1450 on 1500).
 */
export const VXLAN_OVERHEAD = 20 + 8 + VXLAN_HEADER_LENGTH + 14;

export const VXLAN_MAX_VNI = 0xffffff;

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
