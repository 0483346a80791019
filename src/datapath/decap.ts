/**
 * Inbound: VXLAN datagrams from peer nodes become IP packets written to the TUN device.
 *
 * One call of `runOnce` is one batch: `recvmmsg` datagrams into slab slots, check each one, and
 * write the inner IP packets to TUN straight from where they landed (the inner packet starts 22
 * bytes into the datagram; nothing is copied). With UDP GRO one slot may hold several datagrams
 * of equal size back to back; each is checked on its own. With TUN offloads, accepted TCP
 * segments of one flow are merged into one TUN super-packet (wire/coalesce.ts), gathered from
 * where they lie with one writev; so are UDP datagrams of one flow when the device took USO
 * (`mergeUdp`), which the kernel cuts back into the same datagrams.
 *
 * The checks, in order, each with its own drop counter (a bad datagram is data, never an
 * exception): length; flags (the I bit, RFC 7348 §5); the reserved bits (§5 says
 * "ignored on receipt", but a peer that sets them is not speaking the VXLAN we configured, so we
 * count and drop; remote checksum offload's, when enabled, are the one exception); the VNI; the outer source must be a known peer (the forwarding table's
 * underlay index); the inner destination MAC must be our VTEP MAC; the EtherType must be IPv4
 * (or IPv6 with an IPv6 table); the inner IP header must be sane (IPv4: version, lengths,
 * header checksum; IPv6: version and payload length); the inner source must lie in the sending
 * peer's pod CIDRs (anti-spoofing: a peer can only speak for its own pods); the inner
 * destination must be in our own pod CIDR.
 *
 * Counting is exact: an accepted packet is counted on its peer once TUN has taken it; one that
 * TUN refuses is a `tun_write` drop (a merged packet counts each segment it carried).
 */
import type { IoList, Tun, UdpBind } from '../device/types.js';
import { Lookup } from '../table/table.js';
import { VxlanField, VxlanFlags, VxlanRco, VXLAN_HEADER_LENGTH } from '../wire/vxlan.js';
import { EtherType, EthernetField, ETHERNET_HEADER_LENGTH } from '../wire/ethernet.js';
import { TCP_CHECKSUM_OFFSET } from '../wire/tcp.js';
import { UDP_CHECKSUM_OFFSET } from '../wire/udp.js';
import { completeChecksum } from '../wire/segment.js';
import { Ipv4Field, Ipv4View, tryIpv4 } from '../wire/ipv4.js';
import { IPV6_HEADER_LENGTH, Ipv6Field, tryIpv6 } from '../wire/ipv6.js';
import { CoalescedBatch, Coalescer } from '../wire/coalesce.js';
import { readU16, readU32 } from '../wire/bytes.js';
import { Counter, Drop, IoOp, ioErrorSlot } from './counters.js';
import { PeerField } from './peer-state.js';
import { allocateSlab, ENCAP_LENGTH, HEADROOM } from './slab.js';
import type { TableSet } from './encap.js';

/** The smallest datagram that can carry anything: VXLAN + Ethernet + a minimal IPv4 header. */
const MIN_DATAGRAM = ENCAP_LENGTH + 20;
/** Slots per recvmmsg with UDP GRO, each up to 64 KB: about 1 MB per call, like a TUN read. */
const GRO_SLOTS = 16;
/** Inner packets handed to TUN in one go; a batch with more (GRO can pack many small datagrams
 * into one slot) is written in several. */
const MAX_INNER = 1024;

export interface DecapOptions {
  readonly tun: Tun;
  readonly udp: UdpBind;
  /** This worker's counter block, and its block of the per-peer state. */
  readonly counters: Float64Array;
  readonly peerState: Float64Array;
  readonly localMAC: Uint8Array;
  readonly vni: number;
  readonly mtu: number;
  readonly batch: number;
  /** Accept VXLAN remote checksum offload (inner checksums the sender left to us). */
  readonly remoteChecksum?: boolean;
  /** Merge UDP datagrams of one flow into USO super-packets: only when the TUN device took
   * TUN_F_USO4 and TUN_F_USO6 (Linux 6.2 and later). */
  readonly mergeUdp?: boolean;
}

