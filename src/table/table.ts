/**
 * The forwarding table: which peer owns an inner address, and which peer an outer address is.
 *
 * The data path asks two questions per packet. Outbound, "which peer owns this inner destination?"
 * (`lookup`). Inbound, "which peer sent this outer datagram?" (`slotForUnderlay`), followed by the
 * anti-spoofing rule that the inner source must lie in that peer's pod CIDRs
 * (`lookup(innerSource) === slot`). Both answers come from typed arrays: no Map, no allocation, no
 * exception. A peer is named by its slot, its index in `TableInput.peers`; the per-slot columns
 * (`underlay`, `port`, `vni`, `mac`) hold what encapsulation needs.
 *
 * The control plane builds the table on the main thread into ONE SharedArrayBuffer, and worker
 * threads attach views to that buffer without copying it. The buffer is never written after
 * `buildTable` returns; a new peer set means a new buffer, published by the caller. When only a
 * few peers' facts change, `patchTable` makes that new buffer as a copy of the old one with their
 * rows rewritten, which costs a copy instead of a sort and a layout.
 *
 * Why a direct index and not a trie. Kubernetes carves pod CIDRs out of the cluster CIDR in one
 * size (the controller manager's node-cidr-mask-size), so at the granularity of the longest pod
 * CIDR the cluster CIDR splits into buckets that each belong wholly to one owner or to nobody.
 * An array with one entry per bucket answers `lookup` with one xor, one mask test, one shift and
 * one load: the same cost for 3 nodes or 5,000, with no pointer chasing and no loop. A trie (what
 * wireguard-go uses for allowed IPs, which may be any prefixes anywhere in the address space)
 * costs a dependent load per level. Its generality buys nothing here: everything outside the
 * cluster CIDR is answered by the mask test, and inside it the prefixes are few and regular.
 *
 * How it scales. The index has 2^indexBits Int32 entries, where indexBits is the longest pod-CIDR
 * prefix minus the cluster prefix, capped at INDEX_MAX_BITS (20): a /16 cluster of /24s needs 256
 * entries (1 KiB), a /8 cluster of /24s 65,536 (256 KiB), and no input makes it larger than 4 MiB.
 * Pod CIDRs longer than the capped granularity (say /30s in a /8, whose buckets are /28s) are
 * "fine": their bucket holds a marker pointing at its own run of (net, mask, slot) rows, about
 * 16 bytes per fine CIDR. The rows of a bucket are disjoint, so they are kept sorted by address
 * and binary-searched (at most log2 of 2^(32-granularity) steps, 4 for /32s in /28 buckets),
 * rather than scanned longest prefix first. A bucket with fine CIDRs has no coarse owner, because
 * a coarse owner would overlap them and overlaps are rejected at build time; so a miss in the run
 * is NoOwner. Per peer the buffer holds 16 bytes of columns (underlay, VNI, port, MAC), 8 to 16
 * bytes of underlay hash (open addressing, power-of-two capacity, load at most 0.5), 8 bytes of
 * offsets, 9 bytes per pod CIDR and the UTF-8 node name: about 50 bytes. 5,000 peers with /24s in
 * a /8 take 511 KiB (256 KiB of it index); the worst case for 5,000 peers is about 4.5 MiB (full
 * index plus fine rows). The buffer exists once per node and is shared by every worker.
 *
 * Buffer layout. A header of HEADER_WORDS uint32 words (magic, version, counts) is followed by
 * the sections below, each at an 8-byte aligned offset that `planLayout` derives from the counts
 * alone, so the builder and every reader agree without storing offsets:
 *
 *   uint32 underlay[P]  vni[P]  fineNet[F]  fineMask[F]  fineStart[B+1]
 *          cidrStart[P+1]  cidrNet[C]  nameStart[P+1]
 *   int32  index[2^indexBits]  fineSlot[F]  hash[2^hashBits]
 *   uint16 port[P]
 *   uint8  mac[6P]  cidrPrefix[C]  names[N]
 *
 * P peers, F fine CIDRs, B buckets holding fine CIDRs, C peer pod CIDRs, N bytes of names.
 * An index entry is a slot (>= 0), NoOwner, Local, or FINE_BASE - k for fine bucket k, whose rows
 * are fineStart[k] .. fineStart[k+1].
 */
