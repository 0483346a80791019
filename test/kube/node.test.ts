/**
 * Node -> Peer conversion and the annotation format, table-driven. The flannel strings below are
 * written out by hand from flannel's Go types (vxlanLeaseAttrs{VNI uint16; VtepMAC}), not produced
 * by our encoder, so the encoder is checked against an independent reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeNode } from '../support/kube-apiserver.js';
import {
  annotationKeys,
  FLANNEL_PREFIX,
  formatBackendData,
  nodeToPeer,
  parseBackendData,
  peerKey,
  publishAnnotations,
  SkipReason,
  VXNET_PREFIX,
  type NodeLike,
} from '../../src/peers/kube-node.js';

const vx = annotationKeys(VXNET_PREFIX);
const fl = annotationKeys(FLANNEL_PREFIX);

test('annotation keys: flannel prefix gives flannel’s exact keys', () => {
  assert.equal(fl.backendType, 'flannel.alpha.coreos.com/backend-type');
  assert.equal(fl.backendData, 'flannel.alpha.coreos.com/backend-data');
  assert.equal(fl.publicIP, 'flannel.alpha.coreos.com/public-ip');
  assert.equal(fl.kubeSubnetManager, 'flannel.alpha.coreos.com/kube-subnet-manager');
  assert.equal(fl.publicIPOverwrite, 'flannel.alpha.coreos.com/public-ip-overwrite');
  assert.equal(fl.flannel, true);
  assert.equal(vx.backendType, 'vxnet.io/backend-type');
  assert.equal(vx.flannel, false);
});

test('annotation keys: prefix forms', () => {
  const cases: Array<{ name: string; prefix: string; want: string | Error }> = [
    { name: 'trailing slash', prefix: 'vxnet.io/', want: 'vxnet.io/backend-type' },
    { name: 'prefix with a path', prefix: 'example.com/net', want: 'example.com/net-backend-type' },
    { name: 'upper case', prefix: 'Vxnet.IO', want: new Error() },
    { name: 'two slashes', prefix: 'a.com/b/c', want: new Error() },
    { name: 'empty', prefix: '', want: new Error() },
  ];
  for (const c of cases) {
    if (c.want instanceof Error) assert.throws(() => annotationKeys(c.prefix), /annotation prefix/, c.name);
    else assert.equal(annotationKeys(c.prefix).backendType, c.want, c.name);
  }
});

test('backend-data: flannel format byte for byte, Port only under our prefix', () => {
  const self = { vni: 1, vtepMAC: '0A:1B:2C:3D:4E:5F', port: 8472, underlayIP: '192.168.1.10' };
  assert.equal(formatBackendData(self, fl), '{"VNI":1,"VtepMAC":"0a:1b:2c:3d:4e:5f"}');
  assert.equal(formatBackendData({ ...self, port: 4789 }, fl), '{"VNI":1,"VtepMAC":"0a:1b:2c:3d:4e:5f"}', 'flannel prefix never carries Port');
  assert.equal(formatBackendData(self, vx), '{"VNI":1,"VtepMAC":"0a:1b:2c:3d:4e:5f","Port":8472}');
  assert.deepEqual(publishAnnotations(self, fl), {
    'flannel.alpha.coreos.com/backend-type': 'vxlan',
    'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"0a:1b:2c:3d:4e:5f"}',
    'flannel.alpha.coreos.com/public-ip': '192.168.1.10',
    'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
  });
  assert.deepEqual(Object.keys(publishAnnotations(self, vx)).sort(), ['vxnet.io/backend-data', 'vxnet.io/backend-type', 'vxnet.io/public-ip']);
});

test('backend-data parsing', () => {
  const cases: Array<{ name: string; text: string | undefined; want: { vni?: number; vtepMAC: string; port?: number } | RegExp }> = [
    { name: 'flannel current', text: '{"VNI":1,"VtepMAC":"ce:6e:a4:0b:44:9a"}', want: { vni: 1, vtepMAC: 'ce:6e:a4:0b:44:9a' } },
    { name: 'flannel before VNI was added', text: '{"VtepMAC":"ce:6e:a4:0b:44:9a"}', want: { vtepMAC: 'ce:6e:a4:0b:44:9a' } },
    { name: 'ours with Port', text: '{"VNI":7,"VtepMAC":"02:00:00:00:00:01","Port":4789}', want: { vni: 7, vtepMAC: '02:00:00:00:00:01', port: 4789 } },
    { name: 'dashes and upper case', text: '{"VtepMAC":"CE-6E-A4-0B-44-9A"}', want: { vtepMAC: 'ce:6e:a4:0b:44:9a' } },
    { name: 'unknown fields ignored', text: '{"VtepMAC":"02:00:00:00:00:01","Other":true}', want: { vtepMAC: '02:00:00:00:00:01' } },
    { name: 'missing', text: undefined, want: /no backend-data/ },
    { name: 'not JSON', text: '{VtepMAC', want: /not JSON/ },
    { name: 'array', text: '[]', want: /not a JSON object/ },
    { name: 'multicast MAC', text: '{"VtepMAC":"01:00:5e:00:00:01"}', want: /not a unicast MAC/ },
    { name: 'short MAC', text: '{"VtepMAC":"02:00:00:00:01"}', want: /not a unicast MAC/ },
    { name: 'VNI too big', text: '{"VNI":16777216,"VtepMAC":"02:00:00:00:00:01"}', want: /24-bit/ },
    { name: 'Port zero', text: '{"VtepMAC":"02:00:00:00:00:01","Port":0}', want: /UDP port/ },
  ];
  for (const c of cases) {
    const got = parseBackendData(c.text);
    if (c.want instanceof RegExp) {
      assert.equal(got.ok, false, `${c.name}: want an error, got ${JSON.stringify(got)}`);
      if (!got.ok) assert.match(got.why, c.want, c.name);
    } else {
      assert.deepEqual(got, { ok: true, data: c.want }, c.name);
    }
  }
});

function annotated(over: { annotations?: Record<string, string>; podCIDR?: string; podCIDRs?: string[]; internalIP?: string } = {}): NodeLike {
  return makeNode({
    name: 'n',
    ...(over.podCIDRs ? { podCIDRs: over.podCIDRs } : { podCIDR: over.podCIDR ?? '10.244.3.0/24' }),
    ...(over.internalIP === '' ? {} : { internalIP: over.internalIP ?? '192.168.103.2' }),
    annotations: over.annotations ?? {
      'flannel.alpha.coreos.com/backend-type': 'vxlan',
      'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"ce:6e:a4:0b:44:9a"}',
      'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
      'flannel.alpha.coreos.com/public-ip': '203.0.113.7',
    },
  });
}

test('nodeToPeer: a node annotated by flannel', () => {
  const got = nodeToPeer(annotated(), fl);
  assert.deepEqual(got, { ok: true, peer: { node: 'n', underlayIP: '203.0.113.7', podCIDRs: ['10.244.3.0/24'], vtepMAC: 'ce:6e:a4:0b:44:9a', vni: 1 } });
});

test('nodeToPeer: cases', () => {
  const base = {
    'vxnet.io/backend-type': 'vxlan',
    'vxnet.io/backend-data': '{"VNI":1,"VtepMAC":"02:00:00:00:00:03","Port":8472}',
  };
  const cases: Array<{ name: string; node: NodeLike; want: { underlayIP?: string; podCIDRs?: string[] } | SkipReason }> = [
    { name: 'InternalIP when no public-ip', node: annotated({ annotations: base }), want: { underlayIP: '192.168.103.2' } },
    { name: 'public-ip wins over InternalIP', node: annotated({ annotations: { ...base, 'vxnet.io/public-ip': '198.51.100.1' } }), want: { underlayIP: '198.51.100.1' } },
    { name: 'bad public-ip', node: annotated({ annotations: { ...base, 'vxnet.io/public-ip': 'fe80::1' } }), want: SkipReason.BadPublicIP },
    { name: 'no address at all', node: annotated({ annotations: base, internalIP: '' }), want: SkipReason.NoUnderlayIP },
    { name: 'dual stack: both families, IPv4 first', node: annotated({ annotations: base, podCIDRs: ['fd00:10:244:3::/64', '10.244.3.0/24'] }), want: { podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'] } },
    { name: 'IPv6 only', node: annotated({ annotations: base, podCIDRs: ['fd00:10:244:3::/64'] }), want: SkipReason.NoPodCIDR },
    { name: 'host bits cleared', node: annotated({ annotations: base, podCIDR: '10.244.3.7/24' }), want: { podCIDRs: ['10.244.3.0/24'] } },
    { name: 'no podCIDR', node: makeNode({ name: 'n', internalIP: '192.168.103.2', annotations: base }), want: SkipReason.NoPodCIDR },
    { name: 'no annotations', node: makeNode({ name: 'n', podCIDR: '10.244.3.0/24', internalIP: '192.168.103.2' }), want: SkipReason.NotVxlan },
    { name: 'host-gw backend', node: annotated({ annotations: { ...base, 'vxnet.io/backend-type': 'host-gw' } }), want: SkipReason.NotVxlan },
    { name: 'other prefix only', node: annotated(), want: SkipReason.NotVxlan },
    { name: 'garbage backend-data', node: annotated({ annotations: { ...base, 'vxnet.io/backend-data': 'null' } }), want: SkipReason.BadBackendData },
    { name: 'no name', node: { metadata: {} }, want: SkipReason.NoName },
  ];
  for (const c of cases) {
    const got = nodeToPeer(c.node, vx);
    if (typeof c.want === 'string') {
      assert.equal(got.ok ? 'a peer' : got.reason, c.want, c.name);
    } else {
      assert.ok(got.ok, `${c.name}: want a peer, got ${JSON.stringify(got)}`);
      if (!got.ok) continue;
      if (c.want.underlayIP) assert.equal(got.peer.underlayIP, c.want.underlayIP, c.name);
      if (c.want.podCIDRs) assert.deepEqual(got.peer.podCIDRs, c.want.podCIDRs, c.name);
      assert.equal(got.peer.port, 8472, c.name);
    }
  }
});

test('peerKey: equal exactly when the data path would not care', () => {
  const a = nodeToPeer(annotated(), fl);
  const heartbeat = annotated();
  (heartbeat as { status: { conditions: unknown[] } }).status.conditions.push({ type: 'MemoryPressure', status: 'False' });
  heartbeat.metadata!.annotations!['node.alpha.kubernetes.io/ttl'] = '0';
  const b = nodeToPeer(heartbeat, fl);
  const moved = nodeToPeer(annotated({ annotations: { ...annotated().metadata!.annotations!, 'flannel.alpha.coreos.com/public-ip': '203.0.113.8' } }), fl);
  assert.ok(a.ok && b.ok && moved.ok);
  if (!a.ok || !b.ok || !moved.ok) return;
  assert.equal(peerKey(a.peer), peerKey(b.peer));
  assert.notEqual(peerKey(a.peer), peerKey(moved.peer));
});

test('remote checksum offload is published as vxnet.io/remote-checksum under either prefix, and read back', () => {
  const self = { underlayIP: '192.0.2.9', vni: 1, vtepMAC: '02:00:00:00:00:09', port: 8472, remoteChecksum: true };
  for (const keys of [vx, fl]) {
    const a = publishAnnotations(self, keys);
    assert.equal(a['vxnet.io/remote-checksum'], 'true', `${keys.prefix}: our own key`);
    assert.equal(a[keys.backendData], formatBackendData(self, keys), `${keys.prefix}: backend-data unchanged by it`);
    assert.equal(Object.keys(publishAnnotations({ ...self, remoteChecksum: false }, keys)).includes('vxnet.io/remote-checksum'), false, 'absent when off');
  }
  const node = makeNode({ name: 'n9', podCIDR: '10.244.9.0/24', internalIP: '192.0.2.9', annotations: publishAnnotations(self, fl) });
  const r = nodeToPeer(node, fl);
  assert.ok(r.ok && r.peer.remoteChecksum === true, 'a flannel-prefix peer that advertises RCO');
  const plain = nodeToPeer(makeNode({ name: 'n8', podCIDR: '10.244.8.0/24', internalIP: '192.0.2.8', annotations: publishAnnotations({ ...self, remoteChecksum: false }, fl) }), fl);
  assert.ok(plain.ok && plain.peer.remoteChecksum === undefined, 'flannel nodes never advertise it');
  assert.ok(r.ok && plain.ok && peerKey(r.peer) !== peerKey({ ...r.peer, remoteChecksum: undefined }), 'the key changes with it');
});
