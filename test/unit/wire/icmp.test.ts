import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ICMP_HEADER_LENGTH,
  ICMPv4,
  ICMPv6,
  Icmpv4Unreachable,
  Icmpv4View,
  Icmpv6Unreachable,
  Icmpv6View,
  emitIcmpv4,
  emitIcmpv6,
  icmpLen,
  icmpv4ErrorAllowed,
  icmpv6ErrorAllowed,
  parseIcmpv4,
  parseIcmpv6,
  tryIcmp,
  IcmpErrorWriter,
} from '../../support/wire/icmp.js';
import { ICMPV6_ECHO, TCP_SYN, VXLAN_PACKET, VXLAN_PACKET_AT } from './golden.js';
import {
  V6_DST,
  V6_SRC,
  assertPoisonOutside,
  buildTcp,
  hex,
  ip4,
  ip4Number,
  naiveChecksum,
  naiveSum,
  pattern,
  placed,
  poisoned,
  pseudoHeader6,
  put16,
  u16,
  u32,
} from './helpers.js';

const ECHO = VXLAN_PACKET.slice(VXLAN_PACKET_AT.icmp);
const ECHO6 = ICMPV6_ECHO.slice(40);


const writer = new IcmpErrorWriter();

test('icmp: constants', () => {
  assert.equal(ICMP_HEADER_LENGTH, 8);
  assert.equal(ICMPv4.EchoReply, 0);
  assert.equal(ICMPv4.DestinationUnreachable, 3);
  assert.equal(ICMPv4.EchoRequest, 8);
  assert.equal(ICMPv4.TimeExceeded, 11);
  assert.equal(Icmpv4Unreachable.NetUnreachable, 0);
  assert.equal(Icmpv4Unreachable.HostUnreachable, 1);
  assert.equal(Icmpv4Unreachable.FragmentationNeeded, 4);
  assert.equal(ICMPv6.DestinationUnreachable, 1);
  assert.equal(ICMPv6.PacketTooBig, 2);
  assert.equal(Icmpv6Unreachable.NoRoute, 0);
});

test('icmpv4: deconstruct the golden echo request', () => {
  const v = new Icmpv4View(VXLAN_PACKET, VXLAN_PACKET_AT.icmp);
  assert.equal(v.type, ICMPv4.EchoRequest);
  assert.equal(v.code, 0);
  assert.equal(v.checksum, 0x5435);
  assert.equal(v.identifier, 0x1234);
  assert.equal(v.sequenceNumber, 1);
  assert.equal(v.restOfHeader, 0x12340001);
  assert.equal(v.payloadOffset, VXLAN_PACKET_AT.icmp + 8);
  assert.ok(v.isValidChecksum(16));
});

test('icmpv4: construct into a poisoned buffer', () => {
  const buf = placed(ECHO.subarray(8), 8);
  const v = new Icmpv4View(buf);
  v.type = 8;
  v.code = 0;
  v.identifier = 0x1234;
  v.sequenceNumber = 1;
  v.fillChecksum(16);
  assert.deepEqual(buf, ECHO);
});

test('icmpv4: next-hop MTU sits in the low half of the rest of header (RFC 1191)', () => {
  const v = new Icmpv4View(poisoned(8));
  v.restOfHeader = 0;
  v.nextHopMtu = 1450;
  assert.equal(v.restOfHeader, 1450);
  assert.deepEqual(v.buf.subarray(4), hex('00 00 05 aa'));
});

test('icmpv4: parse, emit, and a round trip at a non-zero offset', () => {
  assert.ok(tryIcmp(ECHO, 0, 16));
  const repr = parseIcmpv4(new Icmpv4View(ECHO));
  assert.deepEqual(repr, { type: 8, code: 0, restOfHeader: 0x12340001 });
  assert.equal(icmpLen(repr), 8);
  const out = placed(ECHO.subarray(8), 8);
  const v = new Icmpv4View(out);
  emitIcmpv4(repr, v);
  assert.equal(v.checksum, 0);
  v.fillChecksum(16);
  assert.deepEqual(out, ECHO);
  const shifted = placed(ECHO.subarray(8), 13, 2);
  emitIcmpv4(parseIcmpv4(new Icmpv4View(placed(ECHO, 3), 3)), v.bind(shifted, 5));
  v.fillChecksum(16);
  assert.deepEqual(shifted.subarray(5, 21), ECHO);
  assertPoisonOutside(shifted, 5, 16);
});

