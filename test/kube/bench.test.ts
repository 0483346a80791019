/**
 * The cluster bench as far as it runs without a real cluster: node picking, the pods it would
 * create, reading iperf3 -J reports (trimmed real-format samples written out by hand), the
 * report table, and its failure path against the stand-in (which serves Nodes but not Pods).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Node } from '@kubernetes/client-node';
import { ApiStandIn, makeNode } from '../support/kube-apiserver.js';
import {
  benchTests,
  clientPod,
  DEFAULT_IPERF3_IMAGE,
  formatKubeBenchReport,
  parseIperf3,
  pickNodes,
  runKubeBench,
  serverPod,
} from '../../bench/kube-cluster.js';

function node(name: string, o: { ready?: boolean; podCIDR?: string | null; controlPlane?: boolean; cordoned?: boolean } = {}): V1Node {
  const n = makeNode({
    name,
    ...(o.podCIDR === null ? {} : { podCIDR: o.podCIDR ?? '10.244.1.0/24' }),
    ...(o.controlPlane ? { labels: { 'node-role.kubernetes.io/control-plane': '' } } : {}),
  }) as unknown as V1Node;
  if (o.ready === false) n.status!.conditions = [{ type: 'Ready', status: 'False' }];
  if (o.cordoned) n.spec!.unschedulable = true;
  return n;
}

test('pickNodes: Ready, with a pod CIDR, schedulable, workers before control plane', () => {
  const cases: Array<{ name: string; nodes: V1Node[]; want?: { server?: string; client?: string }; got: [string, string] | RegExp }> = [
    { name: 'two workers', nodes: [node('w1'), node('w2')], got: ['w1', 'w2'] },
    { name: 'control plane last', nodes: [node('cp', { controlPlane: true }), node('w1'), node('w2')], got: ['w1', 'w2'] },
    { name: 'kubeadm pair', nodes: [node('cp', { controlPlane: true }), node('w1')], got: ['w1', 'cp'] },
    { name: 'skips NotReady, cordoned and CIDR-less', nodes: [node('a', { ready: false }), node('b', { cordoned: true }), node('c', { podCIDR: null }), node('d'), node('e')], got: ['d', 'e'] },
    { name: 'explicit', nodes: [node('w1'), node('w2'), node('w3')], want: { server: 'w3', client: 'w1' }, got: ['w3', 'w1'] },
    { name: 'explicit client only', nodes: [node('w1'), node('w2')], want: { client: 'w1' }, got: ['w2', 'w1'] },
    { name: 'one node', nodes: [node('w1')], got: /needs two Ready nodes.*found 1 \(w1\)/ },
    { name: 'same node twice', nodes: [node('w1'), node('w2')], want: { server: 'w1', client: 'w1' }, got: /different nodes/ },
    { name: 'unknown node', nodes: [node('w1'), node('w2')], want: { server: 'x' }, got: /node "x" does not exist/ },
  ];
  for (const c of cases) {
    if (c.got instanceof RegExp) {
      assert.throws(() => pickNodes(c.nodes, c.want), c.got, c.name);
    } else {
      const got = pickNodes(c.nodes, c.want);
      assert.deepEqual([got.server, got.client], c.got, c.name);
    }
  }
});

test('generated pods: pinned to their nodes, iperf3 arguments per test, labelled for cleanup', () => {
  const s = serverPod('srv', 'w1', DEFAULT_IPERF3_IMAGE);
  assert.equal(s.spec!.nodeName, 'w1');
  assert.deepEqual(s.spec!.containers[0]!.args, ['-s', '-p', '5201']);
  assert.equal(s.metadata!.labels!['app.kubernetes.io/name'], 'vxnet-bench');
  const tests = benchTests({ udpBandwidth: '5G', udpLength: 1200 });
  assert.deepEqual(benchTests()[2]!.args, ['-u', '-b', '0', '-l', '64'], 'default UDP test matches the lab bench');
  assert.deepEqual(tests.map((t) => t.id), ['tcp1', 'tcp4', 'udp']);
  const args = tests.map((t) => clientPod(`c-${t.id}`, 'w2', DEFAULT_IPERF3_IMAGE, '10.244.1.5', 7, t).spec!.containers[0]!.args!.join(' '));
  assert.deepEqual(args, [
    '-c 10.244.1.5 -p 5201 -J -t 7',
    '-c 10.244.1.5 -p 5201 -J -t 7 -P 4',
    '-c 10.244.1.5 -p 5201 -J -t 7 -u -b 5G -l 1200',
  ]);
  const c = clientPod('c', 'w2', DEFAULT_IPERF3_IMAGE, '10.244.1.5', 7, tests[0]!);
  assert.equal(c.spec!.nodeName, 'w2');
  assert.equal(c.spec!.restartPolicy, 'Never');
});

const TCP_REPORT = JSON.stringify({
  start: { test_start: { protocol: 'TCP', num_streams: 4, duration: 10 } },
  end: {
    sum_sent: { seconds: 10, bytes: 11_750_000_000, bits_per_second: 9.4e9, retransmits: 17 },
    sum_received: { seconds: 10, bytes: 11_737_500_000, bits_per_second: 9.39e9 },
  },
});
const UDP_REPORT_OLD = JSON.stringify({
  start: { test_start: { protocol: 'UDP' } },
  end: { sum: { seconds: 10, bits_per_second: 2.0e9, jitter_ms: 0.01, lost_packets: 1000, packets: 100_000, lost_percent: 1 } },
});
const UDP_REPORT_NEW = JSON.stringify({
  start: { test_start: { protocol: 'UDP' } },
  end: {
    sum: { seconds: 10, bits_per_second: 2.0e9, lost_packets: 1000, packets: 100_000, lost_percent: 1 },
    sum_received: { seconds: 10, bits_per_second: 1.98e9, lost_packets: 2000, packets: 100_000, lost_percent: 2 },
  },
});

test('parseIperf3', () => {
  assert.deepEqual(parseIperf3(TCP_REPORT), { kind: 'tcp', gbps: 9.39, retransmits: 17 });
  assert.deepEqual(parseIperf3(UDP_REPORT_OLD), { kind: 'udp', gbps: 1.98, pps: 9900, lossPercent: 1 });
  assert.deepEqual(parseIperf3(UDP_REPORT_NEW), { kind: 'udp', gbps: 1.98, pps: 9800, lossPercent: 2 });
  assert.deepEqual(parseIperf3(`warning: something\n${TCP_REPORT}`).kind, 'tcp', 'text before the JSON is skipped');
  assert.deepEqual(parseIperf3('{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}'), {
    kind: 'error',
    message: 'iperf3: unable to connect to server: Connection refused',
  });
  assert.equal(parseIperf3('').kind, 'error');
  assert.equal(parseIperf3('exec format error').kind, 'error');
});

test('formatKubeBenchReport: the lab bench’s columns, one row, failures listed under it', () => {
  const [tcp1, tcp4, udp] = benchTests();
  const out = formatKubeBenchReport({
    serverNode: 'w1',
    clientNode: 'w2',
    serverPodIP: '10.244.1.5',
    durationSeconds: 10,
    rows: [
      { test: tcp1!, result: parseIperf3(TCP_REPORT) },
      { test: tcp4!, result: { kind: 'error', message: 'iperf3: a|b' } },
      { test: udp!, result: parseIperf3(UDP_REPORT_NEW) },
    ],
  });
  assert.equal(
    out,
    [
      'Cluster bench: iperf3 between pods, 10 s per test, server pod 10.244.1.5 on w1',
      '',
      '| Path | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | UDP 64 B received (kpps) | UDP loss | TCP retransmits (1 / 4 streams) |',
      '|---|---:|---:|---:|---:|---:|',
      '| vxnet, pod on w2 -> pod on w1 | 9.39 | - | 9.8 | 2.0% | 17 / - |',
      '',
      '- TCP, 4 streams failed: iperf3: a|b',
      '',
    ].join('\n'),
  );
});

test('the report’s first five columns are the lab bench’s', async () => {
  const { renderTable } = await import('../../src/lab/bench.js');
  const labHead = renderTable([]).split('\n')[0]!.split('|').slice(1, 6).map((c) => c.trim());
  const [tcp1, tcp4, udp] = benchTests();
  const ours = formatKubeBenchReport({
    serverNode: 'a', clientNode: 'b', serverPodIP: '10.0.0.1', durationSeconds: 1,
    rows: [tcp1!, tcp4!, udp!].map((test) => ({ test, result: { kind: 'error' as const, message: 'x' } })),
  }).split('\n')[2]!.split('|').slice(1, 6).map((c) => c.trim());
  assert.deepEqual(ours, labHead);
});

test('runKubeBench against the stand-in: picks nodes from the API, fails clearly where pods begin', async (t) => {
  const standIn = new ApiStandIn();
  standIn.addNode(makeNode({ name: 'w1', podCIDR: '10.244.1.0/24' }));
  await standIn.start();
  t.after(() => standIn.stop());
  await assert.rejects(runKubeBench(standIn.kubeConfig()), /needs two Ready nodes/);
  standIn.addNode(makeNode({ name: 'w2', podCIDR: '10.244.2.0/24' }));
  await assert.rejects(runKubeBench(standIn.kubeConfig(), { namespace: 'bench' }), /create pod vxnet-bench-server-[0-9a-f]{6} in namespace bench: not found \(404\)/);
  assert.deepEqual(
    standIn.requests.map((r) => `${r.method} ${r.path.replace(/[0-9a-f]{6}$/, 'X')}`),
    ['GET /api/v1/nodes', 'GET /api/v1/nodes', 'POST /api/v1/namespaces/bench/pods'],
  );
});
