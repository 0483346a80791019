/**
 * Cutting TUN offload super-packets into wire-sized packets (the transmit direction).
 *
 * With IFF_VNET_HDR and TUNSETOFFLOAD the kernel stops segmenting for us: a read from the TUN
 * device can return one TCP "super-packet" of up to 64 KB (gso_type TCPV4/TCPV6, gso_size = MSS)
 * or one UDP super-datagram (UDP_L4), with the transport checksum left undone (NEEDS_CSUM: the
 * checksum field holds only the pseudo-header sum). Each must leave as ordinary packets that fit
 * the VXLAN path, so this module does in TypeScript what the kernel's tcp_gso_segment /
 * __udp_gso_segment would have done:
 *
 *   - copy the IP + transport headers in front of each gso_size slice of payload;
 *   - IPv4: Total Length, Identification (+1 per segment) and the header checksum per segment;
 *     IPv6: Payload Length;
 *   - TCP: Sequence Number advanced by the bytes before the segment, FIN and PSH only on the
 *     last segment, CWR only on the first (RFC 3168 §6.1.2), a full checksum per segment;
 *   - UDP: Length and a full checksum per datagram.
 *
 * The checksum field of the input is ignored and each segment's checksum computed from scratch
 * (pseudo-header + header + payload, one pass), which also covers a kernel that put the
 * super-packet's length in the pseudo-header sum.
 *
 * Nothing is allocated: the caller owns `out` and says where each segment goes
 * (`outOffsets[i]`, typically one pool slot per segment with VXLAN headroom in front), and gets
 * the lengths back in `outLengths`. Everything is validated before the first byte is written,
 * so a refused packet leaves `out` untouched. Errors come back as negative `SegmentError`
 * codes, for the caller's drop counters; nothing throws. The output must not overlap the input.
 */

