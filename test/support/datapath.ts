/**
 * What the data-path tests share: a table set whose slot i keeps its counters in peer state
 * entry i, a fresh per-peer state block, and the packet and byte totals summed over it (the way
 * the engine computes them for a scrape).
 */
import { ForwardingTable } from '../../src/table/table.js';
import type { ForwardingTable6 } from '../../src/table/table6.js';
import type { TableSet } from '../../src/datapath/encap.js';
import { newPeerStateBuffer, peerStateBlock, PeerField } from '../../src/datapath/peer-state.js';
import type { Totals } from '../../src/datapath/counters.js';

/** The tables with slot i -> state index i. */
export function tableSet(table: ForwardingTable, table6?: ForwardingTable6): TableSet {
  const stateOf = new Int32Array(Math.max(1, table.peerCount));
  for (let i = 0; i < stateOf.length; i++) stateOf[i] = i;
  return { table, table6, stateOf };
}

/** A zeroed block of per-peer state. */
export function newPeerState(): Float64Array {
  return peerStateBlock(newPeerStateBuffer(1), 0);
}

/** Packets and bytes summed over the first `peers` state entries. */
export function totals(ps: Float64Array, peers = 16): Totals {
  const t: Totals = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };
  for (let i = 0; i < peers; i++) {
    const b = i * PeerField.Stride;
    t.txPackets += ps[b + PeerField.TxPackets]!;
    t.txBytes += ps[b + PeerField.TxBytes]!;
    t.rxPackets += ps[b + PeerField.RxPackets]!;
    t.rxBytes += ps[b + PeerField.RxBytes]!;
  }
  return t;
}

/** One peer's field. */
export function peerField(ps: Float64Array, slot: number, field: number): number {
  return ps[slot * PeerField.Stride + field]!;
}
