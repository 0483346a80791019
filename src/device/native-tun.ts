/**
 * TUN over the addon. The main thread opens the device (`openTun`) and hands the fd number to the
 * worker threads, which wrap it with `attachTun`; the fd is shared, and the kernel serialises
 * reads and writes on it. Offloads are negotiated here: TUNSETOFFLOAD may refuse bits an older
 * kernel lacks, and the caller learns which ones stuck.
 */
import { nativeIo, TunFlags, TunOffload } from './native.js';
import type { Tun } from './types.js';

export interface TunHandle { readonly fd: number; readonly name: string; readonly vnetHeader: boolean; readonly offloads: number }

/** Opens (or attaches to) TUN device `name`. With `vnetHeader`, asks for CSUM+TSO4+TSO6 (+USO). */
export function openTun(name: string, vnetHeader: boolean): TunHandle {
  const io = nativeIo();
  const { fd, name: actual } = io.openTun(name, vnetHeader ? TunFlags.VnetHeader : 0);
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
  return { fd, name: actual, vnetHeader, offloads };
}

export function attachTun(h: TunHandle): Tun {
  const io = nativeIo();
  const fd = h.fd;
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