import { formatCidr4, numberToIpv4, prefixMask } from '../wire/addr.js';
import { findOverlaps, firstDuplicateString, sortOrder, type Block } from './conflicts.js';

/** What `lookup` returns when the answer is not a peer slot. */
export const Lookup = {
  /** The address lies outside the cluster CIDR: not ours to encapsulate. */
  OutsideCluster: -1,
  /** Inside the cluster CIDR, but no node owns it. */
  NoOwner: -2,
  /** One of this node's own pod CIDRs. */
  Local: -3,
} as const;

export interface TablePeerInput {
  node: string;
  /** Underlay (outer) IPv4 address, uint32. */
  underlay: number;
  port: number;
  /** 24-bit VXLAN network identifier. */
  vni: number;
  /** VTEP MAC, 6 bytes. */
  mac: Uint8Array;
  podCIDRs: ReadonlyArray<{ net: number; prefix: number }>;
}

export interface TableInput {
  clusterNet: number;
  clusterPrefix: number;
  localPodCIDRs: ReadonlyArray<{ net: number; prefix: number }>;
  peers: ReadonlyArray<TablePeerInput>;
}

/** A peer set the table cannot represent; the message names the node or CIDR to fix. */
export class TableError extends Error {
  override name = 'TableError';
}

/** The index never has more than 2^INDEX_MAX_BITS entries (4 MiB of Int32). */
export const INDEX_MAX_BITS = 20;

const MAGIC = 0x5678_7462; // "VxTb"
const VERSION = 1;
/** Index entries at or below this mark a fine bucket: FINE_BASE - k. */
const FINE_BASE = -4;
const MAC_LEN = 6;
const VNI_MAX = 0xff_ffff;

const Header = {
  magic: 0,
  version: 1,
  peerCount: 2,
  clusterNet: 3,
  clusterPrefix: 4,
  indexBits: 5,
  fineCount: 6,
  fineBucketCount: 7,
  hashBits: 8,
  cidrCount: 9,
  nameBytes: 10,
} as const;
const HEADER_WORDS = Header.nameBytes + 1;

interface Counts {
  peerCount: number;
  indexBits: number;
  fineCount: number;
  fineBucketCount: number;
  hashBits: number;
  cidrCount: number;
  nameBytes: number;
}

/** Byte offset of every section, and the total length. */
interface Layout {
  underlay: number;
  vni: number;
  fineNet: number;
  fineMask: number;
  fineStart: number;
  cidrStart: number;
  cidrNet: number;
  nameStart: number;
  index: number;
  fineSlot: number;
  hash: number;
  port: number;
  mac: number;
  cidrPrefix: number;
  names: number;
  byteLength: number;
}

function planLayout(c: Counts): Layout {
  let off = HEADER_WORDS * 4;
  const take = (bytes: number): number => {
    const at = off;
    off = (off + bytes + 7) & ~7;
    return at;
  };
  const p = c.peerCount;
  const l: Layout = {
    underlay: take(4 * p),
    vni: take(4 * p),
    fineNet: take(4 * c.fineCount),
    fineMask: take(4 * c.fineCount),
    fineStart: take(4 * (c.fineBucketCount + 1)),
    cidrStart: take(4 * (p + 1)),
    cidrNet: take(4 * c.cidrCount),
    nameStart: take(4 * (p + 1)),
    index: take(4 * 2 ** c.indexBits),
    fineSlot: take(4 * c.fineCount),
    hash: take(4 * 2 ** c.hashBits),
    port: take(2 * p),
    mac: take(MAC_LEN * p),
    cidrPrefix: take(c.cidrCount),
    names: take(c.nameBytes),
    byteLength: 0,
  };
  l.byteLength = off;
  return l;
}

