/**
 * ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) headers, and the error messages the data path sends.
 *
 * vxnet answers like a router in two cases: a packet too big for the path to its peer
 * (Fragmentation Needed / Packet Too Big, so the pod lowers its path MTU, RFC 1191 / RFC 8201)
 * and a destination no peer owns (Destination Unreachable). The writer builds a whole IP + ICMP
 * datagram into a caller's buffer and allocates nothing; it may work in place, over the
 * offending packet. Whether to answer at all is a separate question (`icmpv4ErrorAllowed`,
 * `icmpv6ErrorAllowed`): never about an ICMP error, a non-initial fragment, or a packet from or
 * to a group address, so that errors cannot breed errors (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)).
 */

import { copyBytes, inBounds, readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { foldChecksum, onesComplementSum, pseudoHeaderSumV6 } from './checksum.js';
import { IPV4_MIN_HEADER_LENGTH, IpProtocol, Ipv4Field, Ipv4Fragment, Ipv4View } from './ipv4.js';
import { IPV6_ADDRESS_LENGTH, IPV6_HEADER_LENGTH, IPV6_MIN_MTU } from './ipv6.js';

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |     Type      |     Code      |          Checksum             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                        Rest of Header                         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 *  Rest of Header, by message:
 *    Echo (RFC 792):                 Identifier (16)    | Sequence Number (16)
 *    Fragmentation Needed (RFC 1191): unused (16)       | Next-Hop MTU (16)
 *    ICMPv6 Packet Too Big (RFC 4443 §3.2): MTU (32)
 *    other errors:                   unused, zero
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const IcmpField = {
  Type: 0,
  Code: 1,
  Checksum: 2,
  RestOfHeader: 4,
  Identifier: 4,
  SequenceNumber: 6,
  NextHopMtu: 6,
} as const;

export const ICMP_HEADER_LENGTH = IcmpField.RestOfHeader + 4;

/** ICMPv4 message types vxnet sends or recognises. */
export const ICMPv4 = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  SourceQuench: 4,
  Redirect: 5,
  EchoRequest: 8,
  TimeExceeded: 11,
  ParameterProblem: 12,
} as const;

/** ICMPv4 Destination Unreachable codes (RFC 792, RFC 1812 §5.2.7.1). */
export const Icmpv4Unreachable = {
  NetUnreachable: 0,
  HostUnreachable: 1,
  ProtocolUnreachable: 2,
  PortUnreachable: 3,
  FragmentationNeeded: 4,
  SourceRouteFailed: 5,
  NetProhibited: 9,
  HostProhibited: 10,
  AdministrativelyProhibited: 13,
} as const;

/** ICMPv6 message types (RFC 4443 §2.1). Types below 128 are errors. */
export const ICMPv6 = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
} as const;

/** ICMPv6 Destination Unreachable codes (RFC 4443 §3.1). */
export const Icmpv6Unreachable = {
  NoRoute: 0,
  AdministrativelyProhibited: 1,
  BeyondScope: 2,
  AddressUnreachable: 3,
  PortUnreachable: 4,
} as const;

/** RFC 1812 §4.3.2.3: an ICMPv4 error, IP header included, stays within 576 bytes. */
export const ICMPV4_ERROR_MAX_LENGTH = 576;
/** RFC 4443 §2.4(c): an ICMPv6 error stays within the IPv6 minimum MTU. */
export const ICMPV6_ERROR_MAX_LENGTH = IPV6_MIN_MTU;
/** TTL / Hop Limit of the errors vxnet originates (the Linux default). */
export const ICMP_ERROR_TTL = 64;
/** RFC 1812 §4.3.2.5: errors go out with precedence 6 (internetwork control), as Linux sends them. */
const ICMPV4_ERROR_TOS = 0xc0;

/**
 * The 8-byte header both ICMP versions share (RFC 792, RFC 4443 §2.1): type, code, checksum and
 * 32 bits whose meaning depends on the message. The version-specific views below add what the
 * checksum covers and the named uses of the last 32 bits.
 */
abstract class IcmpHeaderView {
  constructor(
    public buf: Uint8Array,
    public off = 0,
  ) {}

