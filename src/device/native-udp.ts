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

export interface UdpHandles {
  /** The first receiving socket; `rxFds` has one per queue (SO_REUSEPORT when more than one). */
  readonly rxFd: number;
  readonly rxFds: readonly number[];
  readonly txFds: readonly number[];
  readonly port: number;
  readonly gro: boolean;
  readonly gso: boolean;
}

export interface UdpOpenOptions {
  readonly address: number;
  readonly port: number;
  readonly senders: number;
  readonly gro: boolean;
  readonly socketBuffer: number;
  /** Receiving sockets, one per queue. More than one share the port with SO_REUSEPORT, and the
   * kernel spreads datagrams over them by their addresses and ports: by flow, since the outer
   * source port is the inner flow's hash. */
  readonly queues?: number;
}

export function openUdp(o: UdpOpenOptions): UdpHandles {
  const io = nativeIo();
  const queues = Math.max(1, o.queues ?? 1);
  const rxFlags = (o.gro ? UdpFlags.Gro : 0) | (queues > 1 ? UdpFlags.ReusePort : 0);
  const rx = io.udpOpen(o.address, o.port, o.socketBuffer, o.socketBuffer, rxFlags);
  const rxFds = [rx.fd];
  const txFds: number[] = [];
  let gso = true;
  try {
    while (rxFds.length < queues) rxFds.push(io.udpOpen(o.address, rx.port, o.socketBuffer, o.socketBuffer, rxFlags).fd);
    for (let i = 0; i < o.senders; i++) {
      // IP_PMTUDISC_DO: the kernel never fragments our datagrams; one larger than the path MTU
      // it knows fails with EMSGSIZE, which is how the data path learns a peer's path MTU.
      const tx = io.udpOpen(o.address, 0, 1 << 20, o.socketBuffer, UdpFlags.PmtuDiscDo);
      txFds.push(tx.fd);
      gso &&= tx.gso;
    }
  } catch (err) {
    for (const fd of [...rxFds, ...txFds]) io.close(fd);
    throw err;
  }
  return { rxFd: rx.fd, rxFds, txFds, port: rx.port, gro: rx.gro, gso };
}

export function closeUdp(h: UdpHandles): void {
  const io = nativeIo();
  for (const fd of [...h.rxFds, ...h.txFds]) io.close(fd);
}

/** The receiving socket of queue `queue`. */
export function udpQueueFd(h: UdpHandles, queue: number): number {
  return h.rxFds[queue] ?? h.rxFd;
}

/** The UdpBind of queue `queue`: its own receiving socket, and the shared senders. */
export function attachUdp(h: UdpHandles, queue = 0): UdpBind {
  const io = nativeIo();
  const rxFd = udpQueueFd(h, queue);
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
