/**
 * Peer churn under load (issue 11 §6, §7): the peer list changes a hundred times while iperf3
 * TCP runs between pods on two nodes, and none of the changes touches the peer that carries the
 * stream. Every table swap must leave the stream alone: iperf3 reports every 0.2 s, and the test
 * fails on a stall while the peers change (two empty intervals in a row, or an empty one with
 * retransmissions); every empty interval is reported. And the counters must stay exact across
 * the swaps: in every scrape taken during the churn, the per-peer packet counters plus the
 * removed peers' counter equal the totals, in both directions (per-peer metrics switched on for
 * this, see docs/operations.md).
 *
 * Static mode rewrites each node's peers file (add, remove and modify unrelated peers) and sends
 * SIGHUP; Kubernetes mode adds, deletes and modifies unrelated Node objects in the API stand-in.
 * Both are bounded in count and time. Throughput numbers are reported, not asserted: the
 * machine is shared.
 *
 * Before the agent took the totals, every peer's counters and the removed peers' traffic from one
 * reading, this check found the parts ahead of the totals in about a third of the scrapes.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import { sampleValue, type Sample } from '../../src/lab/http.js';
import { sleep } from '../../src/lab/exec.js';
import { makeNode } from '../support/kube-apiserver.js';
import { agentSkip, withLab } from './helpers.js';
import { withApiLab } from './kube-lab.js';
import { Rng } from '../rng.js';

const skip = agentSkip(['ip', 'bridge', 'iperf3', 'ping', 'ethtool', 'socat', 'ss']);

const CHANGES = 100;
const UNRELATED = 60;
const IPERF_SECONDS = 30;
const CONTROL_SECONDS = 10;

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** Unrelated peer k: its own underlay address, pod CIDR and VTEP MAC, nobody sends to it. */
function unrelated(k: number, variant = 0): { node: string; underlayIP: string; podCIDRs: string[]; vtepMAC: string } {
  return { node: `churn${k}`, underlayIP: `192.168.${200 + variant}.${k + 1}`, podCIDRs: [`10.244.${100 + k}.0/24`], vtepMAC: `02:42:c0:${hex2(variant)}:c8:${hex2(k)}` };
}

/** The annotations a vxnet or flannel node publishes about its VTEP. */
function published(u: ReturnType<typeof unrelated>): Record<string, string> {
  return { 'vxnet.io/backend-type': 'vxlan', 'vxnet.io/public-ip': u.underlayIP, 'vxnet.io/backend-data': JSON.stringify({ VNI: 1, VtepMAC: u.vtepMAC }) };
}

interface IperfIntervals {
  /** Bits per second of each 0.2 s interval (client side). */
  rates: number[];
  /** TCP retransmissions the sender counted in each interval. */
  retransmits: number[];
  /** When the client started (ms since the epoch). */
  startedAt: number;
  error?: string;
}

/** iperf3 TCP from a to b for `seconds`, reporting every 0.2 s; resolves when it ends. */
async function iperfIntervals(lab: Lab, server: string, client: string, seconds: number): Promise<IperfIntervals> {
  const s = lab.pod(server);
  const c = lab.pod(client);
  const srv = lab.spawn(s.ns, ['iperf3', '-s', '-1', '-B', s.ip, '-p', '5390'], (seconds + 30) * 1000);
  try {
    await sleep(300);
    const startedAt = Date.now();
    const r = await lab.exec(c.ns, ['iperf3', '-c', s.ip, '-p', '5390', '-t', String(seconds), '-i', '0.2', '-J', '--connect-timeout', '3000'], { timeoutMs: (seconds + 20) * 1000 });
    const j = JSON.parse(r.stdout.slice(Math.max(0, r.stdout.indexOf('{'))) || '{}') as { error?: string; intervals?: Array<{ sum?: { bits_per_second?: number; retransmits?: number } }> };
    const iv = j.intervals ?? [];
    return { rates: iv.map((i) => i.sum?.bits_per_second ?? 0), retransmits: iv.map((i) => i.sum?.retransmits ?? 0), startedAt, ...(j.error ? { error: j.error } : {}) };
  } finally {
    await srv.stop('SIGKILL', 1000);
  }
}

