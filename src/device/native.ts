/**
 * Loads the native addon (`native/vxnet_io.cc`, built by node-gyp during `npm ci`) and gives its
 * functions TypeScript types. Nothing here adds behaviour: every function is one syscall pattern,
 * documented at its definition in the C++ file. The addon is context-aware, so each worker thread
 * loads its own instance and calls it synchronously.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeIo {
  openTun(name: string, flags: number): { fd: number; name: string };
  tunSetOffload(fd: number, flags: number): number;
  tunRead(fd: number, slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array,
    max: number, timeoutMs: number, maxBytes?: number): number;
  tunWritev(fd: number, slab: Uint8Array, iovOffsets: Int32Array, iovLengths: Int32Array, first: Int32Array,
    pieces: Int32Array, count: number, results: Int32Array): number;
  udpOpen(addr: number, port: number, rcvbuf: number, sndbuf: number, flags: number): { fd: number; port: number; gro: boolean; gso: boolean };
  udpRecv(fd: number, slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array,
    srcAddrs: Uint32Array, gsoSizes: Int32Array, max: number, timeoutMs: number): number;
  udpSendv(fds: Int32Array, sockIndex: Uint8Array, slab: Uint8Array, iovOffsets: Int32Array, iovLengths: Int32Array,
    first: Int32Array, pieces: Int32Array, dstAddrs: Uint32Array, dstPorts: Uint16Array, gsoSizes: Int32Array,
    results: Int32Array, from: number, count: number): number;
  udpPathMtu(addr: number, port: number): number;
  close(fd: number): number;
  /** Waits up to timeoutMs for fdA and/or fdB to be readable: bit 1 fdA, bit 2 fdB, 0 timeout, -errno. */
  pollIn(fdA: number, fdB: number, timeoutMs: number): number;
  /** An ETHTOOL_G* value of an interface (EthtoolCmd), or -errno. */
  ethtoolGet(ifname: string, cmd: number): number;
  // Node state (src/node/): netlink, TUN persistence, the node lock, fd readiness.
  netlinkOpen(protocol: number, groups: number, rcvbuf: number): number;
  netlinkSend(fd: number, buf: Uint8Array, length: number): number;
  netlinkRecv(fd: number, buf: Uint8Array, timeoutMs: number, from: Uint32Array): number;
  tunSetPersist(fd: number, on: number): number;
  tunAttach(fd: number, name: string, flags: number): number;
  flock(fd: number, operation: number): number;
  watchReadable(fd: number, callback: (status: number) => void): number;
  unwatchReadable(id: number): number;
  // The hand-over (src/node/handover.ts): a Unix SOCK_SEQPACKET socket, fds passed as SCM_RIGHTS.
  unixSeqpacket(path: string, listen: number): number;
  unixAccept(fd: number): number;
  sendFds(fd: number, buf: Uint8Array, length: number, fds: Int32Array, count: number): number;
  recvFds(fd: number, buf: Uint8Array, timeoutMs: number, fds: Int32Array): number;
  readonly maxBatch: number;
  /** Pieces one tunWritev/udpSendv call can gather across all its packets. */
  readonly maxIov: number;
}

/** openTun flags. */
export const TunFlags = { VnetHeader: 1, MultiQueue: 2 } as const;
/** udpOpen flags. */
export const UdpFlags = { Gro: 1, ReusePort: 2, PmtuDiscDo: 4 } as const;
/** flock operations (sys/file.h). */
export const FlockOp = { Shared: 1, Exclusive: 2, NonBlocking: 4, Unlock: 8 } as const;
/** TUNSETOFFLOAD bits (linux/if_tun.h). */
export const TunOffload = { Csum: 0x01, Tso4: 0x02, Tso6: 0x04, TsoEcn: 0x08, Ufo: 0x10, Uso4: 0x20, Uso6: 0x40 } as const;

/** ethtoolGet commands (linux/ethtool.h). */
export const EthtoolCmd = { GetGro: 0x2b } as const;

let cached: NativeIo | undefined;

/** The addon, loaded once per thread. Throws an operator-readable error when it was not built. */
export function nativeIo(): NativeIo {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/src/device -> repo root is three levels up; src/device (ts-node style) is two.
  const candidates = [join(here, '../../../build/Release/vxnet_io.node'), join(here, '../../build/Release/vxnet_io.node')];
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(`native addon vxnet_io.node not found (looked in ${candidates.join(', ')}); run "npm ci" (it builds it with node-gyp)`);
  }
  cached = createRequire(import.meta.url)(path) as NativeIo;
  return cached;
}
