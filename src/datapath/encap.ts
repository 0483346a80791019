/**
 * Outbound: IP packets from the TUN device become VXLAN datagrams to peer nodes.
 *
 * One call of `runOnce` is one batch: read packets from TUN into the slab (each slot keeps
 * HEADROOM bytes free in front), plan every outgoing datagram as pieces of that slab, send the
 * whole plan with one call, then count what the kernel took and what it refused. Per packet:
 *
 *   route     which peer owns the destination (table lookup); a cluster address nobody owns gets
 *             ICMP "net unreachable" (icmp-responder.ts);
 *   fit       the largest inner packet the path to that peer carries (path-mtu.ts);
 *   encap     a plain packet gets VXLAN + inner Ethernet written in its headroom and leaves as one
 *             piece, and consecutive plain packets of one size to one peer and socket (small
 *             UDP datagrams, TCP acknowledgments) as one UDP GSO message; a TSO/USO super-packet is cut (wire/segment.ts) into segments whose headers
 *             are rebuilt in the header area and whose payload is sent from where TUN left it,
 *             a run of them to one peer as one UDP GSO message; nothing is copied but headers;
 *   too big   cut TCP finer, fragment IPv4 without DF (wire/fragment.ts), or answer like a router
 *             (ICMP "fragmentation needed" / "packet too big");
 *   send      one sendmmsg per socket run; a refused GSO message is retried as single datagrams;
 *             EMSGSIZE teaches the path MTU; every datagram is counted, on its peer or as a drop.
 *
 * The outer IPv4/UDP headers are the kernel's job (it also checksums them). The flow hash
 * (flow-hash.ts) picks the sending socket, hence the outer source port. Nothing is allocated per
 * packet. IPv6 pods take the same path with the IPv6 table and inner EtherType 0x86DD.
 */
import type { Tun, UdpBind } from '../device/types.js';
import { Errno } from '../device/types.js';
import { ForwardingTable, Lookup } from '../table/table.js';
import type { ForwardingTable6 } from '../table/table6.js';
import { EtherType, EthernetField, ETHERNET_HEADER_LENGTH, MAC_LENGTH } from '../wire/ethernet.js';
import { VxlanField, VxlanFlags, VxlanRco, VXLAN_HEADER_LENGTH } from '../wire/vxlan.js';
import { Ipv4Field, Ipv4Fragment, Ipv4View, IPV4_MIN_HEADER_LENGTH, IpProtocol } from '../wire/ipv4.js';
import { TCP_CHECKSUM_OFFSET } from '../wire/tcp.js';
import { UDP_CHECKSUM_OFFSET } from '../wire/udp.js';
import { IPV6_HEADER_LENGTH, IPV6_MIN_MTU, Ipv6Field } from '../wire/ipv6.js';
import { VirtioGsoType, VirtioNetHdrFlags, VirtioNetHdrView, VIRTIO_NET_HDR_LENGTH } from '../wire/virtio.js';
import { completeChecksum, MAX_SEGMENTS, planSegments, SegmentError, SegmentPlan, writeSegmentHeader } from '../wire/segment.js';
import { FragmentPlan, planFragments, writeFragmentHeader } from '../wire/fragment.js';
import { readU16, readU32 } from '../wire/bytes.js';
import { Counter, Drop, IoOp, ioErrorSlot } from './counters.js';
import { PeerField } from './peer-state.js';
import { allocateSlab, ENCAP_LENGTH, HEADROOM } from './slab.js';
import { flowHash4, flowHash6 } from './flow-hash.js';
import { IcmpResponder } from './icmp-responder.js';
import { PathMtu, VXLAN_IPV4_OVERHEAD } from './path-mtu.js';
import { SendPlan } from './send-plan.js';

