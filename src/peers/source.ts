/**
 * Peer sources: where the agent learns which node owns which pod CIDR.
 *
 * A peer source turns whatever it watches (a JSON file, the Kubernetes Node list) into one
 * normalised stream of full snapshots. The agent does not care how a source learned its peers;
 * it diffs each snapshot against the forwarding table it already has and applies the result in
 * one step, so a burst of changes costs one table rebuild, not one per change. A source never
 * throws into the agent: trouble is reported through `onError` and `stale`, and the last good
 * snapshot stays in force (the data path keeps forwarding on it).
 */

/** One remote node as the data path needs it. Addresses are dotted-quad strings here; the
 * forwarding table turns them into integers once, when it is built. */
export interface Peer {
  /** Kubernetes node name (or the static config's `node`). Unique within a snapshot. */
  readonly node: string;
  /** Underlay (outer) IPv4 address the peer's VTEP listens on. */
  readonly underlayIP: string;
  /** The pod CIDRs the peer owns (IPv4, `a.b.c.d/len`). Usually one. */
  readonly podCIDRs: readonly string[];
  /** The peer's VTEP MAC, `xx:xx:xx:xx:xx:xx`, lower case. */
  readonly vtepMAC: string;
  /** VXLAN UDP port the peer listens on. Undefined: the agent's own port. */
  readonly port?: number;
  /** VNI the peer uses. Undefined: the agent's own VNI. */
  readonly vni?: number;
  /** The peer finishes inner checksums we leave unfinished (VXLAN remote checksum offload:
   * another vxnet node, or a kernel VXLAN device with remcsumrx). Undefined: it does not. */
  readonly remoteChecksum?: boolean;
}

/** What a source tells the agent. Every call carries the complete current peer set. */
export interface PeerSourceEvents {
  snapshot(peers: readonly Peer[]): void;
  /** A control-plane problem, already phrased for an operator. Logged once by the agent. */
  error(err: Error): void;
}

export interface PeerSource {
  /** Human-readable name for logs and `vxnet status` (e.g. "file:/etc/vxnet/peers.json"). */
  readonly name: string;
  /** Start watching. Resolves after the first snapshot has been delivered or failed. */
  start(events: PeerSourceEvents): Promise<void>;
  /** Stop watching and release timers, sockets and watches. */
  stop(): Promise<void>;
  /** True when the source could not refresh its view recently (API outage, unreadable file). */
  stale(): boolean;
  /** Seconds since the last successful sync, or 0 when fresh. */
  staleSeconds(): number;
  /** Counts for `vxnet status --json` (reads, requests, snapshots...), if the source keeps any. */
  stats?(): Record<string, unknown>;
}

/** True when the data path would treat the two peers the same (every field equal). */
export function samePeer(a: Peer, b: Peer): boolean {
  if (a.node !== b.node || a.underlayIP !== b.underlayIP || a.vtepMAC !== b.vtepMAC || a.port !== b.port || a.vni !== b.vni) return false;
  if ((a.remoteChecksum ?? false) !== (b.remoteChecksum ?? false)) return false;
  if (a.podCIDRs.length !== b.podCIDRs.length) return false;
  for (let i = 0; i < a.podCIDRs.length; i++) if (a.podCIDRs[i] !== b.podCIDRs[i]) return false;
  return true;
}

/** True when two snapshots are the same peers in the same order: one pass, no serialising. */
export function samePeerList(a: readonly Peer[], b: readonly Peer[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!samePeer(a[i]!, b[i]!)) return false;
  return true;
}
