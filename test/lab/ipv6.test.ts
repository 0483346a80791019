/**
 * Dual-stack pods (IPv6 inside VXLAN over the IPv4 underlay) in a namespace lab. Three vxnet
 * nodes: every pod pings every pod on the other nodes at its IPv6 address, iperf3 TCP over IPv6
 * runs both ways and the server sees the client pod's own IPv6 address, the host network reaches
 * a remote pod over IPv6 from an address in its podCIDR6, an unowned IPv6 destination gets
 * vxnet's ICMPv6 "no route" at the pod, and tshark decodes inner EtherType 0x86DD inside VXLAN.
 * Then a kernel VXLAN node (one vxlan device carrying both families) and vxnet nodes reach each
 * other over IPv6 in both directions, with zero checksum errors at the kernel node's pods.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iperf, ping, pingAllPods, podEndpoint6, tcpPeerAddress, formatBps } from '../../src/lab/checks.js';
import { startCapture } from '../../src/lab/capture.js';
import { sampleValue } from '../../src/lab/http.js';
import type { Lab } from '../../src/lab/lab.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip();

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

/** iperf3 TCP over IPv6 a->b and b->a: bits/s > 0 and the server saw the client pod's IPv6 address. */
async function iperfBothWays6(lab: Lab, aName: string, bName: string): Promise<void> {
  const a = lab.pod(aName);
  const b = lab.pod(bName);
  for (const [server, client] of [[b, a], [a, b]] as const) {
    const r = await iperf(lab, podEndpoint6(server), podEndpoint6(client), { seconds: 2 });
    say(`iperf3 over IPv6 ${client.name} -> ${server.name}: ${formatBps(r.bitsPerSecond)}, ${r.retransmits} retransmits, server saw ${r.remoteHostSeenByServer}`);
    assert.ok(r.bitsPerSecond > 0, `iperf3 ${client.name} -> ${server.name}: got ${r.bitsPerSecond} bit/s, want > 0`);
    assert.equal(r.remoteHostSeenByServer, client.ip6, 'the iperf3 server saw the client pod\'s IPv6 address (no NAT)');
  }
}

async function dropped(lab: Lab, i: number, reason: string): Promise<number> {
  return sampleValue(await lab.metrics(i), 'vxnet_dropped_total', { reason });
}

