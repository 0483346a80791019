/**
 * Hot-path counters in shared typed arrays.
 *
 * The two data-path workers each increment plain Float64Array slots (no Atomics: every slot has
 * exactly one writer thread, and a 64-bit store is not torn on the platforms we run on); the
 * control plane reads them at scrape time. Float64 counts exactly up to 2^53, which is 285 years
 * of 1 Mpps. Drop reasons are data, not exceptions (STYLE.md §6): one slot per reason.
 */

/** Inbound (UDP -> TUN) drop reasons, in slot order. Names are the metric's `reason` label. */
export const RX_DROP_REASONS = [
  'truncated', 'bad_flags', 'reserved_bits', 'wrong_vni', 'unknown_peer', 'bad_inner_mac',
  'bad_ethertype', 'bad_inner_ip', 'spoofed_source', 'not_local', 'tun_write',
] as const;
/** Outbound (TUN -> UDP) drop reasons. */
export const TX_DROP_REASONS = ['bad_ip', 'no_route', 'too_big', 'local_loop', 'udp_send'] as const;

export type DropReason = (typeof RX_DROP_REASONS)[number] | (typeof TX_DROP_REASONS)[number];

/** Global counter slots. */
export const Counter = {
  TxPackets: 0,
  TxBytes: 1,
  RxPackets: 2,
  RxBytes: 3,
  IcmpSent: 4,
  IcmpSuppressed: 5,
  TxBatches: 6,
  RxBatches: 7,
  TxSegments: 8,
  RxCoalesced: 9,
  TableGeneration: 10,
  /** First inbound drop slot; reason i lives at RxDropBase + i. */
  RxDropBase: 16,
  TxDropBase: 16 + RX_DROP_REASONS.length,
} as const;

export const COUNTER_SLOTS = Counter.TxDropBase + TX_DROP_REASONS.length;

export const Drop = {
  truncated: Counter.RxDropBase + 0,
  bad_flags: Counter.RxDropBase + 1,
  reserved_bits: Counter.RxDropBase + 2,
  wrong_vni: Counter.RxDropBase + 3,
  unknown_peer: Counter.RxDropBase + 4,
  bad_inner_mac: Counter.RxDropBase + 5,
  bad_ethertype: Counter.RxDropBase + 6,
  bad_inner_ip: Counter.RxDropBase + 7,
  spoofed_source: Counter.RxDropBase + 8,
  not_local: Counter.RxDropBase + 9,
  tun_write: Counter.RxDropBase + 10,
  bad_ip: Counter.TxDropBase + 0,
  no_route: Counter.TxDropBase + 1,
  too_big: Counter.TxDropBase + 2,
  local_loop: Counter.TxDropBase + 3,
  udp_send: Counter.TxDropBase + 4,
} as const satisfies Record<DropReason, number>;

/** Per-peer slots, 4 per table slot: tx packets, tx bytes, rx packets, rx bytes. */
export const PeerCounter = { TxPackets: 0, TxBytes: 1, RxPackets: 2, RxBytes: 3, Stride: 4 } as const;

export function newCounters(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8));
}

export function newPeerCounters(peers: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(1, peers) * PeerCounter.Stride * 8));
}

export interface CounterSnapshot {
  txPackets: number; txBytes: number; rxPackets: number; rxBytes: number;
  icmpSent: number; icmpSuppressed: number; txBatches: number; rxBatches: number;
  txSegments: number; rxCoalesced: number;
  dropped: Record<DropReason, number>;
}

export function readCounters(c: Float64Array): CounterSnapshot {
  const dropped = {} as Record<DropReason, number>;
  for (const [reason, slot] of Object.entries(Drop)) dropped[reason as DropReason] = c[slot]!;
  return {
    txPackets: c[Counter.TxPackets]!, txBytes: c[Counter.TxBytes]!,
    rxPackets: c[Counter.RxPackets]!, rxBytes: c[Counter.RxBytes]!,
    icmpSent: c[Counter.IcmpSent]!, icmpSuppressed: c[Counter.IcmpSuppressed]!,
    txBatches: c[Counter.TxBatches]!, rxBatches: c[Counter.RxBatches]!,
    txSegments: c[Counter.TxSegments]!, rxCoalesced: c[Counter.RxCoalesced]!,
    dropped,
  };
}
