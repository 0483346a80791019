/**
 * The n log n conflict checks (table/conflicts.ts) against deliberately naive references: every
 * pair compared, in input order. Named cases pin the answers a person would expect; random
 * inputs full of nesting and exact duplicates check that the sweep finds the same first pair and
 * marks the same blocks as the pairwise loop, for IPv4 numbers and IPv6 bigints alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareBlocks, findOverlaps, firstDuplicate, firstDuplicateString, sortOrder, type Block } from '../../../src/table/conflicts.js';
import { parseCidr4, parseCidr6 } from '../../../src/wire/addr.js';
import { Rng } from '../../rng.js';

function block4(cidr: string, seq: number): Block<number> {
  const c = parseCidr4(cidr);
  return { start: c.net, end: c.net + 2 ** (32 - c.prefix), seq };
}

function block6(cidr: string, seq: number): Block<bigint> {
  const c = parseCidr6(cidr);
  return { start: c.net, end: c.net + (1n << BigInt(128 - c.prefix)), seq };
}

/** The pairwise reference: the first block in seq order that overlaps an earlier one, and every block involved. */
function naive<T extends number | bigint>(blocks: ReadonlyArray<Block<T>>): { first: [number, number] | undefined; involved: number[] } {
  const bySeq = blocks.map((_, i) => i).sort((a, b) => blocks[a]!.seq - blocks[b]!.seq);
  let first: [number, number] | undefined;
  const involved = new Set<number>();
  for (let x = 0; x < bySeq.length; x++) {
    for (let y = 0; y < x; y++) {
      const i = bySeq[x]!;
      const j = bySeq[y]!;
      if (blocks[i]!.start < blocks[j]!.end && blocks[j]!.start < blocks[i]!.end) {
        first ??= [i, j];
        involved.add(i).add(j);
      }
    }
  }
  return { first, involved: [...involved].sort((a, b) => a - b) };
}

function check<T extends number | bigint>(name: string, blocks: ReadonlyArray<Block<T>>): void {
  const got = findOverlaps(blocks);
  const want = naive(blocks);
  assert.deepEqual(got.first ? [got.first.later, got.first.earlier] : undefined, want.first, `${name}: first overlapping pair (later, earlier)`);
  const involved = [...got.involved.entries()].filter(([, v]) => v === 1).map(([i]) => i);
  assert.deepEqual(involved, want.involved, `${name}: blocks involved in any overlap`);
}

test('findOverlaps: named cases, IPv4 and IPv6', () => {
  const cases: Array<{ name: string; cidrs: string[]; first: [number, number] | undefined }> = [
    { name: 'disjoint neighbours', cidrs: ['10.244.1.0/24', '10.244.2.0/24', '10.244.0.0/24'], first: undefined },
    { name: 'the same CIDR twice', cidrs: ['10.244.1.0/24', '10.244.2.0/24', '10.244.1.0/24'], first: [2, 0] },
    { name: 'a later /25 inside an earlier /24', cidrs: ['10.244.2.0/24', '10.244.2.128/25'], first: [1, 0] },
    { name: 'a later /16 around earlier /24s: the first /24 is its partner', cidrs: ['10.244.3.0/24', '10.244.1.0/24', '10.244.0.0/16'], first: [2, 0] },
    { name: 'the earliest later entry wins over an earlier-sorted pair', cidrs: ['10.0.0.0/24', '10.9.0.0/24', '10.9.0.0/25', '10.0.0.0/25'], first: [2, 1] },
    { name: 'one block, nothing to overlap', cidrs: ['10.0.0.0/8'], first: undefined },
    { name: 'no blocks', cidrs: [], first: undefined },
  ];
  for (const c of cases) {
    const blocks = c.cidrs.map(block4);
    const got = findOverlaps(blocks).first;
    assert.deepEqual(got ? [got.later, got.earlier] : undefined, c.first, c.name);
    check(c.name, blocks);
  }
  const six = ['fd00:10:244:1::/64', 'fd00:10:244:2::/64', 'fd00:10:244:2:8000::/65'].map(block6);
  const got6 = findOverlaps(six).first;
  assert.deepEqual(got6 ? [got6.later, got6.earlier] : undefined, [2, 1], 'IPv6: a /65 inside an earlier /64');
});