export class Decapsulator {
  tables: TableSet;
  readonly slab: Uint8Array;

  private readonly tun: Tun;
  private readonly udp: UdpBind;
  private readonly c: Float64Array;
  private readonly ps: Float64Array;
  private readonly mac0: number;
  private readonly mac1: number;
  private readonly vni: number;
  private readonly batch: number;
  private readonly capacity: number;
  private readonly recvOffsets: Int32Array;
  private readonly recvLengths: Int32Array;
  private readonly srcAddrs: Uint32Array;
  private readonly gsoSizes: Int32Array;
  /** The accepted inner packets of this batch so far, and their peers' state indexes. */
  private readonly innerOffsets: Int32Array;
  private readonly innerLengths: Int32Array;
  private readonly innerState: Int32Array;
  /** Per inner packet: where its unfinished checksum starts (from the IP header), or -1 when it
   * is finished, and its offset from there (remote checksum offload). */
  private readonly innerCsumStart: Int32Array;
  private readonly innerCsumOffset: Int32Array;
  private readonly rcoFlag: number;
  /** Without offloads: one piece per inner packet. */
  private readonly single: IoList;
  private readonly coalescer: Coalescer | undefined;
  private readonly merged: CoalescedBatch | undefined;
  private readonly ip = new Ipv4View(new Uint8Array(0));

  constructor(o: DecapOptions, tables: TableSet) {
    this.tables = tables;
    this.tun = o.tun;
    this.udp = o.udp;
    this.c = o.counters;
    this.ps = o.peerState;
    const m = o.localMAC;
    this.mac0 = ((m[0]! << 24) | (m[1]! << 16) | (m[2]! << 8) | m[3]!) >>> 0;
    this.mac1 = (m[4]! << 8) | m[5]!;
    this.vni = o.vni;
    // recvmmsg cannot stop at a byte count, so with GRO (64 KB per slot) the slot count is
    // capped to keep one call near 1 MB, as the outbound read budget does.
    const slots = o.udp.gro ? Math.min(o.batch, GRO_SLOTS) : o.batch;
    this.batch = slots;
    // With GRO a slot receives up to 64 KB of coalesced datagrams; without, one datagram of at
    // most MTU + 50 (we also accept jumbo peers up to 9000 and count anything larger as truncated).
    this.capacity = o.udp.gro ? 65536 : Math.max(9216, (o.mtu + 64 + 63) & ~63);
    const slot = HEADROOM + this.capacity;
    this.slab = allocateSlab(slot * slots);
    this.recvOffsets = new Int32Array(slots);
    for (let i = 0; i < slots; i++) this.recvOffsets[i] = i * slot + HEADROOM;
    this.recvLengths = new Int32Array(slots);
    this.srcAddrs = new Uint32Array(slots);
    this.gsoSizes = new Int32Array(slots);
    const maxInner = o.udp.gro ? MAX_INNER : Math.max(slots, 1);
    this.innerOffsets = new Int32Array(maxInner);
    this.innerLengths = new Int32Array(maxInner);
    this.innerState = new Int32Array(maxInner);
    this.innerCsumStart = new Int32Array(maxInner);
    this.innerCsumOffset = new Int32Array(maxInner);
    this.rcoFlag = o.remoteChecksum ? VxlanRco.Flag : 0;
    this.single = {
      slab: this.slab, iovOffsets: this.innerOffsets, iovLengths: this.innerLengths,
      first: Int32Array.from({ length: maxInner }, (_, i) => i), pieces: new Int32Array(maxInner).fill(1),
      results: new Int32Array(maxInner),
    };
    if (o.tun.vnetHeader) {
      this.coalescer = new Coalescer({ maxBatch: maxInner, verifyChecksums: true, udp: o.mergeUdp ?? false, mtu: o.mtu });
      this.merged = new CoalescedBatch(this.slab, maxInner);
    }
  }

