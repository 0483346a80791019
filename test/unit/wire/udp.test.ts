import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UDP_HEADER_LENGTH, UdpView, emitUdp, parseUdp, tryUdp, udpLen } from '../../support/wire/udp.js';
import { UDP_DNS, VXLAN_PACKET, VXLAN_PACKET_AT } from './golden.js';
import {
  V6_DST,
  V6_SRC,
  assertPoisonOutside,
  hex,
  ip4,
  naiveChecksum,
  placed,
  pseudoHeader4,
  pseudoHeader6,
  randomPackets,
  u16,
} from './helpers.js';

const DNS_UDP = UDP_DNS.slice(20);
const SRC = 0x0af40105;
const DST = 0x0a60000a;

test('udp: constants', () => {
  assert.equal(UDP_HEADER_LENGTH, 8);
});

test('udp: deconstruct the golden DNS query', () => {
  const v = new UdpView(UDP_DNS, 20);
  assert.equal(v.sourcePort, 53211);
  assert.equal(v.destinationPort, 53);
  assert.equal(v.length, 37);
  assert.equal(v.checksum, 0x2f98);
  assert.equal(v.payloadOffset, 28);
  assert.ok(v.isValidChecksumV4(SRC, DST));
  assert.ok(!v.isValidChecksumV4(SRC, DST + 1));
});

test('udp: deconstruct the golden VXLAN outer UDP (checksum 0 = none)', () => {
  const v = new UdpView(VXLAN_PACKET, VXLAN_PACKET_AT.udp);
  assert.equal(v.sourcePort, 51234);
  assert.equal(v.destinationPort, 8472);
  assert.equal(v.length, 66);
  assert.equal(v.checksum, 0);
  assert.ok(v.isValidChecksumV4(0, 0));
});

test('udp: construct into a poisoned buffer, then fill the checksum', () => {
  const buf = placed(DNS_UDP.subarray(8), 8);
  const v = new UdpView(buf);
  v.sourcePort = 53211;
  v.destinationPort = 53;
  v.length = 37;
  v.checksum = 0x1234;
  v.fillChecksumV4(SRC, DST);
  assert.deepEqual(buf, DNS_UDP);
});

test('udp: parse', () => {
  assert.ok(tryUdp(DNS_UDP, 0, DNS_UDP.length));
  assert.deepEqual(parseUdp(new UdpView(DNS_UDP)), { sourcePort: 53211, destinationPort: 53, payloadLength: 29 });
});

test('udp: emit into a poisoned buffer', () => {
  const buf = placed(DNS_UDP.subarray(8), 8);
  const repr = { sourcePort: 53211, destinationPort: 53, payloadLength: 29 };
  const v = new UdpView(buf);
  emitUdp(repr, v);
  assert.equal(v.checksum, 0);
  v.fillChecksumV4(SRC, DST);
  assert.deepEqual(buf, DNS_UDP);
  assert.equal(udpLen(repr), 8);
});

test('udp: round trip at a non-zero offset', () => {
  const src = placed(DNS_UDP, 5);
  const view = new UdpView(src, 5);
  const repr = parseUdp(view);
  assert.ok(repr);
  const out = placed(DNS_UDP.subarray(8), 19, 4);
  emitUdp(repr, view.bind(out, 11));
  view.fillChecksumV4(SRC, DST);
  assert.deepEqual(out.subarray(11, 11 + 37), DNS_UDP);
  assertPoisonOutside(out, 11, 37);
});

test('udp: checksum against the naive reference, IPv4 and IPv6, odd payload', () => {
  const seg = hex('1234 5678 000d 0000 61 62 63 64 65');
  const v = new UdpView(seg);
  v.fillChecksumV4(0xc0a80001, 0xc0a80002);
  const zeroed = seg.slice();
  zeroed[6] = zeroed[7] = 0;
  assert.equal(u16(seg, 6), naiveChecksum(pseudoHeader4(ip4('192.168.0.1'), ip4('192.168.0.2'), 17, 13), zeroed));
  const addrs = new Uint8Array(32);
  addrs.set(V6_SRC, 0);
  addrs.set(V6_DST, 16);
  v.fillChecksumV6(addrs, 0, 16);
  assert.equal(u16(seg, 6), naiveChecksum(pseudoHeader6(V6_SRC, V6_DST, 17, 13), zeroed));
  assert.ok(v.isValidChecksumV6(addrs, 0, 16));
  v.checksum = 0;
  assert.ok(!v.isValidChecksumV6(addrs, 0, 16), 'zero checksum is invalid over IPv6');
});

test('udp: a computed checksum of zero goes out as 0xffff (RFC 768)', () => {
  // Choose the payload word so the sum over pseudo-header and header is 0xffff.
  const seg = hex('0000 0000 000a 0000 0000');
  const v = new UdpView(seg);
  v.fillChecksumV4(0, 0);
  const partial = ~naiveChecksum(pseudoHeader4(ip4('0.0.0.0'), ip4('0.0.0.0'), 17, 10), seg.slice(0, 6), new Uint8Array(4)) & 0xffff;
  seg[8] = (0xffff - partial) >> 8;
  seg[9] = (0xffff - partial) & 0xff;
  v.fillChecksumV4(0, 0);
  assert.equal(v.checksum, 0xffff);
  assert.ok(v.isValidChecksumV4(0, 0));
});

test('udp: tryUdp boundary, table-driven', () => {
  const cases = [
    { name: 'golden', bytes: DNS_UDP, len: 37, want: true },
    { name: 'length field past len', bytes: DNS_UDP, len: 36, want: false },
    { name: '7 bytes', bytes: DNS_UDP, len: 7, want: false },
    { name: 'length field < 8', bytes: hex('0001 0002 0007 0000'), len: 8, want: false },
  ];
  for (const c of cases) assert.equal(tryUdp(c.bytes, 0, c.len), c.want, c.name);
});

test('udp: random bytes never throw', () => {
  for (const p of randomPackets(17, 1000, 40)) {
    if (tryUdp(p, 0, p.length)) parseUdp(new UdpView(p));
  }
});
