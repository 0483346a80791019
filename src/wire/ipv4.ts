/**
 * IPv4 header (RFC 791 §3.1): its field table, constants, the view the data path uses to rewrite
 * and checksum headers, and the boundary check.
 *
 * vxnet reads and writes only inner IPv4 headers, those of pod packets: the kernel builds the
 * outer header of every VXLAN datagram. Addresses are uint32 numbers in host order (`10.244.1.5`
 * is 0x0af40105), the form the forwarding table keys on; `addr.ts` converts to and from strings
 * on the control plane. `Ipv4Field` is the one layout; the hot path reads it directly or through
 * the view, whose accessors V8 inlines.
 */

import { inBounds, readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { foldChecksum, onesComplementSum } from './checksum.js';

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Version|  IHL  |Type of Service|          Total Length         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Identification        |Flags|      Fragment Offset    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  Time to Live |    Protocol   |         Header Checksum       |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                       Source Address                          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Destination Address                        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Options                    |    Padding    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 *  Type of Service is the DSCP (6 bits) and ECN (2 bits) byte since RFC 2474 / RFC 3168.
 *  Flags: bit 0 reserved, bit 1 DF (don't fragment), bit 2 MF (more fragments).
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const Ipv4Field = {
  VersionAndHeaderLength: 0,
  TypeOfService: 1,
  TotalLength: 2,
  Identification: 4,
  FlagsAndFragmentOffset: 6,
  Ttl: 8,
  Protocol: 9,
  HeaderChecksum: 10,
  SourceAddress: 12,
  DestinationAddress: 16,
} as const;

/** Header length without options. */
export const IPV4_MIN_HEADER_LENGTH = Ipv4Field.DestinationAddress + 4;
export const IPV4_MAX_HEADER_LENGTH = 60;
export const IPV4_MAX_TOTAL_LENGTH = 0xffff;
export const IPV4_VERSION = 4;

/** The parts of the 16-bit Flags and Fragment Offset field (RFC 791 §3.1), as masks over it. */
export const Ipv4Fragment = {
  DontFragment: 0x4000,
  MoreFragments: 0x2000,
  /** Fragment Offset, in units of 8 bytes. */
  OffsetMask: 0x1fff,
} as const;
const FLAG_DONT_FRAGMENT = Ipv4Fragment.DontFragment;
const FLAG_MORE_FRAGMENTS = Ipv4Fragment.MoreFragments;
const FRAGMENT_OFFSET_MASK = Ipv4Fragment.OffsetMask;

/** IP protocol numbers (IANA "Assigned Internet Protocol Numbers"). */
export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPv6: 58,
} as const;

export class Ipv4View {
  constructor(
    public buf: Uint8Array,
    public off = 0,
  ) {}

  bind(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** Version (4 bits). */
  get version(): number {
    return this.buf[this.off + Ipv4Field.VersionAndHeaderLength]! >>> 4;
  }
  set version(value: number) {
    const at = this.off + Ipv4Field.VersionAndHeaderLength;
    this.buf[at] = (value << 4) | (this.buf[at]! & 0x0f);
  }

  /** IHL (Internet Header Length) in bytes: the 4-bit field times 4. Setter takes bytes. */
  get headerLength(): number {
    return (this.buf[this.off + Ipv4Field.VersionAndHeaderLength]! & 0x0f) << 2;
  }
  set headerLength(bytes: number) {
    const at = this.off + Ipv4Field.VersionAndHeaderLength;
    this.buf[at] = (this.buf[at]! & 0xf0) | ((bytes >>> 2) & 0x0f);
  }

  /** Type of Service byte: DSCP and ECN together. */
  get typeOfService(): number {
    return this.buf[this.off + Ipv4Field.TypeOfService]!;
  }
  set typeOfService(value: number) {
    this.buf[this.off + Ipv4Field.TypeOfService] = value;
  }

  /** DSCP, the upper 6 bits of Type of Service (RFC 2474 §3). */
  get dscp(): number {
    return this.buf[this.off + Ipv4Field.TypeOfService]! >>> 2;
  }
  set dscp(value: number) {
    const at = this.off + Ipv4Field.TypeOfService;
    this.buf[at] = (value << 2) | (this.buf[at]! & 0x03);
  }

  /** ECN, the lower 2 bits of Type of Service (RFC 3168 §5). */
  get ecn(): number {
    return this.buf[this.off + Ipv4Field.TypeOfService]! & 0x03;
  }
  set ecn(value: number) {
    const at = this.off + Ipv4Field.TypeOfService;
    this.buf[at] = (this.buf[at]! & 0xfc) | (value & 0x03);
  }

  /** Total Length: header plus data, in bytes. */
  get totalLength(): number {
    return readU16(this.buf, this.off + Ipv4Field.TotalLength);
  }
  set totalLength(value: number) {
    writeU16(this.buf, this.off + Ipv4Field.TotalLength, value);
  }

  /** Identification. */
  get identification(): number {
    return readU16(this.buf, this.off + Ipv4Field.Identification);
  }
  set identification(value: number) {
    writeU16(this.buf, this.off + Ipv4Field.Identification, value);
  }

  /** The DF (Don't Fragment) flag. */
  get dontFragment(): boolean {
    return (readU16(this.buf, this.off + Ipv4Field.FlagsAndFragmentOffset) & FLAG_DONT_FRAGMENT) !== 0;
  }
  set dontFragment(value: boolean) {
    const at = this.off + Ipv4Field.FlagsAndFragmentOffset;
    this.buf[at] = value ? this.buf[at]! | (FLAG_DONT_FRAGMENT >>> 8) : this.buf[at]! & ~(FLAG_DONT_FRAGMENT >>> 8);
  }

  /** The MF (More Fragments) flag. */
  get moreFragments(): boolean {
    return (readU16(this.buf, this.off + Ipv4Field.FlagsAndFragmentOffset) & FLAG_MORE_FRAGMENTS) !== 0;
  }
  set moreFragments(value: boolean) {
    const at = this.off + Ipv4Field.FlagsAndFragmentOffset;
    this.buf[at] = value ? this.buf[at]! | (FLAG_MORE_FRAGMENTS >>> 8) : this.buf[at]! & ~(FLAG_MORE_FRAGMENTS >>> 8);
  }

  /** Fragment Offset, in BYTES (the 13-bit field counts 8-byte units). Setter takes bytes. */
  get fragmentOffset(): number {
    return (readU16(this.buf, this.off + Ipv4Field.FlagsAndFragmentOffset) & FRAGMENT_OFFSET_MASK) << 3;
  }
  set fragmentOffset(bytes: number) {
    const at = this.off + Ipv4Field.FlagsAndFragmentOffset;
    const flags = readU16(this.buf, at) & ~FRAGMENT_OFFSET_MASK;
    writeU16(this.buf, at, flags | ((bytes >>> 3) & FRAGMENT_OFFSET_MASK));
  }

  /** The raw 16-bit flags + fragment offset word; zero (or DF alone) for an unfragmented packet. */
  get flagsAndFragmentOffset(): number {
    return readU16(this.buf, this.off + Ipv4Field.FlagsAndFragmentOffset);
  }
  set flagsAndFragmentOffset(value: number) {
    writeU16(this.buf, this.off + Ipv4Field.FlagsAndFragmentOffset, value);
  }

  /** True for any fragment: MF set or a non-zero Fragment Offset. */
  get isFragment(): boolean {
    return (readU16(this.buf, this.off + Ipv4Field.FlagsAndFragmentOffset) & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK)) !== 0;
  }

  /** Time to Live. */
  get ttl(): number {
    return this.buf[this.off + Ipv4Field.Ttl]!;
  }
  set ttl(value: number) {
    this.buf[this.off + Ipv4Field.Ttl] = value;
  }

  /** Protocol of the payload (`IpProtocol`). */
  get protocol(): number {
    return this.buf[this.off + Ipv4Field.Protocol]!;
  }
  set protocol(value: number) {
    this.buf[this.off + Ipv4Field.Protocol] = value;
  }

  /** Header Checksum. */
  get headerChecksum(): number {
    return readU16(this.buf, this.off + Ipv4Field.HeaderChecksum);
  }
  set headerChecksum(value: number) {
    writeU16(this.buf, this.off + Ipv4Field.HeaderChecksum, value);
  }

  /** Source Address as a uint32. */
  get sourceAddress(): number {
    return readU32(this.buf, this.off + Ipv4Field.SourceAddress);
  }
  set sourceAddress(value: number) {
    writeU32(this.buf, this.off + Ipv4Field.SourceAddress, value);
  }

  /** Destination Address as a uint32. */
  get destinationAddress(): number {
    return readU32(this.buf, this.off + Ipv4Field.DestinationAddress);
  }
  set destinationAddress(value: number) {
    writeU32(this.buf, this.off + Ipv4Field.DestinationAddress, value);
  }

  /** Offset in `buf` of the first payload byte (after any options). */
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }

  /** Payload length according to the header: Total Length minus IHL. */
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }

  /** True when the Header Checksum verifies (RFC 791 §3.1: the sum over the header is all ones). */
  isValidChecksum(): boolean {
    return onesComplementSum(this.buf, this.off, this.headerLength) === 0xffff;
  }

  /** Computes the Header Checksum over IHL bytes and stores it. */
  fillChecksum(): void {
    this.headerChecksum = 0;
    this.headerChecksum = foldChecksum(onesComplementSum(this.buf, this.off, this.headerLength));
  }
}

/**
 * The boundary check: `buf[off, off+len)` is in bounds and starts a plausible IPv4 packet
 * (version 4, IHL >= 5, IHL*4 <= Total Length <= len). After it the view's accessors are safe.
 * The checksum is not checked here; see `Ipv4View.isValidChecksum`.
 */
export function tryIpv4(buf: Uint8Array, off: number, len: number): boolean {
  if (!inBounds(buf, off, len) || len < IPV4_MIN_HEADER_LENGTH) return false;
  const first = buf[off]!;
  if (first >>> 4 !== IPV4_VERSION) return false;
  const headerLength = (first & 0x0f) << 2;
  if (headerLength < IPV4_MIN_HEADER_LENGTH) return false;
  const totalLength = readU16(buf, off + Ipv4Field.TotalLength);
  return totalLength >= headerLength && totalLength <= len;
}
