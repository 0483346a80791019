import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IPV4_MIN_HEADER_LENGTH,
  IpProtocol,
  Ipv4View,
  emitIpv4,
  ipv4Len,
  parseIpv4,
  tryIpv4,
  type Ipv4Repr,
} from '../../support/wire/ipv4.js';
import { UDP_DNS, VXLAN_PACKET, VXLAN_PACKET_AT } from './golden.js';
import { assertPoisonOutside, hex, naiveChecksum, placed, poisoned, randomPackets, u16 } from './helpers.js';

const OUTER = VXLAN_PACKET.slice(0, 20);
const INNER = VXLAN_PACKET.slice(VXLAN_PACKET_AT.innerIp, VXLAN_PACKET_AT.innerIp + 20);
const OUTER_REPR: Ipv4Repr = {
  sourceAddress: 0xc0a86502,
  destinationAddress: 0xc0a86602,
  protocol: IpProtocol.UDP,
  payloadLength: 66,
  ttl: 64,
  dscp: 0,
  ecn: 0,
  identification: 0x1c46,
  dontFragment: true,
};

test('ipv4: constants', () => {
  assert.equal(IPV4_MIN_HEADER_LENGTH, 20);
  assert.deepEqual({ ...IpProtocol }, { ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58 });
});

test('ipv4: deconstruct the golden outer header', () => {
  const v = new Ipv4View(VXLAN_PACKET, 0);
  assert.equal(v.version, 4);
  assert.equal(v.headerLength, 20);
  assert.equal(v.typeOfService, 0);
  assert.equal(v.dscp, 0);
  assert.equal(v.ecn, 0);
  assert.equal(v.totalLength, 86);
  assert.equal(v.identification, 0x1c46);
  assert.equal(v.dontFragment, true);
  assert.equal(v.moreFragments, false);
  assert.equal(v.fragmentOffset, 0);
  assert.equal(v.isFragment, false);
  assert.equal(v.ttl, 64);
  assert.equal(v.protocol, IpProtocol.UDP);
  assert.equal(v.headerChecksum, 0xd1fb);
  assert.equal(v.sourceAddress, 0xc0a86502);
  assert.equal(v.destinationAddress, 0xc0a86602);
  assert.equal(v.payloadOffset, 20);
  assert.equal(v.payloadLength, 66);
  assert.ok(v.isValidChecksum());
});

test('ipv4: addresses above 127.255.255.255 come back as positive uint32', () => {
  const v = new Ipv4View(hex('45000014 00000000 4000 0000 ffffffff c0a80001'));
  assert.equal(v.sourceAddress, 0xffffffff);
  assert.equal(v.destinationAddress, 3232235521);
});

test('ipv4: deconstruct the golden inner header', () => {
  const v = new Ipv4View(VXLAN_PACKET, VXLAN_PACKET_AT.innerIp);
  assert.equal(v.identification, 0xbeef);
  assert.equal(v.protocol, IpProtocol.ICMP);
  assert.equal(v.sourceAddress, 0x0af40105);
  assert.equal(v.destinationAddress, 0x0af40207);
  assert.equal(v.totalLength, 36);
  assert.ok(v.isValidChecksum());
});

test('ipv4: construct into a poisoned buffer, checksum filled', () => {
  const buf = poisoned(20);
  const v = new Ipv4View(buf);
  v.version = 4;
  v.headerLength = 20;
  v.dscp = 0;
  v.ecn = 0;
  v.totalLength = 86;
  v.identification = 0x1c46;
  v.flagsAndFragmentOffset = 0;
  v.dontFragment = true;
  v.moreFragments = false;
  v.fragmentOffset = 0;
  v.ttl = 64;
  v.protocol = IpProtocol.UDP;
  v.sourceAddress = 0xc0a86502;
  v.destinationAddress = 0xc0a86602;
  v.fillChecksum();
  assert.deepEqual(buf, OUTER);
});

test('ipv4: fragment fields and TOS split, each setter leaves its neighbours alone', () => {
  const v = new Ipv4View(poisoned(20));
  v.flagsAndFragmentOffset = 0;
  v.moreFragments = true;
  v.fragmentOffset = 1480;
  v.dontFragment = false;
  assert.equal(v.flagsAndFragmentOffset, 0x2000 | (1480 / 8));
  assert.equal(v.fragmentOffset, 1480);
  assert.ok(v.isFragment);
  v.moreFragments = false;
  assert.equal(v.fragmentOffset, 1480);
  v.typeOfService = 0;
  v.dscp = 46;
  v.ecn = 3;
  assert.equal(v.typeOfService, (46 << 2) | 3);
  v.dscp = 10;
  assert.equal(v.ecn, 3);
  v.version = 4;
  v.headerLength = 24;
  assert.equal(v.version, 4);
  assert.equal(v.buf[0], 0x46);
});

