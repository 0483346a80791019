/**
 * Patched tables against tables built from scratch: for random snapshots and random changes to a
 * few peers, `makeTables` with the previous tables must answer every lookup, every column and
 * every underlay question exactly as a full build of the new snapshot does, and must have taken
 * the patch path whenever the change is a plain change of facts. Named cases pin when a patch is
 * refused (and the full build takes over).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTables, type Tables } from '../../../src/table/update.js';
import type { LocalFacts } from '../../../src/table/snapshot.js';
import { buildTable, ForwardingTable, patchTable } from '../../../src/table/table.js';
import { ipv4ToNumber, parseMac } from '../../../src/wire/addr.js';
import type { Peer } from '../../../src/peers/source.js';
import { Rng } from '../../rng.js';

const local: LocalFacts = {
  clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.0.0/24', underlayIP: '192.0.2.1', vtepMAC: '02:00:00:00:00:01', port: 8472, vni: 1,
};

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
const peer = (i: number, over: Partial<Peer> = {}): Peer => ({
  node: `n${i}`, underlayIP: `192.0.${2 + (i >> 8)}.${i & 255}`, podCIDRs: [`10.244.${i}.0/24`], vtepMAC: `02:00:00:00:${hex2(i >> 8)}:${hex2(i & 255)}`, ...over,
});

/** Everything the data path can ask a table, compared between two tables. */
function sameAnswers(got: Tables, want: Tables, what: string): void {
  assert.deepEqual(got.peers.map((p) => p.node), want.peers.map((p) => p.node), `${what}: slots`);
  const a = new ForwardingTable(got.sab);
  const b = new ForwardingTable(want.sab);
  for (let x = 0; x < 65536; x += 61) {
    const addr = ipv4ToNumber('10.244.0.0') + x * 1;
    assert.equal(a.lookup(addr), b.lookup(addr), `${what}: lookup(10.244.${x >> 8}.${x & 255})`);
  }
  for (let slot = 0; slot < b.peerCount; slot++) {
    assert.equal(a.underlay[slot], b.underlay[slot], `${what}: underlay of slot ${slot}`);
    assert.equal(a.port[slot], b.port[slot], `${what}: port of slot ${slot}`);
    assert.equal(a.vni[slot], b.vni[slot], `${what}: vni of slot ${slot}`);
    assert.deepEqual(a.mac.subarray(slot * 6, slot * 6 + 6), b.mac.subarray(slot * 6, slot * 6 + 6), `${what}: MAC of slot ${slot}`);
    assert.equal(a.slotForUnderlay(b.underlay[slot]!), slot, `${what}: underlay hash of slot ${slot}`);
    assert.deepEqual(a.podCIDRs(slot), b.podCIDRs(slot), `${what}: pod CIDRs of slot ${slot}`);
  }
}

test('makeTables: random changes to a few peers are patched, and answer as a full build does', () => {
  const rng = new Rng(5150);
  let patchedCount = 0;
  for (let round = 0; round < 150; round++) {
    const n = rng.int(16, 120);
    const base = Array.from({ length: n }, (_, i) => peer(i + 2));
    const prev = makeTables(base, local);
    const next = base.slice();
    const k = rng.int(1, 3);
    for (let c = 0; c < k; c++) {
      const i = rng.int(0, n - 1);
      const p = next[i]!;
      switch (rng.int(0, 4)) {
        case 0: next[i] = { ...p, underlayIP: `198.51.100.${rng.int(1, 254)}` }; break;
        case 1: next[i] = { ...p, port: rng.int(1, 65535), vni: rng.int(0, 0xffffff) }; break;
        case 2: next[i] = { ...p, vtepMAC: `02:aa:00:00:${hex2(rng.int(0, 255))}:${hex2(rng.int(0, 255))}` }; break;
        case 3: { // move to a free /24 (or a taken one: a conflict)
          const third = rng.int(130, 255);
          next[i] = { ...p, podCIDRs: [`10.244.${third}.0/24`] };
          break;
        }
        default: { // swap pod CIDRs with another peer
          const j = rng.int(0, n - 1);
          const q = next[j]!;
          next[i] = { ...p, podCIDRs: q.podCIDRs };
          next[j] = { ...q, podCIDRs: p.podCIDRs };
        }
      }
    }
    let want: Tables;
    try {
      want = makeTables(next, local);
    } catch (err) {
      assert.fail(`round ${round}: a full build threw ${String(err)}`);
    }
    const got = makeTables(next, local, prev);
    if (got.made !== 'full') patchedCount++;
    assert.deepEqual(got.setAside, want.setAside, `round ${round}: set aside`);
    sameAnswers(got, want, `round ${round}`);
  }
  process.stderr.write(`observed: ${patchedCount} of 150 random changes were patched, the rest built in full\n`);
  assert.ok(patchedCount > 75, `most random changes are plain changes of facts and should be patched (got ${patchedCount})`);
});

