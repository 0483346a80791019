import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  VXLAN_DEFAULT_PORT_LINUX,
  VXLAN_HEADER_LENGTH,
  VXLAN_IANA_PORT,
  VXLAN_OVERHEAD,
  VxlanFlags,
  VxlanView,
  emitVxlan,
  parseVxlan,
  tryVxlan,
  vxlanLen,
} from '../../support/wire/vxlan.js';
import { VXLAN_PACKET, VXLAN_PACKET_AT } from './golden.js';
import { assertPoisonOutside, hex, placed, poisoned, randomPackets } from './helpers.js';

const GOLDEN = VXLAN_PACKET.slice(VXLAN_PACKET_AT.vxlan, VXLAN_PACKET_AT.vxlan + 8);
/** VNI 0xabcdef, to catch a field that drops or swaps a byte. */
const GOLDEN_WIDE = hex('08 00 00 00  ab cd ef 00');

test('vxlan: constants', () => {
  assert.equal(VXLAN_HEADER_LENGTH, 8);
  assert.equal(VxlanFlags.Instance, 0x08);
  assert.equal(VXLAN_DEFAULT_PORT_LINUX, 8472);
  assert.equal(VXLAN_IANA_PORT, 4789);
  assert.equal(VXLAN_OVERHEAD, 50);
});

test('vxlan: deconstruct the golden packet', () => {
  const view = new VxlanView(VXLAN_PACKET, VXLAN_PACKET_AT.vxlan);
  assert.equal(view.flags, 0x08);
  assert.equal(view.reservedAfterFlags, 0);
  assert.equal(view.vni, 1);
  assert.equal(view.reservedAfterVni, 0);
  assert.ok(view.hasInstance);
  assert.ok(view.reservedBitsClear);
  assert.equal(view.payloadOffset, VXLAN_PACKET_AT.ethernet);
  assert.equal(new VxlanView(GOLDEN_WIDE).vni, 0xabcdef);
});

test('vxlan: construct into a poisoned buffer', () => {
  const buf = poisoned(8);
  const view = new VxlanView(buf);
  view.flags = VxlanFlags.Instance;
  view.reservedAfterFlags = 0;
  view.vni = 0xabcdef;
  view.reservedAfterVni = 0;
  assert.deepEqual(buf, GOLDEN_WIDE);
});

test('vxlan: parse', () => {
  assert.ok(tryVxlan(GOLDEN, 0, 8));
  assert.deepEqual(parseVxlan(new VxlanView(GOLDEN)), { vni: 1 });
});

test('vxlan: emit into a poisoned buffer', () => {
  const buf = poisoned(8);
  emitVxlan({ vni: 1 }, new VxlanView(buf));
  assert.deepEqual(buf, GOLDEN);
  assert.equal(vxlanLen({ vni: 1 }), 8);
});

test('vxlan: round trip at a non-zero offset', () => {
  const src = placed(GOLDEN_WIDE, 5, 3);
  const view = new VxlanView(src, 5);
  const repr = parseVxlan(view);
  assert.ok(repr);
  const out = poisoned(32);
  emitVxlan(repr, view.bind(out, 11));
  assert.deepEqual(out.subarray(11, 19), GOLDEN_WIDE);
  assertPoisonOutside(out, 11, 8);
});

test('vxlan: flags and reserved bits, table-driven', () => {
  const cases = [
    { name: 'I flag clear', bytes: '00 00 00 00 00 00 01 00', parses: false, clear: true },
    { name: 'reserved flag bit set', bytes: '88 00 00 00 00 00 01 00', parses: true, clear: false },
    { name: 'reserved after flags set', bytes: '08 00 01 00 00 00 01 00', parses: true, clear: false },
    { name: 'reserved after VNI set', bytes: '08 00 00 00 00 00 01 01', parses: true, clear: false },
    { name: 'clean', bytes: '08 00 00 00 00 00 01 00', parses: true, clear: true },
  ];
  for (const c of cases) {
    const view = new VxlanView(hex(c.bytes));
    assert.equal(parseVxlan(view) !== null, c.parses, `${c.name}: parses`);
    // With the I flag clear the header is broken anyway; reservedBitsClear only looks at R bits.
    assert.equal(view.reservedBitsClear, c.clear, `${c.name}: reservedBitsClear`);
  }
});

test('vxlan: tryVxlan refuses short ranges', () => {
  assert.equal(tryVxlan(new Uint8Array(7), 0, 7), false);
  assert.equal(tryVxlan(new Uint8Array(16), 9, 8), false);
  assert.equal(tryVxlan(new Uint8Array(16), 8, 8), true);
});

test('vxlan: random bytes never throw', () => {
  for (const p of randomPackets(8, 500, 16)) {
    if (tryVxlan(p, 0, p.length)) parseVxlan(new VxlanView(p));
  }
});
