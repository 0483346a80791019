/**
 * The native addon itself, over loopback UDP (no root, no namespace): UDP GSO out and the UDP_GRO
 * control message in, MSG_TRUNC, a partial sendmmsg with the refused message named by its errno,
 * IP_MTU, an error from a closed socket, and the bounds checks: a negative or out-of-slab offset
 * or length from a TypeScript bug must fail its packet with EFAULT, never touch memory outside
 * the slab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeIo, UdpFlags } from '../../../src/device/native.js';
import { Errno } from '../../../src/device/types.js';

const LOOPBACK = 0x7f000001;

interface Pair { rx: number; tx: number; port: number }

function pair(gro: boolean): Pair {
  const io = nativeIo();
  const rx = io.udpOpen(LOOPBACK, 0, 1 << 20, 1 << 20, gro ? UdpFlags.Gro : 0);
  const tx = io.udpOpen(LOOPBACK, 0, 1 << 20, 1 << 20, UdpFlags.PmtuDiscDo);
  return { rx: rx.fd, tx: tx.fd, port: rx.port };
}

function close(p: Pair): void {
  nativeIo().close(p.rx);
  nativeIo().close(p.tx);
}

/** A send list over `slab` whose message i is the pieces listed in `messages[i]` ([offset, length] pairs). */
function sendList(slab: Uint8Array, port: number, messages: Array<{ pieces: Array<[number, number]>; gso?: number }>) {
  const pieces = messages.flatMap((m) => m.pieces);
  const n = messages.length;
  const first = new Int32Array(n);
  let at = 0;
  messages.forEach((m, i) => { first[i] = at; at += m.pieces.length; });
  return {
    slab,
    iovOffsets: Int32Array.from(pieces.map((p) => p[0])),
    iovLengths: Int32Array.from(pieces.map((p) => p[1])),
    first,
    pieces: Int32Array.from(messages.map((m) => m.pieces.length)),
    addrs: new Uint32Array(n).fill(LOOPBACK),
    ports: new Uint16Array(n).fill(port),
    gso: Int32Array.from(messages.map((m) => m.gso ?? 0)),
    sock: new Uint8Array(n),
    results: new Int32Array(n).fill(-1),
  };
}

function send(p: Pair, l: ReturnType<typeof sendList>): number {
  return nativeIo().udpSendv(Int32Array.of(p.tx), l.sock, l.slab, l.iovOffsets, l.iovLengths, l.first, l.pieces, l.addrs, l.ports, l.gso, l.results, 0, l.first.length);
}

/** Receives everything that arrives within a short wait: datagram bytes, with GRO sizes. */
function receive(p: Pair, capacity = 65536): Array<{ data: Uint8Array; gso: number }> {
  const io = nativeIo();
  const slab = new Uint8Array(8 * capacity);
  const offsets = Int32Array.from({ length: 8 }, (_, i) => i * capacity);
  const lengths = new Int32Array(8);
  const src = new Uint32Array(8);
  const gso = new Int32Array(8);
  const out: Array<{ data: Uint8Array; gso: number }> = [];
  for (let round = 0; round < 20; round++) {
    const n = io.udpRecv(p.rx, slab, offsets, capacity, lengths, src, gso, 8, 50);
    if (n <= 0) break;
    for (let i = 0; i < n; i++) {
      assert.equal(src[i], LOOPBACK, 'source address reported');
      out.push({ data: lengths[i]! < 0 ? new Uint8Array(0) : slab.slice(offsets[i]!, offsets[i]! + lengths[i]!), gso: lengths[i]! < 0 ? -1 : gso[i]! });
    }
  }
  return out;
}