/** Every section of a table buffer as a typed-array view, for the builder and for readers. */
interface Sections {
  counts: Counts;
  clusterNet: number;
  clusterPrefix: number;
  underlay: Uint32Array;
  vni: Uint32Array;
  fineNet: Uint32Array;
  fineMask: Uint32Array;
  fineStart: Uint32Array;
  cidrStart: Uint32Array;
  cidrNet: Uint32Array;
  nameStart: Uint32Array;
  index: Int32Array;
  fineSlot: Int32Array;
  hash: Int32Array;
  port: Uint16Array;
  mac: Uint8Array;
  cidrPrefix: Uint8Array;
  names: Uint8Array;
}

function attach(sab: SharedArrayBuffer): Sections {
  if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < HEADER_WORDS * 4) {
    throw new TypeError('ForwardingTable: not a table buffer');
  }
  const h = new Uint32Array(sab, 0, HEADER_WORDS);
  if (h[Header.magic] !== MAGIC || h[Header.version] !== VERSION) {
    throw new TypeError('ForwardingTable: not a table buffer (bad magic or version)');
  }
  const c: Counts = {
    peerCount: h[Header.peerCount]!,
    indexBits: h[Header.indexBits]!,
    fineCount: h[Header.fineCount]!,
    fineBucketCount: h[Header.fineBucketCount]!,
    hashBits: h[Header.hashBits]!,
    cidrCount: h[Header.cidrCount]!,
    nameBytes: h[Header.nameBytes]!,
  };
  const l = planLayout(c);
  if (l.byteLength !== sab.byteLength) {
    throw new TypeError('ForwardingTable: buffer length does not match its header');
  }
  const p = c.peerCount;
  return {
    counts: c,
    clusterNet: h[Header.clusterNet]!,
    clusterPrefix: h[Header.clusterPrefix]!,
    underlay: new Uint32Array(sab, l.underlay, p),
    vni: new Uint32Array(sab, l.vni, p),
    fineNet: new Uint32Array(sab, l.fineNet, c.fineCount),
    fineMask: new Uint32Array(sab, l.fineMask, c.fineCount),
    fineStart: new Uint32Array(sab, l.fineStart, c.fineBucketCount + 1),
    cidrStart: new Uint32Array(sab, l.cidrStart, p + 1),
    cidrNet: new Uint32Array(sab, l.cidrNet, c.cidrCount),
    nameStart: new Uint32Array(sab, l.nameStart, p + 1),
    index: new Int32Array(sab, l.index, 2 ** c.indexBits),
    fineSlot: new Int32Array(sab, l.fineSlot, c.fineCount),
    hash: new Int32Array(sab, l.hash, 2 ** c.hashBits),
    port: new Uint16Array(sab, l.port, p),
    mac: new Uint8Array(sab, l.mac, MAC_LEN * p),
    cidrPrefix: new Uint8Array(sab, l.cidrPrefix, c.cidrCount),
    names: new Uint8Array(sab, l.names, c.nameBytes),
  };
}

function isUint32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= 0xffff_ffff;
}

function formatCidr(net: number, prefix: number): string {
  return formatCidr4({ net, prefix });
}

/** 2^bits buckets hashed by multiplication; `bits` is 1..31 so the shift is never 32. */
function hashOf(addr: number, shift: number): number {
  return Math.imul(addr, 0x9e37_79b1) >>> shift;
}

/**
 * Puts `slot` into the underlay hash (open addressing, linear probing; `hash.length` a power of
 * two). Returns the slot already there with the same address, or -1 when it went in.
 */
