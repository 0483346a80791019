import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completeChecksum } from '../../../src/wire/segment.js';
import { CopyError as SegmentError, segment, segmentTcp, segmentUdp } from '../../support/segment-copy.js';
import { VirtioNetHdrView, type VirtioNetHdrFields } from '../../support/wire/virtio.js';
import {
  asPartial,
  assertPoisonOutside,
  buildTcp,
  buildUdp,
  hex,
  naiveSum,
  naiveValid,
  pattern,
  poisoned,
  u16,
  u32,
} from './helpers.js';

const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;
const CWR = 0x80;

function tcpHdr(v6: boolean, gsoSize: number, headerLength: number, l4 = v6 ? 40 : 20): VirtioNetHdrFields {
  return { flags: 1, gsoType: v6 ? 4 : 1, headerLength, gsoSize, csumStart: l4, csumOffset: 16 };
}

/** `n` output slots of `size` bytes, each with `headroom` bytes in front, in one poisoned buffer. */
function slots(n: number, size: number, headroom = 50) {
  const out = poisoned(n * (headroom + size) + 7);
  const outOffsets = new Int32Array(n);
  for (let i = 0; i < n; i++) outOffsets[i] = 7 + i * (headroom + size) + headroom;
  return { out, outOffsets, outLengths: new Int32Array(n) };
}

function segmentsOf(out: Uint8Array, outOffsets: Int32Array, outLengths: Int32Array, n: number): Uint8Array[] {
  const r: Uint8Array[] = [];
  for (let i = 0; i < n; i++) r.push(out.slice(outOffsets[i]!, outOffsets[i]! + outLengths[i]!));
  return r;
}

/** Nothing but the segments was written. */
function assertOnlySegmentsWritten(out: Uint8Array, outOffsets: Int32Array, outLengths: Int32Array, n: number): void {
  const copy = out.slice();
  for (let i = 0; i < n; i++) copy.fill(0xa5, outOffsets[i]!, outOffsets[i]! + outLengths[i]!);
  assertPoisonOutside(copy, 0, 0);
}

// Hand-checked (tshark reports every checksum correct): a 10-byte IPv4 super-packet with MSS 4
// whose sequence number wraps, flags CWR|PSH|ACK.
const GOLDEN_SUPER = hex(`
  45 00 00 32  20 00 40 00  40 06 01 d3  0a f4 01 05  0a f4 02 07   # IPv4 total 50, id 0x2000
  a8 ca 00 50  ff ff ff fa  01 02 03 04  50 98 01 f6  19 18 00 00   # TCP seq 0xfffffffa, CWR|ACK|PSH, partial csum 0x1918
  41 42 43 44 45 46 47 48 49 4a                                       # "ABCDEFGHIJ"
`);
const GOLDEN_SEGMENTS = [
  hex(`45 00 00 2c  20 00 40 00  40 06 01 d9  0a f4 01 05  0a f4 02 07
       a8 ca 00 50  ff ff ff fa  01 02 03 04  50 90 01 f6  62 c5 00 00   41 42 43 44`), // CWR|ACK
  hex(`45 00 00 2c  20 01 40 00  40 06 01 d8  0a f4 01 05  0a f4 02 07
       a8 ca 00 50  ff ff ff fe  01 02 03 04  50 10 01 f6  5b 39 00 00   45 46 47 48`), // ACK
  hex(`45 00 00 2a  20 02 40 00  40 06 01 d9  0a f4 01 05  0a f4 02 07
       a8 ca 00 50  00 00 00 02  01 02 03 04  50 18 01 f6  9e 74 00 00   49 4a`), // ACK|PSH
];

test('segmentTcp: golden super-packet splits into the golden segments', () => {
  const { out, outOffsets, outLengths } = slots(3, 64);
  const n = segmentTcp(GOLDEN_SUPER, 0, GOLDEN_SUPER.length, tcpHdr(false, 4, 40), out, outOffsets, outLengths, 8);
  assert.equal(n, 3);
  assert.deepEqual(segmentsOf(out, outOffsets, outLengths, n), GOLDEN_SEGMENTS);
  assertOnlySegmentsWritten(out, outOffsets, outLengths, n);
});

test('segment: the golden super-packet at a non-zero offset, with the virtio view as the header', () => {
  const frame = poisoned(3 + 10 + GOLDEN_SUPER.length);
  frame.set(hex('01 01 28 00 04 00 14 00 10 00'), 3);
  frame.set(GOLDEN_SUPER, 13);
  const { out, outOffsets, outLengths } = slots(3, 64);
  const n = segment(frame, 13, GOLDEN_SUPER.length, new VirtioNetHdrView(frame, 3), out, outOffsets, outLengths, 3);
  assert.deepEqual(segmentsOf(out, outOffsets, outLengths, n), GOLDEN_SEGMENTS);
});

