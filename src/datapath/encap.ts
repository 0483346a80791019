/**
 * Outbound: IP packets from the TUN device become VXLAN datagrams to peer nodes.
 *
 * One call of `runOnce` is one batch: read up to `batch` packets from TUN into a slab whose slots
 * keep HEADROOM bytes free in front of each packet, write the 22 bytes of VXLAN + inner Ethernet
 * header into that headroom in place, and hand the whole batch to `sendmmsg` in one call. The
 * outer IPv4/UDP headers are the kernel's job (it also checksums them), so the inner packet is
 * never copied. Per packet the work is: one table lookup (typed arrays, no Map), eight header
 * writes, one flow hash. Nothing is allocated.
 *
 * Packets that cannot go out are counted by reason. A destination in the cluster CIDR that no
 * peer owns gets an ICMP "destination unreachable" back through TUN, and a DF packet larger than
 * the overlay MTU gets "fragmentation needed" with our MTU (RFC 1191); both are rate-limited by a
 * token bucket so a scan cannot turn the agent into an ICMP generator.
 *
 * IPv6 pods (dual stack) take the same path with a second table: an IPv6 packet is looked up in
 * the IPv6 table (table6.ts, same slots as the IPv4 one), goes out with inner EtherType 0x86DD
 * and the same VXLAN header, and its flow hash covers the 128-bit addresses. IPv6 routers never
 * fragment (RFC 8200 §5), so any plain IPv6 packet longer than the MTU gets an ICMPv6 Packet Too
 * Big; an unowned destination gets ICMPv6 "no route to destination" (RFC 4443 §3.1, §3.2), from
 * the same token bucket. Without an IPv6 table (no clusterCIDR6) IPv6 packets count as no_route.
 */
import type { Tun, UdpBind } from '../device/types.js';
import { ForwardingTable, Lookup } from '../table/table.js';
import { EthernetView, EtherType } from '../wire/ethernet.js';
import { VxlanView, VxlanFlags, VXLAN_HEADER_LENGTH } from '../wire/vxlan.js';
import { Ipv4View, IpProtocol } from '../wire/ipv4.js';
import { ForwardingTable6 } from '../table/table6.js';
import { IPV6_HEADER_LENGTH } from '../wire/ipv6.js';
import {
  writeIcmpv4Error, icmpv4ErrorAllowed, ICMPv4, Icmpv4Unreachable,
  writeIcmpv6Error, icmpv6ErrorAllowed, ICMPv6, Icmpv6Unreachable, ICMPV6_ERROR_MAX_LENGTH,
} from '../wire/icmp.js';
import { VirtioNetHdrView, VirtioGsoType, VirtioNetHdrFlags, VIRTIO_NET_HDR_LENGTH } from '../wire/virtio.js';
import { segment, completeChecksum } from '../wire/segment.js';
import { allocateSlab } from '../wire/checksum-simd.js';
import { Counter, Drop, PeerCounter } from './counters.js';

/** Bytes kept free in front of every packet slot: VXLAN (8) + inner Ethernet (14), rounded up so
 * a virtio_net_hdr (10) also fits in front of a decapsulated packet without moving it. */
export const HEADROOM = 64;
/** VXLAN + inner Ethernet: what we prepend to the inner IP packet. */
export const ENCAP_LENGTH = VXLAN_HEADER_LENGTH + 14;
/** Largest UDP payload of one IPv4 datagram, which bounds one UDP GSO send (65535 - 20 - 8). */
const UDP_MAX_PAYLOAD = 65507;
/** Segments per UDP GSO send: the kernel's UDP_MAX_SEGMENTS on every kernel we support. */
const UDP_GSO_MAX_SEGMENTS = 64;
/** A TSO super-packet from TUN is at most 64 KB (the device's gso_max_size). */
const SUPER_PACKET_MAX = 65536;
/** Where segments of super-packets are laid out for UDP GSO, per batch (flushed when full). */
const SEGMENT_AREA = 1 << 20;
/** With TUN offloads one read call stops after this many bytes: a batch is then up to `batch`
 * small packets or about 16 super-packets (docs/performance.md). */
