/**
 * Inbound: VXLAN datagrams from peer nodes become IP packets written to the TUN device.
 *
 * One call of `runOnce` is one batch: `recvmmsg` up to `batch` datagrams into slab slots, check
 * each one, and write the inner IP packets to TUN straight from where they landed (the inner
 * packet starts 22 bytes into the datagram; nothing is copied). With UDP GRO one slot may hold
 * several datagrams of equal size back to back; each is checked on its own.
 *
 * The checks, in order, each with its own drop counter (STYLE.md §6-7: a bad datagram is data,
 * never an exception): length; flags (the I bit, RFC 7348 §5); the reserved bits (§5 says
 * "ignored on receipt", but a peer that sets them is not speaking the VXLAN we configured, so we
 * count and drop); the VNI; the outer source must be a known peer (the forwarding table's
 * underlay index); the inner destination MAC must be our VTEP MAC; the EtherType must be IPv4; the
 * inner IPv4 header must be sane (version, lengths, header checksum); the inner source must lie in
 * the sending peer's pod CIDRs (anti-spoofing: a peer can only speak for its own pods); the inner
 * destination must be in our own pod CIDR.
 *
 * Dual stack: with an IPv6 table (this node has a podCIDR6), EtherType 0x86DD is accepted too, and
 * the inner IPv6 header gets the same treatment with the IPv6 table: version 6 and a payload
 * length that fits the datagram (`bad_inner_ip`; IPv6 has no header checksum), the source in the
 * sending peer's IPv6 pod CIDRs (`spoofed_source`), the destination in our podCIDR6
 * (`not_local`). Without one, 0x86DD stays `bad_ethertype`.
 */
import type { Tun, UdpBind } from '../device/types.js';
import { ForwardingTable, Lookup } from '../table/table.js';
import { VxlanFlags, VXLAN_HEADER_LENGTH } from '../wire/vxlan.js';
import { EtherType } from '../wire/ethernet.js';
import { Ipv4View, tryIpv4 } from '../wire/ipv4.js';
import { IPV6_HEADER_LENGTH, tryIpv6 } from '../wire/ipv6.js';
import { ForwardingTable6 } from '../table/table6.js';
import { TcpCoalescer } from '../wire/coalesce.js';
import { allocateSlab } from '../wire/checksum-simd.js';
import { Counter, Drop, PeerCounter } from './counters.js';
import { ENCAP_LENGTH, HEADROOM } from './encap.js';

/** The smallest datagram that can carry anything: VXLAN + Ethernet + a minimal IPv4 header. */
const MIN_DATAGRAM = ENCAP_LENGTH + 20;
/** Where coalesced super-packets are assembled (with TUN offloads); runs that do not fit go
 * out as single packets. */
const ARENA = 2 << 20;
/** Slots per recvmmsg with UDP GRO, each up to 64 KB. */
const GRO_SLOTS = 16;

export interface DecapOptions {
  readonly tun: Tun;
  readonly udp: UdpBind;
  readonly counters: Float64Array;
  readonly localMAC: Uint8Array;
  readonly vni: number;
  readonly mtu: number;
  readonly batch: number;
}

export class Decapsulator {
  table: ForwardingTable;
  /** IPv6 pod CIDRs, same slots as `table`; undefined when this node has no IPv6 pods. */
  table6: ForwardingTable6 | undefined;
  peerCounters: Float64Array;

  private readonly tun: Tun;
  private readonly udp: UdpBind;
  private readonly c: Float64Array;
  private readonly mac0: number;
  private readonly mac1: number;
  private readonly vni: number;
  private readonly batch: number;
  private readonly vnet: boolean;

  readonly slab: Uint8Array;
  private readonly capacity: number;
  private readonly recvOffsets: Int32Array;
  private readonly recvLengths: Int32Array;
  private readonly srcAddrs: Uint32Array;
  private readonly gsoSizes: Int32Array;
  /** The accepted inner packets; written to TUN as they are, or first coalesced into `out*`. */
  private readonly innerOffsets: Int32Array;
  private readonly innerLengths: Int32Array;
  /** With TUN offloads: what the coalescer makes of the inner packets. */
  private readonly outOffsets: Int32Array;
  private readonly outLengths: Int32Array;
  private readonly coalescer: TcpCoalescer | undefined;
  private readonly arenaStart: number;
  private readonly ip = new Ipv4View(new Uint8Array(0));

