/**
 * The stand-in behaves like the API server in the ways vxnet depends on. Driven with the real
 * client (CoreV1Api, Watch), so a disagreement between the two shows up here first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ApiException, CoreV1Api, PatchStrategy, Watch, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { ApiStandIn, makeNode, type NodeObject } from '../support/kube-apiserver.js';
import { loadKubeConfig } from '../../src/peers/kube-client.js';
import { waitFor } from './helpers.js';
import { tempDir } from '../support/tmp.js';

async function started(opts?: ConstructorParameters<typeof ApiStandIn>[0]): Promise<{ s: ApiStandIn; api: CoreV1Api }> {
  const s = new ApiStandIn(opts);
  s.addNode(makeNode({ name: 'a', podCIDR: '10.244.1.0/24', internalIP: '192.168.101.2' }));
  await s.start();
  return { s, api: s.kubeConfig().makeApiClient(CoreV1Api) };
}

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

test('list carries the resourceVersion; every change bumps it; a no-op patch does not', async (t) => {
  const { s, api } = await started();
  t.after(() => s.stop());
  const l1 = await api.listNode();
  assert.equal(l1.items.length, 1);
  const rv1 = Number(l1.metadata!.resourceVersion);
  await api.patchNode({ name: 'a', body: { metadata: { labels: { x: '1' } } } }, merge);
  const rv2 = Number((await api.listNode()).metadata!.resourceVersion);
  assert.equal(rv2, rv1 + 1);
  await api.patchNode({ name: 'a', body: { metadata: { labels: { x: '1' } } } }, merge);
  assert.equal(Number((await api.listNode()).metadata!.resourceVersion), rv2, 'no-op patch bumped the resourceVersion');
  assert.equal((await api.readNode({ name: 'a' })).metadata!.resourceVersion, String(rv2));
});

test('merge patch: null deletes a key; JSON patch is refused with 415', async (t) => {
  const { s, api } = await started();
  t.after(() => s.stop());
  await api.patchNode({ name: 'a', body: { metadata: { annotations: { k1: 'v1', k2: 'v2' } } } }, merge);
  await api.patchNode({ name: 'a', body: { metadata: { annotations: { k1: null } } } }, merge);
  assert.deepEqual(s.getNode('a')!.metadata.annotations, { k2: 'v2' });
  await assert.rejects(api.patchNode({ name: 'a', body: [{ op: 'add', path: '/metadata/labels/y', value: '1' }] }), (err: unknown) => {
    assert.ok(err instanceof ApiException);
    assert.equal(err.code, 415);
    return true;
  });
});

test('status subresource: strategic merge merges conditions by type; spec changes are ignored there, status changes on the main resource', async (t) => {
  const { s, api } = await started();
  t.after(() => s.stop());
  const cond = (status: string) => ({ type: 'NetworkUnavailable', status, reason: 'R', message: 'm' });
  await api.patchNodeStatus({ name: 'a', body: { status: { conditions: [cond('True')] }, spec: { podCIDR: '1.2.3.0/24' } } }, strategic);
  await api.patchNodeStatus({ name: 'a', body: { status: { conditions: [cond('False')] } } }, strategic);
  const n = s.getNode('a')!;
  assert.deepEqual(n.status!.conditions!.map((c) => `${String(c['type'])}=${String(c['status'])}`), ['Ready=True', 'NetworkUnavailable=False']);
  assert.equal(n.spec!.podCIDR, '10.244.1.0/24', 'spec changed through nodes/status');
  await api.patchNode({ name: 'a', body: { status: { conditions: [] } } }, merge);
  assert.equal(s.getNode('a')!.status!.conditions!.length, 2, 'status changed through the main resource');
});

test('create, get 404, delete through the client', async (t) => {
  const { s, api } = await started();
  t.after(() => s.stop());
  await api.createNode({ body: makeNode({ name: 'b', podCIDR: '10.244.2.0/24' }) as unknown as V1Node });
  assert.ok(s.getNode('b'));
  await assert.rejects(api.readNode({ name: 'nope' }), (err: unknown) => err instanceof ApiException && err.code === 404);
  await api.deleteNode({ name: 'b' });
  assert.equal(s.getNode('b'), undefined);
  assert.deepEqual(
    s.requests.map((r) => `${r.verb} ${r.resource} ${r.status}`),
    ['create nodes 201', 'get nodes 404', 'delete nodes 200'],
  );
});

interface Seen {
  type: string;
  rv: string | undefined;
  name: string | undefined;
  code: number | undefined;
}

/** Opens a watch with the real client and collects its events until `done` or the stream ends. */
function watchAll(s: ApiStandIn, query: Record<string, string | number | boolean>): { seen: Seen[]; ended: Promise<unknown>; stop: () => void } {
  const seen: Seen[] = [];
  let controller: AbortController | undefined;
  let endedResolve: (e: unknown) => void = () => {};
  const ended = new Promise<unknown>((r) => (endedResolve = r));
  void new Watch(s.kubeConfig())
    .watch(
      '/api/v1/nodes',
      query,
      (type: string, obj: { metadata?: { resourceVersion?: string; name?: string }; code?: number }) =>
        seen.push({ type, rv: obj.metadata?.resourceVersion, name: obj.metadata?.name, code: obj.code }),
      (err: unknown) => endedResolve(err ?? 'closed'),
    )
    .then((c: AbortController) => (controller = c));
  return { seen, ended, stop: () => controller?.abort() };
}

