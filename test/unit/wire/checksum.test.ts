import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checksumAdjust,
  checksumAdjust32,
  foldChecksum,
  onesComplementSum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
} from '../../../src/wire/checksum.js';
import { hex, naiveChecksum, naiveSum, pseudoHeader4, pseudoHeader6, randomBytes, rng, u16 } from './helpers.js';

test('RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2', () => {
  const data = hex('00 01 f2 03 f4 f5 f6 f7');
  assert.equal(onesComplementSum(data, 0, data.length), 0xddf2);
  assert.equal(foldChecksum(onesComplementSum(data, 0, data.length)), 0x220d);
});

test('known IPv4 header: the checksum field 0xb861 verifies and recomputes', () => {
  const header = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
  assert.equal(onesComplementSum(header, 0, 20), 0xffff);
  header[10] = 0;
  header[11] = 0;
  assert.equal(foldChecksum(onesComplementSum(header, 0, 20)), 0xb861);
});

test('odd length pads the last byte with zero', () => {
  assert.equal(onesComplementSum(hex('01'), 0, 1), 0x0100);
  assert.equal(onesComplementSum(hex('12 34 56'), 0, 3), 0x1234 + 0x5600);
});

test('empty and all-zero input', () => {
  assert.equal(onesComplementSum(new Uint8Array(0), 0, 0), 0);
  assert.equal(onesComplementSum(new Uint8Array(100), 0, 100), 0);
  assert.equal(onesComplementSum(new Uint8Array(100), 0, 100, 0x1234), 0x1234);
  assert.equal(foldChecksum(0), 0xffff);
});

test('all 0xff: end-around carry keeps the sum at 0xffff', () => {
  const ones = new Uint8Array(4096).fill(0xff);
  assert.equal(onesComplementSum(ones, 0, 4096), 0xffff);
  assert.equal(onesComplementSum(ones, 1, 4093), naiveSum(ones, 1, 4093));
});

test('differential: random buffers, lengths, offsets and initial sums against the naive byte loop', () => {
  const next = rng(1071);
  const backing = randomBytes(next, 70000 + 16);
  for (let round = 0; round < 3000; round++) {
    // Views that start at every alignment of the underlying ArrayBuffer.
    const viewStart = Math.floor(next() * 8);
    const view = new Uint8Array(backing.buffer, viewStart, backing.length - viewStart);
    const len = round < 2000 ? Math.floor(next() * 300) : Math.floor(next() * 66000);
    const off = Math.floor(next() * (view.length - len));
    const initial = round % 3 === 0 ? Math.floor(next() * 0x1ffff) : 0;
    const got = onesComplementSum(view, off, len, initial);
    const want = naiveSum(view, off, len, initial);
    assert.equal(got, want, `round ${round}: viewStart ${viewStart} off ${off} len ${len} initial ${initial}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
  }
});

test('differential: a SharedArrayBuffer-backed slab and a Node Buffer', () => {
  const next = rng(7);
  const slab = new Uint8Array(new SharedArrayBuffer(4096));
  slab.set(randomBytes(next, 4096));
  const pooled = Buffer.from(randomBytes(next, 3000));
  for (let round = 0; round < 200; round++) {
    for (const buf of [slab, pooled]) {
      const len = Math.floor(next() * (buf.length - 1));
      const off = Math.floor(next() * (buf.length - len));
      assert.equal(onesComplementSum(buf, off, len), naiveSum(buf, off, len), `off ${off} len ${len}`);
    }
  }
});

test('pieces chain through initial when split at even lengths', () => {
  const next = rng(3);
  const data = randomBytes(next, 1501);
  const first = onesComplementSum(data, 0, 600);
  assert.equal(onesComplementSum(data, 600, 901, first), naiveSum(data));
});

test('pseudoHeaderSumV4 equals the naive sum over the 12 pseudo-header bytes', () => {
  const src = hex('0a f4 01 05');
  const dst = hex('0a f4 02 07');
  const got = pseudoHeaderSumV4(0x0af40105, 0x0af40207, 6, 1480);
  assert.equal(got, naiveSum(pseudoHeader4(src, dst, 6, 1480)));
  const big = pseudoHeaderSumV4(0xffffffff, 0xffffffff, 17, 0xffff);
  assert.equal(big, naiveSum(pseudoHeader4(hex('ffffffff'), hex('ffffffff'), 17, 0xffff)));
});

test('pseudoHeaderSumV6 equals the naive sum over the 40 pseudo-header bytes', () => {
  const next = rng(6);
  for (let i = 0; i < 50; i++) {
    const buf = randomBytes(next, 64);
    const length = Math.floor(next() * 0x2ffff);
    const protocol = Math.floor(next() * 256);
    const got = pseudoHeaderSumV6(buf, 3, 29, protocol, length);
    const want = naiveSum(pseudoHeader6(buf.subarray(3, 19), buf.subarray(29, 45), protocol, length));
    assert.equal(got, want, `case ${i}`);
  }
});

test('checksumAdjust (RFC 1624) matches a full recomputation after one word changes', () => {
  const next = rng(1624);
  for (let i = 0; i < 500; i++) {
    const data = randomBytes(next, 40);
    const before = naiveChecksum(data);
    const at = 2 * Math.floor(next() * 20);
    const oldWord = u16(data, at);
    const newWord = i === 0 ? 0 : Math.floor(next() * 0x10000);
    data[at] = newWord >>> 8;
    data[at + 1] = newWord & 0xff;
    const adjusted = checksumAdjust(before, oldWord, newWord);
    const full = naiveChecksum(data);
    // 0x0000 and 0xffff are the same value in ones' complement; RFC 1624 §3 explains the choice.
    assert.ok(adjusted === full || (adjusted ^ full) === 0xffff, `case ${i}: adjusted 0x${adjusted.toString(16)}, full 0x${full.toString(16)}`);
  }
});

test('checksumAdjust32 matches a full recomputation after a 32-bit field changes', () => {
  const next = rng(32);
  for (let i = 0; i < 500; i++) {
    const data = randomBytes(next, 20);
    const before = naiveChecksum(data);
    const oldValue = ((u16(data, 12) << 16) | u16(data, 14)) >>> 0;
    const newValue = Math.floor(next() * 0x100000000);
    data[12] = newValue >>> 24;
    data[13] = (newValue >>> 16) & 0xff;
    data[14] = (newValue >>> 8) & 0xff;
    data[15] = newValue & 0xff;
    const adjusted = checksumAdjust32(before, oldValue, newValue);
    const full = naiveChecksum(data);
    assert.ok(adjusted === full || (adjusted ^ full) === 0xffff, `case ${i}`);
  }
});
