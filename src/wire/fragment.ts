/**
 * IPv4 fragmentation (RFC 791 §3.2, "Fragmentation and Reassembly"), for inner packets that do not
 * fit the path to their peer.
 *
 * vxnet forwards pod packets like a router into a link (the tunnel to one peer) whose MTU can be
 * smaller than the pods believe. A router answers a DF packet that does not fit with ICMP
 * "fragmentation needed"; a packet without DF it fragments. That is what this is for: the inner
 * packet is cut into fragments that each fit, and every fragment travels as an ordinary VXLAN
 * datagram. (The alternative, letting the underlay fragment the outer datagram, would hand the
 * reassembly to the receiving node's kernel and put UDP fragments without ports on the underlay,
 * which many clouds' firewalls and ECMP hashing treat badly; inner fragments are reassembled by
 * the destination pod, as after any router.)
 *
 * Like segment.ts, planning and writing are apart, and payload is never copied: `planFragments`
 * decides the cut, `writeFragmentHeader` writes one fragment's header where the caller wants it,
 * and the caller sends each fragment as its header followed by its data where it lies. Options:
 * the first fragment carries the original header; later ones carry only the options whose
 * "copied" flag is set (RFC 791 §3.1), padded to a multiple of four bytes.
 */
import { copyBytes, readU16, writeU16 } from './bytes.js';
import { IPV4_MIN_HEADER_LENGTH, Ipv4Field, Ipv4Fragment, Ipv4View } from './ipv4.js';

const DONT_FRAGMENT = Ipv4Fragment.DontFragment;
const MORE_FRAGMENTS = Ipv4Fragment.MoreFragments;
const OFFSET_MASK = Ipv4Fragment.OffsetMask;
const OPTION_END = 0;
const OPTION_NOP = 1;
const OPTION_COPIED = 0x80;

/** How a packet is cut; filled by `planFragments`. */
export class FragmentPlan {
  /** Header length of the first fragment (the original IHL) and of the later ones. */
  firstHeaderLength = 0;
  laterHeaderLength = 0;
  /** Data bytes carried by the first fragment and by each later one (multiples of 8). */
  firstData = 0;
  laterData = 0;
  /** Data bytes of the original packet (after its header). */
  dataBytes = 0;
  count = 0;
  /** The original fragment offset (in bytes) and MF flag, for fragmenting a fragment. */
  originalOffset = 0;
  originalMoreFragments = false;
  /** Option bytes that later fragments carry, before padding. */
  copiedOptions = 0;

  /** Offset of fragment i's data from the start of the original data. */
  dataStart(i: number): number {
    return i === 0 ? 0 : this.firstData + (i - 1) * this.laterData;
  }

  dataOf(i: number): number {
    const start = this.dataStart(i);
    return Math.min(i === 0 ? this.firstData : this.laterData, this.dataBytes - start);
  }

  headerOf(i: number): number {
    return i === 0 ? this.firstHeaderLength : this.laterHeaderLength;
  }
}

/** Bytes of options with the copied flag in the header at buf[off..], or -1 if the options do not parse. */
function copiedOptionBytes(buf: Uint8Array, off: number, ihl: number): number {
  let n = 0;
  let i = off + IPV4_MIN_HEADER_LENGTH;
  const end = off + ihl;
  while (i < end) {
    const type = buf[i]!;
    if (type === OPTION_END) break;
    if (type === OPTION_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return -1;
    const len = buf[i + 1]!;
    if (len < 2 || i + len > end) return -1;
    if ((type & OPTION_COPIED) !== 0) n += len;
    i += len;
  }
  return n;
}

/**
 * Plans fragments of at most `maxLength` bytes each (header included) for the IPv4 packet at
 * buf[off, off + len), whose header was checked by the caller. Returns the fragment count, or
 * -1 when it may not or cannot be fragmented (DF set, options that do not parse, or a limit too
 * small for 8 data bytes).
 */
export function planFragments(buf: Uint8Array, off: number, len: number, maxLength: number, plan: FragmentPlan): number {
  const flags = readU16(buf, off + Ipv4Field.FlagsAndFragmentOffset);
  if ((flags & DONT_FRAGMENT) !== 0) return -1;
  const ihl = (buf[off]! & 0x0f) << 2;
  const total = readU16(buf, off + Ipv4Field.TotalLength);
  if (ihl < IPV4_MIN_HEADER_LENGTH || total > len || total <= ihl) return -1;
  const copied = ihl > IPV4_MIN_HEADER_LENGTH ? copiedOptionBytes(buf, off, ihl) : 0;
  if (copied < 0) return -1;
  const later = IPV4_MIN_HEADER_LENGTH + ((copied + 3) & ~3);
  const firstData = (maxLength - ihl) & ~7;
  const laterData = (maxLength - later) & ~7;
  if (firstData < 8 || laterData < 8) return -1;
  const data = total - ihl;
  plan.firstHeaderLength = ihl;
  plan.laterHeaderLength = later;
  plan.firstData = firstData;
  plan.laterData = laterData;
  plan.dataBytes = data;
  plan.copiedOptions = copied;
  plan.originalOffset = (flags & OFFSET_MASK) * 8;
  plan.originalMoreFragments = (flags & MORE_FRAGMENTS) !== 0;
  plan.count = data <= firstData ? 1 : 1 + Math.ceil((data - firstData) / laterData);
  return plan.count;
}

/**
 * Writes fragment i's header at out[at] for the packet at buf[off..] that `plan` was made from.
 * Returns the header length. `out` must not overlap the original header.
 */
export function writeFragmentHeader(plan: FragmentPlan, i: number, buf: Uint8Array, off: number, out: Uint8Array, at: number, ip: Ipv4View): number {
  const hl = plan.headerOf(i);
  if (i === 0 || plan.copiedOptions === plan.firstHeaderLength - IPV4_MIN_HEADER_LENGTH) {
    copyBytes(out, at, buf, off, hl);
  } else {
    copyBytes(out, at, buf, off, IPV4_MIN_HEADER_LENGTH);
    let w = at + IPV4_MIN_HEADER_LENGTH;
    let r = off + IPV4_MIN_HEADER_LENGTH;
    const end = off + plan.firstHeaderLength;
    while (r < end) {
      const type = buf[r]!;
      if (type === OPTION_END) break;
      if (type === OPTION_NOP) {
        r++;
        continue;
      }
      const len = buf[r + 1]!;
      if ((type & OPTION_COPIED) !== 0) {
        for (let k = 0; k < len; k++) out[w++] = buf[r + k]!;
      }
      r += len;
    }
    while (w < at + hl) out[w++] = OPTION_END;
    out[at] = 0x40 | (hl >> 2);
  }
  const data = plan.dataOf(i);
  const offset = plan.originalOffset + plan.dataStart(i);
  const last = i === plan.count - 1;
  const more = !last || plan.originalMoreFragments;
  ip.bind(out, at);
  ip.totalLength = hl + data;
  writeU16(out, at + Ipv4Field.FlagsAndFragmentOffset, (more ? MORE_FRAGMENTS : 0) | ((offset >>> 3) & OFFSET_MASK));
  ip.fillChecksum();
  return hl;
}
