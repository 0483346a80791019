/**
 * Cutting TUN offload super-packets into wire-sized packets (the transmit direction).
 *
 * With IFF_VNET_HDR and TUNSETOFFLOAD the kernel stops segmenting for us: a read from the TUN
 * device can return one TCP "super-packet" of up to 64 KB (gso_type TCPV4/TCPV6, gso_size = MSS)
 * or one UDP super-datagram (UDP_L4), with the transport checksum left undone (NEEDS_CSUM: the
 * checksum field holds only the pseudo-header sum). Each must leave as ordinary packets that fit
 * the path, so this module does what the kernel's tcp_gso_segment / __udp_gso_segment would:
 *
 *   - the IP + transport headers go in front of each slice of payload;
 *   - IPv4: Total Length, Identification (+1 per segment) and the header checksum per segment;
 *     IPv6: Payload Length;
 *   - TCP: Sequence Number advanced by the bytes before the segment, FIN and PSH only on the
 *     last segment, CWR only on the first (RFC 3168 §6.1.2), a full checksum per segment;
 *   - UDP: Length and a full checksum per datagram.
 *
 * It is split in two so that nothing works a super-packet out twice. `planSegments` validates
 * the packet once and decides the cut: where the layers are, how many header bytes each segment
 * repeats, the payload per segment and the segment count. `writeSegmentHeader` then writes one
 * segment's headers wherever the caller wants them and computes its checksum over those headers
 * and the segment's payload *where it lies in the input*: the payload is never copied here. The
 * data path sends each segment as two pieces (its headers, then its payload in the TUN read
 * buffer), so payload bytes cross userspace untouched; a caller that wants contiguous segments
 * copies the payload behind the headers itself.
 *
 * TCP may be cut finer than the sender's MSS (`maxLength`): a TCP receiver takes segments of
 * any size, so when the path to a peer is smaller than the pod believed, the in-flight data still
 * gets through, as a smaller-MSS TSO would send it. A UDP super-datagram's segment size is the
 * application's datagram boundary and is never changed: if a datagram does not fit, planning says
 * so (`SegmentError.TooBig`) and the caller answers like a router would.
 *
 * The checksum field of the input is ignored and each segment's checksum computed from scratch,
 * which also covers a kernel that put the super-packet's length in the pseudo-header sum. Errors
 * come back as negative `SegmentError` codes, for the caller's drop counters; nothing throws.
 */

