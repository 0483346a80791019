/**
 * What vxnet puts on the wire, as an independent decoder (tshark) reads it. A ping between two
 * pods on different nodes is captured on the router's port toward the receiving node and must
 * decode as RFC 7348 VXLAN: the lab's VNI, outer UDP to the lab's port between the two underlay
 * addresses, an inner Ethernet frame from the sender's VTEP MAC to the receiver's, EtherType
 * IPv4, and the pods' own addresses inside. The same test on an all-kernel lab checks the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCapture } from '../../src/lab/capture.js';
import { ping } from '../../src/lab/checks.js';
import type { Lab, NodeKind } from '../../src/lab/lab.js';
import { agentSkip, labSkip, withLab } from './helpers.js';

const FIELDS = ['ip.src', 'ip.dst', 'udp.dstport', 'vxlan.flags', 'vxlan.vni', 'eth.src', 'eth.dst', 'eth.type', 'icmp.type'];

async function checkWire(lab: Lab): Promise<void> {
  const a = lab.pod('p1a');
  const b = lab.pod('p2a');
  const n1 = lab.node(1);
  const n2 = lab.node(2);
  const cap = await startCapture(lab, lab.router, {
    iface: n2.routerIface,
    filter: `udp port ${lab.port}`,
    fields: FIELDS,
    vxlanPorts: [lab.port],
    seconds: 15,
  });
  const r = await ping(lab, a.ns, b.ip, { count: 5, intervalS: 0.2 });
  const pkts = await cap.stop(10);
  assert.equal(r.received, 5, `ping ${a.name} -> ${b.name} while capturing`);
  for (const p of pkts) process.stderr.write(`observed: ${JSON.stringify(p)}\n`);

  // Echo requests node1 -> node2 and replies node2 -> node1, both seen on node2's router port.
  const requests = pkts.filter((p) => p['icmp.type']?.[0] === '8');
  const replies = pkts.filter((p) => p['icmp.type']?.[0] === '0');
  assert.ok(requests.length >= 3, `captured ${requests.length} VXLAN echo requests, want >= 3`);
  assert.ok(replies.length >= 3, `captured ${replies.length} VXLAN echo replies, want >= 3`);
  for (const [pkts_, from, to, src, dst] of [
    [requests, n1, n2, a, b],
    [replies, n2, n1, b, a],
  ] as const) {
    for (const p of pkts_) {
      assert.deepEqual(p['ip.src'], [from.underlayIP, src.ip], 'outer and inner IPv4 source');
      assert.deepEqual(p['ip.dst'], [to.underlayIP, dst.ip], 'outer and inner IPv4 destination');
      assert.deepEqual(p['udp.dstport'], [String(lab.port)], 'outer UDP destination port');
      assert.deepEqual(p['vxlan.vni'], [String(lab.vni)], 'VNI');
      assert.equal(Number(p['vxlan.flags']?.[0]), 0x0800, 'VXLAN flags: only the I bit (RFC 7348 section 5)');
      assert.equal(p['eth.src']?.[1], from.vtepMAC, "inner Ethernet source is the sender's VTEP MAC");
      assert.equal(p['eth.dst']?.[1], to.vtepMAC, "inner Ethernet destination is the receiver's VTEP MAC");
      assert.deepEqual(p['eth.type'], ['0x0800', '0x0800'], 'outer and inner EtherType IPv4');
    }
  }
}

for (const { kind, skip, port, vni } of [
  { kind: 'kernel' as NodeKind, skip: labSkip(['tshark', 'ethtool']), port: 8472, vni: 1 },
  { kind: 'vxnet' as NodeKind, skip: agentSkip(['tshark', 'ethtool']), port: 8472, vni: 1 },
  { kind: 'vxnet' as NodeKind, skip: agentSkip(['tshark', 'ethtool']), port: 4789, vni: 7777 },
]) {
  test(`wire format, ${kind} nodes, VNI ${vni} port ${port}: tshark decodes VXLAN with pod addresses inside`, { skip, timeout: 120_000 }, async () => {
    await withLab({ nodes: 2, kind: () => kind, vni, port, podsPerNode: 1 }, checkWire);
  });
}
