import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  VIRTIO_NET_HDR_LENGTH,
  VirtioGsoType,
  VirtioNetHdrFlags,
  VirtioNetHdrView,
  emitVirtioNetHdr,
  parseVirtioNetHdr,
  tryVirtioNetHdr,
  virtioNetHdrLen,
  type VirtioNetHdrRepr,
} from '../../support/wire/virtio.js';
import { assertPoisonOutside, hex, placed, poisoned, randomPackets } from './helpers.js';

/** What the kernel puts in front of an IPv4 TSO super-packet: MSS 1448, TCP with timestamps. */
const GOLDEN = hex(`
  01        # flags: NEEDS_CSUM
  01        # gso_type: TCPV4
  34 00     # hdr_len 52 (IPv4 20 + TCP 32), little-endian
  a8 05     # gso_size 1448
  14 00     # csum_start 20
  10 00     # csum_offset 16
`);
const REPR: VirtioNetHdrRepr = {
  flags: VirtioNetHdrFlags.NeedsCsum,
  gsoType: VirtioGsoType.TcpV4,
  headerLength: 52,
  gsoSize: 1448,
  csumStart: 20,
  csumOffset: 16,
};

test('virtio: constants match linux/virtio_net.h', () => {
  assert.equal(VIRTIO_NET_HDR_LENGTH, 10);
  assert.deepEqual({ ...VirtioNetHdrFlags }, { NeedsCsum: 1, DataValid: 2 });
  assert.deepEqual({ ...VirtioGsoType }, { None: 0, TcpV4: 1, Udp: 3, TcpV6: 4, UdpL4: 5, Ecn: 0x80 });
});

test('virtio: deconstruct', () => {
  const v = new VirtioNetHdrView(GOLDEN);
  assert.equal(v.flags, 1);
  assert.equal(v.gsoType, 1);
  assert.equal(v.headerLength, 52);
  assert.equal(v.gsoSize, 1448);
  assert.equal(v.csumStart, 20);
  assert.equal(v.csumOffset, 16);
  assert.equal(v.payloadOffset, 10);
});

test('virtio: construct into a poisoned buffer', () => {
  const buf = poisoned(10);
  const v = new VirtioNetHdrView(buf);
  v.flags = VirtioNetHdrFlags.NeedsCsum;
  v.gsoType = VirtioGsoType.TcpV4;
  v.headerLength = 52;
  v.gsoSize = 1448;
  v.csumStart = 20;
  v.csumOffset = 16;
  assert.deepEqual(buf, GOLDEN);
});

test('virtio: clear writes ten zero bytes and nothing else', () => {
  const buf = poisoned(14);
  new VirtioNetHdrView(buf, 2).clear();
  assert.deepEqual(buf.subarray(2, 12), new Uint8Array(10));
  assertPoisonOutside(buf, 2, 10);
});

test('virtio: parse, emit', () => {
  assert.ok(tryVirtioNetHdr(GOLDEN, 0, 10));
  assert.deepEqual(parseVirtioNetHdr(new VirtioNetHdrView(GOLDEN)), REPR);
  const buf = poisoned(10);
  emitVirtioNetHdr(REPR, new VirtioNetHdrView(buf));
  assert.deepEqual(buf, GOLDEN);
  assert.equal(virtioNetHdrLen(REPR), 10);
});

test('virtio: the view itself satisfies the fields interface (emit from a view)', () => {
  const out = poisoned(10);
  emitVirtioNetHdr(new VirtioNetHdrView(GOLDEN), new VirtioNetHdrView(out));
  assert.deepEqual(out, GOLDEN);
});

test('virtio: round trip at a non-zero offset', () => {
  const src = placed(GOLDEN, 3, 3);
  const view = new VirtioNetHdrView(src, 3);
  const repr = parseVirtioNetHdr(view);
  assert.ok(repr);
  const out = poisoned(30);
  emitVirtioNetHdr(repr, view.bind(out, 17));
  assert.deepEqual(out.subarray(17, 27), GOLDEN);
  assertPoisonOutside(out, 17, 10);
});

test('virtio: gso types, table-driven', () => {
  const cases = [
    { name: 'none', gsoType: 0, ok: true },
    { name: 'tcpv4', gsoType: 1, ok: true },
    { name: 'tcpv4 + ecn', gsoType: 0x81, ok: true },
    { name: 'udp (ufo)', gsoType: 3, ok: true },
    { name: 'tcpv6', gsoType: 4, ok: true },
    { name: 'udp_l4', gsoType: 5, ok: true },
    { name: 'unknown 2', gsoType: 2, ok: false },
    { name: 'unknown 6', gsoType: 6, ok: false },
  ];
  for (const c of cases) {
    const buf = GOLDEN.slice();
    buf[1] = c.gsoType;
    assert.equal(parseVirtioNetHdr(new VirtioNetHdrView(buf)) !== null, c.ok, c.name);
  }
});

test('virtio: short ranges refused; random bytes never throw', () => {
  assert.equal(tryVirtioNetHdr(GOLDEN, 0, 9), false);
  assert.equal(tryVirtioNetHdr(GOLDEN, 1, 10), false);
  for (const p of randomPackets(10, 300, 20)) {
    if (tryVirtioNetHdr(p, 0, p.length)) parseVirtioNetHdr(new VirtioNetHdrView(p));
  }
});