/** The per-peer counters plus the removed peers' counter, against the totals, in one scrape. */
function perPeerGap(m: readonly Sample[], direction: 'tx' | 'rx'): { total: number; parts: number } {
  const total = sampleValue(m, 'vxnet_packets_total', { direction });
  const parts = sampleValue(m, 'vxnet_peer_packets_total', { direction }) + sampleValue(m, 'vxnet_removed_peers_packets_total', { direction });
  return { total, parts };
}

interface ScrapeLog {
  scrapes: number;
  mismatches: string[];
}

/** Scrapes both nodes every ~50 ms until `done`, checking the per-peer sums in each scrape. */
async function scrapeWhile(lab: Lab, done: () => boolean): Promise<ScrapeLog> {
  const log: ScrapeLog = { scrapes: 0, mismatches: [] };
  while (!done()) {
    for (const i of [1, 2]) {
      const m = await lab.metrics(i);
      log.scrapes++;
      for (const d of ['tx', 'rx'] as const) {
        const g = perPeerGap(m, d);
        if (g.total !== g.parts) log.mismatches.push(`node${i} ${d}: total ${g.total}, per-peer + removed ${g.parts}`);
      }
    }
    await sleep(50);
  }
  return log;
}

function median(xs: readonly number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[v.length >> 1] ?? Number.NaN;
}

function report(mode: string, it: IperfIntervals, changes: string, scrapes: ScrapeLog, generations: string): void {
  const zero = it.rates.filter((r) => r === 0).length;
  const re = it.retransmits.reduce((a, b) => a + b, 0);
  say(`${mode}: ${changes}; ${generations}; iperf3 ${it.rates.length} intervals of 0.2 s, ${zero} at zero, ${re} retransmits, ` +
    `min ${(Math.min(...it.rates) / 1e6).toFixed(0)} Mbit/s, median ${(median(it.rates) / 1e6).toFixed(0)} Mbit/s; ` +
    `${scrapes.scrapes} scrapes, ${scrapes.mismatches.length} with per-peer sums off the totals${scrapes.mismatches.length > 0 ? ` (${scrapes.mismatches.slice(0, 3).join('; ')})` : ''}`);
}

/** The 0.2 s intervals at zero, as "12.4 s" from the client's start. */
function zeroAt(it: IperfIntervals, from = 0, to = Number.POSITIVE_INFINITY): string[] {
  return it.rates.map((r, i) => [i * 0.2, r, it.retransmits[i] ?? 0] as const).filter(([t, r]) => r === 0 && t + 0.2 >= from && t <= to)
    .map(([t, , re]) => `${t.toFixed(1)} s (${re} retransmits)`);
}

/**
 * The 0.2 s intervals in [from, to] (seconds into the stream) that show a stall of the path: two
 * or more empty intervals in a row (nothing moved for at least 0.4 s), or an empty interval where
 * TCP counted retransmissions (packets were lost) in it or the next one.
 */
function stallsIn(it: IperfIntervals, from: number, to: number): string[] {
  const empty = (i: number): boolean => it.rates[i] === 0;
  const out: string[] = [];
  for (let i = 0; i < it.rates.length; i++) {
    const t = i * 0.2;
    if (!empty(i) || t + 0.2 < from || t > to) continue;
    const lost = (it.retransmits[i] ?? 0) + (it.retransmits[i + 1] ?? 0);
    if (empty(i - 1) || empty(i + 1) || lost > 0) out.push(`${t.toFixed(1)} s (${lost} retransmits)`);
  }
  return out;
}

/**
 * The stream ran, and the path did not stall while the changes were made (from the first to one
 * second past the last): no two empty 0.2 s intervals in a row and no empty one with packet loss.
 * A single empty interval without loss is reported, not failed: on a machine shared with other
 * work (load averages of 12-20 on 2 cores while these tests were written) a process starved of
 * CPU for 0.2 s empties one interval with no restart or swap at all.
 */
