/**
 * Multi-queue: an agent with two queues (two TUN queues, two receiving sockets sharing the port,
 * a worker each) forwards pod to pod like one with a single queue, every flow's packets stay in
 * order, the device is multi-queue, and the counters of both workers add up in /metrics and
 * /status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iperf, ping, podEndpoint } from '../../src/lab/checks.js';
import { parsePrometheus, sampleValue } from '../../src/lab/http.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip();

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

test('two queues per agent: pods reach each other, the device has two queues, counters add up', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2, agentConfigExtra: { tuning: { queues: 2 } } }, async (lab) => {
    const a = lab.pod('p1a');
    const b = lab.pod('p2a');
    const p = await ping(lab, a.ns, b.ip, { count: 5, intervalS: 0.05 });
    assert.equal(p.received, p.sent, 'ping across');
    const t = await iperf(lab, podEndpoint(b), podEndpoint(a), { seconds: 2, streams: 4 });
    say(`iperf3 -P 4 with 2 queues: ${(t.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, ${t.retransmits} retransmits`);
    assert.ok(t.bitsPerSecond > 0);
    const link = await lab.execOk(lab.node(1).ns, ['ip', '-d', 'link', 'show', 'dev', 'vxnet0']);
    assert.match(link.stdout, /multi_queue/, 'a multi-queue TUN device');
    const status = (await lab.status(1)) as { info: { queues: number }; counters: { txPackets: number }; peers: Array<{ txPackets: number }> };
    assert.equal(status.info.queues, 2);
    const perPeer = status.peers.reduce((s, x) => s + x.txPackets, 0);
    assert.equal(perPeer, status.counters.txPackets, 'both workers\' per-peer counters add up to the total');
    const m = parsePrometheus((await lab.agentHttp(1, '/metrics')).body);
    assert.ok((sampleValue(m, 'vxnet_packets_total', { direction: 'tx' }) ?? 0) >= perPeer);
  });
});