interface Case {
  name: string;
  v6: boolean;
  payload: number;
  mss: number;
  flags: number;
  options?: Uint8Array;
  seq?: number;
  id?: number;
}

const TIMESTAMPS = hex('01 01 08 0a 00 01 e2 40 00 0a 0b 0c');

const CASES: Case[] = [
  { name: 'IPv4, 3 full + 1 short', v6: false, payload: 1448 * 3 + 100, mss: 1448, flags: ACK | PSH },
  { name: 'IPv4, exact multiple of MSS', v6: false, payload: 1448 * 4, mss: 1448, flags: ACK },
  { name: 'IPv4, 64 KB TSO with timestamps', v6: false, payload: 65535 - 20 - 32, mss: 1436, flags: ACK | PSH, options: TIMESTAMPS },
  { name: 'IPv4, FIN and CWR', v6: false, payload: 5000, mss: 1400, flags: ACK | PSH | FIN | CWR },
  { name: 'IPv4, identification wraps', v6: false, payload: 4000, mss: 1000, flags: ACK, id: 0xfffe },
  { name: 'IPv4, sequence wraps', v6: false, payload: 4000, mss: 1000, flags: ACK, seq: 0xfffffc00 },
  { name: 'IPv4, payload below MSS: one segment', v6: false, payload: 700, mss: 1448, flags: ACK | PSH },
  { name: 'IPv4, odd MSS and odd tail', v6: false, payload: 3001, mss: 999, flags: ACK },
  { name: 'IPv6, 3 full + 1 short', v6: true, payload: 1428 * 3 + 7, mss: 1428, flags: ACK | PSH },
  { name: 'IPv6, timestamps, FIN', v6: true, payload: 20000, mss: 1416, flags: ACK | FIN, options: TIMESTAMPS },
];

for (const c of CASES) {
  test(`segmentTcp: ${c.name}: every segment checked against the independent encoder`, () => {
    const data = pattern(c.payload, c.payload);
    const seq = c.seq ?? 0x10000000;
    const id = c.id ?? 0x4000;
    const options = c.options ?? new Uint8Array(0);
    const superPacket = asPartial(buildTcp({ v6: c.v6, seq, id, flags: c.flags, options, payload: data }), 6);
    const headerBytes = (c.v6 ? 40 : 20) + 20 + options.length;
    const want = Math.max(1, Math.ceil(c.payload / c.mss));
    const { out, outOffsets, outLengths } = slots(want, headerBytes + c.mss);
    const n = segmentTcp(superPacket, 0, superPacket.length, tcpHdr(c.v6, c.mss, headerBytes), out, outOffsets, outLengths, 64);
    assert.equal(n, want, 'segment count');
    const segments = segmentsOf(out, outOffsets, outLengths, n);
    for (let i = 0; i < n; i++) {
      const s = segments[i]!;
      const chunk = data.subarray(i * c.mss, Math.min(c.payload, (i + 1) * c.mss));
      let flags = c.flags;
      if (i > 0) flags &= ~CWR;
      if (i < n - 1) flags &= ~(FIN | PSH);
      const expected = buildTcp({ v6: c.v6, seq: (seq + i * c.mss) % 2 ** 32, id: (id + i) % 65536, flags, options, payload: chunk });
      assert.ok(naiveValid(s, 6), `segment ${i}: checksums`);
      const l4 = c.v6 ? 40 : 20;
      assert.equal(u32(s, l4 + 4), (seq + i * c.mss) % 2 ** 32, `segment ${i}: sequence number`);
      if (!c.v6) assert.equal(u16(s, 4), (id + i) % 65536, `segment ${i}: identification`);
      assert.equal(s[l4 + 13], flags, `segment ${i}: flags`);
      assert.deepEqual(s, expected, `segment ${i}: bytes`);
    }
    assertOnlySegmentsWritten(out, outOffsets, outLengths, n);
  });
}

test('segmentTcp: a header-only super-packet becomes one segment', () => {
  const p = asPartial(buildTcp({ seq: 5, flags: ACK, payload: new Uint8Array(0) }), 6);
  const { out, outOffsets, outLengths } = slots(1, 64);
  assert.equal(segmentTcp(p, 0, p.length, tcpHdr(false, 1448, 40), out, outOffsets, outLengths, 4), 1);
  assert.deepEqual(segmentsOf(out, outOffsets, outLengths, 1)[0], buildTcp({ seq: 5, flags: ACK, payload: new Uint8Array(0) }));
});