  bind(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** Type (`ICMPv4` or `ICMPv6`). */
  get type(): number {
    return this.buf[this.off + IcmpField.Type]!;
  }
  set type(value: number) {
    this.buf[this.off + IcmpField.Type] = value;
  }

  /** Code. */
  get code(): number {
    return this.buf[this.off + IcmpField.Code]!;
  }
  set code(value: number) {
    this.buf[this.off + IcmpField.Code] = value;
  }

  /** Checksum (ICMPv4: over the message; ICMPv6: also over the IPv6 pseudo-header). */
  get checksum(): number {
    return readU16(this.buf, this.off + IcmpField.Checksum);
  }
  set checksum(value: number) {
    writeU16(this.buf, this.off + IcmpField.Checksum, value);
  }

  /** The 32 bits after the checksum, whatever the message makes of them. */
  get restOfHeader(): number {
    return readU32(this.buf, this.off + IcmpField.RestOfHeader);
  }
  set restOfHeader(value: number) {
    writeU32(this.buf, this.off + IcmpField.RestOfHeader, value);
  }

  get payloadOffset(): number {
    return this.off + ICMP_HEADER_LENGTH;
  }
}

export class Icmpv4View extends IcmpHeaderView {
  /** Identifier (Echo and Echo Reply). */
  get identifier(): number {
    return readU16(this.buf, this.off + IcmpField.Identifier);
  }
  set identifier(value: number) {
    writeU16(this.buf, this.off + IcmpField.Identifier, value);
  }

  /** Sequence Number (Echo and Echo Reply). */
  get sequenceNumber(): number {
    return readU16(this.buf, this.off + IcmpField.SequenceNumber);
  }
  set sequenceNumber(value: number) {
    writeU16(this.buf, this.off + IcmpField.SequenceNumber, value);
  }

  /** Next-Hop MTU (Destination Unreachable, Fragmentation Needed; RFC 1191 §4). */
  get nextHopMtu(): number {
    return readU16(this.buf, this.off + IcmpField.NextHopMtu);
  }
  set nextHopMtu(value: number) {
    writeU16(this.buf, this.off + IcmpField.NextHopMtu, value);
  }

  /** Computes the checksum over `length` bytes of message (header + data). */
  fillChecksum(length: number): void {
    this.checksum = 0;
    this.checksum = foldChecksum(onesComplementSum(this.buf, this.off, length));
  }

  isValidChecksum(length: number): boolean {
    return onesComplementSum(this.buf, this.off, length) === 0xffff;
  }
}

export class Icmpv6View extends IcmpHeaderView {
  /** MTU (Packet Too Big, RFC 4443 §3.2). */
  get mtu(): number {
    return readU32(this.buf, this.off + IcmpField.RestOfHeader);
  }
  set mtu(value: number) {
    writeU32(this.buf, this.off + IcmpField.RestOfHeader, value);
  }

  /** Computes the checksum; the addresses are the 16 bytes at `addrBuf[sourceOff]`, `addrBuf[destinationOff]`. */
  fillChecksum(addrBuf: Uint8Array, sourceOff: number, destinationOff: number, length: number): void {
    this.checksum = 0;
    const pseudo = pseudoHeaderSumV6(addrBuf, sourceOff, destinationOff, IpProtocol.ICMPv6, length);
    this.checksum = foldChecksum(onesComplementSum(this.buf, this.off, length, pseudo));
  }

  isValidChecksum(addrBuf: Uint8Array, sourceOff: number, destinationOff: number, length: number): boolean {
    const pseudo = pseudoHeaderSumV6(addrBuf, sourceOff, destinationOff, IpProtocol.ICMPv6, length);
    return onesComplementSum(this.buf, this.off, length, pseudo) === 0xffff;
  }
}

/** The boundary check for either ICMP version: a whole 8-byte header. */
/**
 * Writes ICMP error datagrams. An object, not module functions, because it keeps state: the
 * IPv4 Identification it counts up and the views it rebinds. Each data-path worker owns one, so
 * two threads (or two tests) never share it.
 */
export class IcmpErrorWriter {
  private nextIdentification = 0;
  private readonly ip = new Ipv4View(new Uint8Array(0));
  private readonly icmp4 = new Icmpv4View(new Uint8Array(0));
  private readonly icmp6 = new Icmpv6View(new Uint8Array(0));
  private readonly scratchAddress = new Uint8Array(IPV6_ADDRESS_LENGTH);