/** Largest UDP payload of one IPv4 datagram, which bounds one UDP GSO send (65535 - 20 - 8). */
const UDP_MAX_PAYLOAD = 65507;
/** Segments per UDP GSO send: the kernel's UDP_MAX_SEGMENTS on every kernel we support. */
const UDP_GSO_MAX_SEGMENTS = 64;
/** A TUN read with offloads returns at most a 64 KB super-packet behind its virtio header. */
const SUPER_PACKET_MAX = 65535 + VIRTIO_NET_HDR_LENGTH;
/** With offloads, one TUN read call stops after about this many bytes (see docs/performance.md). */
const READ_BUDGET = 1 << 20;
/** Where rebuilt segment and fragment headers go: enough for a batch of super-packets cut to
 * common MSS values, and for one cut to the smallest (MAX_SEGMENTS entries). */
const HEADER_AREA = 256 << 10;
/** Room per rebuilt header: VXLAN + Ethernet + the largest IP + TCP headers, 8-byte aligned. */
const HEADER_ENTRY_MAX = (ENCAP_LENGTH + 60 + 60 + 7) & ~7;
/** DF in the first byte of Flags and Fragment Offset (the byte the hot path reads). */
const DONT_FRAGMENT = Ipv4Fragment.DontFragment >>> 8;

/** What a peer accepts, per slot (`TableSet.peerFlags`). */
export const PeerFlags = {
  /** VXLAN remote checksum offload: it finishes inner checksums we leave unfinished. */
  RemoteChecksum: 1,
} as const;

/** The tables a batch forwards with; the worker swaps in a new set between batches. */
export interface TableSet {
  readonly table: ForwardingTable;
  /** The IPv6 pod CIDRs, same slots; undefined when this node has no IPv6 pods. */
  readonly table6: ForwardingTable6 | undefined;
  /** Slot -> peer state index (peer-state.ts). */
  readonly stateOf: Int32Array;
  /** Slot -> PeerFlags; empty when no peer accepts an extension. */
  readonly peerFlags: Uint8Array;
}

export interface EncapOptions {
  readonly tun: Tun;
  readonly udp: UdpBind;
  /** This worker's counter block, and its block of the per-peer state. */
  readonly counters: Float64Array;
  readonly peerState: Float64Array;
  readonly localMAC: Uint8Array;
  /** Our TUN addresses: the source of ICMP errors. */
  readonly localAddress: number;
  readonly localAddress6?: Uint8Array | undefined;
  /** The overlay MTU (the TUN device's). */
  readonly mtu: number;
  /** The local underlay interface's MTU; default mtu + 50. */
  readonly underlayMtu?: number | undefined;
  readonly batch: number;
  readonly udpGso?: boolean;
  /** ICMP errors per second (both families). */
  readonly icmpRate?: number;
  readonly pathMtuAgingMs?: number;
  /** Leave inner checksums unfinished (VXLAN RCO) for peers that accept it. */
  readonly remoteChecksum?: boolean;
}

export class Encapsulator {
  tables: TableSet;
  readonly slab: Uint8Array;

  private readonly tun: Tun;
  private readonly udp: UdpBind;
  private readonly c: Float64Array;
  private readonly ps: Float64Array;
  private readonly localMAC: Uint8Array;
  private readonly mtu: number;
  private readonly batch: number;
  private readonly senderMask: number;
  private readonly vnet: boolean;
  private readonly udpGso: boolean;
  private readonly rco: boolean;
  private readonly capacity: number;
  private readonly readOffsets: Int32Array;
  private readonly readLengths: Int32Array;
  private readonly headerStart: number;
  private readonly headerEnd: number;
  private headerUsed: number;
  private readonly plan: SendPlan;
  private readonly fallback: SendPlan;
  private readonly segments = new SegmentPlan();
  private readonly fragments = new FragmentPlan();
  private readonly hdr = new VirtioNetHdrView(new Uint8Array(0));
  private readonly ip = new Ipv4View(new Uint8Array(0));
  private readonly icmp: IcmpResponder;
  private readonly pmtu: PathMtu;
  /** Peer state indexes whose path MTU was asked of the kernel in this flush. */
  private readonly learned = new Int32Array(64);
  private learnedCount = 0;
  private now = 0;