test('icmpv6: deconstruct the golden echo request', () => {
  const v = new Icmpv6View(ICMPV6_ECHO, 40);
  assert.equal(v.type, ICMPv6.EchoRequest);
  assert.equal(v.code, 0);
  assert.equal(v.checksum, 0xc3b3);
  assert.equal(v.restOfHeader, 0x43210007);
  assert.ok(v.isValidChecksum(ICMPV6_ECHO, 8, 24, 16));
  assert.ok(!v.isValidChecksum(ICMPV6_ECHO, 24, 8, 17));
});

test('icmpv6: construct, parse, emit, round trip at a non-zero offset', () => {
  const buf = placed(ECHO6.subarray(8), 8);
  const v = new Icmpv6View(buf);
  v.type = 128;
  v.code = 0;
  v.restOfHeader = 0x43210007;
  v.fillChecksum(ICMPV6_ECHO, 8, 24, 16);
  assert.deepEqual(buf, ECHO6);

  const repr = parseIcmpv6(new Icmpv6View(ECHO6));
  assert.deepEqual(repr, { type: 128, code: 0, restOfHeader: 0x43210007 });
  const out = placed(ECHO6.subarray(8), 15, 1);
  emitIcmpv6(repr, v.bind(out, 7));
  assert.equal(v.checksum, 0);
  v.fillChecksum(ICMPV6_ECHO, 8, 24, 16);
  assert.deepEqual(out.subarray(7, 23), ECHO6);
  assertPoisonOutside(out, 7, 16);
  v.mtu = 1450;
  assert.equal(v.restOfHeader, 1450);
});

/** Checks an IPv4 ICMP error byte by byte with the naive reference; returns nothing, throws on any mismatch. */
function checkIcmpv4Error(out: Uint8Array, at: number, total: number, offending: Uint8Array, type: number, code: number, rest: number): void {
  const quote = total - 28;
  assert.equal(out[at], 0x45, 'version/IHL');
  assert.equal(out[at + 1], 0xc0, 'TOS: precedence 6');
  assert.equal(u16(out, at + 2), total, 'total length');
  assert.equal(u16(out, at + 6), 0, 'flags and fragment offset');
  assert.equal(out[at + 8], 64, 'TTL');
  assert.equal(out[at + 9], 1, 'protocol ICMP');
  assert.equal(naiveSum(out, at, 20), 0xffff, 'IP header checksum');
  assert.equal(u32(out, at + 12), ip4Number('10.244.0.1'), 'source');
  assert.deepEqual(out.subarray(at + 16, at + 20), offending.subarray(12, 16), 'destination = offending source');
  assert.equal(out[at + 20], type, 'ICMP type');
  assert.equal(out[at + 21], code, 'ICMP code');
  assert.equal(u32(out, at + 24), rest, 'rest of header');
  assert.equal(naiveSum(out, at + 20, 8 + quote), 0xffff, 'ICMP checksum');
  const zeroed = out.slice(at + 20, at + total);
  zeroed[2] = zeroed[3] = 0;
  assert.equal(u16(out, at + 22), naiveChecksum(zeroed), 'ICMP checksum value');
  assert.deepEqual(out.subarray(at + 28, at + total), offending.subarray(0, quote), 'quote');
}

test('writeIcmpv4Error: Fragmentation Needed for a 1400-byte packet, quote cut at 576, nothing written past it', () => {
  const offending = buildTcp({ seq: 1, payload: pattern(1360), id: 0x7777 });
  assert.equal(offending.length, 1400);
  const out = poisoned(2000);
  const n = writer.writeIcmpv4Error(out, 30, offending, 0, offending.length, ip4Number('10.244.0.1'), 3, 4, 1450);
  assert.equal(n, 576);
  checkIcmpv4Error(out, 30, n, offending, 3, 4, 1450);
  assertPoisonOutside(out, 30, n);
});

test('writeIcmpv4Error: a short packet is quoted whole', () => {
  const out = poisoned(200);
  const n = writer.writeIcmpv4Error(out, 1, TCP_SYN, 0, TCP_SYN.length, ip4Number('10.244.0.1'), 3, 1, 1450);
  assert.equal(n, 28 + 60);
  checkIcmpv4Error(out, 1, n, TCP_SYN, 3, 1, 0);
  assertPoisonOutside(out, 1, n);
});

test('writeIcmpv4Error: Time Exceeded carries no MTU', () => {
  const out = poisoned(200);
  const n = writer.writeIcmpv4Error(out, 0, TCP_SYN, 0, 60, ip4Number('10.244.0.1'), 11, 0, 1450);
  checkIcmpv4Error(out, 0, n, TCP_SYN, 11, 0, 0);
});