test('findOverlaps: random nested and duplicate blocks agree with the pairwise reference', () => {
  const rng = new Rng(2024);
  for (let round = 0; round < 300; round++) {
    const n = rng.int(0, 40);
    const blocks4: Array<Block<number>> = [];
    const blocks6: Array<Block<bigint>> = [];
    for (let i = 0; i < n; i++) {
      // A small space (10.0.0.0/20) and prefixes /20 to /26 make nesting and duplicates common.
      const prefix = rng.int(20, 26);
      const size = 2 ** (32 - prefix);
      const start = 0x0a000000 + Math.floor(rng.int(0, 2 ** 12 - 1) / size) * size;
      // seq is a permutation with gaps, not the index: the file order need not be the array order.
      const seq = rng.int(0, 1000) * 64 + i;
      blocks4.push({ start, end: start + size, seq });
      const big = (BigInt(start) << 64n) | 0xfd00n << 112n;
      blocks6.push({ start: big, end: big + (BigInt(size) << 64n), seq });
    }
    check(`round ${round} IPv4`, blocks4);
    check(`round ${round} IPv6`, blocks6);
  }
});

test('findOverlaps: a thousand copies of one CIDR are marked in linear time', () => {
  const blocks = Array.from({ length: 20_000 }, (_, i) => block4('10.244.1.0/24', i));
  const t0 = process.cpuUsage();
  const r = findOverlaps(blocks);
  const ms = (process.cpuUsage(t0).user + process.cpuUsage(t0).system) / 1000;
  assert.deepEqual(r.first, { later: 1, earlier: 0 });
  assert.equal(r.involved.reduce((a, b) => a + b, 0), 20_000);
  // Quadratic marking would be 2e8 steps; linear is 2e4. A generous bound, not a benchmark.
  assert.ok(ms < 2000, `findOverlaps over 20,000 duplicates took ${ms} ms of CPU`);
});

test('firstDuplicate and firstDuplicateString: named cases and random agreement with a naive loop', () => {
  const cases: Array<{ name: string; values: number[]; want: [number, number] | undefined }> = [
    { name: 'all different', values: [3, 1, 2], want: undefined },
    { name: 'a pair', values: [5, 7, 5], want: [2, 0] },
    { name: 'the earliest later duplicate wins', values: [9, 8, 8, 9], want: [2, 1] },
    { name: 'a 48-bit MAC value', values: [0xffff_ffff_fffe, 0xffff_ffff_ffff, 0xffff_ffff_fffe], want: [2, 0] },
    { name: 'empty', values: [], want: undefined },
  ];
  for (const c of cases) {
    const got = firstDuplicate(Float64Array.from(c.values));
    assert.deepEqual(got ? [got.later, got.earlier] : undefined, c.want, c.name);
    const gotS = firstDuplicateString(c.values.map(String));
    assert.deepEqual(gotS ? [gotS.later, gotS.earlier] : undefined, c.want, `${c.name} (strings)`);
  }
  const rng = new Rng(77);
  for (let round = 0; round < 200; round++) {
    const values = Array.from({ length: rng.int(0, 60) }, () => rng.int(0, 80));
    let want: [number, number] | undefined;
    for (let i = 0; i < values.length && !want; i++) {
      for (let j = 0; j < i; j++) {
        if (values[i] === values[j]) {
          want = [i, j];
          break;
        }
      }
    }
    const got = firstDuplicate(Float64Array.from(values));
    assert.deepEqual(got ? [got.later, got.earlier] : undefined, want, `round ${round}: ${values.join(',')}`);
    const gotS = firstDuplicateString(values.map((v) => `node-${v}`));
    assert.deepEqual(gotS ? [gotS.later, gotS.earlier] : undefined, want, `round ${round} (strings)`);
  }
});

test('sortOrder: the counting-pass order of IPv4 CIDR blocks equals the comparator order', () => {
  const rng = new Rng(99);
  for (let round = 0; round < 100; round++) {
    const n = rng.int(0, 500);
    const blocks: Array<Block<number>> = [];
    for (let i = 0; i < n; i++) {
      const prefix = rng.pick([0, 1, 8, 16, 20, 24, 24, 25, 31, 32]);
      const size = 2 ** (32 - prefix);
      // Addresses over the whole space, high halves included, with repeats.
      const start = prefix === 0 ? 0 : Math.floor((rng.chance(0.3) ? rng.int(0, 3) * 2 ** 30 : rng.u32()) / size) * size;
      blocks.push({ start, end: start + size, seq: i * 3 });
    }
    const want = Array.from(blocks.keys()).sort((a, b) => compareBlocks(blocks[a]!, blocks[b]!));
    assert.deepEqual([...sortOrder(blocks)], want, `round ${round}`);
  }
  // Blocks that are not CIDRs, or not in seq order, take the comparator and still sort right.
  const odd: Array<Block<number>> = [{ start: 10, end: 13, seq: 2 }, { start: 5, end: 9, seq: 1 }, { start: 5, end: 6, seq: 0 }];
  assert.deepEqual([...sortOrder(odd)], [1, 2, 0]);
});
