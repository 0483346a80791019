/**
 * In-memory stand-ins for `Tun` and `UdpBind`, for tests of the data path without a kernel.
 * `inject*` queues packets for the data path to read; `written`/`sent` record what it wrote,
 * each packet gathered from its pieces. They copy bytes (tests may allocate); the real devices
 * never do.
 *
 * Both can fail on script, so the error counters and the send accounting are tested as well as
 * the happy path: `failNext(errno, n)` makes the next n packets (writes or messages) fail with
 * that errno; `failWhen(pred)` fails every packet the predicate picks (e.g. messages larger
 * than a path MTU, as the kernel refuses them), `readError` makes the next read return -errno.
 */
import type { IoList, SendList, Tun, UdpBind } from './types.js';

function gather(list: IoList, i: number): Uint8Array {
  const first = list.first[i]!;
  const n = list.pieces[i]!;
  let len = 0;
  for (let j = first; j < first + n; j++) len += list.iovLengths[j]!;
  const out = new Uint8Array(len);
  let at = 0;
  for (let j = first; j < first + n; j++) {
    const o = list.iovOffsets[j]!;
    const l = list.iovLengths[j]!;
    out.set(list.slab.subarray(o, o + l), at);
    at += l;
  }
  return out;
}

/** Scripted failures shared by both fakes. */
class Script<T> {
  private queue: number[] = [];
  private pred: ((item: T) => number) | undefined;
  /** The next `n` packets fail with `errno`. */
  failNext(errno: number, n = 1): void {
    for (let i = 0; i < n; i++) this.queue.push(errno);
  }
  /** Every packet for which `pred` returns a non-zero errno fails with it (until cleared). */
  failWhen(pred: ((item: T) => number) | undefined): void {
    this.pred = pred;
  }
  errnoFor(item: T): number {
    const q = this.queue.shift();
    if (q !== undefined) return q;
    return this.pred ? this.pred(item) : 0;
  }
}

export class FakeTun implements Tun {
  readonly name = 'fake0';
  readonly inbound: Uint8Array[] = [];
  readonly written: Uint8Array[] = [];
  /** Writes that failed, with their errno. */
  readonly refused: Array<{ data: Uint8Array; errno: number }> = [];
  readonly script = new Script<Uint8Array>();
  /** When set, the next read returns -readError (and clears it). */
  readError = 0;
  constructor(readonly vnetHeader = false) {}

  inject(pkt: Uint8Array): void { this.inbound.push(pkt.slice()); }

  read(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array, max: number, _timeoutMs = 0, maxBytes = 0): number {
    if (this.readError !== 0) {
      const e = this.readError;
      this.readError = 0;
      return -e;
    }
    let n = 0;
    let bytes = 0;
    while (n < max && this.inbound.length > 0 && (maxBytes <= 0 || bytes < maxBytes)) {
      const p = this.inbound.shift()!;
      const len = Math.min(p.length, capacity);
      slab.set(p.subarray(0, len), offsets[n]!);
      lengths[n] = len;
      bytes += len;
      n++;
    }
    return n;
  }

  writev(list: IoList, count: number): number {
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const data = gather(list, i);
      const errno = this.script.errnoFor(data);
      list.results[i] = errno;
      if (errno !== 0) {
        this.refused.push({ data, errno });
        continue;
      }
      this.written.push(data);
      ok++;
    }
    return ok;
  }

  close(): void {}
}

export interface FakeDatagram { readonly data: Uint8Array; readonly addr: number; readonly port: number; readonly sock: number; readonly gso: number }

export class FakeUdp implements UdpBind {
  readonly inbound: FakeDatagram[] = [];
  readonly sent: FakeDatagram[] = [];
  /** Messages the script refused, with their errno. */
  readonly refused: Array<FakeDatagram & { errno: number }> = [];
  readonly script = new Script<FakeDatagram>();
  /** When set, the next recv returns -recvError (and clears it). */
  recvError = 0;
  /** What pathMtu answers, per destination address; default `defaultPathMtu`. */
  readonly pathMtus = new Map<number, number>();
  defaultPathMtu = 1500;
  /** Number of pathMtu queries made. */
  pathMtuQueries = 0;
  constructor(readonly senders = 4, readonly gro = false) {}

  inject(data: Uint8Array, addr: number, gso = 0): void {
    this.inbound.push({ data: data.slice(), addr, port: 8472, sock: 0, gso });
  }

  recv(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array,
    srcAddrs: Uint32Array, gsoSizes: Int32Array, max: number): number {
    if (this.recvError !== 0) {
      const e = this.recvError;
      this.recvError = 0;
      return -e;
    }
    let n = 0;
    while (n < max && this.inbound.length > 0) {
      const d = this.inbound.shift()!;
      if (d.data.length > capacity) {
        lengths[n] = -1; // truncated, as MSG_TRUNC reports it
      } else {
        slab.set(d.data, offsets[n]!);
        lengths[n] = d.data.length;
      }
      srcAddrs[n] = d.addr;
      gsoSizes[n] = d.gso;
      n++;
    }
    return n;
  }

  sendv(list: SendList, from: number, count: number): number {
    let ok = 0;
    for (let i = from; i < from + count; i++) {
      const d: FakeDatagram = { data: gather(list, i), addr: list.addrs[i]!, port: list.ports[i]!, sock: list.sock[i]!, gso: list.gso[i]! };
      const errno = this.script.errnoFor(d);
      list.results[i] = errno;
      if (errno !== 0) {
        this.refused.push({ ...d, errno });
        continue;
      }
      this.sent.push(d);
      ok++;
    }
    return ok;
  }

  pathMtu(addr: number): number {
    this.pathMtuQueries++;
    return this.pathMtus.get(addr) ?? this.defaultPathMtu;
  }

  close(): void {}
}
