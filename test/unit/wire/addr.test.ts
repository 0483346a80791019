/**
 * The one address parser (wire/addr.ts), tested once: every text form it accepts and every one it
 * refuses, table-driven with the expected numbers written by hand, plus round trips of random
 * values through format and parse. The rules under test are the strict ones the module comment
 * states: no leading zeros in dotted quads or prefix lengths, no mixed MAC separators, no zones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddressError, addressToBytes, bigIntToIpv6, bigIntToIpv6Bytes, bytesToAddress, cidr6Contains, cidr6Overlaps, cidrContains, cidrContainsAddress,
  cidrOverlaps, formatCidr4, formatCidr6, formatMac, ipv4ToNumber, ipv6ToBigInt, looksLikeIpv6,
  macToNumber, numberToIpv4, numberToMac, parseCidr4, parseCidr6, parseMac, parseUnicastMac, prefixMask, prefixMask6,
  specialRange4, specialRange6,
} from '../../../src/wire/addr.js';
import { Rng } from '../../rng.js';

function refuses(f: () => unknown, input: string, mentions: string): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof AddressError, `${JSON.stringify(input)}: got ${String(err)}, want an AddressError`);
    assert.ok(err.message.includes(mentions), `${JSON.stringify(input)}: message ${JSON.stringify(err.message)} does not mention ${mentions}`);
    return true;
  }, `${JSON.stringify(input)} should be refused`);
}

test('addr: IPv4 addresses accepted, table-driven', () => {
  const cases: Array<{ text: string; n: number }> = [
    { text: '0.0.0.0', n: 0 },
    { text: '10.244.1.5', n: 0x0af40105 },
    { text: '192.168.101.2', n: 0xc0a86502 },
    { text: '255.255.255.255', n: 0xffffffff },
    { text: '100.64.0.10', n: 0x6440000a },
  ];
  for (const c of cases) {
    assert.equal(ipv4ToNumber(c.text), c.n, `ipv4ToNumber(${c.text})`);
    assert.equal(numberToIpv4(c.n), c.text, `numberToIpv4(0x${c.n.toString(16)})`);
  }
});

test('addr: IPv4 addresses refused, table-driven', () => {
  const cases: Array<{ name: string; text: string }> = [
    { name: 'empty', text: '' },
    { name: 'three octets', text: '10.244.1' },
    { name: 'five octets', text: '10.244.1.5.6' },
    { name: 'octet over 255', text: '10.244.1.256' },
    { name: 'four-digit octet', text: '1000.0.0.1' },
    { name: 'leading zero (inet_aton reads octal)', text: '10.244.01.5' },
    { name: 'double zero', text: '00.0.0.0' },
    { name: 'negative', text: '10.244.1.-1' },
    { name: 'leading space', text: ' 10.0.0.1' },
    { name: 'trailing space', text: '10.0.0.1 ' },
    { name: 'a CIDR', text: '10.0.0.1/24' },
    { name: 'letters', text: 'a.b.c.d' },
    { name: 'hex', text: '0x0a.0.0.1' },
    { name: 'exponent', text: '1e1.0.0.1' },
    { name: 'empty octet', text: '10..0.1' },
    { name: 'leading dot', text: '.10.0.0.1' },
    { name: 'trailing dot', text: '10.0.0.1.' },
    { name: 'non-ASCII digits', text: '١.٢.٣.٤' },
    { name: 'one number', text: '167772161' },
  ];
  for (const c of cases) refuses(() => ipv4ToNumber(c.text), c.text, 'like 10.244.1.0');
});

test('addr: IPv4 CIDRs, table-driven, host bits reported not refused', () => {
  const cases: Array<{ text: string; net: number; prefix: number; hostBits: boolean; formatted: string }> = [
    { text: '10.244.0.0/16', net: 0x0af40000, prefix: 16, hostBits: false, formatted: '10.244.0.0/16' },
    { text: '10.244.1.7/24', net: 0x0af40100, prefix: 24, hostBits: true, formatted: '10.244.1.0/24' },
    { text: '0.0.0.0/0', net: 0, prefix: 0, hostBits: false, formatted: '0.0.0.0/0' },
    { text: '10.244.1.7/32', net: 0x0af40107, prefix: 32, hostBits: false, formatted: '10.244.1.7/32' },
    { text: '255.255.255.255/1', net: 0x80000000, prefix: 1, hostBits: true, formatted: '128.0.0.0/1' },
  ];
  for (const c of cases) {
    const p = parseCidr4(c.text);
    assert.deepEqual({ net: p.net, prefix: p.prefix, hostBits: p.hostBitsSet }, { net: c.net, prefix: c.prefix, hostBits: c.hostBits }, c.text);
    assert.equal(formatCidr4(p), c.formatted, c.text);
  }
  const bad = ['10.244.0.0', '10.244.0.0/', '10.244.0.0/33', '10.244.0.0/016', '10.244.0.0/00', '10.244.0.0/a', '10.244.0/16', '/16',
    '10.244.0.0/16/1', '10.244.0.0/ 16', '10.244.0.0/+16', '10.244.0.0/1e1', '10.244.00.0/16', '10.244.0.0/1000'];
  for (const b of bad) refuses(() => parseCidr4(b), b, JSON.stringify(b));
});

test('addr: prefix masks and IPv4 containment', () => {
  const masks: Array<[number, number]> = [[0, 0], [1, 0x80000000], [16, 0xffff0000], [24, 0xffffff00], [32, 0xffffffff]];
  for (const [p, m] of masks) assert.equal(prefixMask(p), m, `prefixMask(${p})`);
  for (const p of [33, -1, 1.5]) assert.throws(() => prefixMask(p), AddressError, `prefixMask(${p})`);
  const c = (s: string) => parseCidr4(s);
  const cases: Array<{ name: string; got: boolean; want: boolean }> = [
    { name: 'cluster contains a node CIDR', got: cidrContains(c('10.244.0.0/16'), c('10.244.1.0/24')), want: true },
    { name: 'a CIDR contains itself', got: cidrContains(c('10.244.0.0/16'), c('10.244.0.0/16')), want: true },
    { name: 'a node CIDR does not contain the cluster', got: cidrContains(c('10.244.1.0/24'), c('10.244.0.0/16')), want: false },
    { name: 'disjoint', got: cidrContains(c('10.244.0.0/16'), c('10.245.0.0/24')), want: false },
    { name: '/0 contains everything', got: cidrContains(c('0.0.0.0/0'), c('10.245.0.0/24')), want: true },
    { name: 'last address inside', got: cidrContainsAddress(c('10.244.1.0/24'), ipv4ToNumber('10.244.1.255')), want: true },
    { name: 'next address outside', got: cidrContainsAddress(c('10.244.1.0/24'), ipv4ToNumber('10.244.2.0')), want: false },
    { name: 'top bit', got: cidrContainsAddress(c('128.0.0.0/1'), 0xffffffff), want: true },
    { name: 'nested overlap', got: cidrOverlaps(c('10.244.1.0/24'), c('10.244.0.0/16')), want: true },
    { name: 'no overlap', got: cidrOverlaps(c('10.244.1.0/24'), c('10.245.0.0/24')), want: false },
  ];
  for (const k of cases) assert.equal(k.got, k.want, k.name);
});

test('addr: MAC addresses, table-driven: one separator throughout, any case', () => {
  const good: Array<{ text: string; n: number; formatted: string }> = [
    { text: '0a:58:0A:f4:01:01', n: 0x0a580af40101, formatted: '0a:58:0a:f4:01:01' },
    { text: '0a-58-0a-f4-01-01', n: 0x0a580af40101, formatted: '0a:58:0a:f4:01:01' },
    { text: 'FF:FF:FF:FF:FF:FF', n: 0xffffffffffff, formatted: 'ff:ff:ff:ff:ff:ff' },
    { text: '00:00:00:00:00:00', n: 0, formatted: '00:00:00:00:00:00' },
  ];
  for (const c of good) {
    assert.equal(macToNumber(c.text), c.n, c.text);
    assert.equal(numberToMac(c.n), c.formatted, c.text);
    assert.equal(formatMac(parseMac(c.text)), c.formatted, c.text);
  }
  const poisoned = new Uint8Array(8).fill(0xa5);
  poisoned.set(parseMac('0a:58:0a:f4:01:01'), 1);
  assert.deepEqual([...poisoned], [0xa5, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01, 0xa5]);
  assert.equal(formatMac(poisoned, 1), '0a:58:0a:f4:01:01');
  const bad: Array<{ name: string; text: string }> = [
    { name: 'empty', text: '' },
    { name: 'five pairs', text: '0a:58:0a:f4:01' },
    { name: 'seven pairs', text: '0a:58:0a:f4:01:01:02' },
    { name: 'mixed separators', text: '0a:58-0a:f4:01:01' },
    { name: 'alternating separators', text: '0a-58:0a-f4:01-01' },
    { name: 'not hex', text: 'zz:58:0a:f4:01:01' },
    { name: 'last digit not hex', text: '0a:58:0a:f4:01:0g' },
    { name: 'Cisco dotted form', text: '0a58.0af4.0101' },
    { name: 'single digit', text: 'a:58:0a:f4:01:01' },
    { name: 'dot separators', text: '0a.58.0a.f4.01.01' },
    { name: 'trailing space', text: '0a:58:0a:f4:01:01 ' },
    { name: 'no separators', text: '0a580af40101' },
  ];
  for (const c of bad) refuses(() => macToNumber(c.text), c.text, 'like 0a:58');
});

test('addr: parseUnicastMac refuses what cannot be a VTEP, table-driven', () => {
  const cases: Array<{ text: string; want: number | string }> = [
    { text: '02:00:00:00:00:01', want: 0x020000000001 },
    { text: '0a:58:0a:f4:01:01', want: 0x0a580af40101 },
    { text: '01:00:5e:00:00:01', want: 'multicast' },
    { text: '03:00:00:00:00:01', want: 'multicast' },
    { text: 'ff:ff:ff:ff:ff:ff', want: 'broadcast' },
    { text: '00:00:00:00:00:00', want: 'all zeros' },
    { text: '02:00:00:00:00', want: 'like 0a:58' },
  ];
  for (const c of cases) {
    if (typeof c.want === 'number') assert.equal(parseUnicastMac(c.text), c.want, c.text);
    else refuses(() => parseUnicastMac(c.text), c.text, c.want);
  }
});

test('addr: IPv6 addresses accepted, every RFC 4291 text form, formatted per RFC 5952', () => {
  const cases: Array<{ text: string; n: bigint; formatted: string }> = [
    { text: '::', n: 0n, formatted: '::' },
    { text: '::1', n: 1n, formatted: '::1' },
    { text: '1::', n: 1n << 112n, formatted: '1::' },
    { text: 'fd00:10:244:1::5', n: 0xfd00_0010_0244_0001_0000_0000_0000_0005n, formatted: 'fd00:10:244:1::5' },
    { text: 'FD00:0010:0244:0001:0000:0000:0000:0005', n: 0xfd00_0010_0244_0001_0000_0000_0000_0005n, formatted: 'fd00:10:244:1::5' },
    { text: '1:2:3:4:5:6:7:8', n: 0x0001_0002_0003_0004_0005_0006_0007_0008n, formatted: '1:2:3:4:5:6:7:8' },
    { text: '1:2:3:4:5:6:7::', n: 0x0001_0002_0003_0004_0005_0006_0007_0000n, formatted: '1:2:3:4:5:6:7:0' },
    { text: '::2:3:4:5:6:7:8', n: 0x0000_0002_0003_0004_0005_0006_0007_0008n, formatted: '0:2:3:4:5:6:7:8' },
    { text: '::ffff:10.0.0.1', n: 0xffff_0a00_0001n, formatted: '::ffff:a00:1' },
    { text: '64:ff9b::192.0.2.33', n: (0x64_ff9bn << 96n) | 0xc000_0221n, formatted: '64:ff9b::c000:221' },
    { text: '2001:db8:0:0:1:0:0:1', n: 0x2001_0db8_0000_0000_0001_0000_0000_0001n, formatted: '2001:db8::1:0:0:1' },
    { text: '2001:db8:0:1:1:1:1:1', n: 0x2001_0db8_0000_0001_0001_0001_0001_0001n, formatted: '2001:db8:0:1:1:1:1:1' },
    { text: '2001:0:0:1:0:0:0:1', n: 0x2001_0000_0000_0001_0000_0000_0000_0001n, formatted: '2001:0:0:1::1' },
  ];
  for (const c of cases) {
    assert.equal(ipv6ToBigInt(c.text), c.n, c.text);
    assert.equal(bigIntToIpv6(c.n), c.formatted, c.text);
  }
});

test('addr: IPv6 addresses refused, table-driven', () => {
  const cases: Array<{ name: string; text: string }> = [
    { name: 'empty', text: '' },
    { name: 'one colon', text: ':' },
    { name: 'three colons', text: ':::' },
    { name: 'two gaps', text: '1::2::3' },
    { name: 'nine groups', text: '1:2:3:4:5:6:7:8:9' },
    { name: 'seven groups, no gap', text: '1:2:3:4:5:6:7' },
    { name: 'eight groups and a gap', text: '1:2:3:4:5:6:7:8::' },
    { name: 'five hex digits', text: '12345::' },
    { name: 'not hex', text: 'g::' },
    { name: 'a zone', text: 'fe80::1%eth0' },
    { name: 'leading zero in the dotted quad', text: '::ffff:010.0.0.1' },
    { name: 'dotted quad first', text: '1.2.3.4::' },
    { name: 'dotted quad not last', text: '::1.2.3.4:5' },
    { name: 'an IPv4 address', text: '10.0.0.1' },
    { name: 'leading space', text: ' ::1' },
    { name: 'leading single colon', text: ':1:2:3:4:5:6:7' },
    { name: 'trailing single colon', text: '1:2:3:4:5:6:7:' },
  ];
  for (const c of cases) refuses(() => ipv6ToBigInt(c.text), c.text, 'like fd00:10:244::1');
});

test('addr: IPv6 CIDRs, table-driven', () => {
  const cases: Array<{ text: string; net: bigint; prefix: number; hostBits: boolean; formatted: string }> = [
    { text: 'fd00:10:244::/56', net: 0xfd00_0010_0244_0000_0000_0000_0000_0000n, prefix: 56, hostBits: false, formatted: 'fd00:10:244::/56' },
    { text: 'FD00:0010:0244:0001:0000::/64', net: 0xfd00_0010_0244_0001_0000_0000_0000_0000n, prefix: 64, hostBits: false, formatted: 'fd00:10:244:1::/64' },
    { text: 'fd00:10:244:1::5/64', net: 0xfd00_0010_0244_0001_0000_0000_0000_0000n, prefix: 64, hostBits: true, formatted: 'fd00:10:244:1::/64' },
    { text: '::/0', net: 0n, prefix: 0, hostBits: false, formatted: '::/0' },
    { text: '::1/128', net: 1n, prefix: 128, hostBits: false, formatted: '::1/128' },
  ];
  for (const c of cases) {
    const p = parseCidr6(c.text);
    assert.deepEqual({ net: p.net, prefix: p.prefix, hostBits: p.hostBitsSet }, { net: c.net, prefix: c.prefix, hostBits: c.hostBits }, c.text);
    assert.equal(formatCidr6(p), c.formatted, c.text);
  }
  for (const bad of ['fd00::', 'fd00::/129', 'fd00::/064', 'fd00::g/64', 'fe80::1%eth0/64', '10.0.0.0/8', 'fd00::/', 'fd00::/ 64']) {
    refuses(() => parseCidr6(bad), bad, JSON.stringify(bad));
  }
  const c = (s: string) => parseCidr6(s);
  const rel: Array<{ name: string; got: boolean; want: boolean }> = [
    { name: '/56 contains a /64 inside', got: cidr6Contains(c('fd00:10:244::/56'), c('fd00:10:244:ff::/64')), want: true },
    { name: '/56 does not contain the next /64', got: cidr6Contains(c('fd00:10:244::/56'), c('fd00:10:244:100::/64')), want: false },
    { name: 'a /64 does not contain its /56', got: cidr6Contains(c('fd00:10:244:1::/64'), c('fd00:10:244::/56')), want: false },
    { name: 'nested overlap', got: cidr6Overlaps(c('fd00:10:244::/56'), c('fd00:10:244:1::/64')), want: true },
    { name: 'neighbours do not overlap', got: cidr6Overlaps(c('fd00:10:244:1::/64'), c('fd00:10:244:2::/64')), want: false },
    { name: 'IPv6 text has a colon', got: looksLikeIpv6('fd00::/64'), want: true },
    { name: 'IPv4 text has none', got: looksLikeIpv6('10.0.0.0/8'), want: false },
  ];
  for (const k of rel) assert.equal(k.got, k.want, k.name);
});

test('addr: IPv6 masks and bytes', () => {
  const masks: Array<[number, bigint]> = [[0, 0n], [1, 1n << 127n], [64, 0xffff_ffff_ffff_ffff_0000_0000_0000_0000n], [128, (1n << 128n) - 1n]];
  for (const [p, m] of masks) assert.equal(prefixMask6(p), m, `prefixMask6(${p})`);
  assert.throws(() => prefixMask6(129), AddressError);
  const n = ipv6ToBigInt('fd00:10:244:1::5');
  assert.deepEqual([...bigIntToIpv6Bytes(n)], [0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]);
});

test('addr: random values round trip through format and parse', () => {
  const rng = new Rng(4);
  for (let i = 0; i < 2000; i++) {
    const a = rng.u32();
    assert.equal(ipv4ToNumber(numberToIpv4(a)), a, `IPv4 0x${a.toString(16)}`);
    const prefix = rng.int(0, 32);
    const cidr = { net: (a & prefixMask(prefix)) >>> 0, prefix };
    assert.deepEqual(parseCidr4(formatCidr4(cidr)), { ...cidr, hostBitsSet: false }, formatCidr4(cidr));
    const mac = rng.u32() * 65536 + (rng.u32() & 0xffff);
    assert.equal(macToNumber(numberToMac(mac)), mac, `MAC ${mac}`);
    // Zero groups are likely, so the `::` compression is exercised.
    let v6 = 0n;
    for (let g = 0; g < 8; g++) v6 = (v6 << 16n) | BigInt(rng.chance(0.4) ? 0 : rng.int(0, 0xffff));
    assert.equal(ipv6ToBigInt(bigIntToIpv6(v6)), v6, bigIntToIpv6(v6));
  }
});

test('addr: special-purpose ranges, table-driven', () => {
  const v4: Array<{ cidr: string; want: string | undefined }> = [
    { cidr: '127.0.0.0/8', want: 'loopback' },
    { cidr: '127.0.0.1/32', want: 'loopback' },
    { cidr: '0.0.0.0/8', want: 'this network' },
    { cidr: '169.254.0.0/16', want: 'link-local' },
    { cidr: '224.0.0.0/8', want: 'multicast' },
    { cidr: '240.0.0.0/8', want: 'broadcast' },
    { cidr: '255.255.255.255/32', want: 'broadcast' },
    { cidr: '96.0.0.0/3', want: 'loopback' },
    { cidr: '10.244.0.0/16', want: undefined },
    { cidr: '100.64.0.0/10', want: undefined },
    { cidr: '192.0.2.0/24', want: undefined },
  ];
  for (const c of v4) {
    const got = specialRange4(parseCidr4(c.cidr))?.what;
    if (c.want === undefined) assert.equal(got, undefined, c.cidr);
    else assert.ok(got?.includes(c.want), `${c.cidr}: got ${got}, want one mentioning ${c.want}`);
  }
  const v6: Array<{ cidr: string; want: string | undefined }> = [
    { cidr: '::1/128', want: 'loopback' },
    { cidr: '::ffff:0:0/96', want: 'IPv4-mapped' },
    { cidr: 'fe80::/64', want: 'link-local' },
    { cidr: 'ff02::/16', want: 'multicast' },
    { cidr: 'fd00:10:244::/56', want: undefined },
    { cidr: '2001:db8::/32', want: undefined },
  ];
  for (const c of v6) {
    const got = specialRange6(parseCidr6(c.cidr))?.what;
    if (c.want === undefined) assert.equal(got, undefined, c.cidr);
    else assert.ok(got?.includes(c.want), `${c.cidr}: got ${got}, want one mentioning ${c.want}`);
  }
});

test('addr: addresses of either family as bytes and back, table-driven', () => {
  const cases: Array<{ text: string; bytes: number[]; back: string }> = [
    { text: '10.244.1.0', bytes: [10, 244, 1, 0], back: '10.244.1.0' },
    { text: '255.255.255.255', bytes: [255, 255, 255, 255], back: '255.255.255.255' },
    { text: 'fd00:10:244:1::', bytes: [0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], back: 'fd00:10:244:1::' },
    { text: 'FD00:0:0:0:0:0:0:1', bytes: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], back: 'fd00::1' },
  ];
  for (const c of cases) {
    assert.deepEqual([...addressToBytes(c.text)], c.bytes, c.text);
    assert.equal(bytesToAddress(Uint8Array.from(c.bytes)), c.back, c.text);
  }
  assert.equal(bytesToAddress(new Uint8Array(5)), undefined);
  refuses(() => addressToBytes('10.0.0.01'), '10.0.0.01', 'like 10.244.1.0');
});