export const READ_BUDGET = 1 << 20;

export interface EncapOptions {
  readonly tun: Tun;
  readonly udp: UdpBind;
  readonly counters: Float64Array;
  readonly localMAC: Uint8Array;
  /** Our TUN address (pod CIDR network address), uint32: the source of ICMP errors we generate. */
  readonly localAddress: number;
  /** Our IPv6 TUN address (podCIDR6 network address), 16 bytes: the source of ICMPv6 errors. */
  readonly localAddress6?: Uint8Array;
  readonly mtu: number;
  readonly batch: number;
  /** Send segments of a super-packet with UDP_SEGMENT (one sendmsg for up to 64 datagrams). */
  readonly udpGso?: boolean;
  /** ICMP errors per second (token bucket rate and burst). */
  readonly icmpRate?: number;
}

export class Encapsulator {
  table: ForwardingTable;
  /** IPv6 pod CIDRs, same slots as `table`; undefined when this node has no IPv6 pods. */
  table6: ForwardingTable6 | undefined;
  peerCounters: Float64Array;

  private readonly tun: Tun;
  private readonly udp: UdpBind;
  private readonly c: Float64Array;
  private readonly localMAC: Uint8Array;
  private readonly localAddress: number;
  private readonly localAddress6: Uint8Array;
  private readonly mtu: number;
  private readonly batch: number;
  private readonly senderMask: number;
  private readonly vnet: boolean;
  private readonly udpGso: boolean;

  readonly slab: Uint8Array;
  private readonly capacity: number;
  private readonly readOffsets: Int32Array;
  private readonly readLengths: Int32Array;
  private readonly sendOffsets: Int32Array;
  private readonly sendLengths: Int32Array;
  private readonly sendAddrs: Uint32Array;
  private readonly sendPorts: Uint16Array;
  private readonly sendGso: Int32Array;
  private readonly sendSock: Uint8Array;
  private readonly sendDatagrams: Int32Array;
  private readonly maxSend: number;
  private readonly segmentStart: number;
  private segmentUsed = 0;
  private readonly segOffsets = new Int32Array(UDP_GSO_MAX_SEGMENTS * 2);
  private readonly segLengths = new Int32Array(UDP_GSO_MAX_SEGMENTS * 2);
  private readonly hdr = new VirtioNetHdrView(new Uint8Array(0));

  private readonly ip = new Ipv4View(new Uint8Array(0));
  private readonly eth = new EthernetView(new Uint8Array(0));
  private readonly vx = new VxlanView(new Uint8Array(0));

  private readonly icmpSlab = new Uint8Array(HEADROOM + ICMPV6_ERROR_MAX_LENGTH);
  private readonly icmpOffsets = Int32Array.of(0);
  private readonly icmpLengths = Int32Array.of(0);
  private readonly icmpRate: number;
  private icmpTokens: number;
  private icmpRefilled = 0;