async function assertStream(t: TestContext, it: IperfIntervals, window: { from: number; to: number }, scrapes: ScrapeLog): Promise<void> {
  assert.equal(it.error, undefined, `iperf3: ${it.error}`);
  assert.ok(it.rates.length >= IPERF_SECONDS * 5 - 2, `iperf3 reported ${it.rates.length} intervals`);
  const from = (window.from - it.startedAt) / 1000;
  const to = (window.to - it.startedAt) / 1000 + 1;
  say(`changes from ${from.toFixed(1)} s to ${(to - 1).toFixed(1)} s of the stream; empty intervals in that window: ${zeroAt(it, from, to).join(', ') || 'none'}; outside it: ${zeroAt(it).filter((z) => !zeroAt(it, from, to).includes(z)).join(', ') || 'none'}`);
  assert.deepEqual(stallsIn(it, from, to), [], 'no stall (two empty 0.2 s intervals in a row, or an empty one with retransmissions) while the peers changed');
  assert.ok(scrapes.scrapes >= 20, `scrapes during the churn: ${scrapes.scrapes}`);
  await t.test('per-peer counters plus removed peers equal the totals in every scrape', () => {
    assert.deepEqual(scrapes.mismatches.slice(0, 5), []);
  });
}

/** The same stream for a while with nothing changing, for comparison (reported only). */
async function control(lab: Lab): Promise<void> {
  const it = await iperfIntervals(lab, 'p2a', 'p1a', CONTROL_SECONDS);
  say(`control, no changes: ${it.rates.length} intervals, empty: ${zeroAt(it).join(', ') || 'none'}, ${it.retransmits.reduce((a, b) => a + b, 0)} retransmits, median ${(median(it.rates) / 1e6).toFixed(0)} Mbit/s`);
}

async function generation(lab: Lab, i: number): Promise<number> {
  return ((await lab.status(i)) as { info: { tableGeneration: number } }).info.tableGeneration;
}

interface ChurnRun {
  it: IperfIntervals;
  scrapes: ScrapeLog;
  /** When the first and the last change were made (ms since the epoch). */
  window: { from: number; to: number };
  /** Changes made. */
  changes: number;
  /** Table generation of node1 and node2 before and after. */
  generations: string;
  gen0: number[];
  gen1: number[];
}

/**
 * iperf3 p1a -> p2a for IPERF_SECONDS with both nodes scraped throughout; from 2 s in, `change`
 * is called up to CHANGES times, 150 ms apart, bounded to end well before the stream does. Then
 * the control stream runs.
 */
async function underChurn(lab: Lab, change: (c: number) => void): Promise<ChurnRun> {
  const gen0 = await Promise.all([1, 2].map((i) => generation(lab, i)));
  const stream = iperfIntervals(lab, 'p2a', 'p1a', IPERF_SECONDS);
  let finished = false;
  void stream.finally(() => { finished = true; });
  const scraping = scrapeWhile(lab, () => finished);
  await sleep(2000);
  const until = Date.now() + (IPERF_SECONDS - 6) * 1000;
  const window = { from: Date.now(), to: Date.now() };
  let changes = 0;
  for (; changes < CHANGES && Date.now() < until && !finished; changes++) {
    change(changes);
    window.to = Date.now();
    await sleep(150);
  }
  const it = await stream;
  const scrapes = await scraping;
  await control(lab);
  const gen1 = await Promise.all([1, 2].map((i) => generation(lab, i)));
  return { it, scrapes, window, changes, gen0, gen1, generations: `table generations node1 ${gen0[0]} -> ${gen1[0]}, node2 ${gen0[1]} -> ${gen1[1]}` };
}