  constructor(o: DecapOptions, table: ForwardingTable, peerCounters: Float64Array, table6?: ForwardingTable6) {
    this.table = table;
    this.table6 = table6;
    this.peerCounters = peerCounters;
    this.tun = o.tun;
    this.udp = o.udp;
    this.c = o.counters;
    const m = o.localMAC;
    this.mac0 = ((m[0]! << 24) | (m[1]! << 16) | (m[2]! << 8) | m[3]!) >>> 0;
    this.mac1 = (m[4]! << 8) | m[5]!;
    this.vni = o.vni;
    // recvmmsg cannot stop at a byte count, so with GRO (64 KB per slot) the slot count is
    // capped to keep one call near 1 MB, as the outbound read budget does.
    const slots = o.udp.gro ? Math.min(o.batch, GRO_SLOTS) : o.batch;
    this.batch = slots;
    this.vnet = o.tun.vnetHeader;
    // With GRO a slot receives up to 64 KB of coalesced datagrams; without, one datagram of at
    // most MTU + 50 (we also accept jumbo peers up to 9000 and count anything larger as truncated).
    this.capacity = o.udp.gro ? 65536 : Math.max(9216, (o.mtu + 64 + 63) & ~63);
    const slot = HEADROOM + this.capacity;
    this.arenaStart = slot * slots;
    this.slab = allocateSlab(this.arenaStart + (this.vnet ? ARENA : 0));
    this.recvOffsets = new Int32Array(slots);
    for (let i = 0; i < slots; i++) this.recvOffsets[i] = i * slot + HEADROOM;
    this.recvLengths = new Int32Array(slots);
    this.srcAddrs = new Uint32Array(slots);
    this.gsoSizes = new Int32Array(slots);
    // GRO can pack up to 64 datagrams in one slot.
    const maxOut = o.udp.gro ? slots * 64 : slots;
    this.innerOffsets = new Int32Array(maxOut);
    this.innerLengths = new Int32Array(maxOut);
    this.outOffsets = new Int32Array(this.vnet ? maxOut : 0);
    this.outLengths = new Int32Array(this.vnet ? maxOut : 0);
    this.coalescer = this.vnet ? new TcpCoalescer({ maxBatch: maxOut, verifyChecksums: true }) : undefined;
  }

