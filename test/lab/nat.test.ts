/**
 * Pods and the world outside the cluster (issue 7 §3): the agent's outbound NAT (ipMasq,
 * src/netfilter/) seen from both ends. An outside host (203.0.113.10, behind the router, no
 * route to any pod CIDR) sees a pod's connection come from the pod's node; a pod reaches another
 * node's host network and gets the reply (which, without NAT, came back through the overlay
 * with the node's address as inner source and was dropped as spoofed); pod to pod keeps the
 * pod's address. With ipMasq false the outside host sees the pod address and cannot answer.
 * A node whose forward hook has a drop policy in another table (as Docker makes) gets exactly
 * the commands that fix it in the agent's log, and they do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeConnection, probe } from '../../src/lab/reach.js';
import { startCapture } from '../../src/lab/capture.js';
import { installRuleset, listRuleset } from '../../src/lab/nft-lab.js';
import { installMasquerade } from '../../src/netfilter/masquerade.js';
import { inNs } from '../../src/lab/exec.js';
import { ping } from '../../src/lab/checks.js';
import { CLUSTER_CIDR, OUTSIDE_IP } from '../../src/lab/topology.js';
import type { Lab } from '../../src/lab/lab.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip(['ip', 'bridge', 'iperf3', 'ping', 'ethtool', 'nft', 'iptables', 'tshark']);

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

const outsideServer = (lab: Lab) => ({ ns: lab.outside!, ip: OUTSIDE_IP, port: 7100 });

test('ipMasq: the outside sees the node, another node\'s host network answers a pod, pod to pod keeps the pod address', { skip, timeout: 180_000 }, async () => {
  await withLab({ nodes: 3, outside: true }, async (lab) => {
    const rules = await listRuleset(lab.node(1).ns);
    say(`node1 nftables:\n${rules}`);
    assert.match(rules, /table inet vxnet/);
    assert.match(lab.agentLog(1, 60), /"msg":"outbound NAT installed"/);

    // A restart installs the same transaction again: the table is replaced whole (never
    // doubled), and another owner's table next to it is left exactly as it was.
    const ns = lab.node(1).ns;
    await installRuleset(ns, 'table ip kube-proxy { chain services { ip daddr 10.96.0.1 accept; }; }\n');
    const spec = { podCIDR: lab.node(1).podCIDR, clusterCIDR: CLUSTER_CIDR, device: 'vxnet0' };
    await installMasquerade(spec, { command: inNs(ns, ['nft']) });
    await installMasquerade(spec, { command: inNs(ns, ['nft']) });
    const again = await listRuleset(ns);
    const masq = again.split('\n').filter((l) => l.includes('masquerade fully-random')).length;
    say(`after two more installs: ${masq} masquerade rules; kube-proxy's table ${/table ip kube-proxy[\s\S]*10\.96\.0\.1 accept/.test(again) ? 'intact' : 'CHANGED'}`);
    assert.equal(masq, 2, 'the table is replaced, not appended to');
    assert.match(again, /table ip kube-proxy \{[\s\S]*ip daddr 10\.96\.0\.1 accept/);

    // The outside has no route back to pods: only a masqueraded connection can be answered.
    const direct = await ping(lab, lab.outside!, lab.pod('p1a').ip, { count: 1, waitS: 1 });
    say(`outside host pings pod p1a directly: ${direct.received}/${direct.sent}`);
    assert.equal(direct.received, 0, 'the outside host has no route to pod addresses');

    for (const [pod, node] of [['p1a', 1], ['p2b', 2]] as const) {
      const c = await probe(lab, outsideServer(lab), lab.pod(pod).ns);
      say(`${pod} -> outside host: ${describeConnection(c)}`);
      assert.equal(c.error, undefined, `${pod} reaches the outside host`);
      assert.equal(c.seenByServer, lab.node(node).underlayIP, `the outside host sees node${node}'s address, got ${c.seenByServer}`);
      assert.equal(c.local, lab.pod(pod).ip, 'inside the pod the socket still has the pod address');
    }

    // A TCP server on node2's own underlay address (kubelet, node-exporter, an API server).
    const n2 = lab.node(2);
    const h = await probe(lab, { ns: n2.ns, ip: n2.underlayIP, port: 10250 }, lab.pod('p1a').ns);
    say(`p1a -> node2 host network ${n2.underlayIP}:10250: ${describeConnection(h)}`);
    assert.equal(h.error, undefined, 'a pod reaches another node\'s host-network address and gets the reply');
    assert.equal(h.seenByServer, lab.node(1).underlayIP, 'node2 sees node1\'s address: the reply goes back over the underlay, not the overlay');
    const spoofed = (await lab.metrics(1)).find((s) => s.name === 'vxnet_dropped_total' && s.labels['reason'] === 'spoofed_source')?.value ?? 0;
    say(`node1 spoofed_source drops: ${spoofed}`);
    assert.equal(spoofed, 0);

    const p = await probe(lab, { ns: lab.pod('p3a').ns, ip: lab.pod('p3a').ip, port: 7200 }, lab.pod('p1a').ns);
    say(`p1a -> p3a: ${describeConnection(p)}`);
    assert.equal(p.seenByServer, lab.pod('p1a').ip, 'pod to pod is never NATed');
  });
});

test('ipMasq false: no table, the outside host sees the pod address and its reply has no way back', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2, outside: true, agentConfigExtra: { ipMasq: false } }, async (lab) => {
    assert.match(lab.agentLog(1, 60), /ipMasq is false: no outbound NAT/);
    const rules = await listRuleset(lab.node(1).ns);
    assert.doesNotMatch(rules, /table inet vxnet/, 'no vxnet table');
    // tshark on the outside host's port: the SYN arrives from the pod address; the outside
    // host's answer goes to an address its router cannot route, so the handshake never completes.
    const cap = await startCapture(lab, lab.outside!, { iface: 'eth0', filter: 'tcp port 7100', fields: ['ip.src', 'tcp.flags.syn', 'tcp.flags.ack'], seconds: 20 });
    const c = await probe(lab, outsideServer(lab), lab.pod('p1a').ns);
    const pkts = await cap.stop(1);
    const syns = pkts.filter((p) => p['tcp.flags.syn']?.[0] === '1' && p['tcp.flags.ack']?.[0] === '0');
    say(`p1a -> outside host without NAT: SYNs on the outside host's wire from [${[...new Set(syns.map((p) => p['ip.src']?.[0]))].join(', ')}]; the client: ${describeConnection(c)}`);
    assert.ok(syns.length > 0, 'the SYN reached the outside host');
    assert.ok(syns.every((p) => p['ip.src']?.[0] === lab.pod('p1a').ip), 'the outside host sees the pod address');
    assert.notEqual(c.error, undefined, 'the connection cannot complete: the outside has no route to the pod');
  });
});

test('a forward policy of drop in another table (Docker\'s): the agent logs the exact commands, and they fix the node', { skip, timeout: 120_000 }, async () => {
  await withLab({
    nodes: 2,
    // What Docker does to a node, with iptables-nft, before the agent starts.
    beforeDataPlanes: async (l) => {
      const ns = l.node(1).ns;
      for (const argv of [['-P', 'FORWARD', 'DROP'], ['-N', 'DOCKER-USER'], ['-A', 'DOCKER-USER', '-j', 'RETURN'], ['-A', 'FORWARD', '-j', 'DOCKER-USER']]) {
        await l.execOk(ns, ['iptables', ...argv]);
      }
    },
  }, async (lab) => {
    const line = lab.agentLog(1, 80).split('\n').find((l) => l.includes('drops by default'));
    say(`node1 agent: ${line}`);
    assert.ok(line, 'the agent warns about the drop policy');
    const entry = JSON.parse(line) as { level: string; chain: string; commands: string[] };
    assert.equal(entry.level, 'warn');
    assert.equal(entry.chain, 'FORWARD');
    assert.deepEqual(entry.commands, ['iptables -I DOCKER-USER -s 10.244.0.0/16 -j ACCEPT', 'iptables -I DOCKER-USER -d 10.244.0.0/16 -j ACCEPT']);

    const before = await ping(lab, lab.pod('p2a').ns, lab.pod('p1a').ip, { count: 2, intervalS: 0.2, waitS: 1 });
    say(`p2a -> p1a through node1's drop policy: ${before.received}/${before.sent}`);
    assert.equal(before.received, 0, 'the drop policy drops forwarded pod traffic');
    for (const cmd of entry.commands) await lab.execOk(lab.node(1).ns, cmd.split(' '));
    const after = await ping(lab, lab.pod('p2a').ns, lab.pod('p1a').ip, { count: 3, intervalS: 0.2 });
    say(`after the logged commands: ${after.received}/${after.sent}`);
    assert.equal(after.received, after.sent, 'the logged commands let pod traffic through');
    assert.doesNotMatch(lab.agentLog(2, 80), /drops by default/, 'node2 has no drop policy and nothing is logged');
  });
});
