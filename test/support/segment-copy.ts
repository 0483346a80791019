/**
 * Contiguous segmentation for tests: a super-packet cut into whole segments in caller-given
 * slots, headers and payload together, with the production planner and header writer
 * (src/wire/segment.ts) doing the work. The data path never copies payload (it sends headers and
 * payload as separate pieces); tests want each segment as one byte string to compare with golden
 * bytes and an independent checksum, which is what this gives them.
 */
import {
  completeChecksum, planSegments, SegmentError, SegmentPlan, writeSegmentHeader,
} from '../../src/wire/segment.js';
import { Ipv4View } from './wire/ipv4.js';
import { VirtioGsoType, VirtioNetHdrFlags, type VirtioNetHdrFields } from './wire/virtio.js';

/** SegmentError, plus the refusals of this contiguous variant. */
export const CopyError = {
  ...SegmentError,
  /** An output slot lies outside `out`, or is smaller than its segment. */
  NoRoom: -5,
} as const;

const NO_LIMIT = 0x7fffffff;

function inBounds(buf: Uint8Array, off: number, len: number): boolean {
  return off >= 0 && len >= 0 && off + len <= buf.length;
}

function cut(protocolTypes: readonly number[], src: Uint8Array, srcOff: number, srcLen: number, hdr: VirtioNetHdrFields,
  out: Uint8Array, outOffsets: Int32Array, outLengths: Int32Array, maxSegments: number, segmentCapacity: number): number {
  if (!protocolTypes.includes(hdr.gsoType & ~VirtioGsoType.Ecn)) return SegmentError.Unsupported;
  const plan = new SegmentPlan();
  const n = planSegments(src, srcOff, srcLen, hdr, NO_LIMIT, Math.min(maxSegments, outOffsets.length, outLengths.length), plan);
  if (n < 0) return n;
  for (let i = 0; i < n; i++) {
    const length = plan.headerBytes + plan.payloadOf(i);
    if (length > segmentCapacity || !inBounds(out, outOffsets[i]!, length)) return CopyError.NoRoom;
  }
  const ip = new Ipv4View(new Uint8Array(0));
  for (let i = 0; i < n; i++) {
    const at = outOffsets[i]!;
    outLengths[i] = writeSegmentHeader(plan, i, src, srcOff, out, at, ip);
    const from = srcOff + plan.payloadStart(i);
    if (out === src) out.copyWithin(at + plan.headerBytes, from, from + plan.payloadOf(i));
    else out.set(src.subarray(from, from + plan.payloadOf(i)), at + plan.headerBytes);
  }
  return n;
}

export function segmentTcp(src: Uint8Array, srcOff: number, srcLen: number, hdr: VirtioNetHdrFields, out: Uint8Array,
  outOffsets: Int32Array, outLengths: Int32Array, maxSegments: number, segmentCapacity = NO_LIMIT): number {
  return cut([VirtioGsoType.TcpV4, VirtioGsoType.TcpV6], src, srcOff, srcLen, hdr, out, outOffsets, outLengths, maxSegments, segmentCapacity);
}

export function segmentUdp(src: Uint8Array, srcOff: number, srcLen: number, hdr: VirtioNetHdrFields, out: Uint8Array,
  outOffsets: Int32Array, outLengths: Int32Array, maxSegments: number, segmentCapacity = NO_LIMIT): number {
  return cut([VirtioGsoType.UdpL4], src, srcOff, srcLen, hdr, out, outOffsets, outLengths, maxSegments, segmentCapacity);
}

/** Everything a TUN read can hand over: super-packets are cut; a plain packet (NONE) is copied
 * to slot 0 with its checksum completed if NEEDS_CSUM is set. */
export function segment(src: Uint8Array, srcOff: number, srcLen: number, hdr: VirtioNetHdrFields, out: Uint8Array,
  outOffsets: Int32Array, outLengths: Int32Array, maxSegments: number, segmentCapacity = NO_LIMIT): number {
  switch (hdr.gsoType & ~VirtioGsoType.Ecn) {
    case VirtioGsoType.None: {
      if (maxSegments < 1 || outOffsets.length < 1 || outLengths.length < 1) return SegmentError.TooManySegments;
      const at = outOffsets[0]!;
      if (srcLen > segmentCapacity || !inBounds(out, at, srcLen)) return CopyError.NoRoom;
      if (!inBounds(src, srcOff, srcLen)) return SegmentError.Malformed;
      const needsCsum = (hdr.flags & VirtioNetHdrFlags.NeedsCsum) !== 0;
      if (needsCsum && hdr.csumStart + hdr.csumOffset + 2 > srcLen) return SegmentError.Malformed;
      out.set(src.subarray(srcOff, srcOff + srcLen), at);
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