test('makeTables: when a patch is refused, the full build takes over, table-driven', () => {
  const base = Array.from({ length: 40 }, (_, i) => peer(i + 2));
  const prev = makeTables(base, local);
  const edit = (f: (ps: Peer[]) => void): Peer[] => {
    const ps = base.slice();
    f(ps);
    return ps;
  };
  const cases: Array<{ name: string; next: Peer[]; patched: boolean }> = [
    { name: 'one peer gets a new underlay address', next: edit((ps) => { ps[3] = { ...ps[3]!, underlayIP: '198.51.100.7' }; }), patched: true },
    { name: 'two peers swap pod CIDRs', next: edit((ps) => { ps[3] = { ...ps[3]!, podCIDRs: base[4]!.podCIDRs }; ps[4] = { ...ps[4]!, podCIDRs: base[3]!.podCIDRs }; }), patched: true },
    { name: 'a peer is added', next: [...base, peer(99)], patched: false },
    { name: 'a peer is removed', next: base.slice(1), patched: false },
    { name: 'a peer moves onto another peer\'s CIDR (conflict)', next: edit((ps) => { ps[3] = { ...ps[3]!, podCIDRs: base[4]!.podCIDRs }; }), patched: false },
    { name: 'a peer moves onto this node\'s CIDR', next: edit((ps) => { ps[3] = { ...ps[3]!, podCIDRs: ['10.244.0.0/24'] }; }), patched: false },
    { name: 'a peer takes another\'s underlay', next: edit((ps) => { ps[3] = { ...ps[3]!, underlayIP: base[4]!.underlayIP }; }), patched: false },
    { name: 'a peer takes another\'s MAC (a warning needs the full picture)', next: edit((ps) => { ps[3] = { ...ps[3]!, vtepMAC: base[4]!.vtepMAC }; }), patched: false },
    { name: 'a peer gets a pod CIDR finer than the index', next: edit((ps) => { ps[3] = { ...ps[3]!, podCIDRs: ['10.244.200.0/26'] }; }), patched: false },
    { name: 'a peer gets a second pod CIDR', next: edit((ps) => { ps[3] = { ...ps[3]!, podCIDRs: ['10.244.5.0/24', '10.244.201.0/24'] }; }), patched: false },
    { name: 'more peers change than a patch takes', next: base.map((p, i) => ({ ...p, port: 4789 + (i % 2) })), patched: false },
  ];
  for (const c of cases) {
    const got = makeTables(c.next, local, prev);
    assert.equal(got.made !== 'full', c.patched, `${c.name}: made ${JSON.stringify(got.made)}`);
    sameAnswers(got, makeTables(c.next, local), c.name);
  }
  assert.equal(makeTables(base, local, prev), prev, 'an unchanged snapshot returns the tables in force');
});

test('patchTable: refuses a renamed slot, a slot out of range, and a bad port', () => {
  const peers = [peer(2), peer(3)];
  const input = { clusterNet: ipv4ToNumber('10.244.0.0'), clusterPrefix: 16, localPodCIDRs: [{ net: ipv4ToNumber('10.244.0.0'), prefix: 24 }],
    peers: peers.map((p) => ({ node: p.node, underlay: ipv4ToNumber(p.underlayIP), port: 8472, vni: 1, mac: parseMac(p.vtepMAC), podCIDRs: [{ net: ipv4ToNumber(p.podCIDRs[0]!.split('/')[0]!), prefix: 24 }] })) };
  const sab = buildTable(input);
  const p0 = input.peers[0]!;
  assert.equal(patchTable(sab, [{ slot: 0, peer: { ...p0, node: 'other' } }]), undefined, 'renamed');
  assert.equal(patchTable(sab, [{ slot: 5, peer: p0 }]), undefined, 'slot out of range');
  assert.equal(patchTable(sab, [{ slot: 0, peer: { ...p0, port: 0 } }]), undefined, 'port 0');
  const ok = patchTable(sab, [{ slot: 0, peer: { ...p0, port: 4789 } }]);
  assert.ok(ok, 'a plain port change patches');
  assert.equal(new ForwardingTable(ok).port[0], 4789);
  assert.equal(new ForwardingTable(sab).port[0], 8472, 'the table in force is not written');
});