async function checkDualStack(lab: Lab): Promise<void> {
  const results = await pingAllPods(lab, 3, 6);
  const failed = results.filter((r) => !r.ok);
  say(`${results.length - failed.length}/${results.length} cross-node pod pairs answered ping -6`);
  for (const r of failed) say(`FAILED ${r.name}: ${r.observed}`);
  assert.equal(results.length, 24);
  assert.deepEqual(failed, [], 'every pod reaches every pod on other nodes over IPv6');

  const p1a = lab.pod('p1a');
  const p3a = lab.pod('p3a');
  const v4 = await ping(lab, p1a.ns, p3a.ip, { count: 2 });
  say(`IPv4 still: ping ${p1a.name} -> ${p3a.ip}: ${v4.received}/${v4.sent}`);
  assert.ok(v4.sent > 0 && v4.received === v4.sent, 'IPv4 keeps working in a dual-stack lab');

  await iperfBothWays6(lab, 'p1a', 'p3a');

  // The host network of node1 reaches a remote pod over IPv6 from an address of its own podCIDR6
  // (the TUN's /128), which the receiving node's anti-spoofing accepts.
  const n1 = lab.node(1);
  const hp = await ping(lab, n1.ns, p3a.ip6!, { count: 3 });
  const ht = await tcpPeerAddress(lab, podEndpoint6(p3a), n1.ns, 7002);
  say(`host network node1 -> ${p3a.name} over IPv6: ping ${hp.received}/${hp.sent}, TCP from ${ht.clientLocal} seen as ${ht.seenByServer}`);
  assert.ok(hp.sent > 0 && hp.received === hp.sent, 'node1 (host network) pings a pod on node3 over IPv6');
  assert.equal(ht.seenByServer, ht.clientLocal, 'no NAT for host-network IPv6');
  assert.ok(ht.clientLocal.startsWith('fd00:10:244:1:'), `node1's source ${ht.clientLocal} is in its podCIDR6`);

  // An unowned IPv6 destination inside clusterCIDR6: vxnet answers with ICMPv6 "no route" from
  // its IPv6 TUN address, and the pod's ping reports it.
  const before = await dropped(lab, 1, 'no_route');
  const nr = await ping(lab, p1a.ns, 'fd00:10:244:77::1', { count: 1 });
  const line = nr.output.split('\n').find((l) => l.startsWith('From')) ?? '(none)';
  const after = await dropped(lab, 1, 'no_route');
  say(`ping -6 ${p1a.name} -> fd00:10:244:77::1: "${line.trim()}"; node1 no_route ${before} -> ${after}`);
  assert.match(line, /From fd00:10:244:1:: .*Destination unreachable: No route/);
  assert.equal(after - before, 1);

  for (const n of lab.nodes) {
    const bad = [await dropped(lab, n.index, 'bad_ethertype'), await dropped(lab, n.index, 'spoofed_source'), await dropped(lab, n.index, 'not_local'), await dropped(lab, n.index, 'bad_inner_ip')];
    say(`${n.name}: bad_ethertype ${bad[0]}, spoofed_source ${bad[1]}, not_local ${bad[2]}, bad_inner_ip ${bad[3]}`);
    assert.deepEqual(bad, [0, 0, 0, 0], `${n.name} dropped none of the IPv6 traffic`);
  }

  // tshark, an independent decoder: IPv6 echo requests inside VXLAN, inner EtherType 0x86dd.
  const p2a = lab.pod('p2a');
  const n2 = lab.node(2);
  const cap = await startCapture(lab, lab.router, {
    iface: n2.routerIface,
    filter: `udp port ${lab.port}`,
    fields: ['ip.src', 'ip.dst', 'vxlan.vni', 'eth.type', 'eth.src', 'eth.dst', 'ipv6.src', 'ipv6.dst', 'icmpv6.type'],
    vxlanPorts: [lab.port],
    seconds: 15,
  });
  const r = await ping(lab, p1a.ns, p2a.ip6!, { count: 4, intervalS: 0.2 });
  const pkts = await cap.stop(8);
  assert.equal(r.received, 4, 'ping -6 while capturing');
  const requests = pkts.filter((p) => p['icmpv6.type']?.[0] === '128');
  for (const p of requests.slice(0, 1)) say(`tshark: ${JSON.stringify(p)}`);
  assert.ok(requests.length >= 3, `captured ${requests.length} IPv6 echo requests in VXLAN, want >= 3`);
  for (const p of requests) {
    assert.deepEqual(p['ip.src'], [n1.underlayIP], 'outer IPv4 source: node1');
    assert.deepEqual(p['ip.dst'], [n2.underlayIP], 'outer IPv4 destination: node2');
    assert.deepEqual(p['vxlan.vni'], [String(lab.vni)]);
    assert.deepEqual(p['eth.type'], ['0x0800', '0x86dd'], 'outer EtherType IPv4, inner EtherType IPv6');
    assert.equal(p['eth.src']?.[1], n1.vtepMAC, "inner Ethernet source is node1's VTEP MAC");
    assert.equal(p['eth.dst']?.[1], n2.vtepMAC, "inner Ethernet destination is node2's VTEP MAC");
    assert.deepEqual(p['ipv6.src'], [p1a.ip6], 'inner IPv6 source: the pod');
    assert.deepEqual(p['ipv6.dst'], [p2a.ip6], 'inner IPv6 destination: the pod');
  }
}

test('dual-stack vxnet 3-node lab: IPv6 pod mesh, iperf3 over IPv6 both ways, host network, ICMPv6, tshark sees 0x86dd', { skip, timeout: 240_000 }, async () => {
  await withLab({ nodes: 3, ipv6: true }, checkDualStack);
});

async function kernelInterop6(lab: Lab): Promise<void> {
  const kernelPods = lab.podsOn(1);
  const vxnetPods = [...lab.podsOn(2), ...lab.podsOn(3)];
  for (const k of kernelPods) {
    for (const v of vxnetPods) {
      for (const [from, to] of [[k, v], [v, k]] as const) {
        const r = await ping(lab, from.ns, to.ip6!, { count: 2, intervalS: 0.1 });
        say(`ping -6 ${from.name}(node${from.nodeIndex}, ${lab.node(from.nodeIndex).kind}) -> ${to.name}(${to.ip6}): ${r.received}/${r.sent}`);
        assert.ok(r.sent > 0 && r.received === r.sent, `ping -6 ${from.name} -> ${to.name}`);
      }
    }
  }
  const csumErrors = async (): Promise<number> => {
    let n = 0;
    for (const p of kernelPods) {
      const r = await lab.exec(p.ns, ['nstat', '-az', 'TcpInCsumErrors'], { timeoutMs: 5000 });
      for (const m of r.stdout.matchAll(/TcpInCsumErrors\s+(\d+)/g)) n += Number(m[1]);
    }
    return n;
  };
  const before = await csumErrors();
  // vxnet -> kernel carries TSO6 super-packets cut into segments in TypeScript; the kernel's
  // pods verify every TCP checksum over the IPv6 pseudo-header.
  await iperfBothWays6(lab, 'p1a', 'p2a');
  const after = await csumErrors();
  say(`TCP checksum errors counted by the kernel node's pods: ${after - before}`);
  assert.equal(after - before, 0, 'the kernel peer received only correct checksums');
}

test('dual-stack: kernel VXLAN node1 <-> vxnet nodes 2,3 over IPv6, both directions', { skip, timeout: 180_000 }, async () => {
  await withLab({ nodes: 3, ipv6: true, kind: (i) => (i === 1 ? 'kernel' : 'vxnet') }, kernelInterop6);
});
