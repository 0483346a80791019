/**
 * Merging received TCP segments, and UDP datagrams, into TUN offload super-packets (the receive
 * direction).
 *
 * Every packet written to the TUN device costs a syscall and a trip through the kernel's
 * stack. When a batch from the underlay holds a run of in-order segments of one TCP flow, they
 * can go in as one super-packet (virtio gso_type TCPV4/TCPV6, gso_size = the first segment's
 * payload) that the kernel treats exactly like a GRO-merged packet: one write, one stack
 * traversal, and if the packet is forwarded instead of delivered, the kernel re-cuts it with
 * its own GSO. This is the receive-side twin of segment.ts, and the rules for what may merge
 * are the kernel's tcp_gro_receive rules, because a super-packet must re-segment into exactly
 * the segments that came in (UDP: see below):
 *
 *   - same flow (addresses, ports, IP version), and the segment continues the sequence;
 *   - only ACK, or ACK+PSH, set; PSH ends the run (it belongs on the last segment);
 *     SYN/FIN/RST/URG/ECE/CWR never merge, and neither does a segment without payload;
 *   - same TCP header length, option bytes, acknowledgment number and window;
 *   - IPv4: no options, no fragments, same TOS, TTL and DF, and the identification counting up
 *     by one per segment unless DF is set (RFC 6864 §4.1: atomic datagrams' IDs mean nothing);
 *     IPv6: no extension headers, same traffic class, flow label and hop limit;
 *   - no segment larger than the first; a shorter one ends the run; at most 65535 bytes in all.
 *
 * Any TCP packet of a flow that cannot join its open run (a FIN, a pure ACK, a gap) closes that
 * run, so the order of packets within a flow is kept exactly. Packets of different flows may
 * come out in a different relative order, which TCP does not care about.
 *
 * UDP (with `udp: true`, when the TUN device took the USO offloads): consecutive datagrams of one
 * flow go in as one USO super-packet (virtio gso_type UDP_L4), which the kernel cuts back into
 * the same datagrams where it delivers them (a socket without UDP_GRO gets each one on its own)
 * or forwards them. The rules are those of a UDP GSO send: every datagram has the payload size of
 * the first, except the last, which may be shorter (a shorter one ends the run); none is empty;
 * the same IP rules as for TCP (no IPv4 options or fragments, same TOS, TTL and DF, the
 * identification counting up unless DF is set; IPv6 the same traffic class, flow label and hop
 * limit); the UDP length field agrees with the IP length; an IPv4 datagram without a checksum
 * (0) stays alone, since the kernel would give every datagram of the run a checksum; at most
 * MAX_UDP_RUN datagrams and 65535 bytes in all. A UDP datagram of the flow that cannot join
 * closes the run, as for TCP, so the order within a UDP flow is kept too.
 *
 * Merging never changes a packet's fate. A packet larger than the device MTU (a peer with jumbo
 * frames, or garbage) stays alone: as the head of a run its size would become every segment's,
 * and the kernel would drop the whole run where it cannot forward that size (DF), taking the
 * well-sized packets that joined it along.
 *
 * Checksums. A merged packet goes to the kernel as CHECKSUM_PARTIAL (NEEDS_CSUM), which the
 * kernel never verifies, so every segment's IPv4 header and TCP or UDP checksum is verified here
 * before it may merge (the outer UDP checksum of VXLAN is usually zero, so the inner checksum is
 * the only end-to-end check). A segment that fails goes out alone, untouched, with a zero virtio
 * header, and the kernel drops it. Plain packets whose checksum was verified get DATA_VALID,
 * a hint the kernel is free to ignore. `verifyChecksums: false` skips all of this for callers
 * that already trust the bytes.
 *
 * Buffers. The caller hands over one batch in one buffer: packet i at `offsets[i]` with
 * `lengths[i]` bytes, each with at least 10 bytes of headroom in front (the decapsulated
 * Ethernet header is there anyway). Nothing is copied. The output is a list of TUN packets, each
 * gathered from pieces of that buffer (an iovec, written with one writev): a packet that goes out
 * alone is its virtio header, written into its headroom, followed by the packet; a merged run is
 * the first segment (virtio header in its headroom, its IP and TCP or UDP headers rewritten in
 * place for the whole run) followed by the payload of every other segment where it lies. All per-batch
 * state lives in typed arrays sized once, at construction; the flow lookup is a scan over the
 * runs still open, which a batch of tens of packets keeps short.
 */