test('UDP GSO out, gathered from pieces; the receiver sees the same bytes, as a GRO super-datagram or as datagrams', () => {
  const p = pair(true);
  try {
    const slab = new Uint8Array(16384);
    for (let i = 0; i < slab.length; i++) slab[i] = (i * 7) & 0xff;
    // Three segments of 1000 bytes and one of 500, each its 100-byte "header" and its "payload"
    // from elsewhere in the slab: what the data path sends for a TSO burst.
    const segs: Array<[number, number]> = [];
    for (let s = 0; s < 4; s++) {
      segs.push([s * 100, 100]);
      segs.push([4096 + s * 900, s === 3 ? 400 : 900]);
    }
    const l = sendList(slab, p.port, [{ pieces: segs, gso: 1000 }]);
    assert.equal(send(p, l), 1);
    assert.deepEqual([...l.results], [0]);
    const got = receive(p);
    const bytes = Uint8Array.from(got.flatMap((g) => [...g.data]));
    const want = Uint8Array.from(segs.flatMap(([o, n]) => [...slab.subarray(o, o + n)]));
    assert.deepEqual(bytes, want, 'the gathered bytes arrive in order');
    const sizes = got.flatMap((g) => (g.gso > 0 ? Array.from({ length: Math.ceil(g.data.length / g.gso) }, (_, i) => Math.min(g.gso, g.data.length - i * g.gso)) : [g.data.length]));
    assert.deepEqual(sizes, [1000, 1000, 1000, 500], `segment sizes, as received (${got.length} receive entries, gso ${got.map((g) => g.gso).join(',')})`);
  } finally {
    close(p);
  }
});

test('a datagram larger than the slot is reported truncated (MSG_TRUNC), not cut silently', () => {
  const p = pair(false);
  try {
    const slab = new Uint8Array(4096);
    const l = sendList(slab, p.port, [{ pieces: [[0, 3000]] }]);
    assert.equal(send(p, l), 1);
    const got = receive(p, 1000);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.gso, -1, 'length -1: truncated');
  } finally {
    close(p);
  }
});

test('a partial sendmmsg: the refused message gets its errno, the others still go', () => {
  const p = pair(false);
  try {
    const slab = new Uint8Array(80_000);
    // 70,000 bytes is over the 65,507-byte IPv4 UDP limit: EMSGSIZE.
    const l = sendList(slab, p.port, [{ pieces: [[0, 100]] }, { pieces: [[0, 70_000]] }, { pieces: [[100, 200]] }]);
    assert.equal(send(p, l), 2);
    assert.deepEqual([...l.results], [0, Errno.EMSGSIZE, 0]);
    assert.deepEqual(receive(p).map((g) => g.data.length), [100, 200]);
  } finally {
    close(p);
  }
});

test('bounds: a negative or out-of-slab piece fails its message with EFAULT; nothing outside the slab is sent', () => {
  const p = pair(false);
  try {
    const slab = new Uint8Array(1000);
    const cases: Array<[string, [number, number]]> = [
      ['negative offset', [-64, 100]],
      ['negative length', [0, -1]],
      ['past the end', [900, 200]],
      ['offset + length wrapping int32', [0x7fffff00, 0x200]],
    ];
    for (const [name, piece] of cases) {
      const l = sendList(slab, p.port, [{ pieces: [[0, 10]] }, { pieces: [piece] }, { pieces: [[10, 10]] }]);
      assert.equal(send(p, l), 2, name);
      assert.deepEqual([...l.results], [0, Errno.EFAULT, 0], name);
      assert.deepEqual(receive(p).map((g) => g.data.length), [10, 10], `${name}: only the valid messages arrive`);
    }
    // A piece index outside the iovec table.
    const l = sendList(slab, p.port, [{ pieces: [[0, 10]] }]);
    l.first[0] = 5;
    send(p, l);
    assert.deepEqual([...l.results], [Errno.EFAULT]);
    // A receive slot outside the slab.
    const n = nativeIo().udpRecv(p.rx, slab, Int32Array.of(-8), 100, new Int32Array(1), new Uint32Array(1), new Int32Array(1), 1, 0);
    assert.equal(n, -Errno.EFAULT);
  } finally {
    close(p);
  }
});

test('IP_MTU: the path MTU the kernel knows (loopback: 65536, capped at IP_MAX_MTU 65535)', () => {
  assert.equal(nativeIo().udpPathMtu(LOOPBACK, 9), 65535);
});

test('a closed socket: receive returns -EBADF instead of pretending to time out', () => {
  const p = pair(false);
  close(p);
  const slab = new Uint8Array(100);
  const n = nativeIo().udpRecv(p.rx, slab, Int32Array.of(0), 100, new Int32Array(1), new Uint32Array(1), new Int32Array(1), 1, 0);
  assert.equal(n, -Errno.EBADF);
});
