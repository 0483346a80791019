/**
 * Forwarding-table benchmark: build time for 5,000 peers and lookups per second on one thread.
 *
 *   node dist/bench/table.js [--peers N] [--lookups N]
 *
 * Prints one JSON line per scenario, then one human-readable line each. Nothing is asserted:
 * the numbers depend on the machine. Addresses are drawn from a fixed-seed generator, so runs
 * on one machine are comparable.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { buildTable, ForwardingTable, type TableInput, type TablePeerInput } from '../src/table/table.js';
import { Rng } from '../test/rng.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '5000' },
    lookups: { type: 'string', default: '2000000' },
  },
});
const PEERS = Number(values.peers);
const LOOKUPS = Number(values.lookups);
const BUILD_RUNS = 7;
const LOOKUP_RUNS = 5;

const rng = new Rng(0x2545_f491);
const u32 = (): number => rng.u32();

interface Scenario {
  name: string;
  input: TableInput;
  /** Where the lookup addresses are drawn from. */
  addrs: Uint32Array;
}

/**
 * `PEERS` peers, each owning one /podPrefix, spread over the cluster at a stride, plus the local
 * node's own pod CIDR at the start of the cluster.
 */
function scenario(name: string, clusterNet: number, clusterPrefix: number, podPrefix: number, stride: number): Scenario {
  const podSize = 2 ** (32 - podPrefix);
  const peers: TablePeerInput[] = [];
  for (let i = 0; i < PEERS; i++) {
    const underlay = (0xac10_0000 + i + 1) >>> 0; // 172.16.x.y
    peers.push({
      node: `node-${String(i).padStart(5, '0')}`,
      underlay,
      port: 4789,
      vni: 1,
      mac: Uint8Array.of(0x02, 0x42, 0, 0, i >>> 8, i & 0xff),
      podCIDRs: [{ net: clusterNet + (i + 1) * stride * podSize, prefix: podPrefix }],
    });
  }
  const input: TableInput = {
    clusterNet,
    clusterPrefix,
    localPodCIDRs: [{ net: clusterNet, prefix: podPrefix }],
    peers,
  };
  const clusterSize = 2 ** (32 - clusterPrefix);
  const addrs = new Uint32Array(LOOKUPS);
  for (let i = 0; i < LOOKUPS; i++) addrs[i] = clusterNet + (u32() % clusterSize);
  return { name, input, addrs };
}

/** Addresses inside the peers' pod CIDRs only, so every lookup ends in a peer slot. */
function podAddrs(input: TableInput): Uint32Array {
  const addrs = new Uint32Array(LOOKUPS);
  for (let i = 0; i < LOOKUPS; i++) {
    const p = input.peers[u32() % input.peers.length]!;
    const c = p.podCIDRs[0]!;
    addrs[i] = c.net + (u32() % 2 ** (32 - c.prefix));
  }
  return addrs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

let sink = 0;

function lookupsPerSecond(t: ForwardingTable, addrs: Uint32Array): number {
  const rates: number[] = [];
  for (let run = 0; run < LOOKUP_RUNS + 1; run++) {
    const start = performance.now();
    let acc = 0;
    for (let i = 0; i < addrs.length; i++) acc += t.lookup(addrs[i]!);
    const ms = performance.now() - start;
    sink ^= acc;
    if (run > 0) rates.push(addrs.length / (ms / 1000)); // run 0 warms up the JIT
  }
  return median(rates);
}

function underlayLookupsPerSecond(t: ForwardingTable, input: TableInput): number {
  const addrs = new Uint32Array(LOOKUPS);
  for (let i = 0; i < LOOKUPS; i++) {
    // Three in four hit a peer; the rest miss, as a stray datagram would.
    addrs[i] = (u32() & 3) !== 0 ? input.peers[u32() % input.peers.length]!.underlay : u32();
  }
  const rates: number[] = [];
  for (let run = 0; run < LOOKUP_RUNS + 1; run++) {
    const start = performance.now();
    let acc = 0;
    for (let i = 0; i < addrs.length; i++) acc += t.slotForUnderlay(addrs[i]!);
    const ms = performance.now() - start;
    sink ^= acc;
    if (run > 0) rates.push(addrs.length / (ms / 1000));
  }
  return median(rates);
}

const TEN = 0x0a00_0000;
const scenarios: Scenario[] = [
  scenario(`cluster /8, ${PEERS} x /24`, TEN, 8, 24, 1),
  scenario(`cluster /12, ${PEERS} x /26`, TEN, 12, 26, 2),
  // /30s in a /8 exceed the index cap (2^20 entries at /28), so every pod lookup is a binary
  // search among the four /30s of a fine bucket: the slow path's throughput.
  scenario(`cluster /8, ${PEERS} x /30 (index capped)`, TEN, 8, 30, 1),
];

const results = [];
for (const s of scenarios) {
  let sab = buildTable(s.input); // warm-up
  const buildMs: number[] = [];
  for (let run = 0; run < BUILD_RUNS; run++) {
    const start = performance.now();
    sab = buildTable(s.input);
    buildMs.push(performance.now() - start);
  }
  const attachStart = performance.now();
  const t = new ForwardingTable(sab);
  const attachMs = performance.now() - attachStart;
  const result = {
    bench: 'table',
    scenario: s.name,
    peers: t.peerCount,
    indexBits: t.indexBits,
    fineCIDRs: t.fineCount,
    bufferBytes: sab.byteLength,
    buildMsMedian: Number(median(buildMs).toFixed(2)),
    attachMs: Number(attachMs.toFixed(3)),
    lookupsPerSecClusterRandom: Math.round(lookupsPerSecond(t, s.addrs)),
    lookupsPerSecInPeerPods: Math.round(lookupsPerSecond(t, podAddrs(s.input))),
    underlayLookupsPerSec: Math.round(underlayLookupsPerSecond(t, s.input)),
  };
  results.push(result);
  console.log(JSON.stringify(result));
}
for (const r of results) {
  console.log(
    `${r.scenario}: build ${r.buildMsMedian} ms, ${(r.bufferBytes / 1024).toFixed(0)} KiB ` +
      `(index 2^${r.indexBits}, ${r.fineCIDRs} fine), ` +
      `lookup ${(r.lookupsPerSecClusterRandom / 1e6).toFixed(1)} M/s random, ` +
      `${(r.lookupsPerSecInPeerPods / 1e6).toFixed(1)} M/s in pods, ` +
      `underlay ${(r.underlayLookupsPerSec / 1e6).toFixed(1)} M/s`,
  );
}
if (sink === 0x7fff_ffff) console.log('');