test('writeIcmpv4Error: in place, in the headroom in front of the offending packet', () => {
  const offending = buildTcp({ seq: 9, payload: pattern(700, 3) });
  const slab = placed(offending, 64, 10);
  const n = writer.writeIcmpv4Error(slab, 36, slab, 64, offending.length, ip4Number('10.244.0.1'), 3, 4, 1450);
  assert.equal(n, 576);
  checkIcmpv4Error(slab, 36, n, offending, 3, 4, 1450);
  assertPoisonOutside(slab.subarray(0, 36), 0, 0);
});

test('writeIcmpv4Error: out overlapping the offending packet at the same offset', () => {
  const offending = buildTcp({ seq: 9, payload: pattern(100, 4) });
  const slab = placed(offending, 40, 100);
  const n = writer.writeIcmpv4Error(slab, 40, slab, 40, offending.length, ip4Number('10.244.0.1'), 3, 1, 0);
  checkIcmpv4Error(slab, 40, n, offending, 3, 1, 0);
});

test('writeIcmpv4Error: refuses without writing, table-driven', () => {
  const cases = [
    { name: 'offending shorter than an IPv4 header', outLen: 600, offendingLen: 19 },
    { name: 'no room in out', outLen: 28 + 59, offendingLen: 60 },
  ];
  for (const c of cases) {
    const out = poisoned(c.outLen);
    assert.equal(writer.writeIcmpv4Error(out, 0, TCP_SYN, 0, c.offendingLen, 1, 3, 1, 0), 0, c.name);
    assertPoisonOutside(out, 0, 0);
  }
});

test('writeIcmpv6Error: Packet Too Big for a 1500-byte packet, cut at 1280, checksum with pseudo-header', () => {
  const offending = buildTcp({ v6: true, seq: 5, payload: pattern(1440, 6) });
  assert.equal(offending.length, 1500);
  const source = hex('fd00 0010 0244 0001 0000 0000 0000 0001');
  const out = poisoned(1400);
  const n = writer.writeIcmpv6Error(out, 11, offending, 0, offending.length, source, 2, 0, 1450);
  assert.equal(n, 1280);
  const at = 11;
  assert.equal(u32(out, at), 0x60000000, 'version, class, label');
  assert.equal(u16(out, at + 4), 1240, 'payload length');
  assert.equal(out[at + 6], 58, 'next header');
  assert.equal(out[at + 7], 64, 'hop limit');
  assert.deepEqual(out.subarray(at + 8, at + 24), source);
  assert.deepEqual(out.subarray(at + 24, at + 40), V6_SRC, 'destination = offending source');
  assert.equal(out[at + 40], 2);
  assert.equal(out[at + 41], 0);
  assert.equal(u32(out, at + 44), 1450, 'MTU');
  const message = out.slice(at + 40, at + n);
  message[2] = message[3] = 0;
  assert.equal(u16(out, at + 42), naiveChecksum(pseudoHeader6(source, V6_SRC, 58, 1240), message), 'checksum');
  assert.deepEqual(out.subarray(at + 48, at + n), offending.subarray(0, 1232), 'quote');
  assertPoisonOutside(out, at, n);
});

test('writeIcmpv6Error: Destination Unreachable quotes a short packet whole, rest of header zero', () => {
  const offending = ICMPV6_ECHO;
  const source = hex('fd00 0010 0244 0001 0000 0000 0000 0001');
  const slab = placed(offending, 48, 3);
  const n = writer.writeIcmpv6Error(slab, 0, slab, 48, offending.length, source, 1, 0, 1450);
  assert.equal(n, 48 + 56);
  assert.equal(u32(slab, 44), 0);
  assert.deepEqual(slab.subarray(24, 40), V6_SRC);
  assert.deepEqual(slab.subarray(48, 104), offending);
  const message = slab.slice(40, n);
  message[2] = message[3] = 0;
  assert.equal(u16(slab, 42), naiveChecksum(pseudoHeader6(source, V6_SRC, 58, 64), message));
  assertPoisonOutside(slab, 0, n);
});

test('writeIcmpv6Error: refuses a short offending packet or a short out', () => {
  const source = new Uint8Array(16);
  assert.equal(writer.writeIcmpv6Error(poisoned(2000), 0, ICMPV6_ECHO, 0, 39, source, 1, 0, 0), 0);
  const out = poisoned(48 + 55);
  assert.equal(writer.writeIcmpv6Error(out, 0, ICMPV6_ECHO, 0, 56, source, 1, 0, 0), 0);
  assertPoisonOutside(out, 0, 0);
});