  /** One batch: recvmmsg, check and strip, write to TUN. Returns datagrams received, 0 on
   * timeout, or a negative errno when the receive failed (counted; the worker backs off). */
  runOnce(timeoutMs: number): number {
    const n = this.udp.recv(this.slab, this.recvOffsets, this.capacity, this.recvLengths, this.srcAddrs,
      this.gsoSizes, this.batch, timeoutMs);
    if (n <= 0) {
      if (n < 0) this.c[ioErrorSlot(IoOp.UdpRecv, -n)]!++;
      return n;
    }
    this.c[Counter.RxBatches]!++;
    const max = this.innerOffsets.length;
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
      // A GRO slot holds datagrams of `gso` bytes back to back (the last may be shorter).
      const step = gso > 0 && gso < len ? gso : len;
      let p = 0;
      do {
        if (this.decapsulate(off + p, Math.min(step, len - p), src, k)) k++;
        if (k === max) {
          this.deliver(k);
          k = 0;
        }
        p += step;
      } while (p < len);
    }
    if (k > 0) this.deliver(k);
    return n;
  }

  /** Writes the k accepted inner packets to TUN and counts each on its peer, or as a drop. */
  private deliver(k: number): void {
    const co = this.coalescer;
    if (co === undefined) {
      // Without a virtio header a checksum cannot be handed on unfinished: finish it here.
      const starts = this.innerCsumStart;
      for (let i = 0; i < k; i++) {
        if (starts[i]! >= 0) completeChecksum(this.slab, this.innerOffsets[i]!, this.innerLengths[i]!, starts[i]!, this.innerCsumOffset[i]!);
      }
      this.tun.writev(this.single, k);
      const r = this.single.results;
      for (let i = 0; i < k; i++) this.account(i, r[i]!);
      return;
    }
    const out = this.merged!;
    const merged = co.mergedSegments;
    const m = co.coalesce(this.slab, this.innerOffsets, this.innerLengths, k, out, this.innerCsumStart, this.innerCsumOffset);
    this.c[Counter.RxCoalesced]! += co.mergedSegments - merged;
    this.tun.writev(out, m);
    const next = co.next;
    for (let j = 0; j < m; j++) {
      const r = out.results[j]!;
      for (let i = out.head[j]!; i >= 0; i = next[i]!) this.account(i, r);
    }
  }

  /** Counts accepted inner packet i: on its peer if TUN took it (errno 0), else as a drop. */
  private account(i: number, errno: number): void {
    if (errno !== 0) {
      this.c[Drop.tun_write]!++;
      this.c[ioErrorSlot(IoOp.TunWrite, errno)]!++;
      return;
    }
    const base = this.innerState[i]! * PeerField.Stride;
    this.ps[base + PeerField.RxPackets]!++;
    this.ps[base + PeerField.RxBytes]! += this.innerLengths[i]!;
  }

  /**
   * Checks the datagram at slab[off, off+len) from underlay address `src`. When it passes, sets
   * inner entry k to the inner packet, where it lies, and returns true; otherwise counts the
   * reason and returns false. Never throws.
   */
  decapsulate(off: number, len: number, src: number, k: number): boolean {
    const c = this.c;
    const s = this.slab;
    if (len < MIN_DATAGRAM) {
      c[Drop.truncated]!++;
      return false;
    }
    const flags = s[off + VxlanField.Flags]!;
    if ((flags & VxlanFlags.Instance) === 0) {
      c[Drop.bad_flags]!++;
      return false;
    }
    // Every reserved bit must be zero, except RCO's when we accept it: its flag, and then the
    // byte after the VNI says where the unfinished checksum is (never 0: it starts past the
    // inner Ethernet header).
    const rsvd = s[off + VxlanField.ReservedAfterFlags]!;
    const last = s[off + VxlanField.ReservedAfterVni]!;
    const rco = rsvd !== 0 && rsvd === this.rcoFlag ? last : 0;
    if (flags !== VxlanFlags.Instance
      || (s[off + VxlanField.ReservedAfterFlags + 1]! | s[off + VxlanField.ReservedAfterFlags + 2]!) !== 0
      || (rco === 0 && (rsvd | last) !== 0)) {
      c[Drop.reserved_bits]!++;
      return false;
    }
    if (((s[off + VxlanField.Vni]! << 16) | (s[off + VxlanField.Vni + 1]! << 8) | s[off + VxlanField.Vni + 2]!) !== this.vni) {
      c[Drop.wrong_vni]!++;
      return false;
    }
    const { table, stateOf } = this.tables;
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
    const etherType = readU16(s, e + EthernetField.EtherType);
    if (etherType !== EtherType.IPv4) {
      if (etherType === EtherType.IPv6 && this.tables.table6 !== undefined) return this.decapsulate6(inner, innerLen, slot, rco, k);
      c[Drop.bad_ethertype]!++;
      return false;
    }
    if (!tryIpv4(s, inner, innerLen) || !this.ip.bind(s, inner).isValidChecksum()) {
      c[Drop.bad_inner_ip]!++;
      return false;
    }
    const source = readU32(s, inner + Ipv4Field.SourceAddress);
    if (table.lookup(source) !== slot) {
      c[Drop.spoofed_source]!++;
      return false;
    }
    const destination = readU32(s, inner + Ipv4Field.DestinationAddress);
    if (table.lookup(destination) !== Lookup.Local) {
      c[Drop.not_local]!++;
      return false;
    }
    const total = readU16(s, inner + Ipv4Field.TotalLength);
    return this.accept(inner, total, stateOf[slot]!, rco, (s[inner]! & 0x0f) << 2, k);
  }

  /**
   * Inner entry k becomes the checked packet at slab[inner, inner+total). `rco` (not 0) says its
   * transport checksum is unfinished, and where it starts from the inner Ethernet header; it
   * must start at or after the IP header (`ipHeader` bytes) and fit the packet.
   */
  private accept(inner: number, total: number, state: number, rco: number, ipHeader: number, k: number): boolean {
    if (rco === 0) {
      this.innerCsumStart[k] = -1;
    } else {
      const start = ((rco & VxlanRco.StartMask) << 1) - ETHERNET_HEADER_LENGTH;
      const offset = (rco & VxlanRco.Udp) !== 0 ? UDP_CHECKSUM_OFFSET : TCP_CHECKSUM_OFFSET;
      if (start < ipHeader || start + offset + 2 > total) {
        this.c[Drop.bad_inner_ip]!++;
        return false;
      }
      this.innerCsumStart[k] = start;
      this.innerCsumOffset[k] = offset;
    }
    this.innerOffsets[k] = inner;
    this.innerLengths[k] = total;
    this.innerState[k] = state;
    return true;
  }

  /** The inner checks for an IPv6 packet at slab[inner, inner+innerLen) from peer `slot`. */
  private decapsulate6(inner: number, innerLen: number, slot: number, rco: number, k: number): boolean {
    const c = this.c;
    const s = this.slab;
    const t6 = this.tables.table6!;
    if (!tryIpv6(s, inner, innerLen)) {
      c[Drop.bad_inner_ip]!++;
      return false;
    }
    if (t6.lookup6(s, inner + Ipv6Field.SourceAddress) !== slot) {
      c[Drop.spoofed_source]!++;
      return false;
    }
    if (t6.lookup6(s, inner + Ipv6Field.DestinationAddress) !== Lookup.Local) {
      c[Drop.not_local]!++;
      return false;
    }
    return this.accept(inner, IPV6_HEADER_LENGTH + readU16(s, inner + Ipv6Field.PayloadLength), this.tables.stateOf[slot]!, rco, IPV6_HEADER_LENGTH, k);
  }
}
