/**
 * MTU in the field (issue 7 §1, §2): the agent must take its MTU from the underlay and must not
 * black-hole a path narrower than its own interface. These tests build the topologies users
 * have (a cloud's 1460, a tunnel's 1400, jumbo 9001, a 1400-byte hop between two 1500-byte
 * nodes) with no MTU in any agent config, and measure what pods get.
 *
 * Each prints what it measured (`observed:` lines) before it asserts, so a failing run still
 * shows all its numbers. Throughput comparisons take the best of two interleaved 3-second runs
 * per direction: the labs share a 2-core machine with other work, and one slow moment must not
 * decide a ratio.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatBps, iperf, podEndpoint } from '../../src/lab/checks.js';
import { Lab, type LabOptions } from '../../src/lab/lab.js';
import { agentSkip } from './helpers.js';

const skip = agentSkip(['ip', 'bridge', 'iperf3', 'ping', 'ethtool', 'tracepath']);

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

/** Black-holed paths measure ~0.2 Mbit/s; working ones hundreds of Mbit/s even on a busy machine. */
const WORKING_BPS = 20e6;

async function withLabs<T>(optsList: readonly LabOptions[], f: (labs: Lab[]) => Promise<T>): Promise<T> {
  const labs: Lab[] = [];
  try {
    for (const o of optsList) labs.push(await Lab.up({ log: (m) => process.stderr.write(`${m}\n`), ...o }));
    return await f(labs);
  } catch (err) {
    for (const l of labs) {
      for (const n of l.nodes) if (n.kind === 'vxnet') process.stderr.write(`--- lab ${l.id} ${n.name} agent log (tail) ---\n${l.agentLog(n.index, 20)}\n`);
    }
    throw err;
  } finally {
    await Promise.allSettled(labs.map((l) => l.down()));
  }
}

/** The MTU node i of `lab` actually runs with: the TUN device, /status and the conflist. */
async function mtuInUse(lab: Lab, i: number): Promise<{ device: number; status: number; conflist: number }> {
  const n = lab.node(i);
  const link = await lab.execOk(n.ns, ['ip', '-o', 'link', 'show', 'dev', 'vxnet0']);
  const st = (await lab.status(i)) as { info?: { mtu?: number } };
  const conf = JSON.parse(readFileSync(join(n.dir, 'net.d', '10-vxnet.conflist'), 'utf8')) as { plugins: { mtu?: number }[] };
  return { device: Number(/ mtu (\d+)/.exec(link.stdout)?.[1]), status: st.info?.mtu ?? NaN, conflist: conf.plugins[0]?.mtu ?? NaN };
}

async function tcp(lab: Lab, from: string, to: string): Promise<number> {
  const r = await iperf(lab, podEndpoint(lab.pod(to)), podEndpoint(lab.pod(from)), { seconds: 3 });
  return r.bitsPerSecond;
}

/** Best of `rounds` runs of each (lab, from, to), the runs interleaved across all of them. */
async function bestTcp(runs: readonly { key: string; lab: Lab; from: string; to: string }[], rounds = 2): Promise<Map<string, number>> {
  const best = new Map<string, number>();
  for (let r = 0; r < rounds; r++) {
    for (const x of runs) best.set(x.key, Math.max(best.get(x.key) ?? 0, await tcp(x.lab, x.from, x.to)));
  }
  return best;
}

/** tracepath from a pod: the path MTU it reports at the end ("Resume: pmtu N"). */
async function tracepath(lab: Lab, from: string, to: string): Promise<{ pmtu: number; output: string }> {
  const r = await lab.exec(lab.pod(from).ns, ['tracepath', '-n', '-m', '6', lab.pod(to).ip], { timeoutMs: 40_000 });
  const out = r.stdout + r.stderr;
  const pmtus = [...out.matchAll(/pmtu (\d+)/g)].map((m) => Number(m[1]));
  return { pmtu: pmtus.length ? Math.min(...pmtus) : NaN, output: out.trim() };
}

