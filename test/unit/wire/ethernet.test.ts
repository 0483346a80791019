import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ETHERNET_HEADER_LENGTH,
  EtherType,
  EthernetView,
  emitEthernet,
  ethernetLen,
  parseEthernet,
  tryEthernet,
} from '../../support/wire/ethernet.js';
import { VXLAN_PACKET, VXLAN_PACKET_AT } from './golden.js';
import { assertPoisonOutside, hex, placed, poisoned, randomPackets } from './helpers.js';

const GOLDEN = VXLAN_PACKET.slice(VXLAN_PACKET_AT.ethernet, VXLAN_PACKET_AT.ethernet + 14);
const DST = hex('0a 58 0a f4 02 01');
const SRC = hex('0a 58 0a f4 01 01');

test('ethernet: constants', () => {
  assert.equal(ETHERNET_HEADER_LENGTH, 14);
  assert.deepEqual({ ...EtherType }, { IPv4: 0x0800, ARP: 0x0806, IPv6: 0x86dd });
});

test('ethernet: deconstruct the inner header of the golden VXLAN packet', () => {
  const view = new EthernetView(VXLAN_PACKET, VXLAN_PACKET_AT.ethernet);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => view.destinationAt(i)), [...DST]);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => view.sourceAt(i)), [...SRC]);
  assert.equal(view.etherType, EtherType.IPv4);
  assert.ok(view.destinationEquals(DST));
  assert.ok(view.sourceEquals(SRC));
  assert.ok(!view.destinationEquals(SRC));
  assert.ok(!view.destinationIsMulticast);
  assert.equal(view.payloadOffset, VXLAN_PACKET_AT.innerIp);
});

test('ethernet: construct into a poisoned buffer', () => {
  const buf = poisoned(14);
  const view = new EthernetView(buf);
  view.setDestination(DST);
  view.copySourceFrom(VXLAN_PACKET, VXLAN_PACKET_AT.ethernet + 6);
  view.etherType = 0x0800;
  assert.deepEqual(buf, GOLDEN);
});

test('ethernet: parse', () => {
  assert.ok(tryEthernet(GOLDEN, 0, 14));
  const repr = parseEthernet(new EthernetView(GOLDEN));
  assert.deepEqual(repr, { destination: DST, source: SRC, etherType: 0x0800 });
});

test('ethernet: emit into a poisoned buffer', () => {
  const buf = poisoned(14);
  const repr = { destination: DST, source: SRC, etherType: EtherType.IPv4 };
  emitEthernet(repr, new EthernetView(buf));
  assert.deepEqual(buf, GOLDEN);
  assert.equal(ethernetLen(repr), 14);
});

test('ethernet: round trip at a non-zero offset, through a rebound view', () => {
  const src = placed(GOLDEN, 9, 5);
  const view = new EthernetView(new Uint8Array(0));
  const repr = parseEthernet(view.bind(src, 9));
  const out = poisoned(40);
  emitEthernet(repr, view.bind(out, 17));
  assert.deepEqual(out.subarray(17, 31), GOLDEN);
  assertPoisonOutside(out, 17, 14);
});

test('ethernet: broadcast destination is multicast', () => {
  const view = new EthernetView(poisoned(14));
  view.setDestination(hex('ff ff ff ff ff ff'));
  assert.ok(view.destinationIsMulticast);
});

test('ethernet: tryEthernet refuses short and out-of-bounds ranges', () => {
  const cases = [
    { name: '13 bytes', buf: new Uint8Array(13), off: 0, len: 13, want: false },
    { name: 'len past the end', buf: new Uint8Array(20), off: 10, len: 14, want: false },
    { name: 'negative offset', buf: new Uint8Array(20), off: -1, len: 14, want: false },
    { name: 'exactly 14', buf: new Uint8Array(20), off: 6, len: 14, want: true },
  ];
  for (const c of cases) assert.equal(tryEthernet(c.buf, c.off, c.len), c.want, c.name);
});

test('ethernet: random bytes never throw', () => {
  for (const p of randomPackets(14, 500, 40)) {
    if (tryEthernet(p, 0, p.length)) parseEthernet(new EthernetView(p));
  }
});
