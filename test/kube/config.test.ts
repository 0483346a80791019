/**
 * loadKubeConfig: the order (--kubeconfig, KUBECONFIG, in-cluster) and the operator messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubeconfigYaml } from '../support/kube-apiserver.js';
import { KubeConfigError, loadKubeConfig } from '../../src/peers/kube-client.js';
import { tempDir } from '../support/tmp.js';

const dir = tempDir('vxnet-kc-');
const fileA = join(dir, 'a');
writeFileSync(fileA, kubeconfigYaml('http://127.0.0.1:1111'));
const fileB = join(dir, 'b');
writeFileSync(fileB, kubeconfigYaml('http://127.0.0.1:2222', 'tok'));

test('explicit path wins over KUBECONFIG', () => {
  const kc = loadKubeConfig(fileA, { env: { KUBECONFIG: fileB } });
  assert.equal(kc.getCurrentCluster()?.server, 'http://127.0.0.1:1111');
});

test('KUBECONFIG: the first file of the list that exists', () => {
  const kc = loadKubeConfig(undefined, { env: { KUBECONFIG: `${join(dir, 'missing')}:${fileB}` } });
  assert.equal(kc.getCurrentCluster()?.server, 'http://127.0.0.1:2222');
  assert.equal(kc.getCurrentUser()?.token, 'tok');
});

test('errors name the file and where it came from', () => {
  const cases: Array<{ name: string; path?: string; env: Record<string, string>; want: RegExp }> = [
    { name: 'missing --kubeconfig', path: join(dir, 'nope'), env: {}, want: /kubeconfig .*nope \(from --kubeconfig\) does not exist/ },
    { name: 'missing KUBECONFIG files', env: { KUBECONFIG: join(dir, 'x') }, want: /none of the files in KUBECONFIG/ },
    { name: 'nothing at all', env: {}, want: /pass --kubeconfig FILE.*set KUBECONFIG.*run in a pod/ },
    { name: 'in a pod without a token', env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, want: /serviceAccountName: vxnet/ },
  ];
  for (const c of cases) {
    assert.throws(() => loadKubeConfig(c.path, { env: c.env, inClusterPrefix: join(dir, 'empty') }), (err: unknown) => {
      assert.ok(err instanceof KubeConfigError, `${c.name}: ${String(err)}`);
      assert.match(err.message, c.want, c.name);
      return true;
    });
  }
});

test('a file without a cluster is refused', () => {
  const f = join(dir, 'nocluster');
  writeFileSync(f, 'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n');
  assert.throws(() => loadKubeConfig(f, { env: {} }), KubeConfigError);
});

test('in-cluster: service host/port and the mounted service-account token', () => {
  const prefix = join(dir, 'root');
  const sa = join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'token'), 'sa-token');
  writeFileSync(join(sa, 'ca.crt'), '');
  writeFileSync(join(sa, 'namespace'), 'vxnet');
  const before = process.env['KUBERNETES_SERVICE_HOST'];
  const kc = loadKubeConfig(undefined, { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, inClusterPrefix: prefix });
  assert.equal(kc.getCurrentCluster()?.server, 'https://10.96.0.1:443');
  assert.equal(process.env['KUBERNETES_SERVICE_HOST'], before, 'process.env restored');
});