test('watch: resumes after a resourceVersion, bookmarks only when allowed, timeoutSeconds ends it', async (t) => {
  const { s } = await started();
  t.after(() => s.stop());
  const from = String(s.resourceVersion);
  s.updateNode('a', (n: NodeObject) => (n.metadata.labels!['x'] = '1'));
  s.addNode(makeNode({ name: 'b' }));
  s.deleteNode('b');
  const w = watchAll(s, { resourceVersion: from, allowWatchBookmarks: true, timeoutSeconds: 1 });
  const plain = watchAll(s, { resourceVersion: from });
  await waitFor(() => w.seen.length === 3 && plain.seen.length === 3, 1000, 'the replay');
  s.sendBookmark();
  await waitFor(() => w.seen.length === 4, 1000, 'the bookmark');
  assert.deepEqual(w.seen.map((e) => `${e.type}:${e.name ?? ''}`), ['MODIFIED:a', 'ADDED:b', 'DELETED:b', 'BOOKMARK:']);
  assert.equal(w.seen[3]!.rv, String(s.resourceVersion));
  assert.equal(plain.seen.length, 3, 'a watch without allowWatchBookmarks got a bookmark');
  assert.equal(await w.ended, 'closed', 'timeoutSeconds ends the stream normally');
  plain.stop();
});

test('watch without resourceVersion starts with a synthetic ADDED per node', async (t) => {
  const { s } = await started();
  t.after(() => s.stop());
  const w = watchAll(s, {});
  await waitFor(() => w.seen.length === 1, 1000, 'ADDED');
  assert.equal(w.seen[0]!.type, 'ADDED');
  w.stop();
});

test('watch from before the compaction point: ERROR 410 event (default) or HTTP 410', async (t) => {
  for (const goneMode of ['event', 'http'] as const) {
    const { s } = await started({ goneMode });
    t.after(() => s.stop());
    const old = String(s.resourceVersion);
    s.updateNode('a', (n: NodeObject) => (n.metadata.labels!['x'] = '1'));
    s.compact();
    const w = watchAll(s, { resourceVersion: old });
    const end = await w.ended;
    if (goneMode === 'event') {
      assert.deepEqual(w.seen.map((e) => `${e.type}:${e.code}`), ['ERROR:410']);
      assert.equal(end, 'closed');
    } else {
      assert.equal((end as { statusCode?: number }).statusCode, 410);
    }
  }
});

test('history limit: a watch older than the kept history gets 410', async (t) => {
  const { s } = await started({ historyLimit: 3 });
  t.after(() => s.stop());
  const old = String(s.resourceVersion);
  for (let i = 0; i < 5; i++) s.updateNode('a', (n: NodeObject) => (n.metadata.labels!['x'] = String(i)));
  const w = watchAll(s, { resourceVersion: old });
  await w.ended;
  assert.equal(w.seen[0]?.code, 410);
  const recent = watchAll(s, { resourceVersion: String(s.resourceVersion - 3) });
  await waitFor(() => recent.seen.length === 3, 1000, 'the 3 kept events');
  recent.stop();
});

test('setDown keeps state and the port', async (t) => {
  const { s, api } = await started();
  t.after(() => s.stop());
  const port = s.port;
  await s.setDown(true);
  // The client (undici) says "fetch failed" and keeps the socket error in `cause`.
  await assert.rejects(api.listNode(), (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ECONNREFUSED');
  await s.setDown(false);
  assert.equal(s.port, port);
  assert.equal((await api.listNode()).items.length, 1);
});

for (const c of [{ name: 'http', flags: [], scheme: 'http' }, { name: 'https (--tls)', flags: ['--tls'], scheme: 'https' }]) {
  test(`CLI, ${c.name}: serves nodes from a file on the given host, writes a kubeconfig, exits on SIGTERM`, async (t) => {
    const dir = tempDir('vxnet-standin-');
    const nodes = join(dir, 'nodes.yaml');
    writeFileSync(nodes, '- name: x\n  podCIDR: 10.244.5.0/24\n  internalIP: 192.168.105.2\n');
    const kubeconfig = join(dir, 'kubeconfig');
    const entry = fileURLToPath(new URL('../support/kube-apiserver.js', import.meta.url));
    const args = [entry, '--host', '127.0.0.1', '--port', '0', '--nodes', nodes, '--kubeconfig', kubeconfig, ...c.flags];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no listening line within 5 s')), 5000);
      createInterface(child.stdout).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
    const info = JSON.parse(line) as { msg: string; url: string; nodes: number };
    assert.equal(info.msg, 'listening');
    assert.match(info.url, new RegExp(`^${c.scheme}://127\\.0\\.0\\.1:\\d+$`));
    assert.equal(info.nodes, 1);
    const api = loadKubeConfig(kubeconfig).makeApiClient(CoreV1Api);
    const n = await api.readNode({ name: 'x' });
    assert.deepEqual(n.spec?.podCIDRs, ['10.244.5.0/24']);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
}