function hashInsert(hash: Int32Array, underlayOf: (slot: number) => number, slot: number): number {
  const mask = hash.length - 1;
  const addr = underlayOf(slot);
  // For a power of two, 32 - log2(length) is 1 + clz32(length).
  let h = hashOf(addr, 1 + Math.clz32(hash.length));
  for (let other = hash[h]!; other >= 0; other = hash[h]!) {
    if (underlayOf(other) === addr) return other;
    h = (h + 1) & mask;
  }
  hash[h] = slot;
  return -1;
}

/** One pod CIDR as the builder sees it: its block and its owner. */
interface OwnedCidr extends Block<number> {
  net: number;
  prefix: number;
  /** Peer slot, or Lookup.Local. */
  owner: number;
}

const LOCAL_NAME = 'the local node';

function ownedCidr(net: number, prefix: number, owner: number, seq: number): OwnedCidr {
  return { net, prefix, owner, start: net, end: net + 2 ** (32 - prefix), seq };
}

/** How an error names an owner; built only when there is an error. */
function ownerName(peers: ReadonlyArray<TablePeerInput>, owner: number): string {
  return owner === Lookup.Local ? LOCAL_NAME : `node "${peers[owner]!.node}"`;
}

function checkCidr(
  net: number,
  prefix: number,
  who: () => string,
  clusterNet: number,
  clusterPrefix: number,
): void {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new TableError(`${who()}: pod CIDR prefix length ${prefix} is not in 0..32`);
  }
  if (!isUint32(net)) {
    throw new TableError(`${who()}: pod CIDR address ${net} is not a uint32 IPv4 address`);
  }
  const mask = prefixMask(prefix);
  if ((net & ~mask) !== 0) {
    throw new TableError(
      `${who()}: pod CIDR ${formatCidr(net, prefix)} has host bits set; ` +
        `did you mean ${formatCidr((net & mask) >>> 0, prefix)}?`,
    );
  }
  const clusterMask = prefixMask(clusterPrefix);
  if (prefix < clusterPrefix || ((net ^ clusterNet) & clusterMask) !== 0) {
    throw new TableError(
      `${who()}: pod CIDR ${formatCidr(net, prefix)} is outside the cluster CIDR ` +
        `${formatCidr(clusterNet, clusterPrefix)}; fix the node's pod CIDR or the cluster CIDR`,
    );
  }
}

function checkPeer(p: TablePeerInput, slot: number): void {
  if (typeof p.node !== 'string' || p.node === '') {
    throw new TableError(`peer ${slot}: node name is empty`);
  }
  if (isUint32(p.underlay) && Number.isInteger(p.port) && p.port >= 1 && p.port <= 0xffff && Number.isInteger(p.vni) &&
    p.vni >= 0 && p.vni <= VNI_MAX && p.mac instanceof Uint8Array && p.mac.length === MAC_LEN) return;
  const who = `node "${p.node}"`;
  if (!isUint32(p.underlay)) {
    throw new TableError(`${who}: underlay address ${p.underlay} is not a uint32 IPv4 address`);
  }
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 0xffff) {
    throw new TableError(`${who}: UDP port ${p.port} is not in 1..65535`);
  }
  if (!Number.isInteger(p.vni) || p.vni < 0 || p.vni > VNI_MAX) {
    throw new TableError(`${who}: VNI ${p.vni} is not a 24-bit value (0..${VNI_MAX})`);
  }
  if (!(p.mac instanceof Uint8Array) || p.mac.length !== MAC_LEN) {
    throw new TableError(`${who}: VTEP MAC must be ${MAC_LEN} bytes`);
  }
}

/**
 * Validates a peer set and lays it out in a new SharedArrayBuffer. Slot i is `input.peers[i]`.
 * Throws TableError for anything an operator could have got wrong: overlapping pod CIDRs
 * (between any owners, the local node included), a pod CIDR outside the cluster CIDR, host bits
 * set, a duplicate node name or underlay address, and malformed port, VNI or MAC.
 */
