/**
 * What the node writes about itself (NodePublisher, unpublish) against the API stand-in, through
 * the real client: the stored Node after each write, and the exact requests on the wire (method,
 * path, content type), because the RBAC grant is only `patch nodes/status`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { loadSelf, readVtepMAC } from '../../src/peers/kube-client.js';
import { FLANNEL_PREFIX, VXNET_PREFIX } from '../../src/peers/kube-node.js';
import { FIELD_MANAGER, NETWORK_UP_REASON, unpublish } from '../../src/peers/kube-publish.js';
import { harness, mac, peerNode, waitFor } from './helpers.js';

const OURS = {
  'vxnet.io/backend-type': 'vxlan',
  'vxnet.io/backend-data': '{"VNI":1,"VtepMAC":"02:00:00:00:00:01","Port":8472}',
  'vxnet.io/public-ip': '192.168.101.2',
};

/** Every write the stand-in saw, as "METHOD path content-type". */
function writes(h: Awaited<ReturnType<typeof harness>>): string[] {
  return h.standIn.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path} ${r.contentType}`);
}

test('publish: one merge patch of our annotations on nodes/status; setNetworkAvailable: strategic merge there too', async (t) => {
  const h = await harness([peerNode(2)], { start: false });
  t.after(() => h.close());
  h.standIn.clearRequests();
  await h.publisher.publish();
  await h.publisher.setNetworkAvailable();

  const node = h.standIn.getNode('node-1')!;
  assert.deepEqual(node.metadata.annotations, OURS);
  const conds = node.status!.conditions!;
  const nu = conds.find((c) => c['type'] === 'NetworkUnavailable');
  assert.equal(nu?.['status'], 'False');
  assert.equal(nu?.['reason'], NETWORK_UP_REASON);
  assert.ok(conds.find((c) => c['type'] === 'Ready'), 'the kubelet’s Ready condition survives the strategic merge');

  assert.deepEqual(writes(h), [
    'PATCH /api/v1/nodes/node-1/status application/merge-patch+json',
    'PATCH /api/v1/nodes/node-1/status application/strategic-merge-patch+json',
  ]);
  for (const r of h.standIn.requests) assert.equal(r.query['fieldManager'], FIELD_MANAGER, `${r.method} ${r.path} names its field manager`);
});

test('publish keeps annotations it does not own, and cannot touch spec', async (t) => {
  const h = await harness([], { start: false });
  t.after(() => h.close());
  h.standIn.updateNode('node-1', (n) => (n.metadata.annotations = { 'node.alpha.kubernetes.io/ttl': '0', 'vxnet.io/public-ip': '10.9.9.9' }));
  const specBefore = h.standIn.getNode('node-1')!.spec;
  await h.publisher.publish();
  const node = h.standIn.getNode('node-1')!;
  assert.equal(node.metadata.annotations!['node.alpha.kubernetes.io/ttl'], '0');
  assert.equal(node.metadata.annotations!['vxnet.io/public-ip'], '192.168.101.2');
  assert.deepEqual(node.spec, specBefore);
});

test('the stand-in treats nodes/status as the API server does: metadata kept, spec dropped, status merged', async (t) => {
  // The Node status strategy resets only spec (pkg/registry/core/node/strategy.go), which is what
  // makes `patch nodes/status` enough for our annotations. Checked with both patch types. A merge
  // patch replaces a list whole (RFC 7386), which is why conditions are only ever written with a
  // strategic merge patch, which merges them by `type`.
  const h = await harness([], { start: false });
  t.after(() => h.close());
  const api = h.standIn.kubeConfig().makeApiClient(CoreV1Api);
  const cases = [
    { name: 'merge patch', strategy: PatchStrategy.MergePatch, wantTypes: ['Test0'] },
    { name: 'strategic merge patch', strategy: PatchStrategy.StrategicMergePatch, wantTypes: ['Test0', 'Test1'] },
  ];
  for (const [i, c] of cases.entries()) {
    const before = h.standIn.getNode('node-1')!;
    await api.patchNodeStatus(
      {
        name: 'node-1',
        body: {
          metadata: { annotations: { [`x/${i}`]: 'kept' }, labels: { [`l${i}`]: 'kept' } },
          spec: { unschedulable: true, podCIDR: '10.99.0.0/24' },
          status: { conditions: [{ type: `Test${i}`, status: 'True' }] },
        },
      },
      setHeaderOptions('Content-Type', c.strategy),
    );
    const after = h.standIn.getNode('node-1')!;
    assert.equal(after.metadata.annotations?.[`x/${i}`], 'kept', `${c.name}: annotation`);
    assert.equal(after.metadata.labels?.[`l${i}`], 'kept', `${c.name}: label`);
    assert.deepEqual(after.spec, before.spec, `${c.name}: spec changed through nodes/status`);
    assert.deepEqual(after.status!.conditions!.map((x) => String(x['type'])), c.wantTypes, `${c.name}: conditions`);
  }
});

test('flannel prefix: publishes flannel’s exact keys and JSON', async (t) => {
  const h = await harness([], { prefix: FLANNEL_PREFIX, start: false });
  t.after(() => h.close());
  await h.publisher.publish();
  assert.deepEqual(h.standIn.getNode('node-1')!.metadata.annotations, {
    'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}',
    'flannel.alpha.coreos.com/backend-type': 'vxlan',
    'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
    'flannel.alpha.coreos.com/public-ip': '192.168.101.2',
  });
});

test('our annotations removed by someone else are published again (seen through the watch)', async (t) => {
  const h = await harness([]);
  t.after(() => h.close());
  await h.publisher.publish();
  await waitFor(() => h.source.stats().connected, 1000, 'the watch');
  h.standIn.updateNode('node-1', (n) => delete n.metadata.annotations!['vxnet.io/backend-data']);
  await waitFor(() => h.standIn.getNode('node-1')!.metadata.annotations!['vxnet.io/backend-data'] !== undefined, 2000, 'the republish');
  assert.ok(h.logs.some((l) => l.msg === 'our node annotations were changed by someone else; publishing again'));
});

test('loadSelf / readVtepMAC: own pod CIDR, InternalIP and the MAC published before a restart', async (t) => {
  const h = await harness([], { start: false });
  t.after(() => h.close());
  const kc = h.standIn.kubeConfig();
  assert.equal(await readVtepMAC(kc, 'node-1', 'vxnet.io'), undefined, 'no MAC before the first publish');
  await h.publisher.publish();
  h.standIn.updateNode('node-1', (n) => (n.metadata.annotations!['vxnet.io/public-ip-overwrite'] = '203.0.113.1'));
  const self = await loadSelf(kc, 'node-1', 'vxnet.io');
  assert.deepEqual(self.podCIDRs, ['10.244.1.0/24']);
  assert.equal(self.internalIP, '192.168.101.2');
  assert.equal(self.vtepMAC, mac(1));
  assert.equal(self.publicIPOverwrite, '203.0.113.1');
  assert.equal(await readVtepMAC(kc, 'node-1', 'vxnet.io'), mac(1));
  await assert.rejects(loadSelf(kc, 'nope', 'vxnet.io'), /node "nope" not found \(404\).*NODE_NAME/);
});

const FOREIGN = {
  'node.alpha.kubernetes.io/ttl': '0',
  'vxnet.io/public-ip-overwrite': '203.0.113.7', // an operator's, under our prefix: not ours to remove
  'flannel.alpha.coreos.com/backend-type': 'vxlan', // another prefix
  'example.com/vxnet.io/backend-type': 'x', // our key's name inside someone else's
};

test('unpublish removes exactly our annotations and our condition; a second run writes nothing', async (t) => {
  const h = await harness([], { start: false });
  t.after(() => h.close());
  h.standIn.updateNode('node-1', (n) => (n.metadata.annotations = { ...FOREIGN }));
  await h.publisher.publish();
  await h.publisher.setNetworkAvailable();
  assert.deepEqual(h.standIn.getNode('node-1')!.metadata.annotations, { ...FOREIGN, ...OURS });
  const kc = h.standIn.kubeConfig();

  h.standIn.clearRequests();
  const first = await unpublish(kc, 'node-1', VXNET_PREFIX);
  assert.deepEqual(first, { nodeFound: true, removedAnnotations: Object.keys(OURS).sort(), removedCondition: true });
  const node = h.standIn.getNode('node-1')!;
  assert.deepEqual(node.metadata.annotations, FOREIGN, 'foreign annotations kept, ours gone');
  assert.deepEqual(node.status!.conditions!.map((c) => String(c['type'])), ['Ready'], 'our condition gone, the kubelet’s kept');
  assert.deepEqual(writes(h), ['PATCH /api/v1/nodes/node-1/status application/strategic-merge-patch+json'], 'one write, on nodes/status');

  h.standIn.clearRequests();
  const rv = h.standIn.resourceVersion;
  const second = await unpublish(kc, 'node-1', VXNET_PREFIX);
  assert.deepEqual(second, { nodeFound: true, removedAnnotations: [], removedCondition: false });
  assert.deepEqual(writes(h), [], 'the second run only reads');
  assert.equal(h.standIn.resourceVersion, rv);
});

test('unpublish leaves a NetworkUnavailable condition someone else set, and a missing Node is not an error', async (t) => {
  const h = await harness([], { start: false });
  t.after(() => h.close());
  h.standIn.updateNode('node-1', (n) => n.status!.conditions!.push({ type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated' }));
  const kc = h.standIn.kubeConfig();
  h.standIn.clearRequests();
  const got = await unpublish(kc, 'node-1', VXNET_PREFIX);
  assert.deepEqual(got, { nodeFound: true, removedAnnotations: [], removedCondition: false, foreignConditionReason: 'RouteCreated' });
  assert.deepEqual(writes(h), []);
  assert.ok(h.standIn.getNode('node-1')!.status!.conditions!.some((c) => c['reason'] === 'RouteCreated'));
  assert.deepEqual(await unpublish(kc, 'gone', VXNET_PREFIX), { nodeFound: false, removedAnnotations: [], removedCondition: false });
});

test('unpublish under flannel’s prefix removes the four keys flannel mode writes', async (t) => {
  const h = await harness([], { prefix: FLANNEL_PREFIX, start: false });
  t.after(() => h.close());
  h.standIn.updateNode('node-1', (n) => (n.metadata.annotations = { 'node.alpha.kubernetes.io/ttl': '0' }));
  await h.publisher.publish();
  const got = await unpublish(h.standIn.kubeConfig(), 'node-1', FLANNEL_PREFIX);
  assert.deepEqual(got.removedAnnotations, [
    'flannel.alpha.coreos.com/backend-data',
    'flannel.alpha.coreos.com/backend-type',
    'flannel.alpha.coreos.com/kube-subnet-manager',
    'flannel.alpha.coreos.com/public-ip',
  ]);
  assert.deepEqual(h.standIn.getNode('node-1')!.metadata.annotations, { 'node.alpha.kubernetes.io/ttl': '0' });
});

test('unpublish: a Node that changes between the read and the write is read again (409), not overwritten', async (t) => {
  const h = await harness([], { start: false });
  t.after(() => h.close());
  await h.publisher.publish();
  await h.publisher.setNetworkAvailable();
  // The first write conflicts: between our read and our write a cloud controller replaced our
  // condition with its own. The second read sees that, so only the annotations go.
  let raced = false;
  h.standIn.beforeWrite = (name) => {
    if (raced || name !== 'node-1') return;
    raced = true;
    h.standIn.updateNode('node-1', (n) => {
      const c = n.status!.conditions!.find((x) => x['type'] === 'NetworkUnavailable')!;
      c['reason'] = 'RouteCreated';
    });
  };
  const lines: string[] = [];
  const got = await unpublish(h.standIn.kubeConfig(), 'node-1', VXNET_PREFIX, (_l, msg) => void lines.push(msg));
  assert.ok(raced);
  assert.deepEqual(got, { nodeFound: true, removedAnnotations: Object.keys(OURS).sort(), removedCondition: false, foreignConditionReason: 'RouteCreated' });
  assert.equal(h.standIn.requests.filter((r) => r.status === 409).length, 1, 'one conflict');
  assert.ok(lines.includes('node changed while removing our annotations; reading it again'));
  assert.ok(h.standIn.getNode('node-1')!.status!.conditions!.some((c) => c['reason'] === 'RouteCreated'), 'the controller’s condition survives');
});
