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
import type { FakeUdp } from '../../src/device/fake.js';

/** The tables with slot i -> state index i, and the given PeerFlags per slot (default none). */
export function tableSet(table: ForwardingTable, table6?: ForwardingTable6, flags?: number[]): TableSet {
  const stateOf = new Int32Array(Math.max(1, table.peerCount));
  for (let i = 0; i < stateOf.length; i++) stateOf[i] = i;
  const peerFlags = new Uint8Array(stateOf.length);
  if (flags) peerFlags.set(flags);
  return { table, table6, stateOf, peerFlags };
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

/** A TUN read with IFF_VNET_HDR: the 10-byte virtio header (little-endian, NEEDS_CSUM) and the packet. */
export function withVirtio(packet: Uint8Array, gsoType: number, gsoSize: number, csumStart = 20, csumOffset = 16): Uint8Array {
  const b = new Uint8Array(10 + packet.length);
  b[0] = 1; // NEEDS_CSUM
  b[1] = gsoType;
  b[2] = (csumStart + 20) & 0xff;
  b[4] = gsoSize & 0xff; b[5] = gsoSize >> 8;
  b[6] = csumStart & 0xff; b[7] = csumStart >> 8;
  b[8] = csumOffset & 0xff; b[9] = csumOffset >> 8;
  b.set(packet, 10);
  return b;
}

/** What the fake UDP socket put on the wire, one datagram each (GSO sends cut at their segment size). */
export function onWire(udp: FakeUdp): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const d of udp.sent) {
    if (d.gso === 0) out.push(d.data);
    else for (let p = 0; p < d.data.length; p += d.gso) out.push(d.data.subarray(p, Math.min(p + d.gso, d.data.length)));
  }
  return out;
}
