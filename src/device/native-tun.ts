/**
 * TUN over the addon. The main thread opens the device (`openTun`) and hands the fd numbers to the
 * worker threads, which wrap them with `attachTun`. The device is always multi-queue
 * (IFF_MULTI_QUEUE): each open is one queue, with its own fd, and the kernel spreads the packets
 * it hands to us over the queues by flow, so each queue's worker reads its own queue and one
 * flow stays on one worker, in order. Opening it the same way whatever the queue count keeps one
 * set of device flags, so an agent restarted with another count attaches to the same device.
 * Offloads are negotiated here: TUNSETOFFLOAD may refuse bits an older kernel lacks, and the
 * caller learns which ones stuck.
 */
import { nativeIo, TunFlags, TunOffload } from './native.js';
import type { Tun } from './types.js';

export interface TunHandle {
  /** The first queue's fd; `fds` has one per queue. */
  readonly fd: number;
  readonly fds: readonly number[];
  readonly name: string;
  readonly vnetHeader: boolean;
  readonly offloads: number;
}

/** Opens (or attaches to) TUN device `name` with `queues` queues. With `vnetHeader`, asks for
 * CSUM+TSO4+TSO6 (+USO). */
export function openTun(name: string, vnetHeader: boolean, queues = 1): TunHandle {
  const io = nativeIo();
  const flags = TunFlags.MultiQueue | (vnetHeader ? TunFlags.VnetHeader : 0);
  const { fd, name: actual } = io.openTun(name, flags);
  const fds = [fd];
  try {
    while (fds.length < queues) fds.push(io.openTun(actual, flags).fd);
  } catch (err) {
    for (const f of fds) io.close(f);
    throw err;
  }
  let offloads = 0;
  if (vnetHeader) {
    const want = [
      TunOffload.Csum | TunOffload.Tso4 | TunOffload.Tso6 | TunOffload.Uso4 | TunOffload.Uso6,
      TunOffload.Csum | TunOffload.Tso4 | TunOffload.Tso6,
      TunOffload.Csum,
    ];
    for (const flags of want) {
      if (io.tunSetOffload(fd, flags) === 0) { offloads = flags; break; }
    }
  }
  return { fd, fds, name: actual, vnetHeader, offloads };
}

/** The fd of queue `queue`. */
export function tunQueueFd(h: TunHandle, queue: number): number {
  return h.fds[queue] ?? h.fd;
}

/** The Tun of queue `queue` (each queue's worker uses its own). */
export function attachTun(h: TunHandle, queue = 0): Tun {
  const io = nativeIo();
  const fd = tunQueueFd(h, queue);
  return {
    name: h.name,
    vnetHeader: h.vnetHeader,
    read: (slab, offsets, capacity, lengths, max, timeoutMs, maxBytes) => io.tunRead(fd, slab, offsets, capacity, lengths, max, timeoutMs, maxBytes ?? 0),
    writev: (l, count) => {
      const n = io.tunWritev(fd, l.slab, l.iovOffsets, l.iovLengths, l.first, l.pieces, count, l.results);
      if (n >= 0) return n;
      l.results.fill(-n, 0, count); // the call itself was refused: so was every packet
      return 0;
    },
    close: () => { io.close(fd); },
  };
}
