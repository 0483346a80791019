/**
 * Per-peer path MTU, as the kernel knows it, for the outbound side of each worker.
 *
 * The underlay path to one peer can be smaller than this node's interface (a 1400-byte hop in
 * the middle, a VPN between sites). The kernel learns that from the ICMP "fragmentation needed"
 * a router sends back, and keeps it in its route cache for a while (net.ipv4.route.mtu_expires).
 * Our sending sockets never fragment (IP_PMTUDISC_DO), so once the kernel knows, a datagram too
 * large for the path fails with EMSGSIZE (a GSO send, with EINVAL). That failure is the signal:
 * the worker asks the kernel for the path MTU to that peer (IP_MTU on a connected socket), keeps
 * it in the peer's state entry, and from then on never builds a datagram larger than it: TCP is
 * cut to fit, a packet that cannot be cut gets an ICMP error, as from a router.
 *
 * The entry ages like the kernel's cache: when it expires, the worker asks the kernel again, and
 * goes back to the local underlay MTU once the kernel has forgotten the smaller path (if the
 * path is still small, the next large send fails again and it is relearned). Asking costs a
 * few system calls, only after a refused send or an expiry, never per packet.
 */
import type { UdpBind } from '../device/types.js';
import { Counter } from './counters.js';
import { PeerField } from './peer-state.js';
import { VXLAN_OVERHEAD } from '../wire/vxlan.js';

/** What the path MTU loses to the encapsulation (outer IPv4, UDP, VXLAN, inner Ethernet). */
export const VXLAN_IPV4_OVERHEAD = VXLAN_OVERHEAD;
/** How long a learned path MTU holds before the kernel is asked again; the kernel's own default
 * for net.ipv4.route.mtu_expires. */
export const PATH_MTU_AGING_MS = 600_000;

export class PathMtu {
  /** The largest inner packet when nothing smaller was learned: the local underlay MTU - 50. */
  readonly defaultInner: number;

  constructor(
    private readonly state: Float64Array,
    private readonly udp: UdpBind,
    private readonly c: Float64Array,
    /** MTU of the local underlay interface. */
    private readonly underlayMtu: number,
    private readonly agingMs = PATH_MTU_AGING_MS,
  ) {
    this.defaultInner = underlayMtu - VXLAN_IPV4_OVERHEAD;
  }

  /** The largest inner packet the path to peer state `idx` carries now. */
  innerLimit(idx: number, addr: number, port: number, now: number): number {
    const base = idx * PeerField.Stride;
    const mtu = this.state[base + PeerField.PathMtu]!;
    if (mtu === 0) return this.defaultInner;
    if (now >= this.state[base + PeerField.PathMtuExpires]!) return this.learn(idx, addr, port, now) - VXLAN_IPV4_OVERHEAD;
    return mtu - VXLAN_IPV4_OVERHEAD;
  }

  /** Asks the kernel for the path MTU to addr and records it; returns the path MTU in force. */
  learn(idx: number, addr: number, port: number, now: number): number {
    const base = idx * PeerField.Stride;
    const before = this.state[base + PeerField.PathMtu]! || this.underlayMtu;
    const k = this.udp.pathMtu(addr, port);
    // No answer (the route is gone): keep what we had, and ask again after the aging time.
    const mtu = k > 0 ? Math.min(k, this.underlayMtu) : before;
    this.state[base + PeerField.PathMtu] = mtu >= this.underlayMtu ? 0 : mtu;
    this.state[base + PeerField.PathMtuExpires] = now + this.agingMs;
    if (mtu !== before) this.c[Counter.PathMtuUpdates]!++;
    return mtu;
  }
}