export function buildTable(input: TableInput): SharedArrayBuffer {
  const { clusterNet, clusterPrefix, peers } = input;
  // A /0 "cluster" would claim the whole Internet for the overlay; it is also what keeps every
  // shift below 32.
  if (!Number.isInteger(clusterPrefix) || clusterPrefix < 1 || clusterPrefix > 32) {
    throw new TableError(`cluster CIDR prefix length ${clusterPrefix} is not in 1..32`);
  }
  if (!isUint32(clusterNet)) {
    throw new TableError(`cluster CIDR address ${clusterNet} is not a uint32 IPv4 address`);
  }
  const clusterMask = prefixMask(clusterPrefix);
  if ((clusterNet & ~clusterMask) !== 0) {
    throw new TableError(
      `cluster CIDR ${formatCidr(clusterNet, clusterPrefix)} has host bits set; ` +
        `did you mean ${formatCidr((clusterNet & clusterMask) >>> 0, clusterPrefix)}?`,
    );
  }

  const cidrs: OwnedCidr[] = [];
  for (const c of input.localPodCIDRs) {
    checkCidr(c.net, c.prefix, () => LOCAL_NAME, clusterNet, clusterPrefix);
    cidrs.push(ownedCidr(c.net, c.prefix, Lookup.Local, cidrs.length));
  }
  // The underlay hash is filled here, where a second peer with one address is found on insert;
  // it is copied into the buffer once the layout is known.
  let hashBits = 1;
  while (2 ** hashBits < 2 * peers.length) hashBits++;
  const hash = new Int32Array(2 ** hashBits).fill(-1);
  const underlayOf = (slot: number): number => peers[slot]!.underlay;
  let cidrCount = 0;
  for (let slot = 0; slot < peers.length; slot++) {
    const p = peers[slot]!;
    checkPeer(p, slot);
    const other = hashInsert(hash, underlayOf, slot);
    if (other >= 0) {
      throw new TableError(
        `nodes "${peers[other]!.node}" and "${p.node}" both have underlay address ` +
          `${numberToIpv4(p.underlay)}; each node needs its own`,
      );
    }
    for (const c of p.podCIDRs) {
      checkCidr(c.net, c.prefix, () => `node "${p.node}"`, clusterNet, clusterPrefix);
      cidrs.push(ownedCidr(c.net, c.prefix, slot, cidrs.length));
      cidrCount++;
    }
  }
  const sameName = firstDuplicateString(peers.map((p) => p.node));
  if (sameName !== undefined) {
    throw new TableError(`node "${peers[sameName.later]!.node}" appears twice in the peer set (peers ${sameName.earlier} and ${sameName.later})`);
  }

  // Sorted by address, wider first on a tie: the order the index is filled in, and the order
  // the overlap sweep needs.
  const order = sortOrder(cidrs);
  const overlap = findOverlaps(cidrs, order).first;
  if (overlap !== undefined) {
    const c = cidrs[overlap.later]!;
    const other = cidrs[overlap.earlier]!;
    throw new TableError(
      `pod CIDR ${formatCidr(c.net, c.prefix)} of ${ownerName(peers, c.owner)} overlaps ` +
        `${formatCidr(other.net, other.prefix)} of ${ownerName(peers, other.owner)}; ` +
        `every node must own disjoint pod CIDRs`,
    );
  }
  let maxPrefix = clusterPrefix;
  for (const c of cidrs) if (c.prefix > maxPrefix) maxPrefix = c.prefix;
  const sorted = Array.from(order, (k) => cidrs[k]!);

  const indexBits = Math.min(maxPrefix - clusterPrefix, INDEX_MAX_BITS);
  const granularity = clusterPrefix + indexBits;
  const shift = 32 - granularity;
  let fineCount = 0;
  let fineBucketCount = 0;
  let lastFineBucket = -1;
  for (const c of sorted) {
    if (c.prefix <= granularity) continue;
    fineCount++;
    const bucket = ((c.net ^ clusterNet) >>> 0) >>> shift;
    if (bucket !== lastFineBucket) {
      fineBucketCount++;
      lastFineBucket = bucket;
    }
  }

  // Names are encoded in one go: byte lengths first (for the offsets), then the joined text.
  const nameLengths = new Uint32Array(peers.length);
  let nameBytes = 0;
  for (let slot = 0; slot < peers.length; slot++) {
    const n = Buffer.byteLength(peers[slot]!.node, 'utf8');
    nameLengths[slot] = n;
    nameBytes += n;
  }

  const counts: Counts = {
    peerCount: peers.length,
    indexBits,
    fineCount,
    fineBucketCount,
    hashBits,
    cidrCount,
    nameBytes,
  };
  const l = planLayout(counts);
  const sab = new SharedArrayBuffer(l.byteLength);
  const header = new Uint32Array(sab, 0, HEADER_WORDS);
  header[Header.magic] = MAGIC;
  header[Header.version] = VERSION;
  header[Header.peerCount] = peers.length;
  header[Header.clusterNet] = clusterNet;
  header[Header.clusterPrefix] = clusterPrefix;
  header[Header.indexBits] = indexBits;
  header[Header.fineCount] = fineCount;
  header[Header.fineBucketCount] = fineBucketCount;
  header[Header.hashBits] = hashBits;
  header[Header.cidrCount] = cidrCount;
  header[Header.nameBytes] = nameBytes;

  const w = attach(sab);

  w.index.fill(Lookup.NoOwner);
  let fine = 0;
  let fineBucket = -1;
  lastFineBucket = -1;
  for (const c of sorted) {
    const bucket = ((c.net ^ clusterNet) >>> 0) >>> shift;
    if (c.prefix <= granularity) {
      w.index.fill(c.owner, bucket, bucket + 2 ** (granularity - c.prefix));
      continue;
    }
    if (bucket !== lastFineBucket) {
      fineBucket++;
      lastFineBucket = bucket;
      w.fineStart[fineBucket] = fine;
      w.index[bucket] = FINE_BASE - fineBucket;
    }
    w.fineNet[fine] = c.net;
    w.fineMask[fine] = prefixMask(c.prefix);
    w.fineSlot[fine] = c.owner;
    fine++;
  }
  w.fineStart[fineBucketCount] = fine;

  w.hash.set(hash);
  let cidr = 0;
  let nameAt = 0;
  for (let slot = 0; slot < peers.length; slot++) {
    const p = peers[slot]!;
    w.underlay[slot] = p.underlay;
    w.port[slot] = p.port;
    w.vni[slot] = p.vni;
    w.mac.set(p.mac, slot * MAC_LEN);
    w.cidrStart[slot] = cidr;
    for (const c of p.podCIDRs) {
      w.cidrNet[cidr] = c.net;
      w.cidrPrefix[cidr] = c.prefix;
      cidr++;
    }
    w.nameStart[slot] = nameAt;
    nameAt += nameLengths[slot]!;
  }
  new TextEncoder().encodeInto(peers.map((p) => p.node).join(''), w.names);
  w.cidrStart[peers.length] = cidr;
  w.nameStart[peers.length] = nameAt;
  return sab;
}