test('MTU from the underlay: 1400-byte uplinks, no MTU in the config, against mtu set by hand in the same run', { skip, timeout: 300_000 }, async () => {
  const common: LabOptions = { nodes: 2, podsPerNode: 1, underlayMTU: () => 1400 };
  await withLabs([{ ...common, agentMTU: 'auto' }, { ...common, agentMTU: 'lab' }], async ([auto, byHand]) => {
    // Measure and print everything first, so a failing run still shows all its numbers.
    const inUse = [];
    for (const i of [1, 2]) {
      const got = await mtuInUse(auto!, i);
      say(`auto, node${i} on a 1400-byte uplink: TUN ${got.device}, /status ${got.status}, conflist ${got.conflist}`);
      inUse.push(got);
    }
    const runs = [];
    for (const [name, lab] of [['auto', auto!], ['mtu 1350 by hand', byHand!]] as const) {
      for (const [from, to] of [['p1a', 'p2a'], ['p2a', 'p1a']] as const) runs.push({ key: `${name} ${from}`, lab, from, to });
    }
    const best = await bestTcp(runs);
    const rates = Object.fromEntries(best);
    say(`1400-byte underlay, same run, best of 2: ${runs.map((x) => `${x.key.replace(/ p\w+$/, '')}: TCP ${x.from} -> ${x.to} ${formatBps(best.get(x.key)!)}`).join('; ')}`);
    inUse.forEach((got, j) => assert.deepEqual(got, { device: 1350, status: 1350, conflist: 1350 }, `node${j + 1}: want underlay 1400 - 50 everywhere`));
    for (const from of ['p1a', 'p2a']) {
      const a = rates[`auto ${from}`]!;
      const h = rates[`mtu 1350 by hand ${from}`]!;
      assert.ok(a >= WORKING_BPS, `auto, TCP from ${from}: ${formatBps(a)}, want at least ${formatBps(WORKING_BPS)} (a black hole is ~0.2 Mbit/s)`);
      assert.ok(a >= h / 2, `auto, TCP from ${from}: ${formatBps(a)}, want at least half of the hand-set MTU's ${formatBps(h)}`);
    }
  });
});

test('every node derives its own MTU: uplinks of 1400, 9001 and 1460 in one cluster', { skip, timeout: 300_000 }, async () => {
  const mtus = [1400, 9001, 1460];
  await withLabs([{ nodes: 3, podsPerNode: 1, agentMTU: 'auto', underlayMTU: (i) => mtus[i - 1]! }], async ([lab]) => {
    const inUse = [];
    for (const i of [1, 2, 3]) {
      const got = await mtuInUse(lab!, i);
      say(`node${i} on a ${mtus[i - 1]}-byte uplink: TUN ${got.device}, /status ${got.status}, conflist ${got.conflist}`);
      inUse.push(got);
    }
    // Between nodes of different MTUs the path is the smaller one: bulk TCP must still flow.
    const rates: [string, number][] = [];
    for (const [from, to] of [['p1a', 'p2a'], ['p2a', 'p1a'], ['p2a', 'p3a'], ['p3a', 'p2a'], ['p1a', 'p3a'], ['p3a', 'p1a']] as const) {
      const bps = await tcp(lab!, from, to);
      say(`TCP ${from} (uplink ${mtus[Number(from[1]) - 1]}) -> ${to} (uplink ${mtus[Number(to[1]) - 1]}): ${formatBps(bps)}`);
      rates.push([`${from} -> ${to}`, bps]);
    }
    inUse.forEach((got, j) => {
      const want = mtus[j]! - 50;
      assert.deepEqual(got, { device: want, status: want, conflist: want }, `node${j + 1}: want ${mtus[j]} - 50 everywhere`);
    });
    for (const [pair, bps] of rates) assert.ok(bps >= WORKING_BPS, `TCP ${pair}: ${formatBps(bps)}, want at least ${formatBps(WORKING_BPS)}`);
  });
});