test('segmentTcp: input and output in the same buffer (copyWithin path)', () => {
  const p = asPartial(buildTcp({ seq: 77, flags: ACK | PSH, payload: pattern(3000, 9) }), 6);
  const slab = poisoned(8000);
  slab.set(p, 10);
  const outOffsets = Int32Array.from([4000, 5600]);
  const outLengths = new Int32Array(2);
  assert.equal(segmentTcp(slab, 10, p.length, tcpHdr(false, 1500, 40), slab, outOffsets, outLengths, 2), 2);
  assert.deepEqual(slab.slice(4000, 4000 + outLengths[0]!), buildTcp({ seq: 77, flags: ACK, payload: pattern(3000, 9).subarray(0, 1500), id: 0x1000 }));
  assert.deepEqual(slab.slice(5600, 5600 + outLengths[1]!), buildTcp({ seq: 1577, flags: ACK | PSH, payload: pattern(3000, 9).subarray(1500), id: 0x1001 }));
});

test('segmentTcp: refusals, table-driven, and nothing is written on refusal', () => {
  const p4 = asPartial(buildTcp({ seq: 1, payload: pattern(5000) }), 6);
  const p6 = asPartial(buildTcp({ v6: true, seq: 1, payload: pattern(5000) }), 6);
  const ipOptions = asPartial(buildTcp({ seq: 1, payload: pattern(5000), ipOptions: hex('01 01 01 00') }), 6);
  const udp = asPartial(buildUdp({ payload: pattern(3000) }), 17);
  const cases: { name: string; packet: Uint8Array; hdr: VirtioNetHdrFields; max?: number; size?: number; capacity?: number; want: number }[] = [
    { name: 'gso_size 0', packet: p4, hdr: tcpHdr(false, 0, 40), want: SegmentError.Malformed },
    { name: 'TCPV4 over an IPv6 packet', packet: p6, hdr: { ...tcpHdr(true, 1000, 60), gsoType: 1 }, want: SegmentError.Malformed },
    { name: 'TCPV6 over an IPv4 packet', packet: p4, hdr: { ...tcpHdr(false, 1000, 40), gsoType: 4 }, want: SegmentError.Malformed },
    { name: 'csum_start not the IPv4 header length', packet: p4, hdr: tcpHdr(false, 1000, 40, 24), want: SegmentError.Malformed },
    { name: 'csum_start agrees with IPv4 options', packet: ipOptions, hdr: tcpHdr(false, 1000, 44, 24), size: 1044, want: 5 },
    { name: 'csum_offset not 16', packet: p4, hdr: { ...tcpHdr(false, 1000, 40), csumOffset: 6 }, want: SegmentError.Malformed },
    { name: 'not TCP', packet: udp, hdr: tcpHdr(false, 1000, 40), want: SegmentError.Malformed },
    { name: 'truncated inside the TCP header', packet: p4.subarray(0, 35), hdr: tcpHdr(false, 1000, 40), want: SegmentError.Malformed },
    { name: 'more segments than maxSegments', packet: p4, hdr: tcpHdr(false, 1000, 40), max: 4, want: SegmentError.TooManySegments },
    { name: 'slots too small for the buffer', packet: p4, hdr: tcpHdr(false, 1000, 40), size: 900, want: SegmentError.NoRoom },
    { name: 'segment over segmentCapacity', packet: p4, hdr: tcpHdr(false, 1000, 40), capacity: 1039, want: SegmentError.NoRoom },
    { name: 'UFO', packet: p4, hdr: { ...tcpHdr(false, 1000, 40), gsoType: 3 }, want: SegmentError.Unsupported },
    { name: 'segment on an unknown gso type', packet: p4, hdr: { ...tcpHdr(false, 1000, 40), gsoType: 9 }, want: SegmentError.Unsupported },
  ];
  for (const c of cases) {
    const size = c.size ?? 1040;
    const out = poisoned(5 * size);
    const outOffsets = Int32Array.from([0, 1, 2, 3, 4].map((i) => i * size));
    const outLengths = new Int32Array(5);
    const got = segment(c.packet, 0, c.packet.length, c.hdr, out, outOffsets, outLengths, c.max ?? 5, c.capacity);
    assert.equal(got, c.want, c.name);
    if (got < 0) assertPoisonOutside(out, 0, 0);
  }
});

