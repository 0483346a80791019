/**
 * The two I/O edges of the data path, as narrow interfaces with batch-shaped calls.
 *
 * Both move N packets per call between the kernel and ONE caller-owned slab: `offsets[i]` says
 * where packet i starts (the caller keeps headroom in front of it for outer headers), `lengths[i]`
 * how long it is. The data path never sees a per-packet object. `native-*.ts` implement them over
 * the addon; `fake.ts` implements them in memory for tests.
 */

export interface Tun {
  readonly name: string;
  /** True when every packet carries a 10-byte virtio_net_hdr in front (IFF_VNET_HDR). */
  readonly vnetHeader: boolean;
  /** Reads up to `max` packets, and stops early once `maxBytes` (if > 0) have been read; waits up
   * to `timeoutMs` for the first. Returns the count (0: none). */
  read(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array, max: number, timeoutMs: number, maxBytes?: number): number;
  /** Writes `count` packets; returns how many the kernel accepted. */
  write(slab: Uint8Array, offsets: Int32Array, lengths: Int32Array, count: number): number;
  close(): void;
}

export interface UdpBind {
  /** Number of sending sockets; `sockIndex[i]` in send picks one (the outer source port). */
  readonly senders: number;
  /** True when receive returns UDP GRO super-datagrams (`gsoSizes[i] > 0`). */
  readonly gro: boolean;
  recv(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array,
    srcAddrs: Uint32Array, gsoSizes: Int32Array, max: number, timeoutMs: number): number;
  send(sockIndex: Uint8Array, slab: Uint8Array, offsets: Int32Array, lengths: Int32Array,
    dstAddrs: Uint32Array, dstPorts: Uint16Array, gsoSizes: Int32Array, count: number): number;
  close(): void;
}