  constructor(o: EncapOptions, tables: TableSet) {
    this.tables = tables;
    this.tun = o.tun;
    this.udp = o.udp;
    this.c = o.counters;
    this.ps = o.peerState;
    this.localMAC = o.localMAC;
    this.mtu = o.mtu;
    this.batch = o.batch;
    this.senderMask = o.udp.senders - 1;
    this.vnet = o.tun.vnetHeader;
    this.udpGso = o.udpGso ?? false;
    this.rco = o.remoteChecksum ?? false;
    this.icmp = new IcmpResponder(o.tun, o.counters, o.localAddress, o.localAddress6 ?? new Uint8Array(16), o.icmpRate ?? 100);
    this.pmtu = new PathMtu(o.peerState, o.udp, o.counters, o.underlayMtu ?? o.mtu + VXLAN_IPV4_OVERHEAD, o.pathMtuAgingMs);
    // Without offloads a TUN read returns one packet of at most the device MTU. Room for 9000
    // even when our MTU is smaller: if someone raises the device MTU, an oversized packet must
    // be read whole to get its ICMP error, not truncated. With IFF_VNET_HDR a read can return a
    // 64 KB super-packet behind its virtio header.
    this.capacity = this.vnet ? SUPER_PACKET_MAX : (Math.max(o.mtu, 9000) + VIRTIO_NET_HDR_LENGTH + 63) & ~63;
    const slot = HEADROOM + ((this.capacity + 63) & ~63);
    this.headerStart = slot * o.batch;
    this.headerEnd = this.headerStart + HEADER_AREA;
    this.headerUsed = this.headerStart;
    this.slab = allocateSlab(this.headerEnd);
    this.readOffsets = new Int32Array(o.batch);
    for (let i = 0; i < o.batch; i++) this.readOffsets[i] = i * slot + HEADROOM;
    this.readLengths = new Int32Array(o.batch);
    const messages = this.vnet ? Math.max(1024, o.batch * 64) : o.batch * 8;
    this.plan = new SendPlan(this.slab, messages, messages * 4);
    this.fallback = new SendPlan(this.slab, 4096, 0, this.plan);
  }

  /** One batch: TUN read, encapsulate, send, count. Returns packets read, 0 on timeout, or a
   * negative errno when the read failed (counted; the worker backs off). */
  runOnce(timeoutMs: number): number {
    const n = this.tun.read(this.slab, this.readOffsets, this.capacity, this.readLengths, this.batch, timeoutMs, this.vnet ? READ_BUDGET : 0);
    if (n <= 0) {
      if (n < 0) this.c[ioErrorSlot(IoOp.TunRead, -n)]!++;
      return n;
    }
    this.c[Counter.TxBatches]!++;
    this.now = Date.now();
    for (let i = 0; i < n; i++) {
      if (this.vnet) this.fromVnet(this.readOffsets[i]!, this.readLengths[i]!);
      else this.plain(this.readOffsets[i]!, this.readLengths[i]!, -1, 0);
    }
    this.flush();
    return n;
  }

