/**
 * Shared parts of the lab tests: when to skip (not root, no agent build, missing tools), a
 * `withLab` that always tears the lab down and prints the agents' logs when something failed,
 * and the cluster assertions both the vxnet and the all-kernel lab must pass.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Lab, defaultAgentEntry, type LabOptions } from '../../src/lab/lab.js';
import {
  iperf,
  ping,
  pingAllPods,
  podEndpoint,
  tcpPeerAddress,
  underlayRouted,
  formatBps,
} from '../../src/lab/checks.js';

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A reason to skip lab tests on this machine, or false. */
export function labSkip(tools: readonly string[] = ['ip', 'bridge', 'iperf3', 'ping', 'ethtool']): string | false {
  if (process.platform !== 'linux') return 'lab tests need Linux';
  if (process.getuid?.() !== 0) return 'lab tests need root (network namespaces)';
  // In CI the tools are installed by .ci/run: a missing one must fail the test loudly, not
  // quietly skip it; on a developer's machine a skip with the reason is friendlier.
  if (process.env['CI']) return false;
  for (const t of tools) if (!have(t)) return `lab tests need ${t}`;
  if (!existsSync('/usr/lib/cni/bridge')) return 'lab tests need containernetworking-plugins in /usr/lib/cni';
  return false;
}

/** The same, plus a built agent (dist/src/cli/main.js). */
export function agentSkip(tools?: readonly string[]): string | false {
  const base = labSkip(tools);
  if (base) return base;
  if (!existsSync(defaultAgentEntry())) return `no agent build at ${defaultAgentEntry()} (run npm run build)`;
  return false;
}

/** Build a lab, run f, always remove the lab; on failure print the tail of every agent log. */
export async function withLab<T>(opts: LabOptions, f: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.up({ log: (m) => process.stderr.write(`${m}\n`), ...opts });
  try {
    return await f(lab);
  } catch (err) {
    for (const n of lab.nodes) {
      if (n.kind !== 'vxnet') continue;
      process.stderr.write(`--- ${n.name} agent log (tail) ---\n${lab.agentLog(n.index, 30)}\n`);
    }
    throw err;
  } finally {
    await lab.down();
  }
}

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

/** The underlay is routed: nodes on different subnets, no neighbour entry for another node. */
export async function assertRouted(lab: Lab): Promise<void> {
  const n1 = lab.node(1);
  const n2 = lab.node(2);
  assert.notEqual(n1.underlayIP.split('.').slice(0, 3).join('.'), n2.underlayIP.split('.').slice(0, 3).join('.'),
    'nodes must be on different subnets');
  const r = await underlayRouted(lab);
  say(r.observed);
  assert.ok(r.ok, `underlay not routed as expected: ${r.observed}`);
}

export async function assertAllPodsPing(lab: Lab): Promise<void> {
  const results = await pingAllPods(lab, 3);
  const failed = results.filter((r) => !r.ok);
  say(`${results.length - failed.length}/${results.length} cross-node pod pairs answered ping`);
  assert.deepEqual(failed, [], 'every pod reaches every pod on other nodes');
}

/** iperf3 TCP a->b and b->a; asserts bits/s > 0 and that the server saw the client pod's address. */
export async function assertIperfBothWays(lab: Lab, aName: string, bName: string, seconds = 2): Promise<number[]> {
  const a = lab.pod(aName);
  const b = lab.pod(bName);
  const out: number[] = [];
  for (const [server, client] of [
    [b, a],
    [a, b],
  ] as const) {
    const r = await iperf(lab, podEndpoint(server), podEndpoint(client), { seconds });
    say(`iperf3 ${client.name} -> ${server.name}: ${formatBps(r.bitsPerSecond)}, server saw ${r.remoteHostSeenByServer}`);
    assert.ok(r.bitsPerSecond > 0, `iperf3 ${client.name} -> ${server.name}: got ${r.bitsPerSecond} bit/s, want > 0`);
    assert.equal(r.remoteHostSeenByServer, client.ip, 'iperf3 server saw the client pod address (no NAT)');
    out.push(r.bitsPerSecond);
  }
  return out;
}

/** Everything lab.test.ts asserts about a 3-node lab (also run on the all-kernel lab). */
export async function assertClusterWorks(lab: Lab): Promise<void> {
  await assertRouted(lab);
  await assertAllPodsPing(lab);
  const a = lab.podsOn(1)[0]!;
  const far = lab.podsOn(3)[0]!;
  await assertIperfBothWays(lab, a.name, far.name);

  const tcp = await tcpPeerAddress(lab, podEndpoint(far), a.ns);
  say(`TCP server in ${far.name} saw client ${tcp.seenByServer} (client pod ${a.name} is ${a.ip})`);
  assert.equal(tcp.seenByServer, a.ip, 'no NAT: the server sees the client pod address');

  const n1 = lab.node(1);
  const hp = await ping(lab, n1.ns, far.ip);
  const ht = await tcpPeerAddress(lab, podEndpoint(far), n1.ns, 7001);
  say(`host network node1 -> ${far.name}: ping ${hp.received}/${hp.sent}, TCP from ${ht.clientLocal} seen as ${ht.seenByServer}`);
  assert.equal(hp.received, hp.sent, 'node1 (host network) pings a pod on node3');
  assert.ok(hp.sent > 0);
  assert.equal(ht.seenByServer, ht.clientLocal, 'node1 TCP to a pod on node3 arrives from its own address');

  for (const p of lab.podsOn(1)) {
    const r = await ping(lab, n1.ns, p.ip);
    say(`node1 -> own pod ${p.name}: ${r.received}/${r.sent}`);
    assert.ok(r.sent > 0 && r.received === r.sent, `node1 reaches its own pod ${p.name}`);
  }
}
