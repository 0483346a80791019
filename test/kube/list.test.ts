/**
 * listNodes through the client's HTTP stack against the stand-in: what the watcher gets when the
 * list fails at the HTTP level, stops half-way, or never finishes, as the operator will read it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toKubeApiError } from '../../src/peers/kube-client.js';
import { listNodes } from '../../src/peers/kube-list.js';
import type { NodeLike } from '../../src/peers/kube-node.js';
import { ApiStandIn } from '../support/kube-apiserver.js';
import { kubeletNode } from '../support/kube-nodes.js';

async function standIn(t: { after: (f: () => Promise<void>) => void }, nodes: number, opts: ConstructorParameters<typeof ApiStandIn>[0] = {}): Promise<ApiStandIn> {
  const s = new ApiStandIn(opts);
  for (let i = 1; i <= nodes; i++) s.addNode(kubeletNode(i));
  await s.start();
  t.after(() => s.stop());
  return s;
}

test('listNodes: every Node in order, the resourceVersion, the byte count, and the query on the wire', async (t) => {
  const s = await standIn(t, 50);
  const names: string[] = [];
  const got = await listNodes(s.kubeConfig(), { resourceVersion: '0' }, (n: NodeLike) => void names.push(n.metadata!.name!), 5000);
  assert.equal(got.nodes, 50);
  assert.equal(got.resourceVersion, String(s.resourceVersion));
  assert.deepEqual(names, s.listNodes().map((n) => n.metadata.name).sort());
  assert.ok(got.bytes > 50 * 4000, `${got.bytes} bytes for 50 kubelet-shaped Nodes`);
  const r = s.requests.at(-1)!;
  assert.equal(`${r.verb} ${r.resource} ${r.query['resourceVersion']}`, 'list nodes 0');
});

test('listNodes failures, as the operator reads them', async (t) => {
  const cases: Array<{ name: string; setup: (s: ApiStandIn) => void; want: RegExp; opts?: ConstructorParameters<typeof ApiStandIn>[0] }> = [
    { name: 'HTTP 403', setup: (s) => s.setFailing(403), want: /^list nodes: forbidden \(403\): stand-in told to fail; the vxnet ClusterRole/ },
    { name: 'HTTP 503', setup: (s) => s.setFailing(503), want: /^list nodes: the API server at http:\/\/127\.0\.0\.1:\d+ answered 503: stand-in told to fail$/ },
    { name: 'body cut off', setup: (s) => (s.listFault = 'truncate'), want: /^list nodes: the connection broke after \d+ bytes and \d+ Nodes of the list: terminated: other side closed \(UND_ERR_SOCKET\)$/ },
    { name: 'body stalls', setup: (s) => (s.listFault = 'stall'), want: /^list nodes: the whole list did not arrive within 0\.3 s$/ },
  ];
  for (const c of cases) {
    const s = await standIn(t, 20, c.opts);
    c.setup(s);
    const t0 = performance.now();
    await assert.rejects(listNodes(s.kubeConfig(), {}, () => {}, 300), (err: unknown) => {
      const e = toKubeApiError(err, 'list nodes', undefined, s.kubeConfig());
      assert.match(e.message, c.want, c.name);
      return true;
    });
    assert.ok(performance.now() - t0 < 5000, `${c.name}: took ${(performance.now() - t0).toFixed(0)} ms`);
  }
});
