/**
 * IPv6 CIDRs on the control plane (addr.ts): parsing to a 128-bit bigint, host bits, RFC 5952
 * formatting, containment and overlap, table-driven with the expected numbers written by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddressError, bigIntToIpv6, bigIntToIpv6Bytes, cidr6Contains, cidr6Overlaps, formatCidr6, ipv6BytesToBigInt,
  ipv6ToBigInt, looksLikeIpv6, parseCidr6, prefixMask6,
} from '../../../src/wire/addr.js';

test('addr6: parseCidr6 / formatCidr6, table-driven', () => {
  const cases: Array<{ text: string; net: bigint; prefix: number; hostBits: boolean; formatted: string }> = [
    { text: 'fd00:10:244::/56', net: 0xfd00_0010_0244_0000_0000_0000_0000_0000n, prefix: 56, hostBits: false, formatted: 'fd00:10:244::/56' },
    { text: 'FD00:0010:0244:0001:0000::/64', net: 0xfd00_0010_0244_0001_0000_0000_0000_0000n, prefix: 64, hostBits: false, formatted: 'fd00:10:244:1::/64' },
    { text: 'fd00:10:244:1::5/64', net: 0xfd00_0010_0244_0001_0000_0000_0000_0000n, prefix: 64, hostBits: true, formatted: 'fd00:10:244:1::/64' },
    { text: '::/0', net: 0n, prefix: 0, hostBits: false, formatted: '::/0' },
    { text: '::1/128', net: 1n, prefix: 128, hostBits: false, formatted: '::1/128' },
  ];
  for (const c of cases) {
    const p = parseCidr6(c.text);
    assert.equal(p.net, c.net, c.text);
    assert.equal(p.prefix, c.prefix, c.text);
    assert.equal(p.hostBitsSet, c.hostBits, c.text);
    assert.equal(formatCidr6(p), c.formatted, c.text);
  }
  for (const bad of ['fd00::', 'fd00::/129', 'fd00::/064', 'fd00::g/64', 'fe80::1%eth0/64', '10.0.0.0/8', 'fd00::/']) {
    assert.throws(() => parseCidr6(bad), AddressError, bad);
  }
});

test('addr6: masks, bytes and bigint round trips', () => {
  assert.equal(prefixMask6(0), 0n);
  assert.equal(prefixMask6(1), 1n << 127n);
  assert.equal(prefixMask6(64), 0xffff_ffff_ffff_ffff_0000_0000_0000_0000n);
  assert.equal(prefixMask6(128), (1n << 128n) - 1n);
  assert.throws(() => prefixMask6(129), AddressError);
  const n = ipv6ToBigInt('fd00:10:244:1::5');
  assert.equal(n, 0xfd00_0010_0244_0001_0000_0000_0000_0005n);
  assert.equal(bigIntToIpv6(n), 'fd00:10:244:1::5');
  assert.deepEqual([...bigIntToIpv6Bytes(n)], [0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]);
  const buf = new Uint8Array(20).fill(0xa5);
  buf.set(bigIntToIpv6Bytes(n), 3);
  assert.equal(ipv6BytesToBigInt(buf, 3), n);
});

test('addr6: containment and overlap', () => {
  const c = (s: string) => parseCidr6(s);
  assert.equal(cidr6Contains(c('fd00:10:244::/56'), c('fd00:10:244:ff::/64')), true);
  assert.equal(cidr6Contains(c('fd00:10:244::/56'), c('fd00:10:244:100::/64')), false);
  assert.equal(cidr6Contains(c('fd00:10:244:1::/64'), c('fd00:10:244::/56')), false);
  assert.equal(cidr6Overlaps(c('fd00:10:244::/56'), c('fd00:10:244:1::/64')), true);
  assert.equal(cidr6Overlaps(c('fd00:10:244:1::/64'), c('fd00:10:244:2::/64')), false);
  assert.equal(looksLikeIpv6('fd00::/64'), true);
  assert.equal(looksLikeIpv6('10.0.0.0/8'), false);
});
