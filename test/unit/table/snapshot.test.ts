/**
 * Peer snapshots that the table cannot hold (Kubernetes Nodes with conflicting facts): each
 * conflict sets aside exactly the peers it should, with a reason that names the other party, and
 * whatever is left always builds. Named cases first, then random snapshots full of conflicts, each
 * of which must build without a TableError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tableInputs, type LocalFacts } from '../../../src/table/snapshot.js';
import { checkConfig } from '../../../src/agent/config.js';
import { buildTable, ForwardingTable, Lookup } from '../../../src/table/table.js';
import { buildTable6 } from '../../../src/table/table6.js';
import { ipv4ToNumber } from '../../../src/wire/addr.js';
import type { Peer } from '../../../src/peers/source.js';
import { Rng } from '../../rng.js';

const local: LocalFacts = {
  clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', underlayIP: '192.0.2.1', vtepMAC: '02:00:00:00:00:01', port: 8472, vni: 1,
};
const peer = (n: number, over: Partial<Peer> = {}): Peer => ({
  node: `n${n}`, underlayIP: `192.0.2.${n}`, podCIDRs: [`10.244.${n}.0/24`], vtepMAC: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`, ...over,
});

const cases: Array<{ name: string; peers: Peer[]; setAside: Record<string, RegExp>; warned?: Record<string, RegExp> }> = [
  { name: 'a clean snapshot', peers: [peer(2), peer(3)], setAside: {} },
  { name: "a peer with this node's underlay", peers: [peer(2, { underlayIP: '192.0.2.1' }), peer(3)], setAside: { n2: /192\.0\.2\.1 is this node's own/ } },
  { name: 'a peer whose underlay is inside the cluster CIDR', peers: [peer(2, { underlayIP: '10.244.200.1' }), peer(3)],
    setAside: { n2: /inside clusterCIDR 10\.244\.0\.0\/16: datagrams to it would be routed into the TUN device/ } },
  { name: 'a multicast underlay', peers: [peer(2, { underlayIP: '239.0.0.1' })], setAside: { n2: /multicast/ } },
  { name: 'a pod CIDR outside the cluster CIDR', peers: [peer(2, { podCIDRs: ['10.99.0.0/24'] }), peer(3)], setAside: { n2: /10\.99\.0\.0\/24 is outside clusterCIDR/ } },
  { name: "a pod CIDR overlapping this node's", peers: [peer(2, { podCIDRs: ['10.244.1.128/25'] }), peer(3)], setAside: { n2: /overlaps this node's 10\.244\.1\.0\/24/ } },
  { name: 'two peers overlapping: both set aside', peers: [peer(2), peer(3, { podCIDRs: ['10.244.2.0/23'] }), peer(4)],
    setAside: { n2: /overlaps one of node "n3"/, n3: /overlaps one of node "n2"/ } },
  { name: "a peer's own CIDRs overlapping", peers: [peer(2, { podCIDRs: ['10.244.2.0/24', '10.244.2.0/25'] }), peer(3)], setAside: { n2: /another of its own/ } },
  { name: 'two peers with one underlay: both set aside', peers: [peer(2), peer(3, { underlayIP: '192.0.2.2' }), peer(4)],
    setAside: { n2: /192\.0\.2\.2 is also node "n3"'s/, n3: /192\.0\.2\.2 is also node "n2"'s/ } },
  { name: 'an address that does not parse', peers: [peer(2, { underlayIP: '192.0.2.256' }), peer(3)], setAside: { n2: /invalid IPv4 address/ } },
  { name: 'no IPv4 pod CIDR', peers: [peer(2, { podCIDRs: ['fd00::/64'] })], setAside: { n2: /no IPv4 pod CIDR/ } },
  { name: 'a shared MAC only warns', peers: [peer(2), peer(3, { vtepMAC: '02:00:00:00:00:02' }), peer(4, { vtepMAC: '02:00:00:00:00:01' })], setAside: {},
    warned: { n2: /is also node "n3"'s; kernel VXLAN/, n3: /is also node "n2"'s/, n4: /is this node's own/ } },
];

for (const c of cases) {
  test(`tableInputs: ${c.name}`, () => {
    const r = tableInputs(c.peers, local);
    const got = Object.fromEntries(r.setAside.map((s) => [s.node, s.reason]));
    assert.deepEqual(Object.keys(got).sort(), Object.keys(c.setAside).sort(), `set aside: ${JSON.stringify(got)}`);
    for (const [node, want] of Object.entries(c.setAside)) assert.match(got[node]!, want, node);
    const warned = Object.fromEntries(r.warnings.map((s) => [s.node, s.reason]));
    assert.deepEqual(Object.keys(warned).sort(), Object.keys(c.warned ?? {}).sort(), `warned: ${JSON.stringify(warned)}`);
    for (const [node, want] of Object.entries(c.warned ?? {})) assert.match(warned[node]!, want, node);
    assert.deepEqual(r.peers.map((p) => p.node), c.peers.map((p) => p.node).filter((n) => !(n in c.setAside)), 'the rest keep their order');
    const table = new ForwardingTable(buildTable(r.input));
    r.peers.forEach((p, slot) => {
      assert.equal(table.slotForUnderlay(ipv4ToNumber(p.underlayIP)), slot, `${p.node} is slot ${slot}`);
    });
    assert.equal(table.lookup(ipv4ToNumber('10.244.1.9')), Lookup.Local);
  });
}

test('tableInputs: dual stack sets aside IPv6 conflicts too, and leaves IPv6 out without clusterCIDR6', () => {
  const local6: LocalFacts = { ...local, clusterCIDR6: 'fd00:10:244::/56', podCIDR6: 'fd00:10:244:1::/64' };
  const peers = [
    peer(2, { podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'] }),
    peer(3, { podCIDRs: ['10.244.3.0/24', 'fd00:10:244:2:8000::/65'] }),
    peer(4, { podCIDRs: ['10.244.4.0/24', 'fd00:99::/64'] }),
    peer(5, { podCIDRs: ['10.244.5.0/24', 'fd00:10:244:5::/64'] }),
  ];
  const r = tableInputs(peers, local6);
  assert.deepEqual(r.setAside.map((s) => s.node), ['n2', 'n3', 'n4']);
  assert.match(r.setAside[2]!.reason, /outside clusterCIDR6/);
  assert.deepEqual(r.peers.map((p) => p.node), ['n5']);
  assert.doesNotThrow(() => buildTable6(r.input6!));
  const v4only = tableInputs(peers, local);
  assert.deepEqual(v4only.setAside, [], 'without clusterCIDR6, IPv6 CIDRs are not looked at');
  assert.equal(v4only.input6, undefined);
});

test('tableInputs: random snapshots full of conflicts always leave a buildable table', () => {
  const rng = new Rng(11);
  for (let round = 0; round < 200; round++) {
    const n = rng.int(1, 60);
    const peers: Peer[] = [];
    for (let i = 0; i < n; i++) {
      // Small pools make every kind of clash likely.
      const prefix = rng.pick([22, 23, 24, 24, 24, 25]);
      const third = rng.int(0, 40) & ~((1 << Math.max(0, 24 - prefix)) - 1);
      const fourth = prefix > 24 ? rng.pick([0, 128]) : 0;
      peers.push({
        node: `p${i}`,
        underlayIP: rng.chance(0.1) ? `10.244.${rng.int(0, 255)}.1` : `192.0.2.${rng.int(1, 40)}`,
        podCIDRs: [`10.${rng.chance(0.05) ? 99 : 244}.${third}.${fourth}/${prefix}`],
        vtepMAC: `02:00:00:00:00:${rng.int(1, 40).toString(16).padStart(2, '0')}`,
      });
    }
    const r = tableInputs(peers, local);
    assert.equal(r.peers.length + r.setAside.length, n, `round ${round}: every peer kept or set aside`);
    assert.doesNotThrow(() => buildTable(r.input), `round ${round}: ${JSON.stringify(peers)}`);
  }
});

test('tableInputs: a list the config check passed skips the screen only for the facts it was checked against', () => {
  const cfg = checkConfig({
    node: 'n1', underlayIP: '192.0.2.1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', vtepMAC: '02:00:00:00:00:01',
    peers: [peer(2), peer(3)].map((p) => ({ node: p.node, underlayIP: p.underlayIP, podCIDR: p.podCIDRs[0], vtepMAC: p.vtepMAC })),
  });
  const same = tableInputs(cfg.peers, { ...local, clusterCIDR: cfg.clusterCIDR, podCIDR: cfg.podCIDR, underlayIP: cfg.underlayIP, vtepMAC: cfg.vtepMAC });
  assert.deepEqual(same.peers.map((p) => p.node), ['n2', 'n3']);
  assert.deepEqual(same.setAside, []);
  // The running agent's facts differ from the file's (a reloaded config whose own fields changed):
  // the screen runs and sets aside the peer whose address the running cluster CIDR holds.
  const other = tableInputs(cfg.peers, { ...local, clusterCIDR: '192.0.2.0/24', podCIDR: '192.0.2.128/25', underlayIP: '198.51.100.1' });
  assert.deepEqual(other.setAside.map((s) => s.node), ['n2', 'n3']);
  assert.match(other.setAside[0]!.reason, /inside clusterCIDR 192\.0\.2\.0\/24/);
});