  constructor(o: EncapOptions, table: ForwardingTable, peerCounters: Float64Array, table6?: ForwardingTable6) {
    this.table = table;
    this.table6 = table6;
    this.peerCounters = peerCounters;
    this.tun = o.tun;
    this.udp = o.udp;
    this.c = o.counters;
    this.localMAC = o.localMAC;
    this.localAddress = o.localAddress;
    this.localAddress6 = o.localAddress6 ?? new Uint8Array(16);
    this.mtu = o.mtu;
    this.batch = o.batch;
    this.senderMask = o.udp.senders - 1;
    this.icmpRate = o.icmpRate ?? 100;
    this.icmpTokens = this.icmpRate;
    this.vnet = o.tun.vnetHeader;
    this.udpGso = o.udpGso ?? false;
    // Without offloads a TUN read returns one packet of at most the device MTU. Room for 9000
    // even when our MTU is smaller: if someone raises the device MTU, an oversized packet must
    // be read whole to get its "fragmentation needed", not truncated. With IFF_VNET_HDR a read
    // can return a 64 KB TSO super-packet behind its 10-byte virtio header.
    this.capacity = this.vnet ? SUPER_PACKET_MAX + 64 : (Math.max(o.mtu, 9000) + 10 + 63) & ~63;
    const slot = HEADROOM + this.capacity;
    this.segmentStart = slot * o.batch;
    // The slab: batch read slots, then (with offloads) the area segments are cut into. One
    // buffer, so one sendmmsg can mix plain packets and segments.
    this.slab = allocateSlab(this.segmentStart + (this.vnet ? SEGMENT_AREA : 0));
    this.readOffsets = new Int32Array(o.batch);
    for (let i = 0; i < o.batch; i++) this.readOffsets[i] = i * slot + HEADROOM;
    this.readLengths = new Int32Array(o.batch);
    // Without UDP GSO every segment is its own send entry: room for a batch of super-packets.
    this.maxSend = this.vnet ? o.batch * 48 : o.batch;
    this.sendOffsets = new Int32Array(this.maxSend);
    this.sendLengths = new Int32Array(this.maxSend);
    this.sendAddrs = new Uint32Array(this.maxSend);
    this.sendPorts = new Uint16Array(this.maxSend);
    this.sendGso = new Int32Array(this.maxSend);
    this.sendSock = new Uint8Array(this.maxSend);
    this.sendDatagrams = new Int32Array(this.maxSend);
  }

  /** One batch: TUN read, encapsulate, sendmmsg. Returns packets read (0 on timeout). */
  runOnce(timeoutMs: number): number {
    const n = this.tun.read(this.slab, this.readOffsets, this.capacity, this.readLengths, this.batch, timeoutMs, this.vnet ? READ_BUDGET : 0);
    if (n === 0) return 0;
    this.c[Counter.TxBatches]!++;
    let k = 0;
    this.segmentUsed = 0;
    if (this.vnet) {
      for (let i = 0; i < n; i++) k = this.fromVnet(this.readOffsets[i]!, this.readLengths[i]!, k);
    } else {
      for (let i = 0; i < n; i++) {
        if (this.encapsulate(this.readOffsets[i]!, this.readLengths[i]!, k)) k++;
      }
    }
    if (k > 0) this.flush(k);
    return n;
  }