  /** A read with a virtio header in front: a plain packet (maybe with its transport checksum
   * left to us), or a TSO/USO super-packet to cut into segments. */
  private fromVnet(off: number, len: number): void {
    const slab = this.slab;
    if (len < VIRTIO_NET_HDR_LENGTH + IPV4_MIN_HEADER_LENGTH) {
      this.c[Drop.bad_ip]!++;
      return;
    }
    const h = this.hdr.bind(slab, off);
    const p = off + VIRTIO_NET_HDR_LENGTH;
    const plen = len - VIRTIO_NET_HDR_LENGTH;
    if ((h.gsoType & ~VirtioGsoType.Ecn) === VirtioGsoType.None) {
      if ((h.flags & VirtioNetHdrFlags.NeedsCsum) === 0) {
        this.plain(p, plen, -1, 0);
        return;
      }
      if (h.csumStart + h.csumOffset + 2 > plen) {
        this.c[Drop.bad_ip]!++;
        return;
      }
      this.plain(p, plen, h.csumStart, h.csumOffset);
      return;
    }
    const slot = this.route(p, plen);
    if (slot < 0) return;
    const limit = this.innerLimit(slot);
    const plan = this.segments;
    const count = planSegments(slab, p, plen, h, limit, MAX_SEGMENTS, plan);
    if (count === SegmentError.TooBig) {
      // A UDP super-datagram whose datagrams (the application's boundaries) do not fit.
      const datagrams = Math.max(1, Math.ceil((plen - plan.headerBytes) / h.gsoSize));
      this.c[Drop.too_big]! += datagrams;
      this.answerTooBig(slab, p, plan.headerBytes, limit);
      return;
    }
    if (count < 0) {
      this.c[Drop.bad_ip]!++;
      return;
    }
    const hb = plan.headerBytes;
    const entry = (ENCAP_LENGTH + hb + 7) & ~7;
    const group = this.udpGso ? Math.min(UDP_GSO_MAX_SEGMENTS, Math.floor(UDP_MAX_PAYLOAD / (ENCAP_LENGTH + hb + plan.payloadPerSegment))) : 1;
    if (!this.room(Math.ceil(count / group), 2 * count, count * entry)) {
      this.c[Drop.bad_ip]!++;
      return;
    }
    const v6 = slab[p]! >> 4 === 6;
    const sock = (v6 ? flowHash6(slab, p, plen) : flowHash4(slab, p, plan.l4Offset, plen)) & this.senderMask;
    const { table, stateOf } = this.tables;
    const addr = table.underlay[slot]!;
    const port = table.port[slot]!;
    const idx = stateOf[slot]!;
    const stride = ENCAP_LENGTH + hb + plan.payloadPerSegment;
    const ethType = v6 ? EtherType.IPv6 : EtherType.IPv4;
    const rco = this.rcoField(slot, plan.l4Offset, plan.protocol === IpProtocol.UDP ? UDP_CHECKSUM_OFFSET : TCP_CHECKSUM_OFFSET);
    const out = this.plan;
    for (let j = 0; j < count; j += group) {
      const n = Math.min(group, count - j);
      const firstPiece = out.iovCount;
      const firstHeader = this.headerUsed + ENCAP_LENGTH;
      let bytes = 0;
      for (let i = j; i < j + n; i++) {
        const at = this.headerUsed;
        this.headerUsed += entry;
        this.writeEncap(at, slot, ethType, rco);
        bytes += writeSegmentHeader(plan, i, slab, p, slab, at + ENCAP_LENGTH, this.ip, rco !== 0);
        out.piece(at, ENCAP_LENGTH + hb);
        out.piece(p + plan.payloadStart(i), plan.payloadOf(i));
      }
      out.message(firstPiece, addr, port, sock, n > 1 ? stride : 0, idx, n, bytes, 2, firstHeader, hb);
    }
    this.c[Counter.TxSegments]! += count;
  }

  /**
   * An IP packet at slab[off, off+len) that leaves as it is, or is fragmented or refused. With
   * `csumStart` >= 0 its transport checksum is unfinished (NEEDS_CSUM): it leaves unfinished to a
   * peer that takes remote checksum offload, and is finished here for everyone else.
   */
  private plain(off: number, len: number, csumStart: number, csumOffset: number): void {
    const slot = this.route(off, len);
    if (slot < 0) return;
    const limit = this.innerLimit(slot);
    const slab = this.slab;
    if (len <= limit) {
      const rco = csumStart < 0 ? 0 : this.rcoField(slot, csumStart, csumOffset);
      if (csumStart >= 0 && rco === 0) completeChecksum(slab, off, len, csumStart, csumOffset);
      this.packet(off, len, slot, rco);
      return;
    }
    if (csumStart >= 0) completeChecksum(slab, off, len, csumStart, csumOffset);
    if (slab[off]! >> 4 === 4 && (slab[off + Ipv4Field.FlagsAndFragmentOffset]! & DONT_FRAGMENT) === 0) {
      this.fragment(off, len, slot, limit);
      return;
    }
    this.c[Drop.too_big]!++;
    this.answerTooBig(slab, off, len, limit);
  }