/** One peer of an existing table with new facts; its name, and so its slot, stay. */
export interface TablePatch {
  readonly slot: number;
  readonly peer: TablePeerInput;
}

/**
 * A new table that is `prev` with some peers' facts replaced: a copy of the buffer with their
 * columns, index entries and (if an underlay moved) the underlay hash rewritten. This is what a
 * change to a few peers of a large table costs: a copy and a few writes, instead of parsing,
 * sorting and laying out every peer again. It checks the changed peers as `buildTable` would
 * (port, VNI, MAC, pod CIDRs inside the cluster without host bits, no overlap with anything else
 * in the table, no shared underlay address), against the table itself. Returns undefined when
 * a patch cannot express the change: another name at the slot, a different number of pod CIDRs,
 * a pod CIDR finer than the index (a "fine" one), or any conflict. The caller then builds the
 * table anew, which reports or sets aside what is wrong.
 */
export function patchTable(prev: SharedArrayBuffer, patches: ReadonlyArray<TablePatch>): SharedArrayBuffer | undefined {
  const sab = new SharedArrayBuffer(prev.byteLength);
  new Uint8Array(sab).set(new Uint8Array(prev));
  const w = attach(sab);
  const granularity = w.clusterPrefix + w.counts.indexBits;
  const shift = 32 - granularity;
  const table = new ForwardingTable(prev);
  const bucketsOf = (c: { net: number; prefix: number }): [number, number] => {
    const first = ((c.net ^ w.clusterNet) >>> 0) >>> shift;
    return [first, first + 2 ** (granularity - c.prefix)];
  };
  let underlayMoved = false;
  for (const { slot, peer } of patches) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= w.counts.peerCount || table.nodeName(slot) !== peer.node) return undefined;
    try {
      checkPeer(peer, slot);
      for (const c of peer.podCIDRs) checkCidr(c.net, c.prefix, () => peer.node, w.clusterNet, w.clusterPrefix);
    } catch {
      return undefined;
    }
    const old = table.podCIDRs(slot);
    if (old.length !== peer.podCIDRs.length || [...old, ...peer.podCIDRs].some((c) => c.prefix > granularity)) return undefined;
    // Clear the old entries first, so that peers may swap CIDRs within one patch.
    for (const c of old) {
      const [from, to] = bucketsOf(c);
      w.index.fill(Lookup.NoOwner, from, to);
    }
    underlayMoved ||= w.underlay[slot] !== peer.underlay;
    w.underlay[slot] = peer.underlay;
    w.port[slot] = peer.port;
    w.vni[slot] = peer.vni;
    w.mac.set(peer.mac, slot * MAC_LEN);
  }
  for (const { slot, peer } of patches) {
    let row = w.cidrStart[slot]!;
    for (const c of peer.podCIDRs) {
      const [from, to] = bucketsOf(c);
      for (let b = from; b < to; b++) if (w.index[b] !== Lookup.NoOwner) return undefined;
      w.index.fill(slot, from, to);
      w.cidrNet[row] = c.net;
      w.cidrPrefix[row] = c.prefix;
      row++;
    }
  }
  if (underlayMoved) {
    w.hash.fill(-1);
    const underlayOf = (slot: number): number => w.underlay[slot]!;
    for (let slot = 0; slot < w.counts.peerCount; slot++) if (hashInsert(w.hash, underlayOf, slot) >= 0) return undefined;
  }
  return sab;
}

