/**
 * The Grafana dashboard against a live agent: a 2-node lab with per-peer metrics on, a ping from
 * a pod on node1 to a pod on node2 so the traffic counters move, then node1's /metrics scraped.
 * Every metric name the dashboard's PromQL queries must be a family that scrape declares, with at
 * least one sample; the test says what it saw (the counts, and the per-peer bytes towards node2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ping } from '../../src/lab/checks.js';
import { parsePrometheus, sampleValue } from '../../src/lab/http.js';
import { loadDashboard, queriedMetricNames } from '../support/dashboard.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip();

test('every metric the Grafana dashboard queries is exported by a live agent', { skip, timeout: 120_000 }, async () => {
  const queried = queriedMetricNames(loadDashboard());
  await withLab({ nodes: 2, podsPerNode: 1, agentConfigExtra: { perPeerMetrics: true } }, async (lab) => {
    const a = lab.podsOn(1)[0]!;
    const b = lab.podsOn(2)[0]!;
    const r = await ping(lab, a.ns, b.ip, { count: 3, intervalS: 0.2, waitS: 1 });
    assert.equal(r.received, r.sent, `ping ${a.name} -> ${b.name}: ${r.received}/${r.sent}`);

    const res = await lab.agentHttp(1, '/metrics');
    assert.equal(res.status, 200, res.body.slice(0, 300));
    const declared = new Set([...res.body.matchAll(/^# TYPE (\S+) (?:counter|gauge)$/gm)].map((m) => m[1]!));
    const samples = parsePrometheus(res.body);
    const withSamples = new Set(samples.map((s) => s.name));
    const missing = [...queried].filter(([name]) => !declared.has(name) || !withSamples.has(name)).map(([name, where]) => `${name} (${where.join('; ')})`);
    assert.deepEqual(missing, [], 'metrics the dashboard queries that node1 does not export');

    const toPeer = sampleValue(samples, 'vxnet_peer_bytes_total', { peer: 'node2', direction: 'tx' });
    assert.ok(toPeer > 0, `vxnet_peer_bytes_total{peer="node2",direction="tx"}: got ${toPeer}, want > 0 after the ping`);
    process.stderr.write(`observed: node1 /metrics declares ${declared.size} families with ${samples.length} samples; ` +
      `the dashboard queries ${queried.size} names, all present; ${toPeer} bytes sent to node2 after ${r.received} pings\n`);
  });
});
