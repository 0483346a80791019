/**
 * What the data path learns and counts per peer, in shared typed arrays that outlive tables.
 *
 * The forwarding table is immutable: every peer change builds a new one, in which a peer's slot
 * may differ. What must survive the swap lives here instead, indexed by a stable *state index*
 * that the control plane assigns to each peer node for as long as it remains a peer: its packet
 * and byte counters, and its path MTU (learned from the kernel by a worker's outbound side, with
 * the time it expires). Each table is published with `stateOf`, slot -> state index.
 *
 * Writers: each block belongs to one worker (one queue); it writes the tx counters and the path
 * MTU from its outbound side and the rx counters from its inbound side; one writer per value, no
 * Atomics. The control plane
 * writes an entry only when no worker can touch it: an index freed by a peer's removal is
 * zeroed and reused only once every worker runs a table without it, and its counts then move
 * to `retired`, so totals (retired + every entry) never step back and never lose a count.
 *
 * Memory: the buffer is sized for PEER_STATE_CAPACITY entries up front, but untouched pages
 * cost nothing, so a node pays for the peers it has (64 bytes each).
 */
import type { Totals } from './counters.js';

/** Fields of one entry, in Float64 slots. */
export const PeerField = {
  TxPackets: 0,
  TxBytes: 1,
  RxPackets: 2,
  RxBytes: 3,
  /** The path MTU to the peer learned from the kernel; 0: not learned (the local underlay MTU). */
  PathMtu: 4,
  /** Date.now() at which PathMtu is asked of the kernel again (its cache ages too). */
  PathMtuExpires: 5,
  Stride: 8,
} as const;

/** Distinct live peers a node can have. */
export const PEER_STATE_CAPACITY = 1 << 17;

const BLOCK_BYTES = PEER_STATE_CAPACITY * PeerField.Stride * 8;

export function newPeerStateBuffer(blocks: number): SharedArrayBuffer {
  return new SharedArrayBuffer(BLOCK_BYTES * Math.max(1, blocks));
}

/** Worker (queue) `block`'s view of the state buffer. */
export function peerStateBlock(buffer: SharedArrayBuffer, block: number): Float64Array {
  return new Float64Array(buffer, block * BLOCK_BYTES, PEER_STATE_CAPACITY * PeerField.Stride);
}

export class PeerStateError extends Error {
  override name = 'PeerStateError';
}

export interface PeerStateView extends Totals {
  /** The smallest path MTU any worker learned; 0 when none did. */
  pathMtu: number;
}

const READING_STRIDE = 5;

/** One consistent reading of the per-peer state (`PeerStates.reading`). */
export interface PeerReading {
  /** Everything ever counted: removed peers and every current peer. */
  readonly totals: Totals;
  /** Traffic of peers no longer in the table. */
  readonly removed: Totals;
  /** A current peer's values, undefined for a node that is not one. It looks the node up in the
   * live index: use a reading at once, before the next table is assigned. */
  of(node: string): PeerStateView | undefined;
}

