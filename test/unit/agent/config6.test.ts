/**
 * Dual-stack configuration: clusterCIDR6 / podCIDR6 and IPv6 CIDRs in a peer's podCIDRs, checked
 * like the IPv4 ones (host bits, inside the cluster CIDR, overlaps), each error naming its field;
 * the CNI conflist with a second host-local range.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfig, ConfigError } from '../../../src/agent/config.js';
import { buildConflist } from '../../../src/agent/cni-conflist.js';

const base = (): Record<string, unknown> & { peers: Array<Record<string, unknown>> } => ({
  node: 'n1', underlayIP: '192.0.2.1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24',
  clusterCIDR6: 'fd00:10:244::/56', podCIDR6: 'fd00:10:244:1::/64',
  peers: [
    { node: 'n2', underlayIP: '192.0.2.2', podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'], vtepMAC: '02:00:00:00:00:02' },
    { node: 'n3', underlayIP: '192.0.2.3', podCIDRs: ['FD00:10:244:3:0::/64', '10.244.3.0/24'], vtepMAC: '02:00:00:00:00:03' },
  ],
});

test('dual stack: IPv6 fields are kept, normalised (RFC 5952), and mixed into peers in order', () => {
  const c = checkConfig(base());
  assert.equal(c.clusterCIDR6, 'fd00:10:244::/56');
  assert.equal(c.podCIDR6, 'fd00:10:244:1::/64');
  assert.deepEqual(c.peers[0]!.podCIDRs, ['10.244.2.0/24', 'fd00:10:244:2::/64']);
  assert.deepEqual(c.peers[1]!.podCIDRs, ['fd00:10:244:3::/64', '10.244.3.0/24']);
});

test('single stack stays as it was: no IPv6 fields in the result', () => {
  const { clusterCIDR6: _a, podCIDR6: _b, ...rest } = base();
  const c = checkConfig({ ...rest, peers: [{ node: 'n2', underlayIP: '192.0.2.2', podCIDR: '10.244.2.0/24', vtepMAC: '02:00:00:00:00:02' }] });
  assert.equal(c.clusterCIDR6, undefined);
  assert.equal(c.podCIDR6, undefined);
  assert.equal('clusterCIDR6' in c, false);
});

test('Kubernetes mode: clusterCIDR6 without podCIDR6 is fine (the Node supplies it)', () => {
  const { podCIDR6: _p, podCIDR: _q, underlayIP: _u, peers: _s, ...rest } = base();
  const c = checkConfig({ ...rest, peerSource: 'kubernetes' });
  assert.equal(c.clusterCIDR6, 'fd00:10:244::/56');
  assert.equal(c.podCIDR6, undefined);
});

type Cfg = ReturnType<typeof base>;
const peer = (c: Cfg, i: number): Record<string, unknown> => c.peers[i]!;
const bad: Array<{ name: string; field: string; want: RegExp; edit: (c: Cfg) => unknown }> = [
  { name: 'clusterCIDR6 not IPv6', field: 'clusterCIDR6', want: /is not an IPv6 CIDR/, edit: (c) => ({ ...c, clusterCIDR6: '10.0.0.0/8' }) },
  { name: 'clusterCIDR6 host bits', field: 'clusterCIDR6', want: /host bits set; did you mean fd00:10:244::\/56\?/, edit: (c) => ({ ...c, clusterCIDR6: 'fd00:10:244::1/56' }) },
  { name: 'clusterCIDR6 /0', field: 'clusterCIDR6', want: /from \/8 to \/126/, edit: (c) => ({ ...c, clusterCIDR6: '::/0' }) },
  { name: 'clusterCIDR6 with a zone', field: 'clusterCIDR6', want: /is not an IPv6 CIDR/, edit: (c) => ({ ...c, clusterCIDR6: 'fe80::%eth0/64' }) },
  { name: 'podCIDR6 outside clusterCIDR6', field: 'podCIDR6', want: /fd00:10:245::\/64 is not inside clusterCIDR6 fd00:10:244::\/56/, edit: (c) => ({ ...c, podCIDR6: 'fd00:10:245::/64' }) },
  { name: 'podCIDR6 host bits', field: 'podCIDR6', want: /did you mean fd00:10:244:1::\/64/, edit: (c) => ({ ...c, podCIDR6: 'fd00:10:244:1::5/64' }) },
  { name: 'podCIDR6 without clusterCIDR6', field: 'podCIDR6', want: /needs clusterCIDR6/, edit: (c) => { const { clusterCIDR6: _, ...rest } = c; return { ...rest, peers: [] }; } },
  { name: 'clusterCIDR6 without podCIDR6 (static)', field: 'podCIDR6', want: /missing/, edit: (c) => { const { podCIDR6: _, ...rest } = c; return rest; } },
  { name: 'an IPv4 podCIDR6', field: 'podCIDR6', want: /is not an IPv6 CIDR/, edit: (c) => ({ ...c, podCIDR6: '10.244.1.0/24' }) },
  { name: 'mtu below 1280 with IPv6', field: 'mtu', want: /1280/, edit: (c) => ({ ...c, mtu: 1200 }) },
  { name: "a peer's IPv6 CIDR outside clusterCIDR6", field: 'peers[0].podCIDRs[1]', want: /fd00:99::\/64 is not inside clusterCIDR6/, edit: (c) => { peer(c, 0).podCIDRs = ['10.244.2.0/24', 'fd00:99::/64']; return c; } },
  { name: "a peer's IPv6 CIDR with host bits", field: 'peers[0].podCIDRs[1]', want: /host bits set/, edit: (c) => { peer(c, 0).podCIDRs = ['10.244.2.0/24', 'fd00:10:244:2::1/64']; return c; } },
  { name: "a peer's IPv6 CIDR overlapping another peer's", field: 'peers[1].podCIDRs[0]', want: /fd00:10:244:2:8000::\/65 overlaps fd00:10:244:2::\/64 of peer "n2"/, edit: (c) => { peer(c, 1).podCIDRs = ['fd00:10:244:2:8000::/65', '10.244.3.0/24']; return c; } },
  { name: "a peer's IPv6 CIDR overlapping this node's", field: 'peers[0].podCIDRs[1]', want: /overlaps fd00:10:244:1::\/64 of this node \(n1\)/, edit: (c) => { peer(c, 0).podCIDRs = ['10.244.2.0/24', 'fd00:10:244:1::/64']; return c; } },
  { name: 'a peer with IPv6 CIDRs only', field: 'peers[0].podCIDRs', want: /needs an IPv4 CIDR/, edit: (c) => { peer(c, 0).podCIDRs = ['fd00:10:244:2::/64']; return c; } },
  { name: 'a peer with IPv6 CIDRs while this node has no clusterCIDR6', field: 'peers[0].podCIDRs[1]', want: /has no clusterCIDR6/, edit: (c) => { const { clusterCIDR6: _a, podCIDR6: _b, ...rest } = c; return rest; } },
  { name: 'a peer CIDR that is neither', field: 'peers[0].podCIDRs[1]', want: /is not an IPv6 CIDR/, edit: (c) => { peer(c, 0).podCIDRs = ['10.244.2.0/24', 'fd00::g/64']; return c; } },
];

for (const b of bad) {
  test(`dual-stack config error: ${b.name} names "${b.field}"`, () => {
    assert.throws(() => checkConfig(b.edit(base())), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `got ${String(err)}`);
      assert.equal(err.field, b.field, err.message);
      assert.match(err.message, b.want);
      return true;
    });
  });
}

test('conflist: a second host-local range for podCIDR6; none without it', () => {
  const dual = buildConflist({ podCIDR: '10.244.1.0/24', podCIDR6: 'fd00:10:244:1::/64', mtu: 1450 }) as { plugins: Array<{ ipam?: { ranges: unknown } }> };
  assert.deepEqual(dual.plugins[0]!.ipam!.ranges, [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]]);
  const single = buildConflist({ podCIDR: '10.244.1.0/24', mtu: 1450 }) as { plugins: Array<{ ipam?: { ranges: unknown } }> };
  assert.deepEqual(single.plugins[0]!.ipam!.ranges, [[{ subnet: '10.244.1.0/24' }]]);
});
