/**
 * The IPv6 forwarding table: named cases (lookups at block edges, builder errors), and the
 * table against a deliberately naive reference on random peer sets, as differential.test.ts does
 * for IPv4. The reference keeps every pod CIDR as a bigint range and scans them all; addresses in
 * the tests are written out by hand and parsed by a few lines here, not by src/wire/addr.ts.
 *
 * The seed is printed on failure; rerun one with VXNET_TABLE6_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildTable6, ForwardingTable6, Lookup, type Table6Input } from '../../../src/table/table6.js';
import { TableError } from '../../../src/table/table.js';
import { Rng } from '../../rng.js';

/** Text to bigint: "a:b::c" expanded by hand. */
function big(s: string): bigint {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  assert.equal(groups.length, 8, `bad test address ${s}`);
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function cidr(s: string): { net: bigint; prefix: number } {
  const [a, len] = s.split('/');
  return { net: big(a!), prefix: Number(len) };
}

/** 16 bytes of `addr` at offset `off` of a buffer poisoned with 0xa5, so the offset matters. */
function at(addr: bigint, off = 7): { buf: Uint8Array; off: number } {
  const buf = new Uint8Array(off + 16 + 5).fill(0xa5);
  for (let i = 0; i < 16; i++) buf[off + i] = Number((addr >> BigInt(8 * (15 - i))) & 0xffn);
  return { buf, off };
}

function lookup(t: ForwardingTable6, addr: bigint): number {
  const { buf, off } = at(addr);
  return t.lookup6(buf, off);
}

function input(cluster: string, local: string[], peers: Array<[string, string[]]>): Table6Input {
  const c = cidr(cluster);
  return {
    clusterNet: c.net,
    clusterPrefix: c.prefix,
    localPodCIDRs: local.map(cidr),
    peers: peers.map(([node, cs]) => ({ node, podCIDRs: cs.map(cidr) })),
  };
}

test('table6: /64 pod CIDRs in a /56: slots, Local, NoOwner and OutsideCluster at every edge', () => {
  const t = new ForwardingTable6(buildTable6(input('fd00:10:244::/56', ['fd00:10:244:1::/64'], [
    ['n2', ['fd00:10:244:2::/64']],
    ['n3', []],
    ['n4', ['fd00:10:244:4::/64', 'fd00:10:244:ff::/64']],
  ])));
  const cases: Array<[string, number]> = [
    ['fd00:10:244:1::', Lookup.Local],
    ['fd00:10:244:1::5', Lookup.Local],
    ['fd00:10:244:1:ffff:ffff:ffff:ffff', Lookup.Local],
    ['fd00:10:244:2::', 0],
    ['fd00:10:244:2:1234::9', 0],
    ['fd00:10:244:2:ffff:ffff:ffff:ffff', 0],
    ['fd00:10:244:3::1', Lookup.NoOwner],
    ['fd00:10:244::1', Lookup.NoOwner],
    ['fd00:10:244:4::7', 2],
    ['fd00:10:244:ff:ffff:ffff:ffff:ffff', 2],
    ['fd00:10:244:fe::1', Lookup.NoOwner],
    ['fd00:10:244:100::', Lookup.OutsideCluster],
    ['fd00:10:243:ffff:ffff:ffff:ffff:ffff', Lookup.OutsideCluster],
    ['2001:db8::1', Lookup.OutsideCluster],
    ['::', Lookup.OutsideCluster],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', Lookup.OutsideCluster],
  ];
  for (const [addr, want] of cases) assert.equal(lookup(t, big(addr)), want, `lookup6(${addr}): got ${lookup(t, big(addr))}, want ${want}`);
  assert.equal(t.rowCount, 4);
  assert.equal(t.peerCount, 3);
});

test('table6: prefixes longer than /64 and shorter ones, down to /128 and up to the cluster', () => {
  const t = new ForwardingTable6(buildTable6(input('fd00::/16', ['fd00:0:0:1::/64'], [
    ['a', ['fd00:0:0:2::/120', 'fd00:0:0:2::100/120']],
    ['b', ['fd00:0:0:2::200/128', 'fd00:1::/32']],
    ['c', ['fd00:0:0:2:8000::/65']],
  ])));
  const cases: Array<[string, number]> = [
    ['fd00:0:0:2::', 0],
    ['fd00:0:0:2::ff', 0],
    ['fd00:0:0:2::100', 0],
    ['fd00:0:0:2::1ff', 0],
    ['fd00:0:0:2::200', 1],
    ['fd00:0:0:2::201', Lookup.NoOwner],
    ['fd00:0:0:2:7fff:ffff:ffff:ffff', Lookup.NoOwner],
    ['fd00:0:0:2:8000::', 2],
    ['fd00:0:0:2:ffff:ffff:ffff:ffff', 2],
    ['fd00:1::', 1],
    ['fd00:1:ffff:ffff:ffff:ffff:ffff:ffff', 1],
    ['fd00:2::', Lookup.NoOwner],
    ['fd00:0:0:1::1', Lookup.Local],
    ['fd01::', Lookup.OutsideCluster],
  ];
  for (const [addr, want] of cases) assert.equal(lookup(t, big(addr)), want, `lookup6(${addr})`);
});

test('table6: an empty table answers NoOwner inside the cluster and OutsideCluster outside', () => {
  const t = new ForwardingTable6(buildTable6(input('fd00:10:244::/56', [], [])));
  assert.equal(lookup(t, big('fd00:10:244:1::1')), Lookup.NoOwner);
  assert.equal(lookup(t, big('fd00:10:245::1')), Lookup.OutsideCluster);
});

test('table6: builder errors name the CIDR and the node', () => {
  const cases: Array<{ name: string; input: Table6Input; want: RegExp }> = [
    { name: 'overlap between peers', input: input('fd00::/48', [], [['a', ['fd00:0:0:1::/64']], ['b', ['fd00:0:0:1:8000::/65']]]), want: /fd00:0:0:1:8000::\/65 of node "b" overlaps fd00:0:0:1::\/64 of node "a"/ },
    { name: 'overlap with the local node', input: input('fd00::/48', ['fd00:0:0:1::/64'], [['a', ['fd00:0:0:1::/64']]]), want: /overlaps fd00:0:0:1::\/64 of the local node|of the local node overlaps/ },
    { name: 'host bits', input: input('fd00::/48', [], [['a', ['fd00:0:0:1::1/64']]]), want: /node "a": IPv6 pod CIDR fd00:0:0:1::1\/64 has host bits set; did you mean fd00:0:0:1::\/64\?/ },
    { name: 'outside the cluster', input: input('fd00::/48', [], [['a', ['fd01::/64']]]), want: /node "a": IPv6 pod CIDR fd01::\/64 is outside the IPv6 cluster CIDR fd00::\/48/ },
    { name: 'wider than the cluster', input: input('fd00::/48', [], [['a', ['fd00::/40']]]), want: /is outside the IPv6 cluster CIDR/ },
    { name: 'cluster host bits', input: input('fd00::1/48', [], []), want: /cluster CIDR fd00::1\/48 has host bits set; did you mean fd00::\/48\?/ },
    { name: 'cluster /0', input: input('::/0', [], []), want: /prefix length 0 is not in 1..128/ },
    { name: 'prefix 129', input: { ...input('fd00::/48', [], []), peers: [{ node: 'a', podCIDRs: [{ net: big('fd00::'), prefix: 129 }] }] }, want: /prefix length 129/ },
  ];
  for (const c of cases) {
    assert.throws(() => buildTable6(c.input), (err: Error) => {
      assert.ok(err instanceof TableError, `${c.name}: want a TableError, got ${err.name}`);
      assert.match(err.message, c.want, c.name);
      return true;
    });
  }
});

test('table6: the buffer is checked when attached, and rows() reads it back in order', () => {
  assert.throws(() => new ForwardingTable6(new SharedArrayBuffer(64)), /not an IPv6 table buffer/);
  const sab = buildTable6(input('fd00:10:244::/56', ['fd00:10:244:1::/64'], [['n2', ['fd00:10:244:2::/64']]]));
  assert.throws(() => new ForwardingTable6(sab.slice(0, sab.byteLength - 8) as unknown as SharedArrayBuffer), /not an IPv6 table buffer|length/);
  const t = new ForwardingTable6(sab);
  assert.deepEqual(t.rows(), [
    { net: big('fd00:10:244:1::'), prefix: 64, owner: Lookup.Local },
    { net: big('fd00:10:244:2::'), prefix: 64, owner: 0 },
  ]);
});

// ---- the differential test -------------------------------------------------------------


const SPACE = 1n << 128n;

/** The reference: ranges [first, first + size), scanned linearly. */
class NaiveTable6 {
  private readonly ranges: Array<{ first: bigint; size: bigint; owner: number }> = [];
  private readonly clusterFirst: bigint;
  private readonly clusterSize: bigint;
  constructor(inp: Table6Input) {
    this.clusterFirst = inp.clusterNet;
    this.clusterSize = 2n ** BigInt(128 - inp.clusterPrefix);
    for (const c of inp.localPodCIDRs) this.ranges.push({ first: c.net, size: 2n ** BigInt(128 - c.prefix), owner: Lookup.Local });
    inp.peers.forEach((p, slot) => {
      for (const c of p.podCIDRs) this.ranges.push({ first: c.net, size: 2n ** BigInt(128 - c.prefix), owner: slot });
    });
  }
  lookup(a: bigint): number {
    if (a < this.clusterFirst || a >= this.clusterFirst + this.clusterSize) return Lookup.OutsideCluster;
    for (const r of this.ranges) if (a >= r.first && a < r.first + r.size) return r.owner;
    return Lookup.NoOwner;
  }
}

function alignDown(a: bigint, prefix: number): bigint {
  const size = 2n ** BigInt(128 - prefix);
  return a - (a % size);
}

test('table6: differential against a naive reference on random tables', () => {
  const seed0 = Number(process.env.VXNET_TABLE6_SEED ?? 0x7ab1e6) >>> 0;
  for (let round = 0; round < 300; round++) {
    const seed = (seed0 + round * 0x9e3779b1) >>> 0;
    const rng = new Rng(seed);
    const clusterPrefix = rng.int(8, 120);
    const clusterNet = alignDown(rng.u128(), clusterPrefix);
    const clusterSize = 2n ** BigInt(128 - clusterPrefix);
    // Mostly one pod-CIDR size (Kubernetes' node-cidr-mask-size, usually /64), sometimes mixed.
    const uniform = rng.chance(0.6);
    const fixed = clusterPrefix <= 64 && rng.chance(0.7) ? 64 : rng.int(clusterPrefix, 128);
    const taken: Array<{ net: bigint; prefix: number }> = [];
    const overlaps = (a: { net: bigint; prefix: number }): boolean =>
      taken.some((b) => a.net < b.net + 2n ** BigInt(128 - b.prefix) && b.net < a.net + 2n ** BigInt(128 - a.prefix));
    const pickCidr = (): { net: bigint; prefix: number } | null => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const prefix = uniform ? fixed : rng.int(clusterPrefix, 128);
        const net = alignDown(clusterNet + (rng.u128() % clusterSize), prefix);
        const c = { net, prefix };
        if (!overlaps(c)) {
          taken.push(c);
          return c;
        }
      }
      return null;
    };
    const local = rng.chance(0.9) ? pickCidr() : null;
    const peerCount = rng.int(0, 40);
    const peers = Array.from({ length: peerCount }, (_, i) => {
      const cs: Array<{ net: bigint; prefix: number }> = [];
      const n = rng.chance(0.15) ? 0 : rng.int(1, 3);
      for (let j = 0; j < n; j++) {
        const c = pickCidr();
        if (c) cs.push(c);
      }
      return { node: `n${i}`, podCIDRs: cs };
    });
    const inp: Table6Input = { clusterNet, clusterPrefix, localPodCIDRs: local ? [local] : [], peers };
    let table: ForwardingTable6;
    try {
      table = new ForwardingTable6(buildTable6(inp));
    } catch (err) {
      assert.fail(`seed ${seed}: a valid input was rejected: ${(err as Error).message}`);
    }
    const naive = new NaiveTable6(inp);
    const probes: bigint[] = [clusterNet, clusterNet + clusterSize - 1n, clusterNet - 1n, clusterNet + clusterSize];
    for (const c of taken) {
      const size = 2n ** BigInt(128 - c.prefix);
      probes.push(c.net, c.net + size - 1n, c.net - 1n, c.net + size, c.net + (rng.u128() % size));
    }
    for (let i = 0; i < 200; i++) probes.push(clusterNet + (rng.u128() % clusterSize));
    for (let i = 0; i < 20; i++) probes.push(rng.u128());
    for (const raw of probes) {
      const a = ((raw % SPACE) + SPACE) % SPACE;
      const got = lookup(table, a);
      const want = naive.lookup(a);
      if (got !== want) assert.fail(`seed ${seed}: lookup6(0x${a.toString(16)}) = ${got}, reference says ${want}`);
    }
    // An overlapping CIDR added to any owner must be refused, as the reference sees it.
    if (taken.length > 0 && peers.length > 0) {
      const victim = taken[rng.int(0, taken.length - 1)]!;
      const prefix = rng.int(clusterPrefix, 128);
      const inside = victim.net + (rng.u128() % 2n ** BigInt(128 - victim.prefix));
      const clash = { net: alignDown(inside, prefix), prefix };
      const bad: Table6Input = { ...inp, peers: inp.peers.map((p, i) => (i === 0 ? { ...p, podCIDRs: [...p.podCIDRs, clash] } : p)) };
      assert.throws(() => buildTable6(bad), /overlaps/, `seed ${seed}: overlapping ${clash.net.toString(16)}/${prefix} accepted`);
    }
  }
});
