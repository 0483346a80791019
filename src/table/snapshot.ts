/**
 * From a peer snapshot to the forwarding tables' input: every address parsed once, and peers that
 * the table cannot represent set aside, each with the reason, while the rest go ahead.
 *
 * Why set aside and not reject. A static config is checked as a whole before the agent starts
 * (`agent/config.ts`), so its snapshots never reach here with a conflict. Peers from Kubernetes
 * are Node objects written by many hands, and one Node with a wrong annotation or a hand-edited
 * podCIDR must not freeze the table of every node in the cluster: rejecting the whole snapshot
 * would block every later join and leave until a person fixed that Node, and at start-up it would
 * leave the node with no peers at all. So the offending Nodes are set aside and the others are
 * built. Where two peers conflict (overlapping pod CIDRs, one underlay address) both are set aside:
 * the table cannot tell which is right, and guessing would deliver one node's pod traffic to
 * another. Every agent sees the same Nodes, so every agent sets aside the same ones, and the
 * decision needs no memory of earlier snapshots.
 *
 * What is set aside: a peer whose addresses do not parse; whose underlay address is this node's,
 * inside the cluster CIDR (its datagrams would be routed into the TUN device) or one no host can
 * have; whose pod CIDR is outside the cluster CIDR or overlaps this node's; and every party to an
 * overlap or a shared underlay among peers. A VTEP MAC shared with this node or another peer only
 * draws a warning: vxnet keys peers by underlay address, so its own forwarding is unaffected, and
 * only kernel VXLAN nodes (which key their FDB by MAC) would misdeliver; cutting the peers off
 * would turn their problem into an outage of ours.
 *
 * Cost: one pass to parse, then the sorts of `conflicts.ts`: n log n for the whole snapshot.
 */
import type { Peer } from '../peers/source.js';
import {
  cidr6Contains, cidrContains, cidrContainsAddress, formatCidr4, ipv4ToNumber, looksLikeIpv6, macToNumber, numberToIpv4,
  numberToMacBytes, parseCidr4, parseCidr6, SPECIAL_IPV4, type Cidr4, type Cidr6,
} from '../wire/addr.js';
import { findOverlaps, firstDuplicate, type Block } from './conflicts.js';
import type { TableInput, TablePeerInput } from './table.js';
import type { Table6Input } from './table6.js';

/** This node, as the screen needs it. */
export interface LocalFacts {
  readonly clusterCIDR: string;
  readonly podCIDR: string;
  /** Dual stack only; without it, peers' IPv6 CIDRs are left out of the tables. */
  readonly clusterCIDR6?: string;
  readonly podCIDR6?: string;
  readonly underlayIP: string;
  readonly vtepMAC: string;
  /** Defaults for peers that give none. */
  readonly port: number;
  readonly vni: number;
}

export interface SetAside {
  readonly node: string;
  readonly reason: string;
}

export interface TableInputs {
  /** The peers that go into the table, in snapshot order: slot i is `peers[i]`. */
  readonly peers: readonly Peer[];
  readonly input: TableInput;
  /** Set when this node carries IPv6 pods. */
  readonly input6: Table6Input | undefined;
  readonly setAside: readonly SetAside[];
  /** Conflicts that do not stop forwarding but break kernel VXLAN peers (shared MACs). */
  readonly warnings: readonly SetAside[];
}

/** A peer's addresses as numbers. */
export interface PeerAddresses {
  readonly underlay: number;
  readonly mac: number;
  readonly v4: readonly Cidr4[];
  readonly v6: readonly Cidr6[];
}

/**
 * Addresses already parsed, by peer object. A Peer's fields never change, so a parse made once
 * (the config check parses every peer to check it) serves every later table build of the same
 * object: at tens of thousands of peers, parsing is most of a build.
 */
const parsed = new WeakMap<Peer, PeerAddresses>();
const NO_CIDR6: readonly Cidr6[] = [];

/** Records the parse of a checked peer, for `tableInputs`. */
export function rememberAddresses(peer: Peer, addresses: PeerAddresses): void {
  parsed.set(peer, addresses);
}

/**
 * Peer lists the config check passed as a whole (`checkPeers`: against this node's facts and
 * against each other), by array identity, with the facts they were checked against. `tableInputs`
 * skips its own screen for them when its facts are the same: it would find nothing, at the cost
 * of a second pass over every peer. The table builder still checks.
 */
const checkedLists = new WeakMap<readonly Peer[], string>();

/** The facts a peer list is checked against, as one string. */
export function factsKey(f: Pick<LocalFacts, 'clusterCIDR' | 'podCIDR' | 'clusterCIDR6' | 'podCIDR6' | 'underlayIP' | 'vtepMAC'>): string {
  return [f.clusterCIDR, f.podCIDR, f.clusterCIDR6 ?? '', f.podCIDR6 ?? '', f.underlayIP, f.vtepMAC].join(' ');
}

