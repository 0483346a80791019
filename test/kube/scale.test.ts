/**
 * A big cluster starts in bounded time and memory, and a one-Node update stays small: 15,000
 * Nodes shaped like a kubelet's (about 8 KB of JSON each, 120 MB in all) from the stand-in in
 * its own process, through the real client. The bounds are generous (a 2-core machine under
 * other tests' load passes them several times over); they are there for a quadratic step or a
 * return to decoding the list whole, which miss them by far. bench/kube.ts has the numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../src/peers/kube-client.js';
import { VXNET_PREFIX } from '../../src/peers/kube-node.js';
import { KubePeerSource } from '../../src/peers/kube-watch.js';
import { buildTable } from '../../src/table/table.js';
import { spawnStandIn } from '../support/kube-apiserver.js';
import { scaleNodeName, scaleTableInput } from '../support/kube-nodes.js';
import { Recorder } from './helpers.js';
import { tempDir } from '../support/tmp.js';

const NODES = 15_000;
/**
 * The whole start (list, convert, first snapshot, table) in CPU time of this process: about 2 s
 * on this 2-core machine. A quadratic step at this size (the old pairwise overlap check took 60 s
 * at 4,000 peers) takes minutes. CPU time, unlike wall time, hardly moves when other tests load
 * the machine: wall time went from 2 s to 15 s under such load while CPU time stayed near 2 s.
 */
const START_CPU_BOUND_MS = 10_000;
/** Wall time, only against a hang: the stand-in's serving and the machine's load are in it. */
const START_WALL_BOUND_MS = 90_000;
/** This process's peak: the streaming list stays near 250 MB; decoding the list whole took 809 MB. */
const RSS_BOUND_MB = 450;

test(`${NODES.toLocaleString('en-US')} Nodes: start within ${START_CPU_BOUND_MS / 1000} s of CPU and ${RSS_BOUND_MB} MB; one Node's update is one small snapshot`, { timeout: 240_000 }, async (t) => {
  const standIn = await spawnStandIn(['--scale', String(NODES), '--bookmark-ms', '0'], join(tempDir('vxnet-scale-'), 'kubeconfig'));
  t.after(() => standIn.stop());
  const kc = loadKubeConfig(standIn.kubeconfig);
  const source = new KubePeerSource({ nodeName: scaleNodeName(1), kubeConfig: kc, annotationPrefix: VXNET_PREFIX });
  t.after(() => source.stop());
  const rec = new Recorder();

  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await source.start(rec);
  const first = rec.last ?? [];
  buildTable(scaleTableInput(first));
  const startMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const rssMB = process.resourceUsage().maxRSS / 1024;
  t.diagnostic(`observed: ${first.length} peers in a table ${startMs.toFixed(0)} ms after the list began, ${cpuMs.toFixed(0)} ms of CPU; peak RSS ${rssMB.toFixed(0)} MB`);
  assert.deepEqual(rec.errors, []);
  assert.equal(first.length, NODES - 1, 'every Node but our own is a peer');
  assert.ok(cpuMs < START_CPU_BOUND_MS, `start took ${cpuMs.toFixed(0)} ms of CPU, bound ${START_CPU_BOUND_MS} ms`);
  assert.ok(startMs < START_WALL_BOUND_MS, `start took ${startMs.toFixed(0)} ms, bound ${START_WALL_BOUND_MS} ms`);
  assert.ok(rssMB < RSS_BOUND_MB, `peak RSS ${rssMB.toFixed(0)} MB, bound ${RSS_BOUND_MB} MB`);

  // One Node changes: exactly one more snapshot, in which only that peer differs.
  const target = scaleNodeName(7);
  const before = rec.snapshots.length;
  const t1 = performance.now();
  await kc.makeApiClient(CoreV1Api).patchNodeStatus(
    { name: target, body: { metadata: { annotations: { 'vxnet.io/public-ip': '198.51.100.7' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const next = await rec.next((p) => p.find((x) => x.node === target)?.underlayIP === '198.51.100.7', 10_000, before);
  t.diagnostic(`observed: the update reached a snapshot ${(next.at - t1).toFixed(0)} ms after the API write`);
  assert.equal(rec.snapshots.length, before + 1, 'one snapshot for one update');
  const changed = next.peers.filter((p, i) => p !== first[i]).map((p) => p.node);
  assert.deepEqual(changed, [target], 'the other peers are the same objects as before');
});
