/**
 * What the data path learns and counts per peer, in shared typed arrays that outlive tables.
 *
 * The forwarding table is immutable: every peer change builds a new one, in which a peer's slot
 * may differ. What must survive the swap lives here instead, indexed by a stable *state index*
 * that the control plane assigns to each peer node for as long as it remains a peer: its packet
 * and byte counters, and its path MTU (learned from the kernel by the transmit worker, with the
 * time it expires). Each table is published with `stateOf`, slot -> state index.
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
  /** The smallest path MTU any transmit worker learned; 0 when none did. */
  pathMtu: number;
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

  /** The state index of `node`, or undefined when it is not a peer. */
  indexOf(node: string): number | undefined {
    return this.index.get(node);
  }

  /** Counts of peers no longer in the table (already folded out of their entries). */
  retiredTotals(): Totals {
    return { ...this.retired };
  }

  /** Everything ever counted: retired peers plus every entry in use or waiting for reuse. */
  totals(): Totals {
    const t: Totals = { ...this.retired };
    for (let idx = 0; idx < this.highWater; idx++) {
      const base = idx * PeerField.Stride;
      for (const b of this.blocks) {
        t.txPackets += b[base + PeerField.TxPackets]!;
        t.txBytes += b[base + PeerField.TxBytes]!;
        t.rxPackets += b[base + PeerField.RxPackets]!;
        t.rxBytes += b[base + PeerField.RxBytes]!;
      }
    }
    return t;
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
