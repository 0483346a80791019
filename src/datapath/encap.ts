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
 */
import type { Tun, UdpBind } from '../device/types.js';
import { ForwardingTable, Lookup } from '../table/table.js';
import { EthernetView, EtherType } from '../wire/ethernet.js';
import { VxlanView, VxlanFlags, VXLAN_HEADER_LENGTH } from '../wire/vxlan.js';
import { Ipv4View, IpProtocol } from '../wire/ipv4.js';
import { writeIcmpv4Error, icmpv4ErrorAllowed, ICMPv4, Icmpv4Unreachable } from '../wire/icmp.js';
import { Counter, Drop, PeerCounter } from './counters.js';

/** Bytes kept free in front of every packet slot: VXLAN (8) + inner Ethernet (14), rounded up so
 * a virtio_net_hdr (10) also fits in front of a decapsulated packet without moving it. */
export const HEADROOM = 64;
/** VXLAN + inner Ethernet: what we prepend to the inner IP packet. */
export const ENCAP_LENGTH = VXLAN_HEADER_LENGTH + 14;

export interface EncapOptions {
  readonly tun: Tun;
  readonly udp: UdpBind;
  readonly counters: Float64Array;
  readonly localMAC: Uint8Array;
  /** Our TUN address (pod CIDR network address), uint32: the source of ICMP errors we generate. */
  readonly localAddress: number;
  readonly mtu: number;
  readonly batch: number;
  /** ICMP errors per second (token bucket rate and burst). */
  readonly icmpRate?: number;
}

export class Encapsulator {
  table: ForwardingTable;
  peerCounters: Float64Array;

  private readonly tun: Tun;
  private readonly udp: UdpBind;
  private readonly c: Float64Array;
  private readonly localMAC: Uint8Array;
  private readonly localAddress: number;
  private readonly mtu: number;
  private readonly batch: number;
  private readonly senderMask: number;

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

  private readonly ip = new Ipv4View(new Uint8Array(0));
  private readonly eth = new EthernetView(new Uint8Array(0));
  private readonly vx = new VxlanView(new Uint8Array(0));

  private readonly icmpSlab = new Uint8Array(HEADROOM + 576);
  private readonly icmpOffsets = Int32Array.of(0);
  private readonly icmpLengths = Int32Array.of(0);
  private readonly icmpRate: number;
  private icmpTokens: number;
  private icmpRefilled = 0;

  constructor(o: EncapOptions, table: ForwardingTable, peerCounters: Float64Array) {
    this.table = table;
    this.peerCounters = peerCounters;
    this.tun = o.tun;
    this.udp = o.udp;
    this.c = o.counters;
    this.localMAC = o.localMAC;
    this.localAddress = o.localAddress;
    this.mtu = o.mtu;
    this.batch = o.batch;
    this.senderMask = o.udp.senders - 1;
    this.icmpRate = o.icmpRate ?? 100;
    this.icmpTokens = this.icmpRate;
    // A TUN read returns one packet of at most the device MTU (plus a virtio header when
    // enabled). Room for 9000 even when our MTU is smaller: if someone raises the device MTU, an
    // oversized packet must be read whole to get its "fragmentation needed", not truncated.
    this.capacity = (Math.max(o.mtu, 9000) + 10 + 63) & ~63;
    const slot = HEADROOM + this.capacity;
    this.slab = new Uint8Array(slot * o.batch);
    this.readOffsets = new Int32Array(o.batch);
    for (let i = 0; i < o.batch; i++) this.readOffsets[i] = i * slot + HEADROOM;
    this.readLengths = new Int32Array(o.batch);
    this.sendOffsets = new Int32Array(o.batch);
    this.sendLengths = new Int32Array(o.batch);
    this.sendAddrs = new Uint32Array(o.batch);
    this.sendPorts = new Uint16Array(o.batch);
    this.sendGso = new Int32Array(o.batch);
    this.sendSock = new Uint8Array(o.batch);
  }

