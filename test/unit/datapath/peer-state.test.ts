/**
 * Per-peer state that outlives tables: a peer keeps its entry across any number of table swaps,
 * a removed peer's entry is reused only after every worker moved past it, and the totals
 * (retired + entries) equal everything ever counted at every step, however the peer set churns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerField, PeerStates, PEER_STATE_CAPACITY, PeerStateError } from '../../../src/datapath/peer-state.js';
import { Rng } from '../../rng.js';

function count(ps: PeerStates, idx: number, tx: number, rx: number): void {
  const b = new Float64Array(ps.buffer, 0, PEER_STATE_CAPACITY * PeerField.Stride);
  b[idx * PeerField.Stride + PeerField.TxPackets]! += tx;
  b[idx * PeerField.Stride + PeerField.TxBytes]! += tx * 100;
  b[idx * PeerField.Stride + PeerField.RxPackets]! += rx;
  b[idx * PeerField.Stride + PeerField.RxBytes]! += rx * 100;
}

test('a peer keeps its state index across swaps, whatever its slot', () => {
  const ps = new PeerStates();
  const a = ps.assign(['n1', 'n2', 'n3'], 1);
  const b = ps.assign(['n3', 'n0', 'n1', 'n2'], 2);
  assert.deepEqual([b[2], b[3], b[0]], [a[0], a[1], a[2]], 'n1, n2, n3 keep theirs');
  assert.ok(![...a].includes(b[1]!), 'the newcomer gets a fresh one');
});

test('a removed peer\'s entry is reused only once the workers moved past its removal, its counts retired', () => {
  const ps = new PeerStates();
  const g1 = ps.assign(['n1', 'n2'], 1);
  count(ps, g1[1]!, 7, 5);
  ps.assign(['n1'], 2); // n2 removed in generation 2
  ps.release(1); // a worker still runs generation 1: n2's entry may still be written
  const g3 = ps.assign(['n1', 'n9'], 3);
  assert.notEqual(g3[1], g1[1], 'not reused while a worker may write it');
  assert.deepEqual(ps.reading().removed, { txPackets: 7, txBytes: 700, rxPackets: 5, rxBytes: 500 }, 'n2 counts as removed at once, its entry not yet reused');
  assert.equal(ps.reading().of('n2'), undefined, 'and is no peer any more');
  ps.release(3);
  assert.deepEqual(ps.reading().removed, { txPackets: 7, txBytes: 700, rxPackets: 5, rxBytes: 500 }, 'n2\'s counts retired');
  assert.deepEqual(ps.read(g1[1]!), { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, pathMtu: 0 }, 'its entry zeroed');
  const g4 = ps.assign(['n1', 'n9', 'n5'], 4);
  assert.equal(g4[2], g1[1], 'and then reused');
});

test('totals never lose or double a count through random churn (differential against a ledger)', () => {
  const rng = new Rng(20261202);
  const ps = new PeerStates();
  const pool = Array.from({ length: 40 }, (_, i) => `node${i}`);
  let ledger = 0;
  let seen = 0;
  for (let gen = 1; gen <= 500; gen++) {
    const nodes = pool.filter(() => rng.chance(0.5));
    const stateOf = ps.assign(nodes, gen);
    for (let i = 0; i < stateOf.length && i < nodes.length; i++) {
      const n = rng.chance(0.5) ? rng.int(1, 10) : 0;
      count(ps, stateOf[i]!, n, n);
      ledger += n;
    }
    if (rng.chance(0.7)) seen = gen; // the workers catch up now and then
    ps.release(seen);
    const r = ps.reading();
    const t = r.totals;
    assert.equal(t.txPackets, ledger, `generation ${gen}: tx total`);
    assert.equal(t.rxBytes, ledger * 100, `generation ${gen}: rx bytes total`);
    // What a scrape shows: every current peer's counters plus the removed peers' are the totals.
    let perPeer = r.removed.txPackets;
    for (const n of nodes) perPeer += r.of(n)!.txPackets;
    assert.equal(perPeer, t.txPackets, `generation ${gen}: per-peer + removed = total`);
  }
});

test('the path MTU of a peer is the smallest any block learned', () => {
  const ps = new PeerStates(2);
  const [idx] = ps.assign(['n1'], 1);
  const b0 = new Float64Array(ps.buffer, 0, PEER_STATE_CAPACITY * PeerField.Stride);
  const b1 = new Float64Array(ps.buffer, PEER_STATE_CAPACITY * PeerField.Stride * 8, PEER_STATE_CAPACITY * PeerField.Stride);
  b0[idx! * PeerField.Stride + PeerField.PathMtu] = 1400;
  b1[idx! * PeerField.Stride + PeerField.PathMtu] = 1380;
  b1[idx! * PeerField.Stride + PeerField.TxPackets] = 3;
  const v = ps.read(idx!);
  assert.equal(v.pathMtu, 1380);
  assert.equal(v.txPackets, 3);
});

test('more live peers than the capacity is a clear error, not a corrupt table', () => {
  const ps = new PeerStates();
  const many = Array.from({ length: PEER_STATE_CAPACITY }, (_, i) => `n${i}`);
  ps.assign(many, 1);
  assert.throws(() => ps.assign([...many, 'one-more'], 2), (e: Error) => e instanceof PeerStateError && /at most 131072 peers/.test(e.message));
});