export function rememberChecked(peers: readonly Peer[], facts: string): void {
  checkedLists.set(peers, facts);
}

function addressesOf(p: Peer, withV6: boolean): PeerAddresses {
  const known = parsed.get(p);
  if (known !== undefined) return withV6 || known.v6.length === 0 ? known : { ...known, v6: NO_CIDR6 };
  const v4: Cidr4[] = [];
  const v6: Cidr6[] = [];
  for (const text of p.podCIDRs) {
    if (!looksLikeIpv6(text)) v4.push(parseCidr4(text));
    else if (withV6) v6.push(parseCidr6(text));
  }
  const a = { underlay: ipv4ToNumber(p.underlayIP), mac: macToNumber(p.vtepMAC), v4, v6: v6.length > 0 ? v6 : NO_CIDR6 };
  // Kubernetes snapshots hand the same Peer objects over again for nodes that did not change.
  if (withV6 || !p.podCIDRs.some(looksLikeIpv6)) parsed.set(p, a);
  return a;
}

/** Parses a snapshot and sets aside what the table cannot hold; see the module comment. */
export function tableInputs(snapshot: readonly Peer[], local: LocalFacts): TableInputs {
  const n = snapshot.length;
  const cluster = parseCidr4(local.clusterCIDR);
  const pod = parseCidr4(local.podCIDR);
  const cluster6 = local.clusterCIDR6 !== undefined && local.podCIDR6 !== undefined ? parseCidr6(local.clusterCIDR6) : undefined;
  const pod6 = cluster6 !== undefined ? parseCidr6(local.podCIDR6!) : undefined;
  const selfUnderlay = ipv4ToNumber(local.underlayIP);
  const selfMAC = macToNumber(local.vtepMAC);
  const checked = checkedLists.get(snapshot) === factsKey(local);
  const reasons = new Map<number, string>();
  const setAside = (i: number, reason: string): void => {
    if (!reasons.has(i)) reasons.set(i, reason);
  };
  const nameOf = (i: number): string => snapshot[i]!.node;

  // One pass: parse, and check each peer against this node. Struct of arrays, few objects: this
  // runs for every snapshot, at tens of thousands of peers.
  const underlays = new Float64Array(n);
  const macs = new Float64Array(n);
  const v4: Array<readonly Cidr4[] | undefined> = new Array(n);
  const v6: Array<readonly Cidr6[]> = new Array(n);
  const blocks4: Array<Block<number>> = [span4(pod, 0)];
  const owner4: number[] = [-1];
  const blocks6: Array<Block<bigint>> = pod6 !== undefined ? [span6(pod6, 0)] : [];
  const owner6: number[] = [-1];
  for (let i = 0; i < n; i++) {
    const p = snapshot[i]!;
    let a: PeerAddresses;
    try {
      a = addressesOf(p, cluster6 !== undefined);
    } catch (err) {
      setAside(i, (err as Error).message);
      continue;
    }
    underlays[i] = a.underlay;
    macs[i] = a.mac;
    const cidrs4 = a.v4;
    const cidrs6 = a.v6;
    v4[i] = cidrs4;
    v6[i] = cidrs6;
    if (checked) continue;
    const why = againstLocal(p, underlays[i]!, cidrs4, cidrs6, selfUnderlay, cluster, cluster6, local);
    if (why !== undefined) {
      v4[i] = undefined;
      setAside(i, why);
      continue;
    }
    for (const c of cidrs4) {
      blocks4.push(span4(c, blocks4.length));
      owner4.push(i);
    }
    for (const c of cidrs6) {
      blocks6.push(span6(c, blocks6.length));
      owner6.push(i);
    }
  }

  // Conflicts between peers, and with this node's pod CIDRs: every party is set aside.
  const whose = (i: number, other: number, own: string): string =>
    other < 0 ? `this node's ${own}` : other === i ? 'another of its own' : `one of node "${nameOf(other)}"`;
  overlapsOf(blocks4, owner4, (i, other) => setAside(i, `a pod CIDR overlaps ${whose(i, other, local.podCIDR)}`));
  overlapsOf(blocks6, owner6, (i, other) => setAside(i, `an IPv6 pod CIDR overlaps ${whose(i, other, local.podCIDR6!)}`));
  const candidates: number[] = [];
  for (let i = 0; i < n && !checked; i++) if (v4[i] !== undefined) candidates.push(i);
  for (const group of equalGroups(candidates, underlays)) {
    for (const i of group) setAside(i, `underlay address ${numberToIpv4(underlays[i]!)} is also node "${nameOf(group.find((j) => j !== i)!)}"'s`);
  }

  const peers: Peer[] = [];
  const inputs: TablePeerInput[] = [];
  const inputs6: Array<{ node: string; podCIDRs: readonly Cidr6[] }> = [];
  const kept: number[] = [];
  for (let i = 0; i < n; i++) {
    if (v4[i] === undefined || reasons.has(i)) continue;
    const p = snapshot[i]!;
    kept.push(i);
    peers.push(p);
    inputs.push({ node: p.node, underlay: underlays[i]!, port: p.port ?? local.port, vni: p.vni ?? local.vni, mac: numberToMacBytes(macs[i]!), podCIDRs: v4[i]! });
    if (cluster6 !== undefined) inputs6.push({ node: p.node, podCIDRs: v6[i]! });
  }
  const warnings: SetAside[] = [];
  for (const i of checked ? [] : kept) {
    if (macs[i] === selfMAC) warnings.push({ node: nameOf(i), reason: `VTEP MAC ${snapshot[i]!.vtepMAC} is this node's own; kernel VXLAN nodes will confuse the two` });
  }
  for (const group of equalGroups(checked ? [] : kept, macs)) {
    for (const i of group) {
      warnings.push({ node: nameOf(i), reason: `VTEP MAC ${snapshot[i]!.vtepMAC} is also node "${nameOf(group.find((j) => j !== i)!)}"'s; kernel VXLAN nodes will confuse the two` });
    }
  }
  return {
    peers,
    input: { clusterNet: cluster.net, clusterPrefix: cluster.prefix, localPodCIDRs: [pod], peers: inputs },
    input6: cluster6 !== undefined ? { clusterNet: cluster6.net, clusterPrefix: cluster6.prefix, localPodCIDRs: [pod6!], peers: inputs6 } : undefined,
    setAside: [...reasons].sort((a, b) => a[0] - b[0]).map(([i, reason]) => ({ node: nameOf(i), reason })),
    warnings,
  };
}


