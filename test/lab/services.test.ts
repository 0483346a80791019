/**
 * Services through vxnet (issue 7 §4). There is no kube-proxy here, so every node gets the
 * rules kube-proxy's nftables mode would write (src/lab/services.ts) for one Service: ClusterIP
 * 10.96.0.10:80 and NodePort 30080, endpoints on port 8080 of a pod on node2 and one on node3.
 * node1's pod p1a also has a hostPort (8080 -> 80), set up by the CNI portmap plugin from the
 * conflist the agent wrote, as a container runtime would ask for it.
 *
 * What vxnet must carry: DNATed pod-to-pod flows whose replies conntrack un-DNATs on the way
 * back (the client stays connected to the ClusterIP); node traffic that kube-proxy masquerades
 * onto the overlay, whose source is then node1's overlay address 10.244.1.0 (inside node1's pod
 * CIDR, so node2's anti-spoofing accepts it); and traffic from outside the cluster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeConnection, probe, serviceRound, type Connection } from '../../src/lab/reach.js';
import { listRuleset } from '../../src/lab/nft-lab.js';
import { OUTSIDE_IP } from '../../src/lab/topology.js';
import type { Lab } from '../../src/lab/lab.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip(['ip', 'bridge', 'iperf3', 'ping', 'ethtool', 'nft', 'iptables']);

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

function endpoints(lab: Lab): { ns: string; ip: string; port: number }[] {
  return lab.service!.endpoints.map((e) => ({ ns: lab.podsOn(e.node).find((p) => p.ip === e.ip)!.ns, ip: e.ip, port: e.port }));
}

function summary(r: { connections: Connection[]; answeredBy: Set<string> }): string {
  return `${r.connections.length} connections answered by [${[...r.answeredBy].join(', ')}]; first: ${describeConnection(r.connections[0] ?? { error: 'none' })}`;
}

test('Services: pod and host network -> ClusterIP -> remote endpoints, hostPort and NodePort from outside the cluster', { skip, timeout: 240_000 }, async () => {
  await withLab({
    nodes: 3, outside: true, service: true,
    hostPorts: { p1a: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
  }, async (lab) => {
    const svc = lab.service!;
    const eps = endpoints(lab);
    const n1 = lab.node(1);
    const rules = await listRuleset(n1.ns);
    assert.match(rules, /table ip kube-proxy/);
    assert.match(rules, /dnat to 10\.244\.2\.2:8080/);

    // Pod -> ClusterIP: every connection lands on an endpoint on another node, the endpoint
    // sees the pod's own address, and the client stays connected to the ClusterIP.
    const a = lab.pod('p1a');
    const pod = await serviceRound(lab, a.ns, { ip: svc.clusterIP, port: svc.port }, eps);
    say(`pod p1a -> ClusterIP ${svc.clusterIP}:${svc.port}: ${summary(pod)}`);
    for (const c of pod.connections) {
      assert.equal(c.error, undefined, describeConnection(c));
      assert.equal(c.remote, svc.clusterIP, 'the reply was un-DNATed: the client socket is connected to the ClusterIP');
      assert.equal(c.seenByServer, a.ip, 'pod to Service is not masqueraded: the endpoint sees the pod');
    }
    assert.deepEqual([...pod.answeredBy].sort(), eps.map((e) => e.ip).sort(), 'both endpoints, on node2 and node3, answered');

    // Host network -> ClusterIP: kube-proxy marks it (source not in the cluster CIDR) and
    // masquerades it out of vxnet0, so it leaves with node1's overlay address.
    const host = await serviceRound(lab, n1.ns, { ip: svc.clusterIP, port: svc.port }, eps);
    say(`host network node1 -> ClusterIP: ${summary(host)}`);
    for (const c of host.connections) {
      assert.equal(c.error, undefined, describeConnection(c));
      assert.equal(c.remote, svc.clusterIP);
      assert.equal(c.seenByServer, n1.tunnelAddress, 'the endpoint sees node1\'s overlay address (kube-proxy\'s masquerade onto vxnet0)');
    }

    // hostPort: outside host -> node1:8080 -> p1a:80 (portmap's DNAT), no SNAT.
    const hp = await probe(lab, { ns: a.ns, ip: '0.0.0.0', port: 80 }, lab.outside!, { ip: n1.underlayIP, port: 8080 });
    say(`outside ${OUTSIDE_IP} -> hostPort ${n1.underlayIP}:8080: ${describeConnection(hp)}`);
    assert.equal(hp.error, undefined, 'the hostPort answers from outside the cluster');
    assert.equal(hp.serverAddress, a.ip, 'the pod on node1 answered');
    assert.equal(hp.seenByServer, OUTSIDE_IP, 'portmap does not masquerade: the pod sees the outside host');
    assert.equal(hp.remote, n1.underlayIP);

    // NodePort: outside host -> node1:30080 -> an endpoint on node2 or node3, masqueraded by
    // kube-proxy's mark; the reply comes back through node1 and is un-NATed to the outside.
    const np = await serviceRound(lab, lab.outside!, { ip: n1.underlayIP, port: svc.nodePort! }, eps);
    say(`outside -> NodePort ${n1.underlayIP}:${svc.nodePort}: ${summary(np)}`);
    for (const c of np.connections) {
      assert.equal(c.error, undefined, describeConnection(c));
      assert.equal(c.remote, n1.underlayIP, 'the outside host stays connected to the node it dialled');
      assert.equal(c.seenByServer, n1.tunnelAddress, 'the endpoint sees node1\'s overlay address');
    }
    assert.deepEqual([...np.answeredBy].sort(), eps.map((e) => e.ip).sort(), 'both remote endpoints answered the NodePort');

    const spoofed = (await lab.metrics(2)).find((s) => s.name === 'vxnet_dropped_total' && s.labels['reason'] === 'spoofed_source')?.value ?? 0;
    say(`node2 spoofed_source drops: ${spoofed}`);
    assert.equal(spoofed, 0, 'nothing vxnet carried for the Service was refused');
  });
});