  /**
   * Writes a complete IPv4 + ICMP error datagram about the IPv4 packet at
   * `offending[offendingOff, +offendingLen)` to `out[outOff..]` and returns its length, or 0 when
   * the offending bytes hold no IPv4 header or `out` has no room. The message quotes the offending
   * packet's header and as much of its data as fits in 576 bytes (RFC 1812 §4.3.2.3), goes from
   * `source` to the offending packet's source address, and carries `nextHopMtu` when it is a
   * Fragmentation Needed (type 3 code 4, RFC 1191 §4); the rest of header is zero otherwise.
   * `out` may be `offending` itself, overlapping or not.
   */
  writeIcmpv4Error(
    out: Uint8Array,
    outOff: number,
    offending: Uint8Array,
    offendingOff: number,
    offendingLen: number,
    source: number,
    type: number,
    code: number,
    nextHopMtu: number,
  ): number {
    if (!inBounds(offending, offendingOff, offendingLen) || offendingLen < IPV4_MIN_HEADER_LENGTH) return 0;
    const headers = IPV4_MIN_HEADER_LENGTH + ICMP_HEADER_LENGTH;
    const quote = Math.min(offendingLen, ICMPV4_ERROR_MAX_LENGTH - headers);
    const total = headers + quote;
    if (!inBounds(out, outOff, total)) return 0;

    // Read what is needed from the offending packet before anything overwrites it.
    const destination = readU32(offending, offendingOff + 12);
    copyBytes(out, outOff + headers, offending, offendingOff, quote);

    const ip = this.ip.bind(out, outOff);
    ip.version = 4;
    ip.headerLength = IPV4_MIN_HEADER_LENGTH;
    ip.typeOfService = ICMPV4_ERROR_TOS;
    ip.totalLength = total;
    ip.identification = this.nextIdentification;
    this.nextIdentification = (this.nextIdentification + 1) & 0xffff;
    ip.flagsAndFragmentOffset = 0;
    ip.ttl = ICMP_ERROR_TTL;
    ip.protocol = IpProtocol.ICMP;
    ip.sourceAddress = source;
    ip.destinationAddress = destination;
    ip.fillChecksum();

    const icmp = this.icmp4.bind(out, outOff + IPV4_MIN_HEADER_LENGTH);
    icmp.type = type;
    icmp.code = code;
    icmp.restOfHeader =
      type === ICMPv4.DestinationUnreachable && code === Icmpv4Unreachable.FragmentationNeeded ? nextHopMtu & 0xffff : 0;
    icmp.fillChecksum(ICMP_HEADER_LENGTH + quote);
    return total;
  }

