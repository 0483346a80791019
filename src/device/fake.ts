/**
 * In-memory stand-ins for `Tun` and `UdpBind`, for tests of the data path without a kernel.
 * `inject*` queues packets for the data path to read; `written`/`sent` record what it wrote.
 * They copy bytes (tests are allowed to allocate); the real devices never do.
 */
import type { Tun, UdpBind } from './types.js';

export class FakeTun implements Tun {
  readonly name = 'fake0';
  readonly inbound: Uint8Array[] = [];
  readonly written: Uint8Array[] = [];
  constructor(readonly vnetHeader = false) {}

  inject(pkt: Uint8Array): void { this.inbound.push(pkt.slice()); }

  read(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array, max: number, _timeoutMs = 0, maxBytes = 0): number {
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

  write(slab: Uint8Array, offsets: Int32Array, lengths: Int32Array, count: number): number {
    for (let i = 0; i < count; i++) this.written.push(slab.slice(offsets[i]!, offsets[i]! + lengths[i]!));
    return count;
  }

  close(): void {}
}

export interface FakeDatagram { readonly data: Uint8Array; readonly addr: number; readonly port: number; readonly sock: number; readonly gso: number }

export class FakeUdp implements UdpBind {
  readonly inbound: FakeDatagram[] = [];
  readonly sent: FakeDatagram[] = [];
  constructor(readonly senders = 4, readonly gro = false) {}

  inject(data: Uint8Array, addr: number, gso = 0): void {
    this.inbound.push({ data: data.slice(), addr, port: 8472, sock: 0, gso });
  }

  recv(slab: Uint8Array, offsets: Int32Array, capacity: number, lengths: Int32Array,
    srcAddrs: Uint32Array, gsoSizes: Int32Array, max: number): number {
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

  send(sockIndex: Uint8Array, slab: Uint8Array, offsets: Int32Array, lengths: Int32Array,
    dstAddrs: Uint32Array, dstPorts: Uint16Array, gsoSizes: Int32Array, count: number): number {
    for (let i = 0; i < count; i++) {
      this.sent.push({
        data: slab.slice(offsets[i]!, offsets[i]! + lengths[i]!),
        addr: dstAddrs[i]!, port: dstPorts[i]!, sock: sockIndex[i]!, gso: gsoSizes[i]!,
      });
    }
    return count;
  }

  close(): void {}
}