/** Views over a table buffer. Cheap to construct: it only reads the header and makes views. */
export class ForwardingTable {
  readonly buffer: SharedArrayBuffer;
  readonly peerCount: number;
  /** log2 of the number of index entries (see the module comment). */
  readonly indexBits: number;
  /** Pod CIDRs longer than the index granularity, answered by a binary search in their bucket. */
  readonly fineCount: number;
  /** Per slot: underlay IPv4 address, uint32. */
  readonly underlay: Uint32Array;
  /** Per slot: VXLAN UDP destination port. */
  readonly port: Uint16Array;
  /** Per slot: VNI (24-bit). */
  readonly vni: Uint32Array;
  /** Per slot: VTEP MAC, bytes slot*6 .. slot*6+5. */
  readonly mac: Uint8Array;

  private readonly clusterNet: number;
  /** The cluster mask as int32, so `(a ^ net) & mask` needs no `>>> 0` before comparing to 0. */
  private readonly clusterMask: number;
  private readonly shift: number;
  private readonly index: Int32Array;
  private readonly fineNet: Uint32Array;
  private readonly fineMask: Uint32Array;
  private readonly fineSlot: Int32Array;
  private readonly fineStart: Uint32Array;
  private readonly hash: Int32Array;
  private readonly hashShift: number;
  private readonly hashMask: number;
  private readonly cidrStart: Uint32Array;
  private readonly cidrNet: Uint32Array;
  private readonly cidrPrefix: Uint8Array;
  private readonly nameStart: Uint32Array;
  private readonly names: Uint8Array;
  private nameCache: Array<string | undefined> | undefined;

