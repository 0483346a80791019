/**
 * KubePeerSource (the watcher) against the API stand-in, with the real @kubernetes/client-node on
 * real HTTP. Each test states what it observed: the latency from an API write to the snapshot,
 * the list requests a 410 caused, the staleness seen during an outage. What the node writes about
 * itself is publish.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiStandIn, makeNode } from '../support/kube-apiserver.js';
import { loadKubeConfig, loadSelf } from '../../src/peers/kube-client.js';
import { FLANNEL_PREFIX } from '../../src/peers/kube-node.js';
import { KubePeerSource } from '../../src/peers/kube-watch.js';
import { harness, mac, peerNode, Recorder, sleep, waitFor } from './helpers.js';
import { tempDir } from '../support/tmp.js';

test('initial snapshot: annotated nodes are peers, self and unannotated/podCIDR-less nodes are not', async (t) => {
  const noCIDR = makeNode({ name: 'node-4', internalIP: '192.168.104.2', annotations: peerNode(4).metadata.annotations! });
  const h = await harness([peerNode(2), peerNode(3, { annotated: false }), noCIDR]);
  t.after(() => h.close());
  assert.equal(h.rec.snapshots.length, 1, 'start() delivers the first snapshot before it resolves');
  assert.deepEqual(h.rec.last, [{ node: 'node-2', underlayIP: '192.168.102.2', podCIDRs: ['10.244.2.0/24'], vtepMAC: mac(2), port: 8472, vni: 1 }]);
  const skips = h.logs.filter((l) => l.msg === 'node skipped').map((l) => `${String(l.fields?.['node'])}:${String(l.fields?.['reason'])}`);
  assert.deepEqual(skips.sort(), ['node-3:not-vxlan', 'node-4:no-pod-cidr']);

  // The same skip reason is not logged again on every update of the node.
  for (let i = 0; i < 5; i++) h.standIn.updateNode('node-3', (n) => (n.metadata.labels!['tick'] = String(i)));
  await waitFor(() => h.source.stats().events >= 5, 1000, 'five watch events');
  assert.equal(h.logs.filter((l) => l.msg === 'node skipped').length, 2, 'skip logged once per node per reason');
  assert.equal(h.rec.snapshots.length, 1, 'updates of a skipped node deliver nothing');
});

test('a node added becomes a peer well within 1 s; a deleted node stops being one', async (t) => {
  const h = await harness([peerNode(2)]);
  t.after(() => h.close());
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');

  const t0 = performance.now();
  h.standIn.addNode(peerNode(3));
  const added = await h.rec.next((p) => p.some((x) => x.node === 'node-3'), 1000);
  const latency = added.at - t0;
  assert.ok(latency < 1000, `node-3 became a peer after ${latency.toFixed(1)} ms, want < 1000 ms`);
  t.diagnostic(`add -> snapshot latency ${latency.toFixed(1)} ms`);

  const before = h.rec.snapshots.length;
  h.standIn.deleteNode('node-2');
  const removed = await h.rec.next((p) => !p.some((x) => x.node === 'node-2'), 1000, before);
  assert.deepEqual(removed.peers.map((p) => p.node), ['node-3']);
});

test('an update that changes nothing relevant produces no snapshot; a relevant one produces exactly one', async (t) => {
  const h = await harness([peerNode(2)]);
  t.after(() => h.close());
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');
  const events0 = h.source.stats().events;
  const snaps0 = h.rec.snapshots.length;

  h.standIn.updateNode('node-2', (n) => {
    n.metadata.labels!['topology.kubernetes.io/zone'] = 'b';
    n.status!.conditions!.push({ type: 'DiskPressure', status: 'False' });
    n.metadata.annotations!['node.alpha.kubernetes.io/ttl'] = '0';
  });
  await waitFor(() => h.source.stats().events > events0, 1000, 'the MODIFIED event');
  await sleep(120); // longer than batchMs: a snapshot would have been delivered by now
  assert.equal(h.rec.snapshots.length, snaps0, 'irrelevant update delivered a snapshot');

  h.standIn.updateNode('node-2', (n) => (n.metadata.annotations!['vxnet.io/public-ip'] = '198.51.100.2'));
  const s = await h.rec.next((p) => p[0]?.underlayIP === '198.51.100.2', 1000, snaps0);
  assert.equal(h.rec.snapshots.length, snaps0 + 1);
  assert.equal(s.peers.length, 1);
});

test('a burst of changes is coalesced into few snapshots', async (t) => {
  const h = await harness([], { source: { batchMs: 50 } });
  t.after(() => h.close());
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');
  const snaps0 = h.rec.snapshots.length;
  for (let i = 2; i <= 151; i++) h.standIn.addNode(peerNode(i));
  await h.rec.next((p) => p.length === 150, 2000, snaps0);
  const used = h.rec.snapshots.length - snaps0;
  assert.ok(used <= 5, `150 additions took ${used} snapshots, want <= 5`);
  for (let i = snaps0 + 1; i < h.rec.snapshots.length; i++) {
    const gap = h.rec.snapshots[i]!.at - h.rec.snapshots[i - 1]!.at;
    assert.ok(gap >= 45, `snapshots ${gap.toFixed(1)} ms apart, want >= batchMs`);
  }
});

for (const goneMode of ['event', 'http'] as const) {
  test(`410 Gone (${goneMode}) forces a consistent re-list; deletes missed meanwhile are applied`, async (t) => {
    const h = await harness([peerNode(2), peerNode(3)], { standIn: { goneMode } });
    t.after(() => h.close());
    await waitFor(() => h.source.stats().connected, 1000, 'the watch');

    // While the agent cannot see it: node-2 goes away, node-4 arrives, history is compacted.
    await h.standIn.setDown(true);
    h.standIn.deleteNode('node-2');
    h.standIn.addNode(peerNode(4));
    h.standIn.compact();
    h.standIn.clearRequests();
    await h.standIn.setDown(false);

    const s = await h.rec.next((p) => p.map((x) => x.node).join() === 'node-3,node-4', 3000);
    assert.ok(s, 'peer set after re-list');
    const lists = h.standIn.requests.filter((r) => r.verb === 'list');
    assert.equal(lists.length, 1, `want one re-list, saw ${JSON.stringify(h.standIn.requests.map((r) => r.verb))}`);
    assert.equal(lists[0]!.query['resourceVersion'], undefined, 'a re-list after 410 is a consistent read, not resourceVersion=0');
    assert.ok(h.logs.some((l) => l.msg === 'peer removed: node no longer exists' && l.fields?.['node'] === 'node-2'));
  });
}

test('expireWatches on a live watch: ERROR 410 event, re-list, watch resumes', async (t) => {
  const h = await harness([peerNode(2)]);
  t.after(() => h.close());
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');
  const lists0 = h.source.stats().lists;
  h.standIn.expireWatches();
  await waitFor(() => h.source.stats().lists === lists0 + 1 && h.source.stats().connected, 2000, 're-list and a new watch');
  const snaps = h.rec.snapshots.length;
  h.standIn.addNode(peerNode(3));
  await h.rec.next((p) => p.length === 2, 1000, snaps);
});

test('bookmarks advance the resourceVersion the next watch starts from', async (t) => {
  const h = await harness([peerNode(2)]);
  t.after(() => h.close());
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');
  h.standIn.touchOtherResources(50);
  const want = String(h.standIn.resourceVersion);
  h.standIn.sendBookmark();
  await waitFor(() => h.source.stats().resourceVersion === want, 1000, 'the bookmark');
  h.standIn.clearRequests();
  h.standIn.closeWatches(); // like a server-side timeoutSeconds
  await waitFor(() => h.standIn.requests.some((r) => r.verb === 'watch'), 2000, 'the re-watch');
  const w = h.standIn.requests.find((r) => r.verb === 'watch')!;
  assert.equal(w.query['resourceVersion'], want);
  assert.equal(w.query['allowWatchBookmarks'], 'true');
  assert.equal(h.standIn.requests.filter((r) => r.verb === 'list').length, 0, 'a normal watch end does not re-list');
});

test('API down: last snapshot stays, stale() after the threshold; API back on the same port: recovers', async (t) => {
  const h = await harness([peerNode(2), peerNode(3)], { source: { staleAfterMs: 200 } });
  t.after(() => h.close());
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');
  const snaps = h.rec.snapshots.length;
  assert.equal(h.source.stale(), false);

  const downAt = performance.now();
  await h.standIn.setDown(true);
  await waitFor(() => h.source.stale(), 2000, 'stale()');
  const staleAfter = performance.now() - downAt;
  assert.ok(staleAfter >= 190, `stale after ${staleAfter.toFixed(0)} ms, want >= 200 ms`);
  assert.ok(h.source.staleSeconds() > 0);
  assert.equal(h.rec.snapshots.length, snaps, 'nothing delivered during the outage');
  assert.deepEqual(h.source.peers().map((p) => p.node), ['node-2', 'node-3'], 'last snapshot kept');
  assert.equal(h.rec.errors.length, 1, `one error per outage, got ${h.rec.errors.map((e) => e.message).join(' | ')}`);
  assert.match(h.rec.errors[0]!.message, /keeping the last 2 peers/);

  h.standIn.addNode(peerNode(4)); // happens while the agent cannot see it
  await h.standIn.setDown(false);
  await h.rec.next((p) => p.length === 3, 3000, snaps);
  assert.equal(h.source.stale(), false);
  assert.equal(h.source.staleSeconds(), 0);
  assert.ok(h.logs.some((l) => l.msg === 'Kubernetes API reachable again'));
});

test('API failing with 503: retries back off exponentially (bounded request count)', async (t) => {
  const h = await harness([peerNode(2)], { source: { resyncBackoffMs: { min: 20, max: 160 } } });
  t.after(() => h.close());
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');
  h.standIn.setFailing(503);
  h.standIn.clearRequests();
  h.standIn.closeWatches();
  await sleep(1000);
  const n = h.standIn.requests.length;
  // Doubling from 20 ms to a 160 ms cap: ~20+40+80+160*5 ms in 1 s, so about 8-10 attempts; a hot loop would make hundreds.
  assert.ok(n >= 4 && n <= 16, `${n} requests in 1 s while failing`);
  h.standIn.setFailing(undefined);
  await waitFor(() => h.source.stats().connected, 2000, 'recovery');
});

test('API down at start: start() resolves with an error, the snapshot follows when it is up', async (t) => {
  const standIn = new ApiStandIn();
  standIn.addNode(peerNode(2));
  await standIn.start();
  const kc = standIn.kubeConfig();
  await standIn.setDown(true);
  const source = new KubePeerSource({
    nodeName: 'node-1',
    kubeConfig: kc,
    annotationPrefix: 'vxnet.io',
    resyncBackoffMs: { min: 20, max: 50 },
  });
  const rec = new Recorder();
  t.after(async () => {
    await source.stop();
    await standIn.stop();
  });
  await source.start(rec);
  assert.equal(rec.snapshots.length, 0);
  assert.equal(rec.errors.length, 1);
  assert.match(rec.errors[0]!.message, /list nodes: no answer from the Kubernetes API at http:\/\/127\.0\.0\.1:\d+/);
  await standIn.setDown(false);
  await rec.next((p) => p.length === 1, 2000);
});

test('flannel prefix: reads nodes annotated by flanneld', async (t) => {
  // A node annotated exactly as flanneld v0.2x leaves it (strings written out by hand).
  const flannelNode = makeNode({
    name: 'flannel-node',
    podCIDR: '10.244.9.0/24',
    internalIP: '192.168.109.2',
    annotations: {
      'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"ce:6e:a4:0b:44:9a"}',
      'flannel.alpha.coreos.com/backend-type': 'vxlan',
      'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
      'flannel.alpha.coreos.com/public-ip': '192.168.109.2',
    },
  });
  const h = await harness([flannelNode, peerNode(2)], { prefix: FLANNEL_PREFIX });
  t.after(() => h.close());
  assert.deepEqual(h.rec.last, [{ node: 'flannel-node', underlayIP: '192.168.109.2', podCIDRs: ['10.244.9.0/24'], vtepMAC: 'ce:6e:a4:0b:44:9a', vni: 1 }]);
});

test('loadSelf waits (bounded) for the pod CIDR and says what to fix when it never comes', async (t) => {
  const standIn = new ApiStandIn();
  standIn.addNode(makeNode({ name: 'late', internalIP: '192.168.1.2' }));
  standIn.addNode(makeNode({ name: 'never', internalIP: '192.168.1.3' }));
  await standIn.start();
  t.after(() => standIn.stop());
  const kc = standIn.kubeConfig();
  setTimeout(() => standIn.updateNode('late', (n) => (n.spec = { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] })), 100);
  const late = await loadSelf(kc, 'late', 'vxnet.io', { waitForPodCIDRMs: 2000, pollMs: 20 });
  assert.deepEqual(late.podCIDRs, ['10.244.7.0/24']);
  await assert.rejects(loadSelf(kc, 'never', 'vxnet.io', { waitForPodCIDRMs: 100, pollMs: 20 }), /--allocate-node-cidrs/);
});

test('bearer token: sent by the client from a kubeconfig file; a wrong one is a clear 401', async (t) => {
  const { join } = await import('node:path');
  const standIn = new ApiStandIn({ token: 's3cret' });
  standIn.addNode(peerNode(1, { annotated: false }));
  await standIn.start();
  t.after(() => standIn.stop());
  const dir = tempDir('vxnet-kube-');
  const good = standIn.writeKubeconfig(join(dir, 'good'));
  const self = await loadSelf(loadKubeConfig(good), 'node-1', 'vxnet.io');
  assert.equal(self.internalIP, '192.168.101.2');
  const { writeFileSync, readFileSync } = await import('node:fs');
  const bad = join(dir, 'bad');
  writeFileSync(bad, readFileSync(good, 'utf8').replace('s3cret', 'wrong'));
  await assert.rejects(loadSelf(loadKubeConfig(bad), 'node-1', 'vxnet.io'), /rejected our credentials \(401\)/);
});

test('stop() is prompt even in the middle of a backoff', async (t) => {
  const h = await harness([], { source: { resyncBackoffMs: { min: 5000, max: 5000 } } });
  t.after(() => h.standIn.stop());
  await h.standIn.setDown(true);
  await waitFor(() => h.rec.errors.length > 0, 2000, 'the failure');
  const t0 = performance.now();
  await h.source.stop();
  assert.ok(performance.now() - t0 < 500, 'stop() waited for the backoff timer');
});

test('a silent watch is dropped and re-established; bookmarks keep a quiet watch alive', async (t) => {
  const quiet = await harness([peerNode(2)], { source: { watchIdleMs: 150 } });
  t.after(() => quiet.close());
  await waitFor(() => quiet.logs.some((l) => l.msg === 'node watch went silent; reconnecting'), 2000, 'the idle watchdog');
  await waitFor(() => quiet.standIn.watchRequests >= 2 && quiet.source.stats().connected, 2000, 'the new watch');
  assert.equal(quiet.source.stats().lists, 1, 'a silent watch resumes from its resourceVersion, no re-list');
  // client-node's own inactivity timer runs on our idle window and reads as silence: no outage.
  assert.deepEqual(quiet.rec.errors.map((e) => e.message), []);
  assert.equal(quiet.logs.filter((l) => l.msg === 'Kubernetes API reachable again').length, 0);

  // Bookmarks every 40 ms against a 600 ms idle window: 15 times the margin, so a loaded machine's
  // event-loop stalls do not read as silence; 1.5 s is still 2.5 idle windows without bookmarks.
  const chatty = await harness([peerNode(2)], { source: { watchIdleMs: 600 }, standIn: { bookmarkIntervalMs: 40 } });
  t.after(() => chatty.close());
  await sleep(1500);
  assert.equal(chatty.logs.filter((l) => l.msg === 'node watch went silent; reconnecting').length, 0);
  assert.equal(chatty.standIn.watchRequests, 1);
});