/** Why a peer cannot be in the table on its own account (not against other peers), or undefined. */
function againstLocal(
  p: Peer, underlay: number, v4: readonly Cidr4[], v6: readonly Cidr6[], selfUnderlay: number, cluster: Cidr4, cluster6: Cidr6 | undefined, local: LocalFacts,
): string | undefined {
  if (underlay === selfUnderlay) return `underlay address ${p.underlayIP} is this node's own`;
  if (cidrContainsAddress(cluster, underlay)) {
    return `underlay address ${p.underlayIP} is inside clusterCIDR ${local.clusterCIDR}: datagrams to it would be routed into the TUN device`;
  }
  for (const r of SPECIAL_IPV4) {
    if (!r.hostAddress && cidrContainsAddress(r.cidr, underlay)) return `underlay address ${p.underlayIP} is in ${formatCidr4(r.cidr)}, ${r.what}`;
  }
  if (v4.length === 0) return 'no IPv4 pod CIDR';
  for (const c of v4) if (!cidrContains(cluster, c)) return `pod CIDR ${formatCidr4(c)} is outside clusterCIDR ${local.clusterCIDR}`;
  if (cluster6 !== undefined && v6.some((c) => !cidr6Contains(cluster6, c))) return `an IPv6 pod CIDR is outside clusterCIDR6 ${local.clusterCIDR6}`;
  return undefined;
}

function span4(c: Cidr4, seq: number): Block<number> {
  return { start: c.net, end: c.net + 2 ** (32 - c.prefix), seq };
}

function span6(c: Cidr6, seq: number): Block<bigint> {
  return { start: c.net, end: c.net + (1n << BigInt(128 - c.prefix)), seq };
}

/**
 * Calls `found(peer, other)` for every peer block that overlaps another block: `owner[k]` is the
 * snapshot index owning block k (-1: this node), `other` the owner of one block it overlaps.
 */
function overlapsOf<T extends number | bigint>(blocks: ReadonlyArray<Block<T>>, owner: readonly number[], found: (i: number, other: number) => void): void {
  const { involved, partner } = findOverlaps(blocks);
  for (let k = 0; k < blocks.length; k++) {
    if (involved[k] === 1 && owner[k]! >= 0) found(owner[k]!, owner[partner[k]!]!);
  }
}

/** Groups of two or more of `idx` with one value in `values` (sorted, so n log n). */
function equalGroups(idx: readonly number[], values: Float64Array): number[][] {
  const picked = new Float64Array(idx.length);
  for (let k = 0; k < idx.length; k++) picked[k] = values[idx[k]!]!;
  if (firstDuplicate(picked) === undefined) return [];
  const byValue = new Map<number, number[]>();
  for (const i of idx) {
    const list = byValue.get(values[i]!);
    if (list) list.push(i);
    else byValue.set(values[i]!, [i]);
  }
  return [...byValue.values()].filter((g) => g.length > 1);
}