  constructor(sab: SharedArrayBuffer) {
    const s = attach(sab);
    const c = s.counts;
    this.buffer = sab;
    this.peerCount = c.peerCount;
    this.indexBits = c.indexBits;
    this.fineCount = c.fineCount;
    this.underlay = s.underlay;
    this.port = s.port;
    this.vni = s.vni;
    this.mac = s.mac;
    this.clusterNet = s.clusterNet;
    this.clusterMask = prefixMask(s.clusterPrefix) | 0;
    this.shift = 32 - s.clusterPrefix - c.indexBits;
    this.index = s.index;
    this.fineNet = s.fineNet;
    this.fineMask = s.fineMask;
    this.fineSlot = s.fineSlot;
    this.fineStart = s.fineStart;
    this.hash = s.hash;
    this.hashShift = 32 - c.hashBits;
    this.hashMask = 2 ** c.hashBits - 1;
    this.cidrStart = s.cidrStart;
    this.cidrNet = s.cidrNet;
    this.cidrPrefix = s.cidrPrefix;
    this.nameStart = s.nameStart;
    this.names = s.names;
  }

  /** The owner of IPv4 address `dst` (uint32): a peer slot, or one of `Lookup`. */
  lookup(dst: number): number {
    const offset = dst ^ this.clusterNet;
    if ((offset & this.clusterMask) !== 0) return Lookup.OutsideCluster;
    const entry = this.index[offset >>> this.shift]!;
    if (entry > FINE_BASE) return entry;
    return this.lookupFine(dst >>> 0, FINE_BASE - entry);
  }

  /** Binary search of fine bucket k's rows, sorted by net, for the one block that holds `dst`. */
  private lookupFine(dst: number, k: number): number {
    const net = this.fineNet;
    let lo = this.fineStart[k]!;
    let hi = this.fineStart[k + 1]!;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (net[mid]! <= dst) lo = mid;
      else hi = mid;
    }
    if (((dst ^ net[lo]!) & this.fineMask[lo]!) !== 0) return Lookup.NoOwner;
    return this.fineSlot[lo]!;
  }

  /** The slot whose underlay address is `addr` (uint32), or -1. */
  slotForUnderlay(addr: number): number {
    const a = addr >>> 0;
    const mask = this.hashMask;
    let h = hashOf(a, this.hashShift);
    for (;;) {
      const slot = this.hash[h]!;
      if (slot < 0 || this.underlay[slot] === a) return slot;
      h = (h + 1) & mask;
    }
  }

  /** Node name of a slot. Control plane only: decodes (once) and allocates a string. */
  nodeName(slot: number): string {
    this.checkSlot(slot);
    this.nameCache ??= new Array<string | undefined>(this.peerCount);
    let name = this.nameCache[slot];
    if (name === undefined) {
      const bytes = this.names.subarray(this.nameStart[slot]!, this.nameStart[slot + 1]!);
      name = new TextDecoder().decode(bytes);
      this.nameCache[slot] = name;
    }
    return name;
  }

  /** Pod CIDRs of a slot, in the order the peer listed them. Control plane only. */
  podCIDRs(slot: number): Array<{ net: number; prefix: number }> {
    this.checkSlot(slot);
    const out: Array<{ net: number; prefix: number }> = [];
    for (let i = this.cidrStart[slot]!; i < this.cidrStart[slot + 1]!; i++) {
      out.push({ net: this.cidrNet[i]!, prefix: this.cidrPrefix[i]! });
    }
    return out;
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.peerCount) {
      throw new RangeError(`ForwardingTable: slot ${slot} is not in 0..${this.peerCount - 1}`);
    }
  }
}