import { copyBytes, inBounds, readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { foldChecksum, onesComplementSum, pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum.js';
import { IPV4_MIN_HEADER_LENGTH, IpProtocol, Ipv4Field, Ipv4View } from './ipv4.js';
import { IPV6_HEADER_LENGTH, Ipv6Field } from './ipv6.js';
import { TCP_CHECKSUM_OFFSET, TCP_MIN_HEADER_LENGTH, TcpField, TcpFlags } from './tcp.js';
import { UDP_CHECKSUM_OFFSET, UDP_HEADER_LENGTH, UdpField } from './udp.js';
import { VirtioGsoType, VirtioNetHdrFlags, type VirtioNetHdrFields } from './virtio.js';

/** Why a super-packet was refused. All negative, so a return value < 0 is an error. */
export const SegmentError = {
  /** The headers do not parse, or disagree with the virtio header. */
  Malformed: -1,
  /** It would take more segments than the caller allows. */
  TooManySegments: -2,
  /** A UDP datagram (whose size the application chose) does not fit in `maxLength`. */
  TooBig: -3,
  /** A gso_type this module does not split (UFO, unknown types). */
  Unsupported: -4,
} as const;

/**
 * The smallest TCP payload per segment vxnet will cut to. Linux never sends a smaller MSS (its
 * tcp_min_snd_mss floor is 48), so the segment arrays are sized for 64 KB / this.
 */
export const MIN_SEGMENT_PAYLOAD = 48;
/** Segments one 64 KB super-packet can need at the smallest payload. */
export const MAX_SEGMENTS = Math.ceil(0xffff / MIN_SEGMENT_PAYLOAD);

/** How a validated super-packet is cut; filled by `planSegments`, reused by the caller. */
export class SegmentPlan {
  /** Transport header, from the packet start (= csum_start). */
  l4Offset = 0;
  /** IP + transport headers, repeated in front of every segment. */
  headerBytes = 0;
  /** Payload bytes per segment; the last one may carry fewer. */
  payloadPerSegment = 0;
  /** Payload bytes in all. */
  payloadBytes = 0;
  count = 0;
  isV4 = false;
  /** IpProtocol.TCP or IpProtocol.UDP. */
  protocol = 0;
  /** IPv4 Identification of the first segment. */
  firstIdentification = 0;
  /** TCP: the first segment's sequence number, and the super-packet's flags. */
  firstSequence = 0;
  tcpFlags = 0;

  /** Payload bytes of segment i. */
  payloadOf(i: number): number {
    return Math.min(this.payloadPerSegment, this.payloadBytes - i * this.payloadPerSegment);
  }

  /** Offset of segment i's payload, relative to the super-packet's start. */
  payloadStart(i: number): number {
    return this.headerBytes + i * this.payloadPerSegment;
  }
}

/**
 * Validates the IP layer and finds the transport header. `csumStart` is trusted for where the
 * transport header starts (it is the only way past IPv6 extension headers) but must agree with
 * the IPv4 IHL. Returns the transport offset, or -1 on anything inconsistent.
 */
function locate(src: Uint8Array, srcOff: number, srcLen: number, hdr: VirtioNetHdrFields, protocol: number, plan: SegmentPlan): number {
  if (!inBounds(src, srcOff, srcLen) || srcLen < IPV4_MIN_HEADER_LENGTH) return -1;
  const version = src[srcOff]! >>> 4;
  const needsCsum = (hdr.flags & VirtioNetHdrFlags.NeedsCsum) !== 0;
  let l4: number;
  if (version === 4) {
    plan.isV4 = true;
    l4 = (src[srcOff]! & 0x0f) << 2;
    if (l4 < IPV4_MIN_HEADER_LENGTH || src[srcOff + Ipv4Field.Protocol] !== protocol) return -1;
    if (needsCsum && hdr.csumStart !== l4) return -1;
  } else if (version === 6) {
    plan.isV4 = false;
    if (srcLen < IPV6_HEADER_LENGTH) return -1;
    l4 = needsCsum ? hdr.csumStart : IPV6_HEADER_LENGTH;
    if (l4 < IPV6_HEADER_LENGTH) return -1;
    if (l4 === IPV6_HEADER_LENGTH && src[srcOff + Ipv6Field.NextHeader] !== protocol) return -1;
  } else {
    return -1;
  }
  const checksumAt = protocol === IpProtocol.TCP ? TCP_CHECKSUM_OFFSET : UDP_CHECKSUM_OFFSET;
  if (needsCsum && hdr.csumOffset !== checksumAt) return -1;
  return l4;
}

/**
 * Plans the cut of the super-packet at `src[srcOff, +srcLen)` (the IP packet, after its virtio
 * header) into segments of at most `maxLength` bytes each, headers included: TCP into segments
 * of at most gso_size payload bytes (fewer if `maxLength` says so), UDP_L4 into datagrams of
 * exactly gso_size (the last may be shorter). Fills `plan` and returns the segment count, or a
 * negative `SegmentError`. A header-only TCP super-packet is one segment.
 */
export function planSegments(
  src: Uint8Array,
  srcOff: number,
  srcLen: number,
  hdr: VirtioNetHdrFields,
  maxLength: number,
  maxSegments: number,
  plan: SegmentPlan,
): number {
  const gso = hdr.gsoType & ~VirtioGsoType.Ecn;
  let protocol: number;
  if (gso === VirtioGsoType.TcpV4 || gso === VirtioGsoType.TcpV6) protocol = IpProtocol.TCP;
  else if (gso === VirtioGsoType.UdpL4) protocol = IpProtocol.UDP;
  else return SegmentError.Unsupported;
  const l4 = locate(src, srcOff, srcLen, hdr, protocol, plan);
  if (l4 < 0) return SegmentError.Malformed;
  let transportHeader: number;
  if (protocol === IpProtocol.TCP) {
    if (plan.isV4 !== (gso === VirtioGsoType.TcpV4)) return SegmentError.Malformed;
    if (l4 + TCP_MIN_HEADER_LENGTH > srcLen) return SegmentError.Malformed;
    transportHeader = (src[srcOff + l4 + TcpField.DataOffset]! >>> 4) << 2;
    if (transportHeader < TCP_MIN_HEADER_LENGTH) return SegmentError.Malformed;
  } else {
    transportHeader = UDP_HEADER_LENGTH;
  }
  const headerBytes = l4 + transportHeader;
  if (headerBytes > srcLen || hdr.gsoSize === 0) return SegmentError.Malformed;
  // Known from here on, also when the answer is TooBig (the caller quotes these headers).
  plan.l4Offset = l4;
  plan.headerBytes = headerBytes;
  plan.protocol = protocol;
  const maxPayload = maxLength - headerBytes;
  let perSegment = hdr.gsoSize;
  if (protocol === IpProtocol.TCP) {
    if (maxPayload < perSegment) perSegment = Math.max(MIN_SEGMENT_PAYLOAD, maxPayload);
  } else if (perSegment > maxPayload) {
    return SegmentError.TooBig;
  }
  const payload = srcLen - headerBytes;
  const count = payload === 0 ? 1 : Math.ceil(payload / perSegment);
  if (count > maxSegments) return SegmentError.TooManySegments;

  plan.payloadPerSegment = perSegment;
  plan.payloadBytes = payload;
  plan.count = count;
  plan.firstIdentification = plan.isV4 ? readU16(src, srcOff + Ipv4Field.Identification) : 0;
  plan.firstSequence = protocol === IpProtocol.TCP ? readU32(src, srcOff + l4 + TcpField.SequenceNumber) : 0;
  plan.tcpFlags = protocol === IpProtocol.TCP ? src[srcOff + l4 + TcpField.Flags]! : 0;
  return count;
}

/**
 * Writes segment i's headers (plan.headerBytes of them) at `out[at]`, for the super-packet at
 * `src[srcOff..]` that `plan` was made from, and fills in its checksum over those headers and
 * its payload as it lies in `src` — or, with `partial`, leaves the checksum unfinished: the field
 * holds the pseudo-header sum, as a NEEDS_CSUM packet does, for a receiver that finishes it
 * (VXLAN remote checksum offload). `out` must not overlap the input's headers. Returns the
 * segment's IP length (headers + payload).
 */
export function writeSegmentHeader(plan: SegmentPlan, i: number, src: Uint8Array, srcOff: number, out: Uint8Array, at: number, ip: Ipv4View, partial = false): number {
  const hb = plan.headerBytes;
  copyBytes(out, at, src, srcOff, hb);
  const payload = plan.payloadOf(i);
  const length = hb + payload;
  if (plan.isV4) {
    ip.bind(out, at);
    ip.totalLength = length;
    ip.identification = (plan.firstIdentification + i) & 0xffff;
    ip.fillChecksum();
  } else {
    writeU16(out, at + Ipv6Field.PayloadLength, length - IPV6_HEADER_LENGTH);
  }
  const l4 = at + plan.l4Offset;
  const l4Length = length - plan.l4Offset;
  let checksumAt: number;
  if (plan.protocol === IpProtocol.TCP) {
    writeU32(out, l4 + TcpField.SequenceNumber, (plan.firstSequence + i * plan.payloadPerSegment) >>> 0);
    let flags = plan.tcpFlags;
    if (i > 0) flags &= ~TcpFlags.CWR;
    if (i < plan.count - 1) flags &= ~(TcpFlags.FIN | TcpFlags.PSH);
    out[l4 + TcpField.Flags] = flags;
    checksumAt = l4 + TcpField.Checksum;
  } else {
    writeU16(out, l4 + UdpField.Length, l4Length);
    checksumAt = l4 + UdpField.Checksum;
  }
  writeU16(out, checksumAt, 0);
  const pseudo = plan.isV4
    ? pseudoHeaderSumV4(readU32(out, at + Ipv4Field.SourceAddress), readU32(out, at + Ipv4Field.DestinationAddress), plan.protocol, l4Length)
    : pseudoHeaderSumV6(out, at + Ipv6Field.SourceAddress, at + Ipv6Field.DestinationAddress, plan.protocol, l4Length);
  if (partial) {
    writeU16(out, checksumAt, pseudo);
    return length;
  }
  // The transport header has an even length (TCP: a multiple of 4; UDP: 8), so the payload's
  // sum chains on without a byte swap.
  const headerSum = onesComplementSum(out, l4, hb - plan.l4Offset, pseudo);
  let checksum = foldChecksum(onesComplementSum(src, srcOff + plan.payloadStart(i), payload, headerSum));
  if (checksum === 0 && plan.protocol === IpProtocol.UDP) checksum = 0xffff; // RFC 768: zero means "none"
  writeU16(out, checksumAt, checksum);
  return length;
}

/**
 * Finishes a NEEDS_CSUM checksum in place (gso_type NONE): sums from `csumStart` to the end,
 * on top of the pseudo-header sum the kernel left in the field, and stores the result at
 * `csumStart + csumOffset`, as the kernel's skb_checksum_help does (zero goes out as 0xffff).
 * Returns false when the offsets do not fit the packet.
 */
export function completeChecksum(buf: Uint8Array, off: number, len: number, csumStart: number, csumOffset: number): boolean {
  if (!inBounds(buf, off, len) || csumStart + csumOffset + 2 > len) return false;
  const checksum = foldChecksum(onesComplementSum(buf, off + csumStart, len - csumStart));
  writeU16(buf, off + csumStart + csumOffset, checksum === 0 ? 0xffff : checksum);
  return true;
}