import { copyBytes, inBounds, readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { foldChecksum, onesComplementSum, pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum.js';
import { IPV4_MIN_HEADER_LENGTH, IpProtocol, Ipv4View } from './ipv4.js';
import { IPV6_HEADER_LENGTH } from './ipv6.js';
import { TCP_CHECKSUM_OFFSET, TCP_MIN_HEADER_LENGTH, TcpFlags } from './tcp.js';
import { UDP_CHECKSUM_OFFSET, UDP_HEADER_LENGTH } from './udp.js';
import { VirtioGsoType, VirtioNetHdrFlags, type VirtioNetHdrFields } from './virtio.js';

/** Why a super-packet was refused. All negative, so a return value < 0 is an error. */
export const SegmentError = {
  /** The headers do not parse, or disagree with the virtio header. */
  Malformed: -1,
  /** It would take more segments than `maxSegments` (or than the output arrays hold). */
  TooManySegments: -2,
  /** An output slot lies outside `out`, or is smaller than its segment. */
  NoRoom: -3,
  /** A gso_type this module does not split (UFO, unknown types). */
  Unsupported: -4,
} as const;

const NO_CAPACITY_LIMIT = 0x7fffffff;
const ip = new Ipv4View(new Uint8Array(0));

/** Where the layers of a validated super-packet are, shared by the TCP and UDP paths. */
let l4Offset = 0; // transport header, from the packet start (= csum_start)
let headerBytes = 0; // IP + transport headers, copied in front of every segment
let isV4 = false;

/**
 * Validates the IP layer and finds the transport header. `csumStart` is trusted for where the
 * transport header starts (it is the only way past IPv6 extension headers) but must agree with
 * the IPv4 IHL. Returns false on anything inconsistent.
 */
function locate(src: Uint8Array, srcOff: number, srcLen: number, hdr: VirtioNetHdrFields, protocol: number): boolean {
  if (!inBounds(src, srcOff, srcLen) || srcLen < IPV4_MIN_HEADER_LENGTH) return false;
  const version = src[srcOff]! >>> 4;
  const needsCsum = (hdr.flags & VirtioNetHdrFlags.NeedsCsum) !== 0;
  if (version === 4) {
    isV4 = true;
    const ihl = (src[srcOff]! & 0x0f) << 2;
    if (ihl < IPV4_MIN_HEADER_LENGTH || src[srcOff + 9] !== protocol) return false;
    if (needsCsum && hdr.csumStart !== ihl) return false;
    l4Offset = ihl;
  } else if (version === 6) {
    isV4 = false;
    if (srcLen < IPV6_HEADER_LENGTH) return false;
    l4Offset = needsCsum ? hdr.csumStart : IPV6_HEADER_LENGTH;
    if (l4Offset < IPV6_HEADER_LENGTH) return false;
    if (l4Offset === IPV6_HEADER_LENGTH && src[srcOff + 6] !== protocol) return false;
  } else {
    return false;
  }
  const checksumAt = protocol === IpProtocol.TCP ? TCP_CHECKSUM_OFFSET : UDP_CHECKSUM_OFFSET;
  if (needsCsum && hdr.csumOffset !== checksumAt) return false;
  return true;
}

/** Checks the segment count and every output slot before anything is written. */
function checkSlots(
  n: number,
  payload: number,
  mss: number,
  out: Uint8Array,
  outOffsets: Int32Array,
  outLengths: Int32Array,
  maxSegments: number,
  segmentCapacity: number,
): number {
  if (n > maxSegments || n > outOffsets.length || n > outLengths.length) return SegmentError.TooManySegments;
  for (let i = 0; i < n; i++) {
    const segmentPayload = Math.min(mss, payload - i * mss);
    const length = headerBytes + segmentPayload;
    if (length > segmentCapacity || !inBounds(out, outOffsets[i]!, length)) return SegmentError.NoRoom;
  }
  return 0;
}

/** Writes the IP layer's per-segment fields of the segment at `out[at]`. */
function fixIpHeader(out: Uint8Array, at: number, length: number, firstIdentification: number, i: number): void {
  if (isV4) {
    ip.bind(out, at);
    ip.totalLength = length;
    ip.identification = (firstIdentification + i) & 0xffff;
    ip.fillChecksum();
  } else {
    writeU16(out, at + 4, length - IPV6_HEADER_LENGTH);
  }
}

/** The transport checksum of the segment at `out[at]`, whose transport header is at `at + l4Offset`. */
function transportChecksum(out: Uint8Array, at: number, length: number, protocol: number): number {
  const l4Length = length - l4Offset;
  const pseudo = isV4
    ? pseudoHeaderSumV4(readU32(out, at + 12), readU32(out, at + 16), protocol, l4Length)
    : pseudoHeaderSumV6(out, at + 8, at + 24, protocol, l4Length);
  return foldChecksum(onesComplementSum(out, at + l4Offset, l4Length, pseudo));
}

/**
 * Splits a TCP super-packet (`gsoType` TCPV4 or TCPV6, with or without the ECN bit) at
 * `src[srcOff, +srcLen)` (the IP packet, after the virtio header) into segments of at most
 * `hdr.gsoSize` payload bytes, written at `out[outOffsets[i]]`, lengths in `outLengths[i]`.
 * Returns the number of segments, or a negative `SegmentError`. `segmentCapacity` bounds the
 * bytes each output slot may take.
 */
export function segmentTcp(
  src: Uint8Array,
  srcOff: number,
  srcLen: number,
  hdr: VirtioNetHdrFields,
  out: Uint8Array,
  outOffsets: Int32Array,
  outLengths: Int32Array,
  maxSegments: number,
  segmentCapacity = NO_CAPACITY_LIMIT,
): number {
  const gso = hdr.gsoType & ~VirtioGsoType.Ecn;
  if (gso !== VirtioGsoType.TcpV4 && gso !== VirtioGsoType.TcpV6) return SegmentError.Unsupported;
  if (!locate(src, srcOff, srcLen, hdr, IpProtocol.TCP)) return SegmentError.Malformed;
  if (isV4 !== (gso === VirtioGsoType.TcpV4)) return SegmentError.Malformed;
  if (l4Offset + TCP_MIN_HEADER_LENGTH > srcLen) return SegmentError.Malformed;
  const tcpHeaderBytes = (src[srcOff + l4Offset + 12]! >>> 4) << 2;
  headerBytes = l4Offset + tcpHeaderBytes;
  if (tcpHeaderBytes < TCP_MIN_HEADER_LENGTH || headerBytes > srcLen) return SegmentError.Malformed;
  const mss = hdr.gsoSize;
  if (mss === 0) return SegmentError.Malformed;

  const payload = srcLen - headerBytes;
  const n = payload === 0 ? 1 : Math.ceil(payload / mss);
  const slots = checkSlots(n, payload, mss, out, outOffsets, outLengths, maxSegments, segmentCapacity);
  if (slots < 0) return slots;

  const firstIdentification = isV4 ? readU16(src, srcOff + 4) : 0;
  const firstSequence = readU32(src, srcOff + l4Offset + 4);
  const flags = src[srcOff + l4Offset + 13]!;
  for (let i = 0; i < n; i++) {
    const at = outOffsets[i]!;
    const segmentPayload = Math.min(mss, payload - i * mss);
    const length = headerBytes + segmentPayload;
    copyBytes(out, at, src, srcOff, headerBytes);
    copyBytes(out, at + headerBytes, src, srcOff + headerBytes + i * mss, segmentPayload);
    fixIpHeader(out, at, length, firstIdentification, i);

    const tcp = at + l4Offset;
    writeU32(out, tcp + 4, (firstSequence + i * mss) >>> 0);
    let segmentFlags = flags;
    if (i > 0) segmentFlags &= ~TcpFlags.CWR;
    if (i < n - 1) segmentFlags &= ~(TcpFlags.FIN | TcpFlags.PSH);
    out[tcp + 13] = segmentFlags;
    writeU16(out, tcp + TCP_CHECKSUM_OFFSET, 0);
    writeU16(out, tcp + TCP_CHECKSUM_OFFSET, transportChecksum(out, at, length, IpProtocol.TCP));
    outLengths[i] = length;
  }
  return n;
}

/**
 * Splits a UDP super-datagram (`gsoType` UDP_L4, "USO") into datagrams of at most
 * `hdr.gsoSize` payload bytes, each with its own UDP Length and checksum. Same contract as
 * `segmentTcp`.
 */
export function segmentUdp(
  src: Uint8Array,
  srcOff: number,
  srcLen: number,
  hdr: VirtioNetHdrFields,
  out: Uint8Array,
  outOffsets: Int32Array,
  outLengths: Int32Array,
  maxSegments: number,
  segmentCapacity = NO_CAPACITY_LIMIT,
): number {
  if ((hdr.gsoType & ~VirtioGsoType.Ecn) !== VirtioGsoType.UdpL4) return SegmentError.Unsupported;
  if (!locate(src, srcOff, srcLen, hdr, IpProtocol.UDP)) return SegmentError.Malformed;
  headerBytes = l4Offset + UDP_HEADER_LENGTH;
  if (headerBytes > srcLen) return SegmentError.Malformed;
  const mss = hdr.gsoSize;
  if (mss === 0) return SegmentError.Malformed;

  const payload = srcLen - headerBytes;
  const n = payload === 0 ? 1 : Math.ceil(payload / mss);
  const slots = checkSlots(n, payload, mss, out, outOffsets, outLengths, maxSegments, segmentCapacity);
  if (slots < 0) return slots;

  const firstIdentification = isV4 ? readU16(src, srcOff + 4) : 0;
  for (let i = 0; i < n; i++) {
    const at = outOffsets[i]!;
    const segmentPayload = Math.min(mss, payload - i * mss);
    const length = headerBytes + segmentPayload;
    copyBytes(out, at, src, srcOff, headerBytes);
    copyBytes(out, at + headerBytes, src, srcOff + headerBytes + i * mss, segmentPayload);
    fixIpHeader(out, at, length, firstIdentification, i);

    const udp = at + l4Offset;
    writeU16(out, udp + 4, UDP_HEADER_LENGTH + segmentPayload);
    writeU16(out, udp + UDP_CHECKSUM_OFFSET, 0);
    const checksum = transportChecksum(out, at, length, IpProtocol.UDP);
    writeU16(out, udp + UDP_CHECKSUM_OFFSET, checksum === 0 ? 0xffff : checksum);
    outLengths[i] = length;
  }
  return n;
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

/**
 * Everything a TUN read can hand over, by `hdr.gsoType`: TCP and UDP_L4 super-packets are
 * split; a plain packet (NONE) is copied to `out[outOffsets[0]]` with its checksum completed
 * if NEEDS_CSUM is set, and counts as one segment. UFO (gso_type UDP) is refused: Linux
 * stopped generating it in 4.14.
 */
export function segment(
  src: Uint8Array,
  srcOff: number,
  srcLen: number,
  hdr: VirtioNetHdrFields,
  out: Uint8Array,
  outOffsets: Int32Array,
  outLengths: Int32Array,
  maxSegments: number,
  segmentCapacity = NO_CAPACITY_LIMIT,
): number {
  switch (hdr.gsoType & ~VirtioGsoType.Ecn) {
    case VirtioGsoType.None: {
      if (maxSegments < 1 || outOffsets.length < 1 || outLengths.length < 1) return SegmentError.TooManySegments;
      const at = outOffsets[0]!;
      if (srcLen > segmentCapacity || !inBounds(out, at, srcLen)) return SegmentError.NoRoom;
      if (!inBounds(src, srcOff, srcLen)) return SegmentError.Malformed;
      const needsCsum = (hdr.flags & VirtioNetHdrFlags.NeedsCsum) !== 0;
      if (needsCsum && hdr.csumStart + hdr.csumOffset + 2 > srcLen) return SegmentError.Malformed;
      copyBytes(out, at, src, srcOff, srcLen);
      if (needsCsum) completeChecksum(out, at, srcLen, hdr.csumStart, hdr.csumOffset);
      outLengths[0] = srcLen;
      return 1;
    }
    case VirtioGsoType.TcpV4:
    case VirtioGsoType.TcpV6:
      return segmentTcp(src, srcOff, srcLen, hdr, out, outOffsets, outLengths, maxSegments, segmentCapacity);
    case VirtioGsoType.UdpL4:
      return segmentUdp(src, srcOff, srcLen, hdr, out, outOffsets, outLengths, maxSegments, segmentCapacity);
    default:
      return SegmentError.Unsupported;
  }
}