  /**
   * Writes a complete IPv6 + ICMPv6 error datagram about the IPv6 packet at
   * `offending[offendingOff, +offendingLen)` and returns its length, or 0 when the offending bytes
   * hold no IPv6 header or `out` has no room. `source` is the 16-byte address to send from (its
   * first 16 bytes are read). The quote is cut so the datagram stays within 1280 bytes
   * (RFC 4443 §2.4(c)). `mtu` goes in the rest of header of a Packet Too Big (type 2, §3.2) and,
   * as the pointer, of a Parameter Problem (type 4, §3.4); it is zero for the other types.
   */
  writeIcmpv6Error(
    out: Uint8Array,
    outOff: number,
    offending: Uint8Array,
    offendingOff: number,
    offendingLen: number,
    source: Uint8Array,
    type: number,
    code: number,
    mtu: number,
  ): number {
    if (!inBounds(offending, offendingOff, offendingLen) || offendingLen < IPV6_HEADER_LENGTH) return 0;
    const headers = IPV6_HEADER_LENGTH + ICMP_HEADER_LENGTH;
    const quote = Math.min(offendingLen, ICMPV6_ERROR_MAX_LENGTH - headers);
    const total = headers + quote;
    if (!inBounds(out, outOff, total) || source.length < IPV6_ADDRESS_LENGTH) return 0;

    copyBytes(this.scratchAddress, 0, offending, offendingOff + 8, IPV6_ADDRESS_LENGTH);
    copyBytes(out, outOff + headers, offending, offendingOff, quote);

    writeU32(out, outOff, 0x60000000); // version 6, traffic class 0, flow label 0
    writeU16(out, outOff + 4, ICMP_HEADER_LENGTH + quote);
    out[outOff + 6] = IpProtocol.ICMPv6;
    out[outOff + 7] = ICMP_ERROR_TTL;
    copyBytes(out, outOff + 8, source, 0, IPV6_ADDRESS_LENGTH);
    copyBytes(out, outOff + 24, this.scratchAddress, 0, IPV6_ADDRESS_LENGTH);

    const icmp = this.icmp6.bind(out, outOff + IPV6_HEADER_LENGTH);
    icmp.type = type;
    icmp.code = code;
    icmp.restOfHeader = type === ICMPv6.PacketTooBig || type === ICMPv6.ParameterProblem ? mtu >>> 0 : 0;
    icmp.fillChecksum(out, outOff + 8, outOff + 24, ICMP_HEADER_LENGTH + quote);
    return total;
  }
}

/** ICMPv4 types that are errors; no error is ever sent about one of these (RFC 1122 §3.2.2). */
function isIcmpv4Error(type: number): boolean {
  return (
    type === ICMPv4.DestinationUnreachable ||
    type === ICMPv4.SourceQuench ||
    type === ICMPv4.Redirect ||
    type === ICMPv4.TimeExceeded ||
    type === ICMPv4.ParameterProblem
  );
}

/** True for 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 and 240.0.0.0/4 (which holds 255.255.255.255). */
function isBadIcmpv4Peer(addr: number): boolean {
  const first = addr >>> 24;
  return first === 0 || first === 127 || first >= 224;
}

/**
 * RFC 1812 §4.3.2.7 (and RFC 1122 §3.2.2): may an ICMP error be sent about this IPv4 packet?
 * Not about an ICMP error, a non-initial fragment, a packet to a multicast or broadcast
 * address, or a packet whose source is not a unicast host address. Expects a packet that passed
 * `tryIpv4`.
 */
export function icmpv4ErrorAllowed(buf: Uint8Array, off: number, len: number): boolean {
  if (len < IPV4_MIN_HEADER_LENGTH) return false;
  const headerLength = (buf[off]! & 0x0f) << 2;
  return (
    (readU16(buf, off + Ipv4Field.FlagsAndFragmentOffset) & Ipv4Fragment.OffsetMask) === 0 &&
    !isBadIcmpv4Peer(readU32(buf, off + Ipv4Field.SourceAddress)) &&
    !isBadIcmpv4Peer(readU32(buf, off + Ipv4Field.DestinationAddress)) &&
    !(
      buf[off + Ipv4Field.Protocol] === IpProtocol.ICMP &&
      (headerLength >= len || isIcmpv4Error(buf[off + headerLength]!))
    )
  );
}

const NextHeader = { HopByHop: 0, Routing: 43, Fragment: 44, DestinationOptions: 60 } as const;

/**
 * RFC 4443 §2.4(e): may an ICMPv6 error of `type`/`code` be sent about this IPv6 packet? Not
 * about an ICMPv6 error message (found by walking the extension headers), not from the
 * unspecified or a multicast source, and not about a packet to a multicast destination unless
 * the error is Packet Too Big or Parameter Problem code 2. Expects a packet that passed `tryIpv6`.
 */
export function icmpv6ErrorAllowed(buf: Uint8Array, off: number, len: number, type: number, code: number): boolean {
  if (len < IPV6_HEADER_LENGTH) return false;
  if (buf[off + 8] === 0xff) return false; // multicast source
  let unspecified = true;
  for (let i = 8; i < 24; i++) if (buf[off + i] !== 0) unspecified = false;
  if (unspecified) return false;
  if (buf[off + 24] === 0xff && !(type === ICMPv6.PacketTooBig || (type === ICMPv6.ParameterProblem && code === 2))) {
    return false;
  }
  let next = buf[off + 6]!;
  let at = off + IPV6_HEADER_LENGTH;
  const end = off + len;
  for (;;) {
    if (next === IpProtocol.ICMPv6) return at < end && buf[at]! >= 128;
    if (at + 8 > end) return true;
    if (next === NextHeader.HopByHop || next === NextHeader.Routing || next === NextHeader.DestinationOptions) {
      next = buf[at]!;
      at += (buf[at + 1]! + 1) * 8;
    } else if (next === NextHeader.Fragment) {
      // A non-initial fragment hides the upper-layer header; nothing more to look at.
      if ((readU16(buf, at + 2) & 0xfff8) !== 0) return true;
      next = buf[at]!;
      at += 8;
    } else {
      return true;
    }
  }
}
