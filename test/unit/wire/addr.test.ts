import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddressError,
  bytesToIpv6,
  cidrContains,
  cidrContainsAddress,
  cidrOverlaps,
  formatCidr4,
  formatMac,
  ipv4ToNumber,
  ipv6ToBytes,
  numberToIpv4,
  parseCidr4,
  parseMac,
  prefixMask,
} from '../../../src/wire/addr.js';
import { hex, rng } from './helpers.js';

test('addr: ipv4ToNumber / numberToIpv4, table-driven', () => {
  const cases = [
    { text: '0.0.0.0', n: 0 },
    { text: '10.244.1.5', n: 0x0af40105 },
    { text: '192.168.101.2', n: 0xc0a86502 },
    { text: '255.255.255.255', n: 0xffffffff },
  ];
  for (const c of cases) {
    assert.equal(ipv4ToNumber(c.text), c.n, c.text);
    assert.equal(numberToIpv4(c.n), c.text, c.text);
  }
});

test('addr: ipv4ToNumber round trips random addresses', () => {
  const next = rng(4);
  for (let i = 0; i < 1000; i++) {
    const n = Math.floor(next() * 0x100000000);
    assert.equal(ipv4ToNumber(numberToIpv4(n)), n);
  }
});

test('addr: ipv4ToNumber rejects with a clear AddressError, table-driven', () => {
  for (const bad of ['', '10.244.1', '10.244.1.5.6', '10.244.1.256', '10.244.01.5', '10.244.1.-1', ' 10.0.0.1', '10.0.0.1/24', 'a.b.c.d', '0x0a.0.0.1', '1e1.0.0.1', '10..0.1']) {
    assert.throws(
      () => ipv4ToNumber(bad),
      (err: unknown) => err instanceof AddressError && err.message.includes(JSON.stringify(bad)) && err.message.includes('like 10.244.1.0'),
      JSON.stringify(bad),
    );
  }
});

test('addr: prefixMask', () => {
  assert.equal(prefixMask(0), 0);
  assert.equal(prefixMask(1), 0x80000000);
  assert.equal(prefixMask(16), 0xffff0000);
  assert.equal(prefixMask(24), 0xffffff00);
  assert.equal(prefixMask(32), 0xffffffff);
  assert.throws(() => prefixMask(33), AddressError);
  assert.throws(() => prefixMask(-1), AddressError);
  assert.throws(() => prefixMask(1.5), AddressError);
});

test('addr: parseCidr4 masks host bits and says so', () => {
  assert.deepEqual(parseCidr4('10.244.0.0/16'), { net: 0x0af40000, prefix: 16, hostBitsSet: false });
  assert.deepEqual(parseCidr4('10.244.1.7/24'), { net: 0x0af40100, prefix: 24, hostBitsSet: true });
  assert.deepEqual(parseCidr4('0.0.0.0/0'), { net: 0, prefix: 0, hostBitsSet: false });
  assert.deepEqual(parseCidr4('10.244.1.7/32'), { net: 0x0af40107, prefix: 32, hostBitsSet: false });
  assert.equal(formatCidr4(parseCidr4('10.244.1.7/24')), '10.244.1.0/24');
});

test('addr: parseCidr4 rejects, table-driven', () => {
  for (const bad of ['10.244.0.0', '10.244.0.0/', '10.244.0.0/33', '10.244.0.0/016', '10.244.0.0/a', '10.244.0/16', '/16', '10.244.0.0/16/1']) {
    assert.throws(() => parseCidr4(bad), (err: unknown) => err instanceof AddressError && err.message.includes(JSON.stringify(bad)), bad);
  }
});

test('addr: cidrContains, cidrContainsAddress, cidrOverlaps', () => {
  const cluster = parseCidr4('10.244.0.0/16');
  const node1 = parseCidr4('10.244.1.0/24');
  const other = parseCidr4('10.245.0.0/24');
  assert.ok(cidrContains(cluster, node1));
  assert.ok(cidrContains(cluster, cluster));
  assert.ok(!cidrContains(node1, cluster));
  assert.ok(!cidrContains(cluster, other));
  assert.ok(cidrContains(parseCidr4('0.0.0.0/0'), other));
  assert.ok(cidrContainsAddress(node1, ipv4ToNumber('10.244.1.255')));
  assert.ok(!cidrContainsAddress(node1, ipv4ToNumber('10.244.2.0')));
  assert.ok(cidrContainsAddress(parseCidr4('128.0.0.0/1'), 0xffffffff));
  assert.ok(cidrOverlaps(node1, cluster));
  assert.ok(!cidrOverlaps(node1, other));
});

test('addr: parseMac / formatMac', () => {
  assert.deepEqual(parseMac('0a:58:0A:f4:01:01'), hex('0a 58 0a f4 01 01'));
  assert.deepEqual(parseMac('0a-58-0a-f4-01-01'), hex('0a 58 0a f4 01 01'));
  assert.equal(formatMac(hex('ff 0a 58 0a f4 01 01'), 1), '0a:58:0a:f4:01:01');
  for (const bad of ['', '0a:58:0a:f4:01', '0a:58:0a:f4:01:01:02', '0a:58-0a:f4:01:01', 'zz:58:0a:f4:01:01', '0a58.0af4.0101', 'a:58:0a:f4:01:01']) {
    assert.throws(() => parseMac(bad), (err: unknown) => err instanceof AddressError && err.message.includes('like 0a:58'), bad);
  }
});

test('addr: ipv6ToBytes / bytesToIpv6', () => {
  const bytes = ipv6ToBytes('fd00:10:244:1::5');
  assert.deepEqual(bytes, hex('fd00 0010 0244 0001 0000 0000 0000 0005'));
  assert.equal(bytesToIpv6(bytes), 'fd00:10:244:1::5');
  const padded = new Uint8Array(20);
  padded.set(bytes, 3);
  assert.equal(bytesToIpv6(padded, 3), 'fd00:10:244:1::5');
  assert.equal(bytesToIpv6(new Uint8Array(16)), '::');
  assert.throws(() => ipv6ToBytes('10.0.0.1'), AddressError);
  assert.throws(() => ipv6ToBytes('fe80::1%eth0'), AddressError);
  assert.throws(() => ipv6ToBytes('fd00::1::2'), AddressError);
});
