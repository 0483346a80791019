/**
 * The two I/O edges of the data path, as narrow interfaces with batch-shaped calls.
 *
 * Every call moves N packets between the kernel and ONE caller-owned slab. Reads land each packet
 * in its own slot (`offsets[i]`, leaving the caller headroom in front for outer headers). Writes
 * and sends gather each packet from pieces of the slab, listed in an iovec table (`IoList`): a
 * segment's rebuilt headers in one place and its payload where it was read, so payload bytes are
 * never copied in userspace. The data path never sees a per-packet object. `native-*.ts`
 * implement these over the addon; `fake.ts` implements them in memory, with scripted failures.
 *
 * Errors are data: a read returns a negative errno; a write or send reports an errno per packet
 * in `results` (0 = done), so the caller counts exactly what went and what was refused.
 */

/** An iovec table over one slab, and per packet the range of its pieces. */
export interface IoList {
  readonly slab: Uint8Array;
  /** Piece j is slab[iovOffsets[j], iovOffsets[j] + iovLengths[j]). */
  readonly iovOffsets: Int32Array;
  readonly iovLengths: Int32Array;
  /** Packet i is the pieces first[i] .. first[i] + pieces[i] - 1. */
  readonly first: Int32Array;
  readonly pieces: Int32Array;
  /** Per packet, written by the call: 0 when it went, else the errno that refused it. */
  readonly results: Int32Array;
}

/** An IoList of UDP messages, each with its destination, sending socket and GSO segment size. */
export interface SendList extends IoList {
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  /** > 0: UDP_SEGMENT, the kernel cuts the message into datagrams of this many bytes. */
  readonly gso: Int32Array;
  /** Which sending socket (and so which outer source port). */
  readonly sock: Uint8Array;
}

export interface Tun {
  readonly name: string;
  /** True when every packet carries a 10-byte virtio_net_hdr in front (IFF_VNET_HDR). */
  readonly vnetHeader: boolean;
  /** Reads up to `max` packets, and stops early once `maxBytes` (if > 0) have been read; waits up
   * to `timeoutMs` for the first. Returns the count, 0 on timeout, or a negative errno. */
  read(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array, max: number, timeoutMs: number, maxBytes?: number): number;
  /** Writes packets [0, count) of `list`, one packet per write; returns how many the kernel took. */
  writev(list: IoList, count: number): number;
  close(): void;
}

export interface UdpBind {
  /** Number of sending sockets; `sock[i]` in a SendList picks one (the outer source port). */
  readonly senders: number;
  /** True when receive returns UDP GRO super-datagrams (`gsoSizes[i] > 0`). */
  readonly gro: boolean;
  /** Returns the count, 0 on timeout, or a negative errno; lengths[i] = -1 for a truncated datagram. */
  recv(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array,
    srcAddrs: Uint32Array, gsoSizes: Int32Array, max: number, timeoutMs: number): number;
  /** Sends messages [from, from + count) of `list`; returns how many went (results says which). */
  sendv(list: SendList, from: number, count: number): number;
  /** The kernel's current path MTU to addr (learned "fragmentation needed" included), or -errno. */
  pathMtu(addr: number, port: number): number;
  close(): void;
}

/** Linux errno values the data path tells apart (asm-generic/errno-base.h, errno.h). */
export const Errno = {
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EINVAL: 22,
  EMSGSIZE: 90,
  ENETUNREACH: 101,
  ENOBUFS: 105,
  EHOSTUNREACH: 113,
  EBADFD: 77,
} as const;