function withIcmp(type: number, extra: Partial<{ src: string; dst: string; frag: number }> = {}): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  put16(p, 2, 28);
  put16(p, 6, extra.frag ?? 0);
  p[8] = 64;
  p[9] = 1;
  p.set(ip4(extra.src ?? '10.244.1.5'), 12);
  p.set(ip4(extra.dst ?? '10.244.2.7'), 16);
  p[20] = type;
  return p;
}

test('icmpv4ErrorAllowed (RFC 1812 §4.3.2.7), table-driven', () => {
  const tcp = TCP_SYN;
  const cases: { name: string; packet: Uint8Array; want: boolean }[] = [
    { name: 'TCP', packet: tcp, want: true },
    { name: 'ICMP echo request', packet: withIcmp(8), want: true },
    { name: 'ICMP destination unreachable', packet: withIcmp(3), want: false },
    { name: 'ICMP time exceeded', packet: withIcmp(11), want: false },
    { name: 'non-initial fragment', packet: withIcmp(8, { frag: 0x0010 }), want: false },
    { name: 'initial fragment (MF set)', packet: withIcmp(8, { frag: 0x2000 }), want: true },
    { name: 'source 0.0.0.0', packet: withIcmp(8, { src: '0.0.0.0' }), want: false },
    { name: 'source loopback', packet: withIcmp(8, { src: '127.0.0.1' }), want: false },
    { name: 'source multicast', packet: withIcmp(8, { src: '224.0.0.1' }), want: false },
    { name: 'destination limited broadcast', packet: withIcmp(8, { dst: '255.255.255.255' }), want: false },
    { name: 'destination multicast', packet: withIcmp(8, { dst: '239.1.1.1' }), want: false },
  ];
  for (const c of cases) assert.equal(icmpv4ErrorAllowed(c.packet, 0, c.packet.length), c.want, c.name);
});

function v6Packet(next: number, body: Uint8Array, src = V6_SRC, dst = V6_DST): Uint8Array {
  const p = new Uint8Array(40 + body.length);
  p[0] = 0x60;
  put16(p, 4, body.length);
  p[6] = next;
  p[7] = 64;
  p.set(src, 8);
  p.set(dst, 24);
  p.set(body, 40);
  return p;
}

test('icmpv6ErrorAllowed (RFC 4443 §2.4(e)), table-driven', () => {
  const multicast = hex('ff02 0000 0000 0000 0000 0000 0000 0001');
  const hopByHopThenIcmpError = hex('3a 00 01 04 00 00 00 00   01 00 00 00 00 00 00 00');
  const cases: { name: string; packet: Uint8Array; type?: number; code?: number; want: boolean }[] = [
    { name: 'TCP', packet: buildTcp({ v6: true, seq: 1, payload: pattern(10) }), want: true },
    { name: 'ICMPv6 echo request', packet: ICMPV6_ECHO, want: true },
    { name: 'ICMPv6 destination unreachable', packet: v6Packet(58, hex('01 00 00 00 00 00 00 00')), want: false },
    { name: 'ICMPv6 error behind a hop-by-hop header', packet: v6Packet(0, hopByHopThenIcmpError), want: false },
    { name: 'source unspecified', packet: v6Packet(6, new Uint8Array(20), new Uint8Array(16)), want: false },
    { name: 'source multicast', packet: v6Packet(6, new Uint8Array(20), multicast), want: false },
    { name: 'destination multicast, unreachable', packet: v6Packet(6, new Uint8Array(20), V6_SRC, multicast), want: false },
    { name: 'destination multicast, packet too big', packet: v6Packet(6, new Uint8Array(20), V6_SRC, multicast), type: 2, want: true },
  ];
  for (const c of cases) {
    assert.equal(icmpv6ErrorAllowed(c.packet, 0, c.packet.length, c.type ?? 1, c.code ?? 0), c.want, c.name);
  }
});

test('icmp: random bytes never throw, and builders never write past their return', () => {
  const source = new Uint8Array(16).fill(1);
  for (let seed = 0; seed < 300; seed++) {
    const len = (seed * 37) % 1700;
    const offending = pattern(len, seed);
    const out = poisoned(1800);
    const n4 = writer.writeIcmpv4Error(out, 5, offending, 0, len, 1, 3, 4, 1400);
    assertPoisonOutside(out, 5, n4);
    const out6 = poisoned(1800);
    const n6 = writer.writeIcmpv6Error(out6, 5, offending, 0, len, source, 2, 0, 1400);
    assertPoisonOutside(out6, 5, n6);
    icmpv4ErrorAllowed(offending, 0, len);
    icmpv6ErrorAllowed(offending, 0, len, 1, 0);
  }
});
