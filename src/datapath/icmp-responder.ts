/**
 * The outbound side's ICMP responder: what a router would say back to a pod whose packet it
 * cannot forward, written into TUN so the pod's stack reads it like any ICMP error.
 *
 *   - a destination in the cluster CIDR that no node owns: "net unreachable" (ICMPv6 "no route");
 *   - a packet larger than the path to its peer carries, with DF (or IPv6, which routers never
 *     fragment): "fragmentation needed" / "packet too big" carrying that path's MTU minus the
 *     VXLAN overhead (RFC 1191, RFC 8201), so the pod's path MTU discovery adapts.
 *
 * Errors come from this node's TUN address (IPv4 /32, IPv6 /128): the pod sees the node as the
 * router that refused. A token bucket shared by both families caps them (RFC 1812 §4.3.2.8,
 * RFC 4443 §2.4(f)), so a scan cannot turn the agent into an ICMP generator; suppressed ones are
 * counted. The responder owns its own small buffer: an error is written while the batch that
 * caused it is still being read from, and must not overwrite it.
 */
import type { IoList, Tun } from '../device/types.js';
import {
  IcmpErrorWriter, icmpv4ErrorAllowed, icmpv6ErrorAllowed, ICMPv4, Icmpv4Unreachable, ICMPv6, Icmpv6Unreachable,
  ICMPV6_ERROR_MAX_LENGTH,
} from '../wire/icmp.js';
import { VIRTIO_NET_HDR_LENGTH } from '../wire/virtio.js';
import { Counter } from './counters.js';
import { HEADROOM } from './slab.js';

export class IcmpResponder {
  private readonly writer = new IcmpErrorWriter();
  private readonly buf = new Uint8Array(HEADROOM + ICMPV6_ERROR_MAX_LENGTH);
  private readonly list: IoList;
  private readonly vnet: number;
  private tokens: number;
  private refilled = 0;

  constructor(
    private readonly tun: Tun,
    private readonly c: Float64Array,
    private readonly local4: number,
    private readonly local6: Uint8Array,
    private readonly rate = 100,
  ) {
    this.tokens = rate;
    this.vnet = tun.vnetHeader ? VIRTIO_NET_HDR_LENGTH : 0;
    this.list = {
      slab: this.buf, iovOffsets: Int32Array.of(HEADROOM - this.vnet), iovLengths: Int32Array.of(0),
      first: Int32Array.of(0), pieces: Int32Array.of(1), results: Int32Array.of(0),
    };
  }

  /** Net unreachable about the IPv4 packet at s[off, off+len). */
  netUnreachable4(s: Uint8Array, off: number, len: number): void {
    this.error4(s, off, len, Icmpv4Unreachable.NetUnreachable, 0);
  }

  /** Fragmentation needed, with the next hop's MTU, about the IPv4 packet at s[off, off+len). */
  fragmentationNeeded4(s: Uint8Array, off: number, len: number, mtu: number): void {
    this.error4(s, off, len, Icmpv4Unreachable.FragmentationNeeded, mtu);
  }

  /** No route to destination about the IPv6 packet at s[off, off+len). */
  noRoute6(s: Uint8Array, off: number, len: number): void {
    this.error6(s, off, len, ICMPv6.DestinationUnreachable, Icmpv6Unreachable.NoRoute, 0);
  }

  /** Packet too big, with the path's MTU, about the IPv6 packet at s[off, off+len). */
  packetTooBig6(s: Uint8Array, off: number, len: number, mtu: number): void {
    this.error6(s, off, len, ICMPv6.PacketTooBig, 0, mtu);
  }

  private error4(s: Uint8Array, off: number, len: number, code: number, mtu: number): void {
    if (!icmpv4ErrorAllowed(s, off, len) || !this.take()) return;
    this.buf.fill(0, HEADROOM - this.vnet, HEADROOM);
    this.send(this.writer.writeIcmpv4Error(this.buf, HEADROOM, s, off, len, this.local4, ICMPv4.DestinationUnreachable, code, mtu));
  }

  private error6(s: Uint8Array, off: number, len: number, type: number, code: number, mtu: number): void {
    if (!icmpv6ErrorAllowed(s, off, len, type, code) || !this.take()) return;
    this.buf.fill(0, HEADROOM - this.vnet, HEADROOM);
    this.send(this.writer.writeIcmpv6Error(this.buf, HEADROOM, s, off, len, this.local6, type, code, mtu));
  }

  /** One token from the bucket; counts the errors it holds back. */
  private take(): boolean {
    const now = Date.now();
    if (now - this.refilled >= 1000) {
      this.tokens = this.rate;
      this.refilled = now;
    }
    if (this.tokens <= 0) {
      this.c[Counter.IcmpSuppressed]!++;
      return false;
    }
    this.tokens--;
    return true;
  }

  /** Writes the n-byte error at buf[HEADROOM..] (behind a zero virtio header) to TUN. */
  private send(n: number): void {
    if (n <= 0) return;
    (this.list.iovLengths as Int32Array)[0] = n + this.vnet;
    if (this.tun.writev(this.list, 1) === 1) this.c[Counter.IcmpSent]!++;
  }
}
