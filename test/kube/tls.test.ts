/**
 * The Kubernetes path over TLS, as on every real cluster: the stand-in serves HTTPS with a
 * certificate from a CA made at test time (test/support/tls.ts), the kubeconfig carries that CA,
 * and the real client verifies the server against it. A wrong CA, no CA, or an address the
 * certificate does not name must fail with an error that says what to fix, not "no answer".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, loadKubeConfig, loadSelf } from '../../src/peers/kube-client.js';
import { VXNET_PREFIX } from '../../src/peers/kube-node.js';
import { NodePublisher } from '../../src/peers/kube-publish.js';
import { KubePeerSource } from '../../src/peers/kube-watch.js';
import { ApiStandIn, kubeconfigYaml } from '../support/kube-apiserver.js';
import { makeTestCertificates } from '../support/tls.js';
import { mac, peerNode, Recorder } from './helpers.js';
import { tempDir } from '../support/tmp.js';

const certs = makeTestCertificates();
const otherCA = makeTestCertificates('some-other-ca').ca;

async function tlsStandIn(t: { after: (f: () => Promise<void>) => void }, tls = certs): Promise<ApiStandIn> {
  const s = new ApiStandIn({ tls, token: 't0ken' });
  s.addNode(peerNode(1, { annotated: false }));
  s.addNode(peerNode(2));
  await s.start();
  t.after(() => s.stop());
  return s;
}

test('over TLS with the right CA: start-up read, publish through nodes/status, list and watch', async (t) => {
  const s = await tlsStandIn(t);
  assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const file = s.writeKubeconfig(join(tempDir('vxnet-tls-'), 'kubeconfig'));
  const kc = loadKubeConfig(file);
  assert.equal(kc.getCurrentCluster()?.skipTLSVerify, false, 'the kubeconfig does not switch verification off');

  const self = await loadSelf(kc, 'node-1', VXNET_PREFIX);
  assert.equal(self.internalIP, '192.168.101.2');
  const publisher = new NodePublisher({
    kubeConfig: kc, nodeName: 'node-1', annotationPrefix: VXNET_PREFIX,
    self: { underlayIP: '192.168.101.2', vtepMAC: mac(1), vni: 1, port: 8472 },
  });
  await publisher.publish();
  assert.equal(s.getNode('node-1')!.metadata.annotations?.['vxnet.io/backend-type'], 'vxlan');

  const source = new KubePeerSource({ kubeConfig: kc, nodeName: 'node-1', annotationPrefix: VXNET_PREFIX });
  const rec = new Recorder();
  t.after(() => source.stop());
  await source.start(rec);
  assert.deepEqual(rec.names(), ['node-2']);
  s.addNode(peerNode(3));
  await rec.next((p) => p.length === 2, 2000);
  assert.deepEqual(rec.errors, []);
});

test('over TLS with a wrong CA, no CA, or an address the certificate does not name: a clear error', async (t) => {
  const s = await tlsStandIn(t);
  // Signed by a CA the kubeconfig will trust, but for a name that is not the server's address.
  const misnamed = await tlsStandIn(t, makeTestCertificates('misnamed-ca', 'DNS:api.example.internal'));
  const kcFrom = (text: string): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromString(text);
    return kc;
  };
  const cases: Array<{ name: string; kubeconfig: string; want: RegExp }> = [
    {
      name: 'a CA that did not sign the server certificate',
      kubeconfig: kubeconfigYaml(s.url, 't0ken', otherCA),
      want: /TLS to the API server at https:\/\/127\.0\.0\.1:\d+ failed: its certificate is not signed by the CA the kubeconfig trusts \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); the kubeconfig's certificate-authority/,
    },
    {
      name: 'no CA at all (the system roots do not know ours)',
      kubeconfig: kubeconfigYaml(s.url, 't0ken'),
      want: /TLS to the API server .* failed: .*\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/,
    },
    {
      name: 'an address the certificate does not name',
      kubeconfig: misnamed.kubeconfigText(),
      want: /its certificate does not name the address in the kubeconfig \(ERR_TLS_CERT_ALTNAME_INVALID\)/,
    },
  ];
  for (const c of cases) {
    await assert.rejects(loadSelf(kcFrom(c.kubeconfig), 'node-1', VXNET_PREFIX), (err: unknown) => {
      assert.ok(err instanceof KubeApiError, `${c.name}: ${String(err)}`);
      assert.match(err.message, c.want, c.name);
      assert.doesNotMatch(err.message, /no answer/, `${c.name}: a TLS failure is not "no answer"`);
      return true;
    });
  }
  // And nothing reached the API with those kubeconfigs: the client refused before sending.
  assert.deepEqual([...s.requests, ...misnamed.requests], []);
});

test('over TLS the watcher reports a wrong CA once, with the fix, and keeps retrying', async (t) => {
  const s = await tlsStandIn(t);
  const dir = tempDir('vxnet-tls-');
  const bad = join(dir, 'bad');
  writeFileSync(bad, kubeconfigYaml(s.url, 't0ken', otherCA));
  const source = new KubePeerSource({ kubeConfig: loadKubeConfig(bad), nodeName: 'node-1', annotationPrefix: VXNET_PREFIX, resyncBackoffMs: { min: 20, max: 40 } });
  const rec = new Recorder();
  t.after(() => source.stop());
  await source.start(rec);
  assert.equal(rec.snapshots.length, 0);
  assert.equal(rec.errors.length, 1);
  assert.match(rec.errors[0]!.message, /^list nodes: TLS to the API server .* not signed by the CA the kubeconfig trusts .*; keeping the last 0 peers and retrying$/);
});