for (const v6 of [false, true]) {
  test(`segmentUdp: ${v6 ? 'IPv6' : 'IPv4'} UDP_L4 super-datagram against the independent encoder`, () => {
    const data = pattern(3000, 5);
    const superPacket = asPartial(buildUdp({ v6, payload: data, id: 0x7ffe }), 17);
    const l4 = v6 ? 40 : 20;
    const hdr = { flags: 1, gsoType: 5, headerLength: l4 + 8, gsoSize: 1200, csumStart: l4, csumOffset: 6 };
    const { out, outOffsets, outLengths } = slots(3, l4 + 8 + 1200);
    const n = segmentUdp(superPacket, 0, superPacket.length, hdr, out, outOffsets, outLengths, 3);
    assert.equal(n, 3);
    const segments = segmentsOf(out, outOffsets, outLengths, n);
    for (let i = 0; i < n; i++) {
      const chunk = data.subarray(i * 1200, Math.min(3000, (i + 1) * 1200));
      const s = segments[i]!;
      assert.ok(naiveValid(s, 17), `datagram ${i}: checksums`);
      assert.equal(u16(s, l4 + 4), 8 + chunk.length, `datagram ${i}: UDP length`);
      assert.deepEqual(s, buildUdp({ v6, payload: chunk, id: 0x7ffe + i }), `datagram ${i}: bytes`);
    }
    assertOnlySegmentsWritten(out, outOffsets, outLengths, n);
    assert.equal(segment(superPacket, 0, superPacket.length, hdr, out, outOffsets, outLengths, 3), 3);
  });
}

test('completeChecksum and segment(NONE): a NEEDS_CSUM packet gets its full checksum', () => {
  const plain = buildTcp({ seq: 9, flags: ACK | PSH, payload: pattern(999, 2) });
  const partial = asPartial(plain, 6);
  const { out, outOffsets, outLengths } = slots(1, 1200);
  const hdr = { flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, csumStart: 20, csumOffset: 16 };
  assert.equal(segment(partial, 0, partial.length, hdr, out, outOffsets, outLengths, 1), 1);
  assert.deepEqual(segmentsOf(out, outOffsets, outLengths, 1)[0], plain);
  assertOnlySegmentsWritten(out, outOffsets, outLengths, 1);

  const inPlace = partial.slice();
  assert.ok(completeChecksum(inPlace, 0, inPlace.length, 20, 16));
  assert.deepEqual(inPlace, plain);
  assert.ok(!completeChecksum(inPlace, 0, inPlace.length, inPlace.length - 17, 16), 'field past the end');
});

test('segment(NONE) without NEEDS_CSUM copies the packet untouched', () => {
  const plain = buildTcp({ seq: 9, payload: pattern(100) });
  const { out, outOffsets, outLengths } = slots(1, 200);
  const hdr = { flags: 0, gsoType: 0, headerLength: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  assert.equal(segment(plain, 0, plain.length, hdr, out, outOffsets, outLengths, 1), 1);
  assert.deepEqual(segmentsOf(out, outOffsets, outLengths, 1)[0], plain);
});

test('completeChecksum: a UDP result of zero goes out as 0xffff', () => {
  // UDP header only, all-zero ports, so the pseudo-header alone decides the sum.
  const p = new Uint8Array(8);
  p[5] = 8;
  const sum = naiveSum(p); // 8
  p[6] = (0xffff - sum) >> 8;
  p[7] = (0xffff - sum) & 0xff;
  assert.ok(completeChecksum(p, 0, 8, 0, 6));
  assert.equal(u16(p, 6), 0xffff);
});

test('segment: random bytes and random virtio headers never throw and never write out of slot', () => {
  let seed = 1;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let round = 0; round < 2000; round++) {
    const base = buildTcp({ v6: next() < 0.5, seq: 1, payload: pattern(Math.floor(next() * 3000)) });
    const p = base.slice(0, Math.floor(next() * (base.length + 1)));
    for (let k = 0; k < 3; k++) if (p.length > 0) p[Math.floor(next() * p.length)] = Math.floor(next() * 256);
    const hdr = {
      flags: Math.floor(next() * 4),
      gsoType: [0, 1, 3, 4, 5, 0x81][Math.floor(next() * 6)]!,
      headerLength: Math.floor(next() * 100),
      gsoSize: Math.floor(next() * 2000),
      csumStart: [20, 40, Math.floor(next() * 100)][Math.floor(next() * 3)]!,
      csumOffset: [16, 6, Math.floor(next() * 30)][Math.floor(next() * 3)]!,
    };
    const { out, outOffsets, outLengths } = slots(4, 1600);
    const n = segment(p, 0, p.length, hdr, out, outOffsets, outLengths, 4, 1600);
    if (n > 0) assertOnlySegmentsWritten(out, outOffsets, outLengths, n);
    else assertPoisonOutside(out, 0, 0);
  }
});