  /**
   * A read with a virtio header in front: a plain packet (maybe with its transport checksum
   * left to us), or a TSO/USO super-packet to cut into MSS-sized segments. Segments are laid
   * out back to back at a fixed stride, VXLAN headroom included, so that a run of them to one
   * peer is ONE UDP GSO send. Returns the next free send entry.
   */
  private fromVnet(off: number, len: number, k: number): number {
    const c = this.c;
    const slab = this.slab;
    if (len < VIRTIO_NET_HDR_LENGTH + 20) {
      c[Drop.bad_ip]!++;
      return k;
    }
    const h = this.hdr.bind(slab, off);
    const p = off + VIRTIO_NET_HDR_LENGTH;
    const plen = len - VIRTIO_NET_HDR_LENGTH;
    const gsoType = h.gsoType & ~VirtioGsoType.Ecn;
    if (gsoType === VirtioGsoType.None) {
      if ((h.flags & VirtioNetHdrFlags.NeedsCsum) !== 0 && !completeChecksum(slab, p, plen, h.csumStart, h.csumOffset)) {
        c[Drop.bad_ip]!++;
        return k;
      }
      if (k >= this.maxSend) {
        this.flush(k);
        k = 0;
        this.segmentUsed = 0;
      }
      return this.encapsulate(p, plen, k) ? k + 1 : k;
    }
    const slot = this.route(p, plen, false);
    if (slot < 0) return k;
    // Header bytes copied in front of every segment: IP + TCP (with options) or IP + UDP.
    const l4 = h.csumStart;
    if (l4 + 20 > plen) {
      c[Drop.bad_ip]!++;
      return k;
    }
    const headerBytes = gsoType === VirtioGsoType.UdpL4 ? l4 + 8 : l4 + ((slab[p + l4 + 12]! >> 4) << 2);
    const mss = h.gsoSize;
    if (mss === 0 || headerBytes >= plen) {
      c[Drop.bad_ip]!++;
      return k;
    }
    const count = Math.ceil((plen - headerBytes) / mss);
    const stride = ENCAP_LENGTH + headerBytes + mss;
    if (count > this.segOffsets.length) {
      c[Drop.bad_ip]!++;
      return k;
    }
    if (this.segmentUsed + count * stride > SEGMENT_AREA || k + count > this.maxSend) {
      if (k > 0) this.flush(k);
      k = 0;
      this.segmentUsed = 0;
    }
    const base = this.segmentStart + this.segmentUsed;
    for (let j = 0; j < count; j++) this.segOffsets[j] = base + j * stride + ENCAP_LENGTH;
    const m = segment(slab, p, plen, h, slab, this.segOffsets, this.segLengths, count);
    if (m < 0) {
      c[Drop.bad_ip]!++;
      return k;
    }
    this.segmentUsed += m * stride;
    const v6 = slab[p]! >> 4 === 6;
    const sock = (v6 ? this.flowHash6(p, plen) : this.flowHash(p, l4)) & this.senderMask;
    this.writeHeaders(base, slot, v6 ? EtherType.IPv6 : EtherType.IPv4);
    for (let j = 1; j < m; j++) slab.copyWithin(base + j * stride, base, base + ENCAP_LENGTH);
    let bytes = 0;
    for (let j = 0; j < m; j++) bytes += this.segLengths[j]!;
    const table = this.table;
    const addr = table.underlay[slot]!;
    const port = table.port[slot]!;
    const group = this.udpGso ? Math.min(UDP_GSO_MAX_SEGMENTS, Math.floor(UDP_MAX_PAYLOAD / stride)) : 1;
    for (let j = 0; j < m; j += group) {
      const n = Math.min(group, m - j);
      this.sendOffsets[k] = base + j * stride;
      this.sendLengths[k] = (n - 1) * stride + ENCAP_LENGTH + this.segLengths[j + n - 1]!;
      this.sendAddrs[k] = addr;
      this.sendPorts[k] = port;
      this.sendGso[k] = n > 1 ? stride : 0;
      this.sendSock[k] = sock;
      this.sendDatagrams[k] = n;
      k++;
    }
    c[Counter.TxSegments]! += m;
    c[Counter.TxBytes]! += bytes;
    const pc = this.peerCounters;
    const pb = slot * PeerCounter.Stride;
    pc[pb + PeerCounter.TxPackets]! += m;
    pc[pb + PeerCounter.TxBytes]! += bytes;
    return k;
  }

  /** Encapsulates the IP packet at slab[off, off+len) into send entry k. False: dropped. */
  encapsulate(off: number, len: number, k: number): boolean {
    const slot = this.route(off, len, true);
    if (slot < 0) return false;
    const start = off - ENCAP_LENGTH;
    const v6 = this.slab[off]! >> 4 === 6;
    this.writeHeaders(start, slot, v6 ? EtherType.IPv6 : EtherType.IPv4);
    const table = this.table;
    this.sendOffsets[k] = start;
    this.sendLengths[k] = len + ENCAP_LENGTH;
    this.sendAddrs[k] = table.underlay[slot]!;
    this.sendPorts[k] = table.port[slot]!;
    this.sendGso[k] = 0;
    this.sendSock[k] = (v6 ? this.flowHash6(off, len) : this.flowHash(off, this.ip.headerLength)) & this.senderMask;
    this.sendDatagrams[k] = 1;
    const pc = this.peerCounters;
    const base = slot * PeerCounter.Stride;
    pc[base + PeerCounter.TxPackets]!++;
    pc[base + PeerCounter.TxBytes]! += len;
    this.c[Counter.TxBytes]! += len;
    return true;
  }

