/**
 * The WebAssembly SIMD summation against the naive byte-pair reference: random lengths (odd and
 * even, below and above one vector), random offsets (aligned or not), and the largest length it
 * accepts, so every branch of the hand-emitted module (vector loop, word tail, odd byte, fold)
 * is exercised.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simdSumFor } from '../../../src/wire/checksum-simd.js';
import { allocateSlab } from '../../../src/datapath/slab.js';
import { onesComplementSum, foldChecksum } from '../../../src/wire/checksum.js';
import { naiveSum, naiveChecksum } from './helpers.js';

test('slabs from allocateSlab get the SIMD summation; other arrays do not', () => {
  const slab = allocateSlab(1000);
  assert.equal(slab.length, 1000);
  assert.ok(simdSumFor(slab) !== undefined, 'WebAssembly SIMD is available on Node 20');
  assert.equal(simdSumFor(new Uint8Array(1000)), undefined);
});

test('SIMD sum equals the naive reference on random buffers, offsets and lengths', () => {
  const slab = allocateSlab(1 << 17);
  let seed = 12345;
  const rand = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed >>> 8; };
  for (let i = 0; i < slab.length; i++) slab[i] = rand() & 0xff;
  const lengths = [96, 97, 111, 112, 113, 127, 128, 129, 1460, 1461, 9000, 65535, 65536, 1 << 17];
  for (let t = 0; t < 400; t++) lengths.push(96 + (rand() % 70000));
  for (const len of lengths) {
    const off = len >= slab.length ? 0 : rand() % (slab.length - len + 1);
    const initial = rand() % 0x1ffff;
    const want = naiveSum(slab, off, len, initial) & 0xffff;
    const got = onesComplementSum(slab, off, len, initial);
    // 0x0000 and 0xffff are the same number in ones' complement.
    assert.equal(got % 0xffff, want % 0xffff, `len ${len} off ${off}: got ${got.toString(16)} want ${want.toString(16)}`);
  }
});

test('a checksum computed over a slab verifies with the independent encoder', () => {
  const slab = allocateSlab(4096);
  for (let i = 0; i < slab.length; i++) slab[i] = (i * 31 + 7) & 0xff;
  slab[1000] = 0; slab[1001] = 0;
  const c = foldChecksum(onesComplementSum(slab, 3, 2001));
  assert.equal(c, naiveChecksum(slab.subarray(3, 2004)));
});