  /** One batch: TUN read, encapsulate, sendmmsg. Returns packets read (0 on timeout). */
  runOnce(timeoutMs: number): number {
    const n = this.tun.read(this.slab, this.readOffsets, this.capacity, this.readLengths, this.batch, timeoutMs);
    if (n === 0) return 0;
    this.c[Counter.TxBatches]!++;
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (this.encapsulate(this.readOffsets[i]!, this.readLengths[i]!, k)) k++;
    }
    if (k > 0) this.flush(k);
    return n;
  }

  /** Encapsulates the IP packet at slab[off, off+len) into send entry k. False: dropped. */
  encapsulate(off: number, len: number, k: number): boolean {
    const c = this.c;
    const slab = this.slab;
    if (len < 20 || slab[off]! >> 4 !== 4) {
      // IPv6 has no pod CIDRs in this version; anything else from TUN is not IP.
      c[len >= 40 && slab[off]! >> 4 === 6 ? Drop.no_route : Drop.bad_ip]!++;
      return false;
    }
    const ip = this.ip.bind(slab, off);
    const headerLength = ip.headerLength;
    if (headerLength < 20 || ip.totalLength < headerLength || ip.totalLength > len) {
      c[Drop.bad_ip]!++;
      return false;
    }
    const dst = ip.destinationAddress;
    const table = this.table;
    const slot = table.lookup(dst);
    if (slot < 0) {
      if (slot === Lookup.Local) {
        c[Drop.local_loop]!++;
      } else {
        c[Drop.no_route]!++;
        this.icmpError(off, len, ICMPv4.DestinationUnreachable, Icmpv4Unreachable.NetUnreachable, 0);
      }
      return false;
    }
    if (len > this.mtu) {
      if (ip.dontFragment) {
        c[Drop.too_big]!++;
        this.icmpError(off, len, ICMPv4.DestinationUnreachable, Icmpv4Unreachable.FragmentationNeeded, this.mtu);
        return false;
      }
    }
    // Flow hash over addresses, protocol and (unfragmented TCP/UDP) ports.
    let h = (ip.sourceAddress ^ Math.imul(dst, 0x9e3779b1)) ^ ip.protocol;
    const proto = ip.protocol;
    if ((proto === IpProtocol.TCP || proto === IpProtocol.UDP) && !ip.isFragment && len >= headerLength + 4) {
      const p = off + headerLength;
      h ^= Math.imul((slab[p]! << 24) | (slab[p + 1]! << 16) | (slab[p + 2]! << 8) | slab[p + 3]!, 0x85ebca6b);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;

    const start = off - ENCAP_LENGTH;
    const vx = this.vx.bind(slab, start);
    vx.flags = VxlanFlags.Instance;
    vx.reservedAfterFlags = 0;
    vx.vni = table.vni[slot]!;
    vx.reservedAfterVni = 0;
    const eth = this.eth.bind(slab, start + VXLAN_HEADER_LENGTH);
    eth.setDestination(table.mac, slot * 6);
    eth.setSource(this.localMAC, 0);
    eth.etherType = EtherType.IPv4;

    this.sendOffsets[k] = start;
    this.sendLengths[k] = len + ENCAP_LENGTH;
    this.sendAddrs[k] = table.underlay[slot]!;
    this.sendPorts[k] = table.port[slot]!;
    this.sendGso[k] = 0;
    this.sendSock[k] = h & this.senderMask;
    const pc = this.peerCounters;
    const base = slot * PeerCounter.Stride;
    pc[base + PeerCounter.TxPackets]!++;
    pc[base + PeerCounter.TxBytes]! += len;
    c[Counter.TxBytes]! += len;
    return true;
  }

  private flush(k: number): void {
    const sent = this.udp.send(this.sendSock, this.slab, this.sendOffsets, this.sendLengths, this.sendAddrs,
      this.sendPorts, this.sendGso, k);
    this.c[Counter.TxPackets]! += sent;
    if (sent < k) this.c[Drop.udp_send]! += k - sent;
  }

  /** Sends an ICMPv4 error about the packet at slab[off..] back through TUN, if a token is left. */
  private icmpError(off: number, len: number, type: number, code: number, mtu: number): void {
    if (!icmpv4ErrorAllowed(this.slab, off, len)) return;
    const now = Date.now();
    if (now - this.icmpRefilled >= 1000) {
      this.icmpTokens = this.icmpRate;
      this.icmpRefilled = now;
    }
    if (this.icmpTokens <= 0) {
      this.c[Counter.IcmpSuppressed]!++;
      return;
    }
    this.icmpTokens--;
    const vnet = this.tun.vnetHeader ? 10 : 0;
    const out = this.icmpSlab;
    out.fill(0, HEADROOM - vnet, HEADROOM);
    const n = writeIcmpv4Error(out, HEADROOM, this.slab, off, len, this.localAddress, type, code, mtu);
    if (n <= 0) return;
    this.icmpOffsets[0] = HEADROOM - vnet;
    this.icmpLengths[0] = n + vnet;
    if (this.tun.write(out, this.icmpOffsets, this.icmpLengths, 1) === 1) this.c[Counter.IcmpSent]!++;
  }
}