  /**
   * Checks the IP packet at slab[off, off+len) and finds its peer slot. Returns the slot, or
   * -1 after counting the drop (and answering with ICMP where that helps the sender).
   * `checkMtu`: plain packets larger than the MTU with DF set get "fragmentation needed";
   * super-packets are cut to the MSS and never need it.
   */
  private route(off: number, len: number, checkMtu: boolean): number {
    const c = this.c;
    const slab = this.slab;
    if (len < 20 || slab[off]! >> 4 !== 4) {
      if (len >= IPV6_HEADER_LENGTH && slab[off]! >> 4 === 6) return this.route6(off, len, checkMtu);
      c[Drop.bad_ip]!++;
      return -1;
    }
    const ip = this.ip.bind(slab, off);
    const headerLength = ip.headerLength;
    if (headerLength < 20 || ip.totalLength < headerLength || ip.totalLength > len) {
      c[Drop.bad_ip]!++;
      return -1;
    }
    const slot = this.table.lookup(ip.destinationAddress);
    if (slot < 0) {
      if (slot === Lookup.Local) {
        c[Drop.local_loop]!++;
      } else {
        c[Drop.no_route]!++;
        this.icmpError(off, len, ICMPv4.DestinationUnreachable, Icmpv4Unreachable.NetUnreachable, 0);
      }
      return -1;
    }
    if (checkMtu && len > this.mtu && ip.dontFragment) {
      c[Drop.too_big]!++;
      this.icmpError(off, len, ICMPv4.DestinationUnreachable, Icmpv4Unreachable.FragmentationNeeded, this.mtu);
      return -1;
    }
    return slot;
  }

  /**
   * `route` for an IPv6 packet (at least 40 bytes, version 6). The payload must fit the read
   * (jumbograms, RFC 2675, are not supported). Without an IPv6 table, or for a destination no
   * peer owns, the drop is no_route; a plain packet over the MTU is too_big (RFC 8200 §5: no
   * router fragments IPv6, the sender must).
   */
  private route6(off: number, len: number, checkMtu: boolean): number {
    const c = this.c;
    const slab = this.slab;
    if (IPV6_HEADER_LENGTH + ((slab[off + 4]! << 8) | slab[off + 5]!) > len) {
      c[Drop.bad_ip]!++;
      return -1;
    }
    const t6 = this.table6;
    if (t6 === undefined) {
      c[Drop.no_route]!++;
      return -1;
    }
    const slot = t6.lookup6(slab, off + 24);
    if (slot < 0) {
      if (slot === Lookup.Local) {
        c[Drop.local_loop]!++;
      } else {
        c[Drop.no_route]!++;
        this.icmpError6(off, len, ICMPv6.DestinationUnreachable, Icmpv6Unreachable.NoRoute, 0);
      }
      return -1;
    }
    if (checkMtu && len > this.mtu) {
      c[Drop.too_big]!++;
      this.icmpError6(off, len, ICMPv6.PacketTooBig, 0, this.mtu);
      return -1;
    }
    return slot;
  }

