/**
 * The UDP side over the addon: one receiving socket bound to the VXLAN port, and a small pool of
 * sending sockets bound to kernel-chosen ephemeral ports on the same address.
 *
 * Why a pool: RFC 7348 §5 asks that the outer UDP source port be a hash of the inner flow so
 * that ECMP in the underlay spreads flows. A normal UDP socket can only send from its bound port,
 * and a raw socket would give up UDP GSO and the kernel's checksum offload. So the encapsulator
 * hashes the inner flow to one of `senders` sockets (a power of two), each with its own ephemeral
 * port: flows spread over that many source ports, all in the kernel's ephemeral range.
 */
import { nativeIo, UdpFlags } from './native.js';
import type { UdpBind } from './types.js';

export interface UdpHandles { readonly rxFd: number; readonly txFds: readonly number[]; readonly port: number; readonly gro: boolean; readonly gso: boolean }

export interface UdpOpenOptions {
  readonly address: number;
  readonly port: number;
  readonly senders: number;
  readonly gro: boolean;
  readonly socketBuffer: number;
}

export function openUdp(o: UdpOpenOptions): UdpHandles {
  const io = nativeIo();
  const rx = io.udpOpen(o.address, o.port, o.socketBuffer, o.socketBuffer, o.gro ? UdpFlags.Gro : 0);
  const txFds: number[] = [];
  let gso = true;
  try {
    for (let i = 0; i < o.senders; i++) {
      // IP_PMTUDISC_DO: the kernel never fragments our datagrams; one larger than the path MTU
      // it knows fails with EMSGSIZE, which is how the data path learns a peer's path MTU.
      const tx = io.udpOpen(o.address, 0, 1 << 20, o.socketBuffer, UdpFlags.PmtuDiscDo);
      txFds.push(tx.fd);
      gso &&= tx.gso;
    }
  } catch (err) {
    io.close(rx.fd);
    for (const fd of txFds) io.close(fd);
    throw err;
  }
  return { rxFd: rx.fd, txFds, port: rx.port, gro: rx.gro, gso };
}

export function closeUdp(h: UdpHandles): void {
  const io = nativeIo();
  io.close(h.rxFd);
  for (const fd of h.txFds) io.close(fd);
}

export function attachUdp(h: UdpHandles): UdpBind {
  const io = nativeIo();
  const rxFd = h.rxFd;
  const fds = Int32Array.from(h.txFds);
  return {
    senders: fds.length,
    gro: h.gro,
    recv: (slab, offsets, capacity, lengths, srcAddrs, gsoSizes, max, timeoutMs) =>
      io.udpRecv(rxFd, slab, offsets, capacity, lengths, srcAddrs, gsoSizes, max, timeoutMs),
    sendv: (l, from, count) => {
      const n = io.udpSendv(fds, l.sock, l.slab, l.iovOffsets, l.iovLengths, l.first, l.pieces, l.addrs, l.ports, l.gso, l.results, from, count);
      if (n >= 0) return n;
      l.results.fill(-n, from, from + count); // the call itself was refused: so was every message
      return 0;
    },
    pathMtu: (addr, port) => io.udpPathMtu(addr, port),
    close: () => { /* the main thread owns and closes the fds */ },
  };
}