/** The control plane's side: assigns state indexes to peer nodes, reads and retires entries. */
export class PeerStates {
  readonly buffer: SharedArrayBuffer;
  private readonly blocks: Float64Array[];
  private readonly index = new Map<string, number>();
  private readonly free: number[] = [];
  private pending: Array<{ idx: number; generation: number }> = [];
  private highWater = 0;
  private readonly retired: Totals = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };

  constructor(readonly blockCount = 1) {
    this.buffer = newPeerStateBuffer(blockCount);
    this.blocks = Array.from({ length: Math.max(1, blockCount) }, (_, b) => peerStateBlock(this.buffer, b));
  }

  /**
   * The state index of every node in `nodes` (slot order) for the table of `generation`, in a
   * shared array the workers read. Known nodes keep theirs; nodes no longer listed give theirs
   * up, to be reused once every worker has moved past `generation` (see `release`).
   */
  assign(nodes: readonly string[], generation: number): Int32Array {
    const keep = new Set(nodes);
    for (const [name, idx] of this.index) {
      if (keep.has(name)) continue;
      this.index.delete(name);
      this.pending.push({ idx, generation });
    }
    const stateOf = new Int32Array(new SharedArrayBuffer(Math.max(1, nodes.length) * 4));
    for (let i = 0; i < nodes.length; i++) {
      const name = nodes[i]!;
      let idx = this.index.get(name);
      if (idx === undefined) {
        idx = this.allocate(name);
        this.index.set(name, idx);
      }
      stateOf[i] = idx;
    }
    return stateOf;
  }

  /** Frees the entries of peers removed in tables up to `seenGeneration`, which every worker
   * has moved past: their counts go to the retired totals, the entries are zeroed for reuse. */
  release(seenGeneration: number): void {
    if (this.pending.length === 0) return;
    const still: Array<{ idx: number; generation: number }> = [];
    for (const p of this.pending) {
      if (p.generation > seenGeneration) {
        still.push(p);
        continue;
      }
      const t = this.read(p.idx);
      this.retired.txPackets += t.txPackets;
      this.retired.txBytes += t.txBytes;
      this.retired.rxPackets += t.rxPackets;
      this.retired.rxBytes += t.rxBytes;
      const base = p.idx * PeerField.Stride;
      for (const b of this.blocks) b.fill(0, base, base + PeerField.Stride);
      this.free.push(p.idx);
    }
    this.pending = still;
  }

  /** One peer's entry, all blocks added up. */
  read(idx: number): PeerStateView {
    const base = idx * PeerField.Stride;
    const v: PeerStateView = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, pathMtu: 0 };
    for (const b of this.blocks) {
      v.txPackets += b[base + PeerField.TxPackets]!;
      v.txBytes += b[base + PeerField.TxBytes]!;
      v.rxPackets += b[base + PeerField.RxPackets]!;
      v.rxBytes += b[base + PeerField.RxBytes]!;
      const mtu = b[base + PeerField.PathMtu]!;
      if (mtu > 0 && (v.pathMtu === 0 || mtu < v.pathMtu)) v.pathMtu = mtu;
    }
    return v;
  }

  /**
   * Every entry read once, at one moment: the per-peer values, the traffic of removed peers
   * (retired, plus entries still waiting for reuse) and the totals all come from this one pass,
   * so per-peer values plus `removed` equal `totals` exactly, whatever the workers count while
   * it runs (issue: a scrape that read the totals and the peers in two passes saw them disagree).
   */
  reading(): PeerReading {
    const n = this.highWater;
    const values = new Float64Array(n * READING_STRIDE);
    const totals: Totals = { ...this.retired };
    for (let idx = 0; idx < n; idx++) {
      const v = this.read(idx);
      const o = idx * READING_STRIDE;
      values[o] = v.txPackets;
      values[o + 1] = v.txBytes;
      values[o + 2] = v.rxPackets;
      values[o + 3] = v.rxBytes;
      values[o + 4] = v.pathMtu;
      totals.txPackets += v.txPackets;
      totals.txBytes += v.txBytes;
      totals.rxPackets += v.rxPackets;
      totals.rxBytes += v.rxBytes;
    }
    const removed: Totals = { ...this.retired };
    for (const p of this.pending) {
      const o = p.idx * READING_STRIDE;
      removed.txPackets += values[o]!;
      removed.txBytes += values[o + 1]!;
      removed.rxPackets += values[o + 2]!;
      removed.rxBytes += values[o + 3]!;
    }
    const index = this.index;
    return {
      totals,
      removed,
      of(node: string): PeerStateView | undefined {
        const idx = index.get(node);
        if (idx === undefined || idx >= n) return undefined;
        const o = idx * READING_STRIDE;
        return { txPackets: values[o]!, txBytes: values[o + 1]!, rxPackets: values[o + 2]!, rxBytes: values[o + 3]!, pathMtu: values[o + 4]! };
      },
    };
  }

  private allocate(name: string): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.highWater >= PEER_STATE_CAPACITY) {
      throw new PeerStateError(`cannot add peer "${name}": a node can have at most ${PEER_STATE_CAPACITY} peers (removed peers free their entry once the data path has moved past them)`);
    }
    return this.highWater++;
  }
}