  /** Flow hash of an IPv6 packet: both 128-bit addresses, the next header and, when it is TCP
   * or UDP right after the fixed header, the ports. One flow, one sender (RFC 7348 §5). */
  private flowHash6(off: number, len: number): number {
    const s = this.slab;
    const next = s[off + 6]!;
    let h = next;
    for (let i = off + 8; i < off + IPV6_HEADER_LENGTH; i += 4) {
      h = Math.imul(h ^ ((s[i]! << 24) | (s[i + 1]! << 16) | (s[i + 2]! << 8) | s[i + 3]!), 0x9e3779b1);
      h ^= h >>> 15;
    }
    if ((next === IpProtocol.TCP || next === IpProtocol.UDP) && len >= IPV6_HEADER_LENGTH + 4) {
      const p = off + IPV6_HEADER_LENGTH;
      h ^= Math.imul((s[p]! << 24) | (s[p + 1]! << 16) | (s[p + 2]! << 8) | s[p + 3]!, 0x85ebca6b);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    return h;
  }

  /** Flow hash over addresses, protocol and (unfragmented TCP/UDP) ports: picks the sender,
   * hence the outer source port, so one flow keeps one path and its order (RFC 7348 §5). */
  private flowHash(off: number, headerLength: number): number {
    const slab = this.slab;
    const ip = this.ip.bind(slab, off);
    const proto = ip.protocol;
    let h = (ip.sourceAddress ^ Math.imul(ip.destinationAddress, 0x9e3779b1)) ^ proto;
    if ((proto === IpProtocol.TCP || proto === IpProtocol.UDP) && !ip.isFragment && ip.totalLength >= headerLength + 4) {
      const p = off + headerLength;
      h ^= Math.imul((slab[p]! << 24) | (slab[p + 1]! << 16) | (slab[p + 2]! << 8) | slab[p + 3]!, 0x85ebca6b);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    return h;
  }

  /** VXLAN (RFC 7348 §5) + inner Ethernet to the peer's VTEP MAC, at slab[start, start+22). */
  private writeHeaders(start: number, slot: number, etherType: number): void {
    const table = this.table;
    const vx = this.vx.bind(this.slab, start);
    vx.flags = VxlanFlags.Instance;
    vx.reservedAfterFlags = 0;
    vx.vni = table.vni[slot]!;
    vx.reservedAfterVni = 0;
    const eth = this.eth.bind(this.slab, start + VXLAN_HEADER_LENGTH);
    eth.setDestination(table.mac, slot * 6);
    eth.setSource(this.localMAC, 0);
    eth.etherType = etherType;
  }

  private flush(k: number): void {
    const sent = this.udp.send(this.sendSock, this.slab, this.sendOffsets, this.sendLengths, this.sendAddrs,
      this.sendPorts, this.sendGso, k);
    let datagrams = 0;
    for (let i = 0; i < k; i++) datagrams += this.sendDatagrams[i]!;
    if (sent >= k) {
      this.c[Counter.TxPackets]! += datagrams;
      return;
    }
    // The addon skips messages the kernel refused and reports how many went; which ones failed
    // is not known, so the datagram counts are apportioned.
    const ok = Math.round(datagrams * sent / k);
    this.c[Counter.TxPackets]! += ok;
    this.c[Drop.udp_send]! += datagrams - ok;
  }

  /** Sends an ICMPv4 error about the packet at slab[off..] back through TUN, if a token is left. */
  private icmpError(off: number, len: number, type: number, code: number, mtu: number): void {
    if (!icmpv4ErrorAllowed(this.slab, off, len) || !this.takeIcmpToken()) return;
    const vnet = this.tun.vnetHeader ? 10 : 0;
    const out = this.icmpSlab;
    out.fill(0, HEADROOM - vnet, HEADROOM);
    const n = writeIcmpv4Error(out, HEADROOM, this.slab, off, len, this.localAddress, type, code, mtu);
    this.writeIcmp(n, vnet);
  }

  /** The same for an IPv6 packet: an ICMPv6 error from our IPv6 TUN address (RFC 4443 §2.4). */
  private icmpError6(off: number, len: number, type: number, code: number, mtu: number): void {
    if (!icmpv6ErrorAllowed(this.slab, off, len, type, code) || !this.takeIcmpToken()) return;
    const vnet = this.tun.vnetHeader ? 10 : 0;
    const out = this.icmpSlab;
    out.fill(0, HEADROOM - vnet, HEADROOM);
    const n = writeIcmpv6Error(out, HEADROOM, this.slab, off, len, this.localAddress6, type, code, mtu);
    this.writeIcmp(n, vnet);
  }

  /** One token from the bucket shared by ICMPv4 and ICMPv6 errors; counts the suppressed ones. */
  private takeIcmpToken(): boolean {
    const now = Date.now();
    if (now - this.icmpRefilled >= 1000) {
      this.icmpTokens = this.icmpRate;
      this.icmpRefilled = now;
    }
    if (this.icmpTokens <= 0) {
      this.c[Counter.IcmpSuppressed]!++;
      return false;
    }
    this.icmpTokens--;
    return true;
  }

  /** Writes the n-byte error at icmpSlab[HEADROOM..] (with a zero virtio header) to TUN. */
  private writeIcmp(n: number, vnet: number): void {
    if (n <= 0) return;
    this.icmpOffsets[0] = HEADROOM - vnet;
    this.icmpLengths[0] = n + vnet;
    if (this.tun.write(this.icmpSlab, this.icmpOffsets, this.icmpLengths, 1) === 1) this.c[Counter.IcmpSent]!++;
  }
}
