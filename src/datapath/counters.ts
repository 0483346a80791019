/**
 * Hot-path counters in shared typed arrays.
 *
 * The data-path workers increment plain Float64Array slots (no Atomics: every slot has exactly
 * one writer thread, and a 64-bit store is not torn on the platforms we run on); the control
 * plane reads them at scrape time. Float64 counts exactly up to 2^53. Drop reasons and I/O
 * errors are data, not exceptions: one slot per reason, one per (operation, errno).
 *
 * Packets and bytes are counted per peer only (peer-state.ts), and the totals are the sum over
 * peers, computed at scrape time. So per-peer counters add up to the totals at every moment a
 * scrape can see, across table swaps and peer removals included.
 *
 * Each worker has its own block of slots (`block` below), so the worker of one TUN queue never
 * shares a slot with another; readers add the blocks up.
 */

/** Inbound (UDP -> TUN) drop reasons, in slot order. Names are the metric's `reason` label. */
export const RX_DROP_REASONS = [
  'truncated', 'bad_flags', 'reserved_bits', 'wrong_vni', 'unknown_peer', 'bad_inner_mac',
  'bad_ethertype', 'bad_inner_ip', 'spoofed_source', 'not_local', 'tun_write',
] as const;
/** Outbound (TUN -> UDP) drop reasons. `too_big`: larger than the path to its peer carries (the
 * sender got an ICMP error where that helps); `udp_send`: refused by the kernel for any other
 * reason (the errno is in the I/O error counters). */
export const TX_DROP_REASONS = ['bad_ip', 'no_route', 'too_big', 'local_loop', 'udp_send'] as const;

export type DropReason = (typeof RX_DROP_REASONS)[number] | (typeof TX_DROP_REASONS)[number];

/** The system calls whose errors are counted, in slot order (the metric's `op` label). */
export const IO_OPS = ['tun_read', 'tun_write', 'udp_recv', 'udp_send'] as const;
/** The errno names counted one by one; anything else is `other`. */
export const IO_ERRNOS = ['EAGAIN', 'ENOBUFS', 'EMSGSIZE', 'EINVAL', 'EFAULT', 'EIO', 'EBADF', 'EBADFD', 'ENETUNREACH', 'EHOSTUNREACH', 'other'] as const;
const ERRNO_NUMBER: Readonly<Record<(typeof IO_ERRNOS)[number], number>> = {
  EAGAIN: 11, ENOBUFS: 105, EMSGSIZE: 90, EINVAL: 22, EFAULT: 14, EIO: 5, EBADF: 9, EBADFD: 77,
  ENETUNREACH: 101, EHOSTUNREACH: 113, other: -1,
};
/** errno -> index in IO_ERRNOS (the last, `other`, for anything unlisted). */
const ERRNO_INDEX = new Int8Array(256).fill(IO_ERRNOS.length - 1);
IO_ERRNOS.forEach((name, i) => {
  const n = ERRNO_NUMBER[name];
  if (n >= 0) ERRNO_INDEX[n] = i;
});

/** Global counter slots (per block). */
export const Counter = {
  IcmpSent: 0,
  IcmpSuppressed: 1,
  TxBatches: 2,
  RxBatches: 3,
  /** Segments cut from TSO/USO super-packets. */
  TxSegments: 4,
  /** TCP segments and UDP datagrams merged into TUN super-packets. */
  RxCoalesced: 5,
  TableGeneration: 6,
  /** Inner IPv4 packets fragmented to fit a smaller path, and the fragments sent. */
  TxFragmented: 7,
  /** GSO messages the kernel refused and that were retried as single datagrams. */
  GsoFallbacks: 8,
  /** Path MTU changes learned from the kernel (down) or aged out (back up). */
  PathMtuUpdates: 9,
  /** Date.now() of each worker's last loop turn that did not fail: its heartbeat. */
  TxHeartbeat: 10,
  RxHeartbeat: 11,
  /** Consecutive failed I/O calls of each worker (0 once one succeeds), and the last errno. */
  TxFailing: 12,
  RxFailing: 13,
  TxLastErrno: 14,
  RxLastErrno: 15,
  /** First inbound drop slot; reason i lives at RxDropBase + i. */
  RxDropBase: 16,
  TxDropBase: 16 + RX_DROP_REASONS.length,
  IoErrorBase: 16 + RX_DROP_REASONS.length + TX_DROP_REASONS.length,
} as const;

/** Slots per block. */
export const COUNTER_SLOTS = Counter.IoErrorBase + IO_OPS.length * IO_ERRNOS.length;

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

export const IoOp = { TunRead: 0, TunWrite: 1, UdpRecv: 2, UdpSend: 3 } as const;

/** The slot counting errno `errno` of operation `op`. */
export function ioErrorSlot(op: number, errno: number): number {
  const i = errno >= 0 && errno < 256 ? ERRNO_INDEX[errno]! : IO_ERRNOS.length - 1;
  return Counter.IoErrorBase + op * IO_ERRNOS.length + i;
}

/** Counters for `blocks` workers (queues), zeroed. */
export function newCounters(blocks = 1): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8 * Math.max(1, blocks)));
}

/** The view of block `block` (one per worker, that is per queue) of a counters buffer. */
export function counterBlock(buffer: SharedArrayBuffer, block: number): Float64Array {
  return new Float64Array(buffer, block * COUNTER_SLOTS * 8, COUNTER_SLOTS);
}

export interface Totals { txPackets: number; txBytes: number; rxPackets: number; rxBytes: number }

export interface CounterSnapshot extends Totals {
  icmpSent: number; icmpSuppressed: number; txBatches: number; rxBatches: number;
  txSegments: number; rxCoalesced: number; txFragmented: number; gsoFallbacks: number; pathMtuUpdates: number;
  dropped: Record<DropReason, number>;
  /** ioErrors[op][errno name] */
  ioErrors: Record<(typeof IO_OPS)[number], Record<(typeof IO_ERRNOS)[number], number>>;
}

/** Adds up every block of `c`; the packet and byte totals come from the per-peer state. */
export function readCounters(c: Float64Array, totals: Totals): CounterSnapshot {
  const blocks = Math.max(1, Math.floor(c.length / COUNTER_SLOTS));
  const sum = (slot: number): number => {
    let s = 0;
    for (let b = 0; b < blocks; b++) s += c[b * COUNTER_SLOTS + slot] ?? 0;
    return s;
  };
  const dropped = {} as Record<DropReason, number>;
  for (const [reason, slot] of Object.entries(Drop)) dropped[reason as DropReason] = sum(slot);
  const ioErrors = {} as CounterSnapshot['ioErrors'];
  IO_OPS.forEach((op, o) => {
    const row = {} as Record<(typeof IO_ERRNOS)[number], number>;
    IO_ERRNOS.forEach((e, i) => { row[e] = sum(Counter.IoErrorBase + o * IO_ERRNOS.length + i); });
    ioErrors[op] = row;
  });
  return {
    ...totals,
    icmpSent: sum(Counter.IcmpSent), icmpSuppressed: sum(Counter.IcmpSuppressed),
    txBatches: sum(Counter.TxBatches), rxBatches: sum(Counter.RxBatches),
    txSegments: sum(Counter.TxSegments), rxCoalesced: sum(Counter.RxCoalesced),
    txFragmented: sum(Counter.TxFragmented), gsoFallbacks: sum(Counter.GsoFallbacks), pathMtuUpdates: sum(Counter.PathMtuUpdates),
    dropped, ioErrors,
  };
}