  /** One packet, one message: VXLAN + Ethernet in the headroom, the packet where it was read. */
  private packet(off: number, len: number, slot: number, rco: number): void {
    if (!this.room(1, 1, 0)) {
      this.c[Drop.udp_send]!++; // cannot happen: an empty plan holds one message
      return;
    }
    const slab = this.slab;
    const v6 = slab[off]! >> 4 === 6;
    const start = off - ENCAP_LENGTH;
    this.writeEncap(start, slot, v6 ? EtherType.IPv6 : EtherType.IPv4, rco);
    const { table, stateOf } = this.tables;
    const sock = (v6 ? flowHash6(slab, off, len) : flowHash4(slab, off, (slab[off]! & 0x0f) << 2, len)) & this.senderMask;
    const out = this.plan;
    const firstPiece = out.iovCount;
    out.piece(start, len + ENCAP_LENGTH);
    const addr = table.underlay[slot]!;
    const port = table.port[slot]!;
    const idx = stateOf[slot]!;
    if (this.udpGso && out.joinRun(addr, port, sock, idx, len, UDP_GSO_MAX_SEGMENTS, UDP_MAX_PAYLOAD)) return;
    out.message(firstPiece, addr, port, sock, 0, idx, 1, len, 1, off, len);
  }

  /** IPv4 without DF, larger than the path: fragments of at most `limit` bytes (RFC 791). */
  private fragment(off: number, len: number, slot: number, limit: number): void {
    const slab = this.slab;
    const plan = this.fragments;
    const count = planFragments(slab, off, len, limit, plan);
    if (count < 0 || !this.room(count, 2 * count, count * HEADER_ENTRY_MAX)) {
      this.c[Drop.too_big]!++;
      return;
    }
    const { table, stateOf } = this.tables;
    const addr = table.underlay[slot]!;
    const port = table.port[slot]!;
    const idx = stateOf[slot]!;
    const sock = flowHash4(slab, off, plan.firstHeaderLength, len) & this.senderMask;
    const dataAt = off + plan.firstHeaderLength;
    const out = this.plan;
    for (let i = 0; i < count; i++) {
      const at = this.headerUsed;
      this.writeEncap(at, slot, EtherType.IPv4, 0);
      const hl = writeFragmentHeader(plan, i, slab, off, slab, at + ENCAP_LENGTH, this.ip);
      this.headerUsed += (ENCAP_LENGTH + hl + 7) & ~7;
      const data = plan.dataOf(i);
      const firstPiece = out.iovCount;
      out.piece(at, ENCAP_LENGTH + hl);
      out.piece(dataAt + plan.dataStart(i), data);
      out.message(firstPiece, addr, port, sock, 0, idx, 1, hl + data, 2, at + ENCAP_LENGTH, hl);
    }
    this.c[Counter.TxFragmented]!++;
  }

  /** ICMP "fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6) about the packet
   * whose headers are at s[off, off+len), for a path that carries `limit` bytes. */
  private answerTooBig(s: Uint8Array, off: number, len: number, limit: number): void {
    if (s[off]! >> 4 === 6) {
      this.icmp.packetTooBig6(s, off, len, Math.max(IPV6_MIN_MTU, limit));
    } else if ((s[off + Ipv4Field.FlagsAndFragmentOffset]! & DONT_FRAGMENT) !== 0) {
      this.icmp.fragmentationNeeded4(s, off, len, limit);
    }
  }

  /** Checks the IP packet at slab[off, off+len) and finds its peer slot. Returns the slot, or
   * -1 after counting the drop (and answering with ICMP where that helps the sender). */
  private route(off: number, len: number): number {
    const c = this.c;
    const s = this.slab;
    const version = len >= IPV4_MIN_HEADER_LENGTH ? s[off]! >> 4 : 0;
    if (version === 6) return this.route6(off, len);
    if (version !== 4) {
      c[Drop.bad_ip]!++;
      return -1;
    }
    const headerLength = (s[off]! & 0x0f) << 2;
    const total = readU16(s, off + Ipv4Field.TotalLength);
    if (headerLength < IPV4_MIN_HEADER_LENGTH || total < headerLength || total > len) {
      c[Drop.bad_ip]!++;
      return -1;
    }
    const dst = readU32(s, off + Ipv4Field.DestinationAddress);
    const slot = this.tables.table.lookup(dst);
    if (slot >= 0) return slot;
    if (slot === Lookup.Local) {
      c[Drop.local_loop]!++;
    } else {
      c[Drop.no_route]!++;
      this.icmp.netUnreachable4(s, off, len);
    }
    return -1;
  }