test('ipv4: parse', () => {
  assert.ok(tryIpv4(VXLAN_PACKET, 0, VXLAN_PACKET.length));
  assert.deepEqual(parseIpv4(new Ipv4View(VXLAN_PACKET)), OUTER_REPR);
  assert.deepEqual(parseIpv4(new Ipv4View(UDP_DNS)), {
    sourceAddress: 0x0af40105,
    destinationAddress: 0x0a60000a,
    protocol: IpProtocol.UDP,
    payloadLength: 37,
    ttl: 64,
    dscp: 0,
    ecn: 0,
    identification: 0x4d2a,
    dontFragment: true,
  });
});

test('ipv4: emit into a poisoned buffer', () => {
  const buf = poisoned(20);
  emitIpv4(OUTER_REPR, new Ipv4View(buf));
  assert.deepEqual(buf, OUTER);
  assert.equal(ipv4Len(OUTER_REPR), 20);
});

test('ipv4: round trip at a non-zero offset', () => {
  const src = placed(VXLAN_PACKET.subarray(VXLAN_PACKET_AT.innerIp, VXLAN_PACKET_AT.innerIp + 36), 3);
  const view = new Ipv4View(src, 3);
  assert.ok(tryIpv4(src, 3, 36));
  const repr = parseIpv4(view);
  assert.ok(repr);
  const out = poisoned(64);
  emitIpv4(repr, view.bind(out, 21));
  assert.deepEqual(out.subarray(21, 41), INNER);
  assertPoisonOutside(out, 21, 20);
});

test('ipv4: checksum verified against the naive reference with options present', () => {
  const buf = hex('46 00 00 18  00 01 00 00  40 11 00 00  0a 00 00 01  0a 00 00 02  94 04 00 00');
  const v = new Ipv4View(buf);
  v.fillChecksum();
  const zeroed = buf.slice();
  zeroed[10] = zeroed[11] = 0;
  assert.equal(v.headerChecksum, naiveChecksum(zeroed));
  assert.equal(u16(buf, 10), naiveChecksum(zeroed));
  assert.ok(v.isValidChecksum());
  assert.equal(v.payloadOffset, 24);
  const repr = parseIpv4(v);
  assert.equal(repr?.payloadLength, 0);
});

test('ipv4: parse refuses, table-driven', () => {
  const good = OUTER.slice();
  const cases: { name: string; edit: (b: Uint8Array) => void }[] = [
    { name: 'bad checksum', edit: (b) => { b[11] = b[11]! ^ 1; } },
    { name: 'more fragments', edit: (b) => { b[6] = 0x20; } },
    { name: 'non-zero fragment offset', edit: (b) => { b[6] = 0x40; b[7] = 0x01; } },
  ];
  for (const c of cases) {
    const b = good.slice();
    c.edit(b);
    if (c.name !== 'bad checksum') new Ipv4View(b).fillChecksum();
    assert.equal(parseIpv4(new Ipv4View(b)), null, c.name);
  }
});

test('ipv4: tryIpv4 boundary, table-driven', () => {
  const cases: { name: string; bytes: Uint8Array; off?: number; len?: number; want: boolean }[] = [
    { name: 'golden', bytes: VXLAN_PACKET, want: true },
    { name: '19 bytes', bytes: VXLAN_PACKET.slice(0, 19), want: false },
    { name: 'version 6', bytes: hex('65 00 00 14 0000 0000 4011 0000 00000000 00000000'), want: false },
    { name: 'IHL 4', bytes: hex('44 00 00 14 0000 0000 4011 0000 00000000 00000000'), want: false },
    { name: 'total length < IHL*4', bytes: hex('45 00 00 13 0000 0000 4011 0000 00000000 00000000'), want: false },
    { name: 'total length > len', bytes: VXLAN_PACKET, len: 85, want: false },
    { name: 'IHL*4 > total length', bytes: hex('46 00 00 14 0000 0000 4011 0000 00000000 00000000 00000000'), want: false },
    { name: 'len past the buffer', bytes: VXLAN_PACKET, off: 1, len: 86, want: false },
  ];
  for (const c of cases) {
    assert.equal(tryIpv4(c.bytes, c.off ?? 0, c.len ?? c.bytes.length), c.want, c.name);
  }
});

test('ipv4: random bytes never throw', () => {
  for (const p of randomPackets(4, 2000, 80)) {
    if (p.length > 0) p[0] = 0x40 | (p[0]! & 0x0f);
    if (tryIpv4(p, 0, p.length)) parseIpv4(new Ipv4View(p));
  }
});