test('a 1400-byte hop between two 1500-byte nodes: no black hole, tracepath sees it; kernel VXLAN in the same topology', { skip, timeout: 300_000 }, async () => {
  const topology: LabOptions = { nodes: 2, podsPerNode: 1, narrowHop: { nodes: [2], mtu: 1400 } };
  await withLabs([{ ...topology, agentMTU: 'auto' }, { ...topology, kind: () => 'kernel' }], async ([vx, kernel]) => {
    const results: Record<string, { to2: number; to1: number; pmtu: number }> = {};
    const best = await bestTcp([
      { key: 'vxnet to2', lab: vx!, from: 'p1a', to: 'p2a' }, { key: 'vxnet to1', lab: vx!, from: 'p2a', to: 'p1a' },
      { key: 'kernel VXLAN to2', lab: kernel!, from: 'p1a', to: 'p2a' }, { key: 'kernel VXLAN to1', lab: kernel!, from: 'p2a', to: 'p1a' },
    ]);
    for (const [name, lab] of [['vxnet', vx!], ['kernel VXLAN', kernel!]] as const) {
      const to2 = best.get(`${name} to2`)!;
      const to1 = best.get(`${name} to1`)!;
      const tp = await tracepath(lab, 'p1a', 'p2a');
      results[name] = { to2, to1, pmtu: tp.pmtu };
      say(`${name}, 1400-byte hop, best of 2: TCP p1a -> p2a ${formatBps(to2)}, p2a -> p1a ${formatBps(to1)}; tracepath from p1a: pmtu ${tp.pmtu}`);
      say(`${name} tracepath:\n${tp.output}`);
    }
    const v = results['vxnet']!;
    assert.ok(v.to2 >= v.to1 / 2, `vxnet TCP p1a -> p2a ${formatBps(v.to2)}, want at least half of p2a -> p1a ${formatBps(v.to1)}`);
    assert.ok(v.to2 >= WORKING_BPS && v.to1 >= WORKING_BPS, `vxnet both ways at least ${formatBps(WORKING_BPS)}: ${formatBps(v.to2)}, ${formatBps(v.to1)}`);
    assert.ok(v.pmtu <= 1400 - 50, `tracepath from p1a reports pmtu ${v.pmtu}, want at most 1350 (the hop's 1400 less VXLAN's 50)`);
  });
});

test('the lab\'s field topologies: per-node uplink MTU on both ends, and a narrow hop whose router sends "fragmentation needed"', { skip, timeout: 120_000 }, async () => {
  // Kernel VXLAN nodes: this checks the lab's underlay, with no vxnet code in the path.
  await withLabs([{ nodes: 3, podsPerNode: 1, kind: () => 'kernel', underlayMTU: (i) => (i === 3 ? 9001 : 1500), narrowHop: { nodes: [2], mtu: 1400 } }], async ([lab]) => {
    const l = lab!;
    const n3 = l.node(3);
    const mtuOf = async (ns: string, dev: string): Promise<number> =>
      Number(/ mtu (\d+)/.exec((await l.execOk(ns, ['ip', '-o', 'link', 'show', 'dev', dev])).stdout)?.[1]);
    const ends = [await mtuOf(n3.ns, 'eth0'), await mtuOf(l.router, n3.routerIface)];
    say(`node3 uplink and its router port: MTU ${ends.join(' and ')}`);
    assert.deepEqual(ends, [9001, 9001]);

    // A DF packet that fits node1's 1500-byte link but not the 1400-byte hop: the first router
    // answers "fragmentation needed" with the hop's MTU, as a real router does.
    const n1 = l.node(1);
    const n2 = l.node(2);
    const p = await l.exec(n1.ns, ['ping', '-n', '-c', '1', '-W', '2', '-M', 'do', '-s', '1472', n2.underlayIP], { timeoutMs: 10_000 });
    const fragNeeded = (p.stdout + p.stderr).split('\n').find((x) => /Frag needed/i.test(x));
    say(`node1 ping -M do -s 1472 node2: ${fragNeeded ?? (p.stdout + p.stderr).trim()}`);
    assert.match(fragNeeded ?? '', /mtu = 1400/);
    const t = await l.exec(n1.ns, ['tracepath', '-n', '-m', '5', n2.underlayIP], { timeoutMs: 30_000 });
    const resume = /Resume: pmtu (\d+)/.exec(t.stdout)?.[1];
    say(`node1 tracepath node2: pmtu ${resume}`);
    assert.equal(resume, '1400', `tracepath output:\n${t.stdout}`);
    const r = await l.exec(l.router, ['ip', 'route', 'get', n2.underlayIP]);
    assert.match(r.stdout, /via 192\.168\.254\.2 dev hop/, 'the first router reaches node2 through the second');
  });
});