  /** `route` for an IPv6 packet. The payload must fit the read (no jumbograms, RFC 2675). */
  private route6(off: number, len: number): number {
    const c = this.c;
    const s = this.slab;
    if (len < IPV6_HEADER_LENGTH || IPV6_HEADER_LENGTH + readU16(s, off + Ipv6Field.PayloadLength) > len) {
      c[Drop.bad_ip]!++;
      return -1;
    }
    const t6 = this.tables.table6;
    if (t6 === undefined) {
      c[Drop.no_route]!++;
      return -1;
    }
    const slot = t6.lookup6(s, off + Ipv6Field.DestinationAddress);
    if (slot >= 0) return slot;
    if (slot === Lookup.Local) {
      c[Drop.local_loop]!++;
    } else {
      c[Drop.no_route]!++;
      this.icmp.noRoute6(s, off, len);
    }
    return -1;
  }

  /** The largest inner packet that may go to `slot`: the overlay MTU, or less if the path is smaller. */
  private innerLimit(slot: number): number {
    const { table, stateOf } = this.tables;
    const path = this.pmtu.innerLimit(stateOf[slot]!, table.underlay[slot]!, table.port[slot]!, this.now);
    return path < this.mtu ? path : this.mtu;
  }

  /**
   * The RCO byte for a checksum at `csumStart` (from the IP header) and `csumOffset` to peer
   * `slot`, or 0 when the checksum must be finished here: RCO is off, the peer does not take it,
   * or the packet's layout cannot be expressed (an odd start, beyond 254 bytes, neither TCP's
   * nor UDP's checksum).
   */
  private rcoField(slot: number, csumStart: number, csumOffset: number): number {
    if (!this.rco || (this.tables.peerFlags[slot]! & PeerFlags.RemoteChecksum) === 0) return 0;
    const start = ETHERNET_HEADER_LENGTH + csumStart;
    if ((start & 1) !== 0 || start > VxlanRco.MaxStart) return 0;
    if (csumOffset === TCP_CHECKSUM_OFFSET) return start >> 1;
    if (csumOffset === UDP_CHECKSUM_OFFSET) return VxlanRco.Udp | (start >> 1);
    return 0;
  }

  /** VXLAN (RFC 7348 §5) + inner Ethernet to the peer's VTEP MAC, at slab[at, at + 22); `rco`, when
   * not 0, is the remote checksum offload byte (the inner checksum is left for the peer). */
  private writeEncap(at: number, slot: number, etherType: number, rco: number): void {
    const s = this.slab;
    const table = this.tables.table;
    const vni = table.vni[slot]!;
    s[at + VxlanField.Flags] = VxlanFlags.Instance;
    s[at + VxlanField.ReservedAfterFlags] = rco === 0 ? 0 : VxlanRco.Flag;
    s[at + VxlanField.ReservedAfterFlags + 1] = 0;
    s[at + VxlanField.ReservedAfterFlags + 2] = 0;
    s[at + VxlanField.Vni] = vni >>> 16;
    s[at + VxlanField.Vni + 1] = vni >>> 8;
    s[at + VxlanField.Vni + 2] = vni;
    s[at + VxlanField.ReservedAfterVni] = rco;
    const e = at + VXLAN_HEADER_LENGTH;
    const mac = table.mac;
    const m = slot * MAC_LENGTH;
    const local = this.localMAC;
    for (let i = 0; i < MAC_LENGTH; i++) {
      s[e + EthernetField.Destination + i] = mac[m + i]!;
      s[e + EthernetField.Source + i] = local[i]!;
    }
    s[e + EthernetField.EtherType] = etherType >>> 8;
    s[e + EthernetField.EtherType + 1] = etherType;
  }

  /** Makes room in the plan (sending what it holds if needed); false if it can never fit. */
  private room(messages: number, pieces: number, headerBytes: number): boolean {
    if (this.plan.hasRoom(messages, pieces) && this.headerUsed + headerBytes <= this.headerEnd) return true;
    this.flush();
    return this.plan.hasRoom(messages, pieces) && this.headerUsed + headerBytes <= this.headerEnd;
  }