test('static peers: 100 rewrites of the peers file under iperf3 do not stall the stream; per-peer counters checked in every scrape', { skip, timeout: 180_000 }, async (t) => {
  const rng = new Rng(0xc4a9e);
  const real = new Map<number, unknown>();
  const writePeers = (node: LabNode, extra: readonly unknown[]): void => {
    const f = join(node.dir, 'peers.json');
    writeFileSync(`${f}.tmp`, JSON.stringify([real.get(node.index), ...extra]));
    renameSync(`${f}.tmp`, f);
  };
  await withLab({
    nodes: 2,
    podsPerNode: 1,
    agentConfigExtra: { peers: undefined, peersFile: 'peers.json', perPeerMetrics: true },
    beforeDataPlanes: async (lab) => {
      for (const n of lab.nodes) {
        const p = lab.peersOf(n)[0]!;
        real.set(n.index, { node: p.name, underlayIP: p.underlayIP, podCIDRs: [p.podCIDR], vtepMAC: p.vtepMAC, remoteChecksum: true });
        writePeers(n, []);
      }
    },
  }, async (lab) => {
    // Each change adds, removes or modifies unrelated peers; the set stays within UNRELATED.
    let present = new Map<number, number>();
    const counts = { added: 0, removed: 0, modified: 0 };
    const run = await underChurn(lab, () => {
      const next = new Map(present);
      for (let k = 0; k < UNRELATED; k++) {
        const roll = rng.int(0, 9);
        if (roll === 0 && next.has(k)) {
          next.delete(k);
          counts.removed++;
        } else if (roll === 1 && !next.has(k)) {
          next.set(k, 0);
          counts.added++;
        } else if (roll === 2 && next.has(k)) {
          next.set(k, (next.get(k)! + 1) % 50);
          counts.modified++;
        }
      }
      present = next;
      const extra = [...present].map(([k, v]) => unrelated(k, v));
      for (const n of lab.nodes) writePeers(n, extra);
      for (const i of [1, 2]) process.kill(lab.agentPid(i)!, 'SIGHUP');
    });
    report('static', run.it, `${run.changes} peers-file rewrites with SIGHUP on both nodes (${counts.added} unrelated peers added, ${counts.removed} removed, ${counts.modified} modified; ${present.size} at the end)`,
      run.scrapes, run.generations);
    assert.equal(run.changes, CHANGES, 'all the rewrites happened while iperf3 ran');
    assert.ok(run.gen1[0]! > run.gen0[0]! && run.gen1[1]! > run.gen0[1]!, 'the changes were applied');
    const st = (await lab.status(1)) as { peers: unknown[] };
    assert.equal(st.peers.length, present.size + 1, 'node1 ends with the last file\'s peers');
    await assertStream(t, run.it, run.window, run.scrapes);
  });
});

test('Kubernetes: 100 unrelated Node adds, deletes and changes under iperf3 do not stall the stream; per-peer counters checked in every scrape', { skip, timeout: 240_000 }, async (t) => {
  const rng = new Rng(0x6b8e5);
  await withApiLab(2, () => undefined, { podsPerNode: 1, agentConfigExtra: { perPeerMetrics: true } }, async (lab, api) => {
    const present = new Set<number>();
    const counts = { added: 0, deleted: 0, modified: 0 };
    const run = await underChurn(lab, () => {
      const k = rng.int(0, UNRELATED - 1);
      const name = `churn${k}`;
      if (!present.has(k)) {
        const u = unrelated(k);
        api.addNode(makeNode({ name, podCIDR: u.podCIDRs[0]!, internalIP: u.underlayIP, annotations: published(u) }));
        present.add(k);
        counts.added++;
      } else if (rng.chance(0.5)) {
        api.deleteNode(name);
        present.delete(k);
        counts.deleted++;
      } else {
        // A new underlay address and VTEP MAC, as a node re-created under the same name has.
        const u = unrelated(k, rng.int(1, 49));
        api.updateNode(name, (n) => {
          n.metadata.annotations = { ...n.metadata.annotations, ...published(u) };
          for (const a of n.status?.addresses ?? []) if (a.type === 'InternalIP') a.address = u.underlayIP;
        });
        counts.modified++;
      }
    });
    report('kubernetes', run.it, `${run.changes} Node changes (${counts.added} added, ${counts.deleted} deleted, ${counts.modified} InternalIP and VTEP changed; ${present.size} unrelated at the end)`,
      run.scrapes, run.generations);
    assert.equal(run.changes, CHANGES, 'all the changes happened while iperf3 ran');
    assert.ok(run.gen1[0]! > run.gen0[0]!, 'the changes were applied');
    let peers = 0;
    for (let i = 0; i < 50; i++) {
      peers = ((await lab.status(1)) as { peers: unknown[] }).peers.length;
      if (peers === present.size + 1) break;
      await sleep(100);
    }
    assert.equal(peers, present.size + 1, 'node1 ends with every Node but itself as a peer');
    await assertStream(t, run.it, run.window, run.scrapes);
  });
});