  /** One batch: recvmmsg, check and strip, write to TUN. Returns datagrams received. */
  runOnce(timeoutMs: number): number {
    const n = this.udp.recv(this.slab, this.recvOffsets, this.capacity, this.recvLengths, this.srcAddrs,
      this.gsoSizes, this.batch, timeoutMs);
    if (n === 0) return 0;
    this.c[Counter.RxBatches]!++;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const off = this.recvOffsets[i]!;
      const len = this.recvLengths[i]!;
      const src = this.srcAddrs[i]!;
      const gso = this.gsoSizes[i]!;
      if (len < 0) {
        this.c[Drop.truncated]!++;
        continue;
      }
      if (gso > 0 && gso < len) {
        for (let p = 0; p < len; p += gso) {
          if (this.decapsulate(off + p, Math.min(gso, len - p), src, k)) k++;
        }
      } else if (this.decapsulate(off, len, src, k)) {
        k++;
      }
    }
    if (k > 0) {
      const co = this.coalescer;
      let m = k;
      let written: number;
      if (co !== undefined) {
        const merged = co.mergedSegments;
        m = co.coalesce(this.slab, this.innerOffsets, this.innerLengths, k, this.arenaStart, ARENA, this.outOffsets, this.outLengths);
        this.c[Counter.RxCoalesced]! += co.mergedSegments - merged;
        written = this.tun.write(this.slab, this.outOffsets, this.outLengths, m);
      } else {
        written = this.tun.write(this.slab, this.innerOffsets, this.innerLengths, k);
      }
      if (written < m) this.c[Drop.tun_write]! += m - written;
    }
    return n;
  }

  /**
   * Checks the datagram at slab[off, off+len) from underlay address `src`. When it passes, sets
   * inner entry k to the inner packet, where it lies (with TUN offloads the coalescer later writes
   * its virtio header into the headroom), and returns true; otherwise counts the reason and
   * returns false. Never throws.
   */
  decapsulate(off: number, len: number, src: number, k: number): boolean {
    const c = this.c;
    const s = this.slab;
    if (len < MIN_DATAGRAM) {
      c[Drop.truncated]!++;
      return false;
    }
    const flags = s[off]!;
    if ((flags & VxlanFlags.Instance) === 0) {
      c[Drop.bad_flags]!++;
      return false;
    }
    if (flags !== VxlanFlags.Instance || (s[off + 1]! | s[off + 2]! | s[off + 3]! | s[off + 7]!) !== 0) {
      c[Drop.reserved_bits]!++;
      return false;
    }
    if (((s[off + 4]! << 16) | (s[off + 5]! << 8) | s[off + 6]!) !== this.vni) {
      c[Drop.wrong_vni]!++;
      return false;
    }
    const table = this.table;
    const slot = table.slotForUnderlay(src);
    if (slot < 0) {
      c[Drop.unknown_peer]!++;
      return false;
    }
    const e = off + VXLAN_HEADER_LENGTH;
    if (((s[e]! << 24) | (s[e + 1]! << 16) | (s[e + 2]! << 8) | s[e + 3]!) >>> 0 !== this.mac0
      || ((s[e + 4]! << 8) | s[e + 5]!) !== this.mac1) {
      c[Drop.bad_inner_mac]!++;
      return false;
    }
    const inner = off + ENCAP_LENGTH;
    const innerLen = len - ENCAP_LENGTH;
    const etherType = (s[e + 12]! << 8) | s[e + 13]!;
    if (etherType !== EtherType.IPv4) {
      if (etherType === EtherType.IPv6 && this.table6 !== undefined) {
        return this.decapsulate6(inner, innerLen, slot, k);
      }
      c[Drop.bad_ethertype]!++;
      return false;
    }
    if (!tryIpv4(s, inner, innerLen)) {
      c[Drop.bad_inner_ip]!++;
      return false;
    }
    const ip = this.ip.bind(s, inner);
    if (!ip.isValidChecksum()) {
      c[Drop.bad_inner_ip]!++;
      return false;
    }
    if (table.lookup(ip.sourceAddress) !== slot) {
      c[Drop.spoofed_source]!++;
      return false;
    }
    if (table.lookup(ip.destinationAddress) !== Lookup.Local) {
      c[Drop.not_local]!++;
      return false;
    }
    // `accept`, written out: on the IPv4 path the call cost about 2 ns per datagram in a
    // microbenchmark (decapsulate is too large for V8 to inline one more function into it).
    const total = ip.totalLength;
    this.innerOffsets[k] = inner;
    this.innerLengths[k] = total;
    c[Counter.RxPackets]!++;
    c[Counter.RxBytes]! += total;
    const pc = this.peerCounters;
    const base = slot * PeerCounter.Stride;
    pc[base + PeerCounter.RxPackets]!++;
    pc[base + PeerCounter.RxBytes]! += total;
    return true;
  }

  /** The inner checks for an IPv6 packet at slab[inner, inner+innerLen) from peer `slot`. */
  private decapsulate6(inner: number, innerLen: number, slot: number, k: number): boolean {
    const c = this.c;
    const s = this.slab;
    const t6 = this.table6!;
    if (!tryIpv6(s, inner, innerLen)) {
      c[Drop.bad_inner_ip]!++;
      return false;
    }
    if (t6.lookup6(s, inner + 8) !== slot) {
      c[Drop.spoofed_source]!++;
      return false;
    }
    if (t6.lookup6(s, inner + 24) !== Lookup.Local) {
      c[Drop.not_local]!++;
      return false;
    }
    return this.accept(inner, IPV6_HEADER_LENGTH + ((s[inner + 4]! << 8) | s[inner + 5]!), slot, k);
  }

  /** Output entry k becomes the checked inner packet at slab[inner, inner+total). */
  private accept(inner: number, total: number, slot: number, k: number): boolean {
    const c = this.c;
    // With TUN offloads the coalescer writes each packet's virtio header into its headroom.
    this.innerOffsets[k] = inner;
    this.innerLengths[k] = total;
    c[Counter.RxPackets]!++;
    c[Counter.RxBytes]! += total;
    const pc = this.peerCounters;
    const base = slot * PeerCounter.Stride;
    pc[base + PeerCounter.RxPackets]!++;
    pc[base + PeerCounter.RxBytes]! += total;
    return true;
  }
}
