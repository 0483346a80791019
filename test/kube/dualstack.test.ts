/**
 * Dual stack in Kubernetes mode: a Node's IPv6 spec.podCIDRs entry reaches Peer.podCIDRs (after the
 * IPv4 one, normalised), and the agent's own podCIDR6 comes from its Node when clusterCIDR6 is set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ApiStandIn, makeNode } from '../support/kube-apiserver.js';
import { annotationKeys, nodePodCIDRs6, nodeToPeer, normalizeIPv6CIDR, peerKey, VXNET_PREFIX } from '../../src/peers/kube-node.js';
import { selfFacts } from '../../src/peers/kube-client.js';
import { prepareKubernetes } from '../../src/agent/kube-start.js';
import { checkConfig, ConfigError } from '../../src/agent/config.js';
import { tempDir } from '../support/tmp.js';

const vx = annotationKeys(VXNET_PREFIX);
const annotations = {
  'vxnet.io/backend-type': 'vxlan',
  'vxnet.io/backend-data': '{"VNI":1,"VtepMAC":"02:00:00:00:00:03","Port":8472}',
};

test('normalizeIPv6CIDR: RFC 5952 form, host bits cleared, junk refused', () => {
  const cases: Array<[unknown, string | undefined]> = [
    ['fd00:10:244:3::/64', 'fd00:10:244:3::/64'],
    ['FD00:0010:0244:0003:0000::/64', 'fd00:10:244:3::/64'],
    ['fd00:10:244:3::7/64', 'fd00:10:244:3::/64'],
    ['fd00:10:244:3::/129', undefined],
    ['fd00::zz/64', undefined],
    ['fe80::%eth0/64', undefined],
    ['10.244.3.0/24', undefined],
    [42, undefined],
  ];
  for (const [input, want] of cases) assert.equal(normalizeIPv6CIDR(input), want, String(input));
});

test('nodeToPeer: IPv6 pod CIDRs of a dual-stack Node are carried after the IPv4 one', () => {
  const cases: Array<{ name: string; podCIDRs: string[]; want: string[] | 'skip' }> = [
    { name: 'IPv4 first in spec', podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'], want: ['10.244.3.0/24', 'fd00:10:244:3::/64'] },
    { name: 'IPv6 first in spec (IPv6-primary cluster)', podCIDRs: ['fd00:10:244:3::/64', '10.244.3.0/24'], want: ['10.244.3.0/24', 'fd00:10:244:3::/64'] },
    { name: 'IPv6 host bits cleared', podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::9/64'], want: ['10.244.3.0/24', 'fd00:10:244:3::/64'] },
    { name: 'a bad IPv6 entry is ignored', podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/200'], want: ['10.244.3.0/24'] },
    { name: 'IPv6 only is not a peer', podCIDRs: ['fd00:10:244:3::/64'], want: 'skip' },
  ];
  for (const c of cases) {
    const got = nodeToPeer(makeNode({ name: 'n3', podCIDRs: c.podCIDRs, internalIP: '192.168.103.2', annotations }), vx);
    if (c.want === 'skip') {
      assert.equal(got.ok, false, c.name);
      if (!got.ok) assert.match(got.detail, /no IPv4/, c.name);
    } else {
      assert.ok(got.ok, `${c.name}: ${JSON.stringify(got)}`);
      if (got.ok) assert.deepEqual(got.peer.podCIDRs, c.want, c.name);
    }
  }
});

test('peerKey changes when only the IPv6 pod CIDR changes', () => {
  const a = nodeToPeer(makeNode({ name: 'n3', podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'], internalIP: '192.168.103.2', annotations }), vx);
  const b = nodeToPeer(makeNode({ name: 'n3', podCIDRs: ['10.244.3.0/24', 'fd00:10:244:4::/64'], internalIP: '192.168.103.2', annotations }), vx);
  assert.ok(a.ok && b.ok);
  if (a.ok && b.ok) assert.notEqual(peerKey(a.peer), peerKey(b.peer));
});

test('selfFacts: the IPv4 and IPv6 pod CIDRs of our own Node, separately', () => {
  const f = selfFacts(makeNode({ name: 'n1', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], internalIP: '192.168.101.2' }), vx);
  assert.deepEqual(f.podCIDRs, ['10.244.1.0/24']);
  assert.deepEqual(f.podCIDRs6, ['fd00:10:244:1::/64']);
  assert.deepEqual(nodePodCIDRs6(makeNode({ name: 'n1', podCIDR: '10.244.1.0/24' })), []);
});

test('prepareKubernetes: podCIDR6 from the Node when clusterCIDR6 is set; a clear error when the Node has none', async (t) => {
  const standIn = new ApiStandIn();
  standIn.addNode(makeNode({ name: 'dual', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], internalIP: '192.168.101.2' }));
  standIn.addNode(makeNode({ name: 'single', podCIDRs: ['10.244.2.0/24'], internalIP: '192.168.102.2' }));
  standIn.addNode(makeNode({ name: 'elsewhere', podCIDRs: ['10.244.3.0/24', 'fd00:99::/64'], internalIP: '192.168.103.2' }));
  await standIn.start();
  t.after(() => standIn.stop());
  const kubeconfig = standIn.writeKubeconfig(join(tempDir('vxnet-ds-'), 'kc'));
  const lines: Array<{ msg: string; fields: Record<string, unknown> | undefined }> = [];
  const log = (_l: string, msg: string, fields?: Record<string, unknown>): void => { lines.push({ msg, fields }); };
  const cfgFor = (node: string, extra: Record<string, unknown> = {}) => checkConfig({
    node, peerSource: 'kubernetes', clusterCIDR: '10.244.0.0/16', clusterCIDR6: 'fd00:10:244::/56', kubernetes: { kubeconfig }, ...extra,
  });

  const dual = await prepareKubernetes(cfgFor('dual'), log);
  assert.equal(dual.config.podCIDR, '10.244.1.0/24');
  assert.equal(dual.config.podCIDR6, 'fd00:10:244:1::/64');
  assert.equal(lines.find((l) => l.msg === 'kubernetes facts')?.fields?.['podCIDR6'], 'fd00:10:244:1::/64');

  await assert.rejects(prepareKubernetes(cfgFor('single'), log), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.field, 'podCIDR6');
    assert.match(err.message, /no IPv6 spec\.podCIDRs entry.*dual-stack/);
    return true;
  });
  await assert.rejects(prepareKubernetes(cfgFor('elsewhere'), log), /fd00:99::\/64 is not inside clusterCIDR6 fd00:10:244::\/56/);

  const given = await prepareKubernetes(cfgFor('single', { podCIDR6: 'fd00:10:244:2::/64' }), log);
  assert.equal(given.config.podCIDR6, 'fd00:10:244:2::/64', 'the file wins');
  const { clusterCIDR6: _c, ...noV6 } = { ...cfgFor('dual') };
  const v4only = await prepareKubernetes(noV6, log);
  assert.equal(v4only.config.podCIDR6, undefined, 'without clusterCIDR6 the Node\'s IPv6 CIDR is not used');
});