import { bytesEqual, inBounds, readU16, readU32, writeU16 } from './bytes.js';
import { onesComplementSum, pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum.js';
import { IPV4_MAX_TOTAL_LENGTH, IPV4_MIN_HEADER_LENGTH, IpProtocol, Ipv4Field, Ipv4Fragment, Ipv4View } from './ipv4.js';
import { IPV6_ADDRESS_LENGTH, IPV6_HEADER_LENGTH, Ipv6Field } from './ipv6.js';
import { TCP_CHECKSUM_OFFSET, TCP_MIN_HEADER_LENGTH, TcpField, TcpFlags } from './tcp.js';
import { UDP_CHECKSUM_OFFSET, UDP_HEADER_LENGTH, UdpField } from './udp.js';
import { VIRTIO_NET_HDR_LENGTH, VirtioGsoType, VirtioNetHdrFlags, VirtioNetHdrView } from './virtio.js';

export interface CoalescerOptions {
  /** The most packets one `coalesce` call will be given. */
  maxBatch: number;
  /** Verify IPv4 header and TCP/UDP checksums before merging (default true). See the module comment. */
  verifyChecksums?: boolean;
  /** Merge UDP datagrams too (default false): only when the TUN device took USO4 and USO6. */
  udp?: boolean;
  /** The largest IP packet that may merge (default 65535): the TUN device's MTU. See the module comment. */
  mtu?: number;
}

/** What a packet is, as far as merging goes. */
const Kind = {
  /** Not TCP (or UDP, when merging it), or not parseable: passed through. */
  Other: 0,
  /** TCP or UDP that may not merge (flags, no payload, options in IP, bad checksum). Closes its flow's run. */
  Alone: 1,
  /** TCP or UDP that may merge. */
  Mergeable: 2,
} as const;

/** A packet's place in the output. */
const Role = {
  Alone: 0,
  Head: 1,
  Member: 2,
} as const;

const MERGEABLE_FLAGS = TcpFlags.ACK | TcpFlags.PSH;
/** Segments per merged packet: each is one more piece of one writev, which takes UIO_MAXIOV (1024). */
export const MAX_RUN = 1000;
/** Datagrams per merged UDP packet: what the kernel's own UDP GRO merges at most (UDP_GRO_CNT_MAX),
 * and half of what a USO packet written to TUN may carry (UDP_MAX_SEGMENTS). */
export const MAX_UDP_RUN = 64;

/** The coalescer's output: TUN packets as pieces of the input buffer, and which inputs each carries. */
export class CoalescedBatch {
  readonly iovOffsets: Int32Array;
  readonly iovLengths: Int32Array;
  /** Output packet j is pieces first[j] .. first[j] + pieces[j] - 1. */
  readonly first: Int32Array;
  readonly pieces: Int32Array;
  readonly results: Int32Array;
  /** The input packet that heads output packet j, and how many inputs it carries (follow `next`). */
  readonly head: Int32Array;
  readonly members: Int32Array;
  count = 0;

  constructor(readonly slab: Uint8Array, maxBatch: number) {
    this.iovOffsets = new Int32Array(maxBatch);
    this.iovLengths = new Int32Array(maxBatch);
    this.first = new Int32Array(maxBatch);
    this.pieces = new Int32Array(maxBatch);
    this.results = new Int32Array(maxBatch);
    this.head = new Int32Array(maxBatch);
    this.members = new Int32Array(maxBatch);
  }
}

export class Coalescer {
  /** Super-packets written (runs of two or more segments). */
  superPackets = 0;
  /** Segments that went into super-packets. */
  mergedSegments = 0;
  /** TCP segments and UDP datagrams whose IPv4 header or transport checksum failed verification. */
  badChecksums = 0;

  private readonly verify: boolean;
  private readonly mergeUdp: boolean;
  private readonly mtu: number;
  private readonly maxBatch: number;
  // Per packet.
  private readonly kind: Uint8Array;
  private readonly role: Uint8Array;
  private readonly v6: Uint8Array;
  /** 1 for UDP, 0 for TCP. */
  private readonly udp: Uint8Array;
  private readonly verified: Uint8Array;
  /** Unfinished transport checksums (remote checksum offload) of this batch, if any: where each
   * starts from the IP header (-1: finished) and its offset. */
  private csumStarts: Int32Array | undefined;
  private csumOffsets: Int32Array | undefined;
  private readonly ipLength: Int32Array; // effective packet length (IP total length)
  private readonly l4: Uint8Array; // IP header length
  /** The TCP header's length, or 8 for UDP. */
  private readonly l4HeaderLength: Uint8Array;
  private readonly payload: Int32Array;
  private readonly sequence: Uint32Array;
  private readonly hash: Int32Array;
  /** The next member of input i's run, -1 at its end. Read it to walk an output packet's inputs. */
  readonly next: Int32Array;
  // Per run, indexed by the head packet.
  private readonly tail: Int32Array;
  private readonly count: Int32Array;
  private readonly nextSequence: Uint32Array;
  private readonly runPayload: Int32Array;
  // Heads of runs still open, for the flow lookup.
  private readonly open: Int32Array;
  private openCount = 0;
  private readonly ip = new Ipv4View(new Uint8Array(0));
  private readonly vnet = new VirtioNetHdrView(new Uint8Array(0));

  constructor(options: CoalescerOptions) {
    const n = options.maxBatch;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Coalescer: maxBatch must be a positive integer, got ${n}`);
    this.maxBatch = n;
    this.verify = options.verifyChecksums ?? true;
    this.mergeUdp = options.udp ?? false;
    this.mtu = options.mtu ?? IPV4_MAX_TOTAL_LENGTH;
    this.kind = new Uint8Array(n);
    this.role = new Uint8Array(n);
    this.v6 = new Uint8Array(n);
    this.udp = new Uint8Array(n);
    this.verified = new Uint8Array(n);
    this.ipLength = new Int32Array(n);
    this.l4 = new Uint8Array(n);
    this.l4HeaderLength = new Uint8Array(n);
    this.payload = new Int32Array(n);
    this.sequence = new Uint32Array(n);
    this.hash = new Int32Array(n);
    this.next = new Int32Array(n);
    this.tail = new Int32Array(n);
    this.count = new Int32Array(n);
    this.nextSequence = new Uint32Array(n);
    this.runPayload = new Int32Array(n);
    this.open = new Int32Array(n);
  }

  /**
   * Coalesces the `count` packets at `buf[offsets[i], +lengths[i])` into `out` (whose slab must be
   * `buf`): TUN packets, each a virtio header and an IP packet gathered from pieces of `buf`.
   * Returns the number of output packets. Throws only on programmer errors: a batch larger than
   * `maxBatch`, an output of another buffer, or a packet without headroom.
   */
  coalesce(buf: Uint8Array, offsets: Int32Array, lengths: Int32Array, count: number, out: CoalescedBatch,
    csumStarts?: Int32Array, csumOffsets?: Int32Array): number {
    this.csumStarts = csumStarts;
    this.csumOffsets = csumOffsets;
    if (count > this.maxBatch) throw new RangeError(`Coalescer: batch of ${count} exceeds maxBatch ${this.maxBatch}`);
    if (out.slab !== buf || out.first.length < count || out.iovOffsets.length < count) {
      throw new RangeError('Coalescer: the output must be over the same buffer and hold the batch');
    }

    this.openCount = 0;
    for (let i = 0; i < count; i++) {
      const off = offsets[i]!;
      if (off < VIRTIO_NET_HDR_LENGTH || !inBounds(buf, off, lengths[i]!)) {
        throw new RangeError(`Coalescer: packet ${i} at ${off} has no room for a virtio header or lies outside the buffer`);
      }
      this.classify(buf, off, lengths[i]!, i);
      this.role[i] = Role.Alone;
      this.next[i] = -1;
      const kind = this.kind[i]!;
      if (kind === Kind.Other) continue;
      const head = this.findOpen(buf, offsets, i);
      if (kind === Kind.Mergeable && head >= 0 && this.canJoin(buf, offsets, head, i)) {
        this.join(head, i);
        if (this.endsRun(buf, off, head, i)) this.closeOpen(head);
        continue;
      }
      if (head >= 0) this.closeOpen(head);
      if (kind === Kind.Mergeable) this.start(buf, off, i);
    }

    let n = 0;
    let piece = 0;
    for (let i = 0; i < count; i++) {
      const role = this.role[i]!;
      if (role === Role.Member) continue;
      out.first[n] = piece;
      out.head[n] = i;
      if (role === Role.Head && this.count[i]! > 1) {
        piece = this.writeMerged(buf, offsets, i, out, piece);
        out.members[n] = this.count[i]!;
        this.superPackets++;
        this.mergedSegments += this.count[i]!;
      } else {
        piece = this.writeAlone(buf, offsets, i, out, piece);
        out.members[n] = 1;
      }
      out.pieces[n] = piece - out.first[n]!;
      n++;
    }
    out.count = n;
    return n;
  }

  /** Fills the per-packet arrays for packet `i`. */
  private classify(buf: Uint8Array, off: number, len: number, i: number): void {
    this.kind[i] = Kind.Other;
    this.verified[i] = 0;
    this.ipLength[i] = len; // until the IP header says otherwise
    if (len < IPV4_MIN_HEADER_LENGTH) return;
    const version = buf[off]! >>> 4;
    let l4: number;
    let ipLength: number;
    let protocol: number;
    let ipOptions = false;
    if (version === 4) {
      l4 = (buf[off]! & 0x0f) << 2;
      ipLength = readU16(buf, off + Ipv4Field.TotalLength);
      protocol = buf[off + Ipv4Field.Protocol]!;
      if (l4 < IPV4_MIN_HEADER_LENGTH || ipLength < l4 || ipLength > len || !this.merges(protocol)) return;
      // A fragment (MF or an offset) is not a whole segment: it cannot even be checksummed.
      if ((readU16(buf, off + Ipv4Field.FlagsAndFragmentOffset) & (Ipv4Fragment.MoreFragments | Ipv4Fragment.OffsetMask)) !== 0) return;
      ipOptions = l4 !== IPV4_MIN_HEADER_LENGTH;
      this.v6[i] = 0;
    } else if (version === 6) {
      if (len < IPV6_HEADER_LENGTH) return;
      l4 = IPV6_HEADER_LENGTH;
      ipLength = IPV6_HEADER_LENGTH + readU16(buf, off + Ipv6Field.PayloadLength);
      protocol = buf[off + Ipv6Field.NextHeader]!;
      // Extension headers would have to be walked; such packets pass through unmerged.
      if (ipLength > len || !this.merges(protocol)) return;
      this.v6[i] = 1;
    } else {
      return;
    }
    if (protocol === IpProtocol.UDP) {
      this.classifyUdp(buf, off, l4, ipLength, ipOptions, i);
      return;
    }
    this.udp[i] = 0;
    const tcp = off + l4;
    if (l4 + TCP_MIN_HEADER_LENGTH > ipLength) return;
    const tcpHeaderLength = (buf[tcp + TcpField.DataOffset]! >>> 4) << 2;
    if (tcpHeaderLength < TCP_MIN_HEADER_LENGTH || l4 + tcpHeaderLength > ipLength) return;

    this.ipLength[i] = ipLength;
    this.l4[i] = l4;
    this.l4HeaderLength[i] = tcpHeaderLength;
    this.payload[i] = ipLength - l4 - tcpHeaderLength;
    this.sequence[i] = readU32(buf, tcp + TcpField.SequenceNumber);
    this.hash[i] = flowHash(buf, off, tcp, version === 6);
    this.kind[i] = Kind.Alone;

    if (!this.checksumsOk(buf, off, i, TCP_CHECKSUM_OFFSET)) return;
    const flags = buf[tcp + TcpField.Flags]!;
    if (ipOptions || (flags & ~MERGEABLE_FLAGS) !== 0 || (flags & TcpFlags.ACK) === 0 || this.payload[i] === 0 || ipLength > this.mtu) return;
    this.kind[i] = Kind.Mergeable;
  }

  /** Does this coalescer look at packets of IP protocol `protocol`? */
  private merges(protocol: number): boolean {
    return protocol === IpProtocol.TCP || (protocol === IpProtocol.UDP && this.mergeUdp);
  }

  /** classify's UDP half: the IP header (l4 bytes, ipLength in all) is already checked. */
  private classifyUdp(buf: Uint8Array, off: number, l4: number, ipLength: number, ipOptions: boolean, i: number): void {
    const udp = off + l4;
    // A UDP length that disagrees with the IP length is passed on as it came.
    if (l4 + UDP_HEADER_LENGTH > ipLength || readU16(buf, udp + UdpField.Length) !== ipLength - l4) return;
    this.udp[i] = 1;
    this.ipLength[i] = ipLength;
    this.l4[i] = l4;
    this.l4HeaderLength[i] = UDP_HEADER_LENGTH;
    this.payload[i] = ipLength - l4 - UDP_HEADER_LENGTH;
    this.hash[i] = flowHash(buf, off, udp, this.v6[i] === 1);
    this.kind[i] = Kind.Alone;
    // IPv4 without a checksum: merged, every datagram would get one; it goes alone, unverified.
    if (!this.partial(i) && readU16(buf, udp + UdpField.Checksum) === 0) return;
    if (!this.checksumsOk(buf, off, i, UDP_CHECKSUM_OFFSET)) return;
    if (ipOptions || this.payload[i] === 0 || ipLength > this.mtu) return;
    this.kind[i] = Kind.Mergeable;
  }

  /** Whether packet i's transport checksum was left unfinished (remote checksum offload). */
  private partial(i: number): boolean {
    return this.csumStarts !== undefined && this.csumStarts[i]! >= 0;
  }

  /**
   * Whether packet i (its IP header and l4 already classified) may merge as far as checksums go:
   * they verify (marked in `verified`), or verification is off. A bad one is counted. An
   * unfinished checksum (remote checksum offload) was vouched for by the outer UDP checksum,
   * which the kernel verified over every byte: only the IPv4 header checksum is ours to check,
   * and it must start at the transport header with the protocol's offset (`csumOffset`).
   */
  private checksumsOk(buf: Uint8Array, off: number, i: number, csumOffset: number): boolean {
    const partial = this.partial(i);
    if (partial && (this.csumStarts![i] !== this.l4[i] || this.csumOffsets![i] !== csumOffset)) return false;
    if (!this.verify) return true;
    if (partial ? this.v6[i] === 0 && !this.ip.bind(buf, off).isValidChecksum() : !this.checksumsValid(buf, off, i)) {
      this.badChecksums++;
      return false;
    }
    this.verified[i] = 1;
    return true;
  }

  private checksumsValid(buf: Uint8Array, off: number, i: number): boolean {
    const l4 = this.l4[i]!;
    const l4Length = this.ipLength[i]! - l4;
    const protocol = this.udp[i] === 1 ? IpProtocol.UDP : IpProtocol.TCP;
    let pseudo: number;
    if (this.v6[i] === 0) {
      if (!this.ip.bind(buf, off).isValidChecksum()) return false;
      pseudo = pseudoHeaderSumV4(readU32(buf, off + Ipv4Field.SourceAddress), readU32(buf, off + Ipv4Field.DestinationAddress), protocol, l4Length);
    } else {
      pseudo = pseudoHeaderSumV6(buf, off + Ipv6Field.SourceAddress, off + Ipv6Field.DestinationAddress, protocol, l4Length);
    }
    return onesComplementSum(buf, off + l4, l4Length, pseudo) === 0xffff;
  }

  /** The open run of packet `i`'s flow, or -1. */
  private findOpen(buf: Uint8Array, offsets: Int32Array, i: number): number {
    const hash = this.hash[i]!;
    const v6 = this.v6[i]!;
    const off = offsets[i]!;
    for (let k = 0; k < this.openCount; k++) {
      const head = this.open[k]!;
      if (this.hash[head] !== hash || this.v6[head] !== v6 || this.udp[head] !== this.udp[i]) continue;
      const headOff = offsets[head]!;
      const sameAddresses = v6 === 0
        ? bytesEqual(buf, off + Ipv4Field.SourceAddress, buf, headOff + Ipv4Field.SourceAddress, 8)
        : bytesEqual(buf, off + Ipv6Field.SourceAddress, buf, headOff + Ipv6Field.SourceAddress, 2 * IPV6_ADDRESS_LENGTH);
      if (sameAddresses && bytesEqual(buf, off + this.l4[i]!, buf, headOff + this.l4[head]!, 4)) return head;
    }
    return -1;
  }

  /** May packet `i` join the run headed by `head`? The flow is already known to match. */
  private canJoin(buf: Uint8Array, offsets: Int32Array, head: number, i: number): boolean {
    const off = offsets[i]!;
    const headOff = offsets[head]!;
    const l4 = this.l4[i]!;
    const payload = this.payload[i]!;
    if (!this.verified[head] && this.verify) return false;
    if (payload > this.payload[head]!) return false;
    if (l4 + this.l4HeaderLength[i]! + this.runPayload[head]! + payload > IPV4_MAX_TOTAL_LENGTH) return false;
    if (this.udp[i] === 0 && !this.tcpContinues(buf, off + l4, headOff + l4, head, i)) return false;
    if (this.v6[i] === 0) {
      if (buf[off + Ipv4Field.TypeOfService] !== buf[headOff + Ipv4Field.TypeOfService] || buf[off + Ipv4Field.Ttl] !== buf[headOff + Ipv4Field.Ttl]) return false;
      const df = readU16(buf, off + Ipv4Field.FlagsAndFragmentOffset) & Ipv4Fragment.DontFragment;
      if (df !== (readU16(buf, headOff + Ipv4Field.FlagsAndFragmentOffset) & Ipv4Fragment.DontFragment)) return false;
      if (df === 0 && readU16(buf, off + Ipv4Field.Identification) !== ((readU16(buf, headOff + Ipv4Field.Identification) + this.count[head]!) & 0xffff)) return false;
    } else {
      // Version, traffic class, flow label; hop limit.
      if (!bytesEqual(buf, off, buf, headOff, Ipv6Field.PayloadLength) || buf[off + Ipv6Field.HopLimit] !== buf[headOff + Ipv6Field.HopLimit]) return false;
    }
    return true;
  }

  /** canJoin's TCP half: segment `i` (TCP header at `tcp`) continues the run of `head` (at `headTcp`). */
  private tcpContinues(buf: Uint8Array, tcp: number, headTcp: number, head: number, i: number): boolean {
    const tcpHeaderLength = this.l4HeaderLength[i]!;
    if (this.sequence[i] !== this.nextSequence[head]) return false;
    if (tcpHeaderLength !== this.l4HeaderLength[head]) return false;
    // Acknowledgment number and data offset, then the window; flags are checked in classify.
    // Then the options.
    if (!bytesEqual(buf, tcp + TcpField.AcknowledgmentNumber, buf, headTcp + TcpField.AcknowledgmentNumber, TcpField.Flags - TcpField.AcknowledgmentNumber)) return false;
    if (!bytesEqual(buf, tcp + TcpField.Window, buf, headTcp + TcpField.Window, 2)) return false;
    return bytesEqual(buf, tcp + TCP_MIN_HEADER_LENGTH, buf, headTcp + TCP_MIN_HEADER_LENGTH, tcpHeaderLength - TCP_MIN_HEADER_LENGTH);
  }

  /** After `i` joined `head`'s run: must the run end here? A shorter packet, a full run, or PSH. */
  private endsRun(buf: Uint8Array, off: number, head: number, i: number): boolean {
    if (this.payload[i]! < this.payload[head]!) return true;
    if (this.udp[i] === 1) return this.count[head]! >= MAX_UDP_RUN;
    return (buf[off + this.l4[i]! + TcpField.Flags]! & TcpFlags.PSH) !== 0 || this.count[head]! >= MAX_RUN;
  }

  private start(buf: Uint8Array, off: number, i: number): void {
    this.role[i] = Role.Head;
    this.tail[i] = i;
    this.count[i] = 1;
    this.runPayload[i] = this.payload[i]!;
    this.nextSequence[i] = (this.sequence[i]! + this.payload[i]!) >>> 0;
    if (this.udp[i] === 1 || (buf[off + this.l4[i]! + TcpField.Flags]! & TcpFlags.PSH) === 0) this.open[this.openCount++] = i;
  }

  private join(head: number, i: number): void {
    this.role[i] = Role.Member;
    this.next[this.tail[head]!] = i;
    this.tail[head] = i;
    this.count[head]!++;
    this.runPayload[head]! += this.payload[i]!;
    this.nextSequence[head] = (this.nextSequence[head]! + this.payload[i]!) >>> 0;
  }

  private closeOpen(head: number): void {
    for (let k = 0; k < this.openCount; k++) {
      if (this.open[k] === head) {
        this.open[k] = this.open[--this.openCount]!;
        return;
      }
    }
  }

  /**
   * Makes the run headed by `head` one super-packet, in place: a virtio header in the head's
   * headroom, the head's IP and TCP or UDP headers rewritten for the whole run, and as pieces the
   * head (headers and payload) followed by every member's payload. Returns the next free piece.
   */
  private writeMerged(buf: Uint8Array, offsets: Int32Array, head: number, out: CoalescedBatch, piece: number): number {
    const l4 = this.l4[head]!;
    const headerBytes = l4 + this.l4HeaderLength[head]!;
    const l4Length = this.l4HeaderLength[head]! + this.runPayload[head]!;
    const v6 = this.v6[head] === 1;
    const udp = this.udp[head] === 1;
    const packet = offsets[head]!;
    const csumOffset = udp ? UDP_CHECKSUM_OFFSET : TCP_CHECKSUM_OFFSET;

    const vnet = this.vnet.bind(buf, packet - VIRTIO_NET_HDR_LENGTH);
    vnet.flags = VirtioNetHdrFlags.NeedsCsum;
    vnet.gsoType = udp ? VirtioGsoType.UdpL4 : v6 ? VirtioGsoType.TcpV6 : VirtioGsoType.TcpV4;
    vnet.headerLength = headerBytes;
    vnet.gsoSize = this.payload[head]!;
    vnet.csumStart = l4;
    vnet.csumOffset = csumOffset;

    out.iovOffsets[piece] = packet - VIRTIO_NET_HDR_LENGTH;
    out.iovLengths[piece] = VIRTIO_NET_HDR_LENGTH + headerBytes + this.payload[head]!;
    piece++;
    let last = head;
    for (let m = this.next[head]!; m >= 0; m = this.next[m]!) {
      out.iovOffsets[piece] = offsets[m]! + headerBytes;
      out.iovLengths[piece] = this.payload[m]!;
      piece++;
      last = m;
    }

    const transport = packet + l4;
    if (udp) {
      // The kernel cuts the run back into datagrams and rewrites each one's length and checksum.
      writeU16(buf, transport + UdpField.Length, l4Length);
    } else {
      buf[transport + TcpField.Flags] = buf[transport + TcpField.Flags]! | (buf[offsets[last]! + l4 + TcpField.Flags]! & TcpFlags.PSH);
    }
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, folded and not complemented.
    const protocol = udp ? IpProtocol.UDP : IpProtocol.TCP;
    let pseudo: number;
    if (v6) {
      writeU16(buf, packet + Ipv6Field.PayloadLength, l4Length);
      pseudo = pseudoHeaderSumV6(buf, packet + Ipv6Field.SourceAddress, packet + Ipv6Field.DestinationAddress, protocol, l4Length);
    } else {
      const ip = this.ip.bind(buf, packet);
      ip.totalLength = l4 + l4Length;
      ip.fillChecksum();
      pseudo = pseudoHeaderSumV4(ip.sourceAddress, ip.destinationAddress, protocol, l4Length);
    }
    writeU16(buf, transport + csumOffset, pseudo);
    return piece;
  }

  /** Emits packet `i` alone, in place, behind a virtio header in its headroom. Returns the next free piece. */
  private writeAlone(buf: Uint8Array, offsets: Int32Array, i: number, out: CoalescedBatch, piece: number): number {
    const at = offsets[i]! - VIRTIO_NET_HDR_LENGTH;
    const vnet = this.vnet.bind(buf, at);
    vnet.clear();
    if (this.partial(i)) {
      // Its checksum is unfinished: the kernel (or the NIC it forwards to) finishes it.
      vnet.flags = VirtioNetHdrFlags.NeedsCsum;
      vnet.csumStart = this.csumStarts![i]!;
      vnet.csumOffset = this.csumOffsets![i]!;
    } else if (this.verified[i] === 1) {
      vnet.flags = VirtioNetHdrFlags.DataValid;
    }
    out.iovOffsets[piece] = at;
    // TCP packets (and UDP ones, when merging UDP) lose any link-layer padding after the IP
    // total length; others go as given.
    out.iovLengths[piece] = VIRTIO_NET_HDR_LENGTH + this.ipLength[i]!;
    return piece + 1;
  }
}

/** A cheap hash of the flow (addresses and ports), to skip most non-matching runs in the scan. */
function flowHash(buf: Uint8Array, off: number, transport: number, v6: boolean): number {
  let h = readU32(buf, transport);
  if (v6) {
    for (let k = Ipv6Field.SourceAddress; k < IPV6_HEADER_LENGTH; k += 4) h = Math.imul(h ^ readU32(buf, off + k), 0x9e3779b1);
  } else {
    h = Math.imul(h ^ readU32(buf, off + Ipv4Field.SourceAddress), 0x9e3779b1);
    h = Math.imul(h ^ readU32(buf, off + Ipv4Field.DestinationAddress), 0x9e3779b1);
  }
  return h | 0;
}