  /** Sends the plan, counts every message, retries refused GSO messages as single datagrams. */
  private flush(): void {
    const plan = this.plan;
    const k = plan.count;
    if (k > 0) {
      this.learnedCount = 0;
      this.udp.sendv(plan, 0, k);
      const fb = this.fallback;
      fb.reset();
      for (let i = 0; i < k; i++) {
        const r = plan.results[i]!;
        if (r === 0) {
          this.sent(plan.stateIdx[i]!, plan.datagrams[i]!, plan.bytes[i]!);
          continue;
        }
        this.c[ioErrorSlot(IoOp.UdpSend, r)]!++;
        const size = r === Errno.EMSGSIZE || (r === Errno.EINVAL && plan.gso[i]! > 0);
        if (size) this.learnOnce(plan.stateIdx[i]!, plan.addrs[i]!, plan.ports[i]!);
        if (plan.gso[i]! > 0) {
          this.c[Counter.GsoFallbacks]!++;
          this.queueSingles(plan, i);
          continue;
        }
        this.refused(plan, i, size);
      }
      this.sendFallback();
    }
    plan.reset();
    this.headerUsed = this.headerStart;
  }

  /** The datagrams of refused GSO message i, each as its own message in the fallback plan. */
  private queueSingles(plan: SendPlan, i: number): void {
    const fb = this.fallback;
    const per = plan.perDatagram[i]!;
    const first = plan.first[i]!;
    for (let d = 0; d < plan.datagrams[i]!; d++) {
      if (fb.count >= fb.maxMessages) this.sendFallback();
      const head = first + d * per;
      let bytes = -ENCAP_LENGTH;
      for (let j = head; j < head + per; j++) bytes += plan.iovLengths[j]!;
      fb.existing(head, per, plan.addrs[i]!, plan.ports[i]!, plan.sock[i]!, plan.stateIdx[i]!, bytes,
        plan.iovOffsets[head]! + ENCAP_LENGTH, plan.iovLengths[head]! - ENCAP_LENGTH);
    }
  }

  private sendFallback(): void {
    const fb = this.fallback;
    if (fb.count === 0) return;
    this.udp.sendv(fb, 0, fb.count);
    for (let i = 0; i < fb.count; i++) {
      const r = fb.results[i]!;
      if (r === 0) {
        this.sent(fb.stateIdx[i]!, 1, fb.bytes[i]!);
        continue;
      }
      this.c[ioErrorSlot(IoOp.UdpSend, r)]!++;
      const size = r === Errno.EMSGSIZE;
      if (size) this.learnOnce(fb.stateIdx[i]!, fb.addrs[i]!, fb.ports[i]!);
      this.refused(fb, i, size);
    }
    fb.reset();
  }

  /** Counts message i of `plan`, which the kernel refused, as dropped; a size refusal is answered
   * with ICMP to the inner sender, now that the path MTU is known. */
  private refused(plan: SendPlan, i: number, size: boolean): void {
    const d = plan.datagrams[i]!;
    if (!size) {
      this.c[Drop.udp_send]! += d;
      return;
    }
    this.c[Drop.too_big]! += d;
    const idx = plan.stateIdx[i]!;
    const limit = this.pmtu.innerLimit(idx, plan.addrs[i]!, plan.ports[i]!, this.now);
    this.answerTooBig(this.slab, plan.innerAt[i]!, plan.innerLen[i]!, limit < this.mtu ? limit : this.mtu);
  }

  private sent(idx: number, datagrams: number, bytes: number): void {
    const base = idx * PeerField.Stride;
    this.ps[base + PeerField.TxPackets]! += datagrams;
    this.ps[base + PeerField.TxBytes]! += bytes;
  }

  /** Asks the kernel for the path MTU to a peer, at most once per peer per flush. */
  private learnOnce(idx: number, addr: number, port: number): void {
    for (let i = 0; i < this.learnedCount; i++) if (this.learned[i] === idx) return;
    if (this.learnedCount < this.learned.length) this.learned[this.learnedCount++] = idx;
    this.pmtu.learn(idx, addr, port, this.now);
  }
}
