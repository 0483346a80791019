import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IPV6_HEADER_LENGTH, Ipv6View, emitIpv6, ipv6Len, parseIpv6, tryIpv6, type Ipv6Repr } from '../../support/wire/ipv6.js';
import { ICMPV6_ECHO } from './golden.js';
import { V6_DST, V6_SRC, assertPoisonOutside, hex, placed, poisoned, randomPackets } from './helpers.js';

const GOLDEN = ICMPV6_ECHO.slice(0, 40);
const REPR: Ipv6Repr = {
  sourceAddress: V6_SRC,
  destinationAddress: V6_DST,
  nextHeader: 58,
  payloadLength: 16,
  hopLimit: 64,
  trafficClass: 0xb8,
  flowLabel: 0x12345,
};

test('ipv6: constants', () => {
  assert.equal(IPV6_HEADER_LENGTH, 40);
});

test('ipv6: deconstruct the golden header', () => {
  const v = new Ipv6View(ICMPV6_ECHO);
  assert.equal(v.version, 6);
  assert.equal(v.trafficClass, 0xb8);
  assert.equal(v.flowLabel, 0x12345);
  assert.equal(v.payloadLength, 16);
  assert.equal(v.nextHeader, 58);
  assert.equal(v.hopLimit, 64);
  assert.equal(v.sourceOffset, 8);
  assert.equal(v.destinationOffset, 24);
  assert.deepEqual([0, 1, 2, 3].map((i) => v.sourceWord(i)), [0xfd000010, 0x02440001, 0, 5]);
  assert.deepEqual([0, 1, 2, 3].map((i) => v.destinationWord(i)), [0xfd000010, 0x02440002, 0, 7]);
  assert.ok(v.sourceEquals(V6_SRC));
  assert.ok(v.destinationEquals(V6_DST));
  assert.ok(!v.sourceEquals(V6_DST));
  assert.equal(v.payloadOffset, 40);
});

test('ipv6: construct into a poisoned buffer', () => {
  const buf = poisoned(40);
  const v = new Ipv6View(buf);
  v.version = 6;
  v.trafficClass = 0xb8;
  v.flowLabel = 0x12345;
  v.payloadLength = 16;
  v.nextHeader = 58;
  v.hopLimit = 64;
  v.setSource(V6_SRC);
  for (let i = 0; i < 4; i++) v.setDestinationWord(i, [0xfd000010, 0x02440002, 0, 7][i]!);
  assert.deepEqual(buf, GOLDEN);
});

test('ipv6: version, traffic class and flow label setters leave each other alone', () => {
  const v = new Ipv6View(hex('6b812345 00000000'));
  v.trafficClass = 0x01;
  assert.equal(v.version, 6);
  assert.equal(v.flowLabel, 0x12345);
  v.flowLabel = 0xfffff;
  assert.equal(v.trafficClass, 0x01);
  assert.equal(v.version, 6);
  v.setSourceWord(3, 0xffffffff);
});

test('ipv6: parse', () => {
  assert.ok(tryIpv6(ICMPV6_ECHO, 0, ICMPV6_ECHO.length));
  assert.deepEqual(parseIpv6(new Ipv6View(ICMPV6_ECHO)), REPR);
});

test('ipv6: emit into a poisoned buffer', () => {
  const buf = poisoned(40);
  emitIpv6(REPR, new Ipv6View(buf));
  assert.deepEqual(buf, GOLDEN);
  assert.equal(ipv6Len(REPR), 40);
});

test('ipv6: round trip at a non-zero offset', () => {
  const src = placed(ICMPV6_ECHO, 7);
  const view = new Ipv6View(src, 7);
  const repr = parseIpv6(view);
  assert.ok(repr);
  const out = poisoned(60);
  emitIpv6(repr, view.bind(out, 13));
  assert.deepEqual(out.subarray(13, 53), GOLDEN);
  assertPoisonOutside(out, 13, 40);
});

test('ipv6: tryIpv6 boundary, table-driven', () => {
  const cases = [
    { name: 'golden', bytes: ICMPV6_ECHO, len: 56, want: true },
    { name: 'payload length past len', bytes: ICMPV6_ECHO, len: 55, want: false },
    { name: '39 bytes', bytes: ICMPV6_ECHO, len: 39, want: false },
    { name: 'version 4', bytes: Uint8Array.from([0x4b, ...ICMPV6_ECHO.subarray(1)]), len: 56, want: false },
  ];
  for (const c of cases) assert.equal(tryIpv6(c.bytes, 0, c.len), c.want, c.name);
});

test('ipv6: random bytes never throw', () => {
  for (const p of randomPackets(6, 1000, 80)) {
    if (p.length > 0) p[0] = 0x60 | (p[0]! & 0x0f);
    if (tryIpv6(p, 0, p.length)) parseIpv6(new Ipv6View(p));
  }
});
