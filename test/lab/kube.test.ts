/**
 * The namespace lab with every agent's peers coming from the Kubernetes API (a stand-in that
 * speaks real HTTP, driven by the real @kubernetes/client-node inside each agent), and flannel
 * mode: vxnet nodes publish flannel's annotations, a kernel VXLAN node is programmed from them
 * the way flannel's vxlan backend does it, and vxnet learns that kernel node from the flannel
 * annotations it carries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeNode } from '../support/kube-apiserver.js';
import { withApiLab } from './kube-lab.js';
import { podCIDR, podCIDR6, underlayIP, tunnelAddress, vtepMAC } from '../../src/lab/topology.js';
import { ping, pingAllPods } from '../../src/lab/checks.js';
import { defaultAgentEntry, type Lab } from '../../src/lab/lab.js';
import { agentSkip, assertAllPodsPing, assertIperfBothWays } from './helpers.js';

const skip = agentSkip(['ip', 'bridge', 'iperf3', 'ping', 'ethtool', 'socat', 'ss']);

interface AgentStatusLike { info: { vtepMAC: string; peerSource: string }; peers: Array<{ node: string; vtepMAC: string; underlayIP: string }> }

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('lab with the API: every agent learns peers from Node objects, publishes its VTEP, pods reach each other, and survives an API outage', { skip, timeout: 300_000 }, async () => {
  await withApiLab(3, () => undefined, {}, async (lab, api) => {
    for (const n of lab.nodes) {
      const node = api.getNode(n.name)!;
      const a = node.metadata.annotations ?? {};
      const st = (await lab.status(n.index)) as AgentStatusLike;
      say(`${n.name} published backend-type=${a['vxnet.io/backend-type']} backend-data=${a['vxnet.io/backend-data']} public-ip=${a['vxnet.io/public-ip']}`);
      assert.equal(a['vxnet.io/backend-type'], 'vxlan');
      assert.equal(a['vxnet.io/public-ip'], n.underlayIP, 'the underlay IP came from the InternalIP');
      assert.equal((JSON.parse(a['vxnet.io/backend-data']!) as { VtepMAC: string }).VtepMAC, st.info.vtepMAC);
      const cond = (node.status?.conditions ?? []).find((c) => c.type === 'NetworkUnavailable');
      say(`${n.name} condition NetworkUnavailable=${cond?.status} (${cond?.reason})`);
      assert.equal(cond?.status, 'False');
      assert.match(st.info.peerSource, /kube/i);
      assert.deepEqual(st.peers.map((p) => p.node).sort(), lab.nodes.filter((m) => m !== n).map((m) => m.name));
    }
    await assertAllPodsPing(lab);
    await assertIperfBothWays(lab, 'p1a', 'p3a');

    // A Node deleted from the API stops being a peer; added back, it is one again.
    api.deleteNode('node3');
    const t0 = Date.now();
    await waitFor('node1 to drop node3', async () => {
      const st = (await lab.status(1)) as AgentStatusLike;
      return st.peers.some((p) => p.node === 'node3') ? undefined : true;
    }, 5000);
    say(`node1 dropped node3 ${Date.now() - t0} ms after the delete`);
    const gone = await ping(lab, lab.pod('p1a').ns, lab.pod('p3a').ip, { count: 2, intervalS: 0.1, waitS: 1 });
    assert.equal(gone.received, 0, 'no path to a deleted node');
    api.addNode(makeNode({ name: 'node3', podCIDR: podCIDR(3), internalIP: underlayIP(3),
      annotations: { 'vxnet.io/backend-type': 'vxlan', 'vxnet.io/public-ip': underlayIP(3),
        'vxnet.io/backend-data': JSON.stringify({ VNI: 1, VtepMAC: ((await lab.status(3)) as AgentStatusLike).info.vtepMAC }) } }));
    const t1 = Date.now();
    await waitFor('node1 to learn node3 again', async () => {
      const st = (await lab.status(1)) as AgentStatusLike;
      return st.peers.some((p) => p.node === 'node3') ? true : undefined;
    }, 5000);
    say(`node1 learned node3 again ${Date.now() - t1} ms after the add`);
    const back = await ping(lab, lab.pod('p1a').ns, lab.pod('p3a').ip, { count: 3, intervalS: 0.1 });
    assert.equal(back.received, back.sent);

    // API outage: forwarding continues on the last known table, readiness goes not-ready with
    // the staleness reported, and both recover when the API is back.
    await api.setDown(true);
    const tDown = Date.now();
    const during = ping(lab, lab.pod('p2a').ns, lab.pod('p3b').ip, { count: 60, intervalS: 0.25, waitS: 1 });
    const notReady = await waitFor('/readyz to report not ready', async () => {
      const r = await lab.agentHttp(2, '/readyz');
      return r.status === 503 ? r.body.trim() : undefined;
    }, 30_000);
    say(`${Date.now() - tDown} ms into the outage node2 /readyz: 503 ${notReady}`);
    const stale = (await lab.metrics(2)).find((m) => m.name === 'vxnet_peer_source_stale_seconds')?.value ?? 0;
    assert.ok(stale > 0, `vxnet_peer_source_stale_seconds ${stale}`);
    const flowed = await during;
    say(`ping p2a -> p3b during the API outage: ${flowed.received}/${flowed.sent}`);
    assert.equal(flowed.received, flowed.sent, 'forwarding continued while the API was down');
    await api.setDown(false);
    const tUp = Date.now();
    await waitFor('/readyz to recover', async () => ((await lab.agentHttp(2, '/readyz')).status === 200 ? true : undefined), 45_000);
    say(`node2 ready again ${Date.now() - tUp} ms after the API came back`);
  });
});

const FLANNEL = 'flannel.alpha.coreos.com';

test('flannel mode: kernel VXLAN node programmed from flannel annotations published by vxnet, and learned by vxnet', { skip, timeout: 240_000 }, async () => {
  // node3 is a flannel node: kernel vxlan, and the annotations flannel's vxlan backend writes.
  const flannelNode = (i: number): Record<string, string> | undefined => (i !== 3 ? undefined : {
    [`${FLANNEL}/backend-type`]: 'vxlan',
    [`${FLANNEL}/backend-data`]: JSON.stringify({ VNI: 1, VtepMAC: vtepMAC(3) }),
    [`${FLANNEL}/kube-subnet-manager`]: 'true',
    [`${FLANNEL}/public-ip`]: underlayIP(3),
  });
  await withApiLab(3, flannelNode, {
    kind: (i) => (i === 3 ? 'kernel' : 'vxnet'),
    programKernelPeers: false,
    apiServer: { kubeconfig: '', annotationPrefix: FLANNEL },
  }, async (lab, api) => {
    // Program the kernel node exactly from what the vxnet nodes published, as flannel would.
    const peers = [1, 2].map((i) => {
      const node = api.getNode(`node${i}`)!;
      const a = node.metadata.annotations ?? {};
      const data = JSON.parse(a[`${FLANNEL}/backend-data`] ?? 'null') as Record<string, unknown>;
      say(`node${i} published ${FLANNEL}/backend-data=${a[`${FLANNEL}/backend-data`]} public-ip=${a[`${FLANNEL}/public-ip`]}`);
      assert.deepEqual(Object.keys(data).sort(), ['VNI', 'VtepMAC'], "flannel's backend-data format exactly");
      assert.equal(data.VNI, 1);
      assert.equal(a[`${FLANNEL}/backend-type`], 'vxlan');
      assert.equal(a[`${FLANNEL}/kube-subnet-manager`], 'true');
      return { tunnelAddress: tunnelAddress(i), vtepMAC: String(data.VtepMAC), underlayIP: a[`${FLANNEL}/public-ip`]!, podCIDR: node.spec!.podCIDR! };
    });
    await lab.programKernelPeers(3, peers);

    for (const i of [1, 2]) {
      const st = (await lab.status(i)) as AgentStatusLike;
      const k = st.peers.find((p) => p.node === 'node3');
      say(`node${i} learned node3 from flannel annotations: ${JSON.stringify(k)}`);
      assert.equal(k?.vtepMAC, vtepMAC(3));
      assert.equal(k?.underlayIP, underlayIP(3));
    }
    for (const [a, b] of [['p1a', 'p3a'], ['p3a', 'p1a'], ['p2b', 'p3b'], ['p3b', 'p2b']] as const) {
      const r = await ping(lab, lab.pod(a).ns, lab.pod(b).ip, { count: 3, intervalS: 0.1 });
      say(`ping ${a} -> ${b}: ${r.received}/${r.sent}`);
      assert.ok(r.sent > 0 && r.received === r.sent, `ping ${a} -> ${b}`);
    }
  });
});

test('dual stack with the API: agents take podCIDR6 from their Node and peers\' IPv6 CIDRs from theirs; IPv6 pod mesh', { skip, timeout: 240_000 }, async () => {
  await withApiLab(3, () => undefined, { ipv6: true }, async (lab) => {
    for (const n of lab.nodes) {
      const st = (await lab.status(n.index)) as { info: { podCIDR6?: string }; peers: Array<{ node: string; podCIDRs: string[] }> };
      say(`${n.name}: podCIDR6 ${st.info.podCIDR6} (from its Node); peers ${st.peers.map((p) => `${p.node} ${p.podCIDRs.join(',')}`).join('; ')}`);
      assert.equal(st.info.podCIDR6, podCIDR6(n.index));
      for (const p of st.peers) assert.deepEqual(p.podCIDRs, [podCIDR(Number(p.node.slice(4))), podCIDR6(Number(p.node.slice(4)))]);
    }
    const results = await pingAllPods(lab, 2, 6);
    const failed = results.filter((r) => !r.ok);
    say(`${results.length - failed.length}/${results.length} cross-node pod pairs answered ping -6`);
    assert.deepEqual(failed, []);
  });
});

test('uninstall: vxnet cleanup --kubernetes removes the node\'s device, table, conflist and run directory, and our annotations and condition from its Node', { skip, timeout: 180_000 }, async () => {
  await withApiLab(2, () => undefined, { podsPerNode: 1 }, async (lab, api) => {
    const n1 = lab.node(1);
    const ours = (): string[] => Object.keys(api.getNode('node1')!.metadata.annotations ?? {}).filter((k) => k.startsWith('vxnet.io/')).sort();
    const condition = (): unknown => api.getNode('node1')!.status?.conditions?.find((c) => c['type'] === 'NetworkUnavailable');
    await waitFor('node1 to publish and set its condition', async () => (ours().length > 0 && condition() !== undefined ? true : undefined), 10_000);
    say(`before: node1 annotations ${ours().join(', ')}; condition ${JSON.stringify(condition())}`);

    process.kill(lab.agentPid(1)!, 'SIGTERM');
    await waitFor('node1\'s agent to stop', async () => (lab.agentRunning(1) ? undefined : true), 10_000);
    const cleanup = (): ReturnType<Lab['exec']> => lab.exec(n1.ns, [process.execPath, defaultAgentEntry(), 'cleanup', '--config', n1.configPath!, '--kubernetes'], { timeoutMs: 30_000 });
    const r = await cleanup();
    const removed = r.stderr.split('\n').filter((l) => l.includes('"msg":"removed"')).map((l) => (JSON.parse(l) as { what: string }).what);
    say(`cleanup --kubernetes: exit ${r.code}; removed ${JSON.stringify(removed)}`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ours(), [], 'no vxnet.io/ annotation left on node1');
    assert.equal(condition(), undefined, 'our NetworkUnavailable condition is gone');
    assert.ok(removed.some((w) => w.startsWith('Node node1 annotations vxnet.io/')), 'the annotations are reported');
    assert.ok(removed.includes('Node node1 condition NetworkUnavailable set by vxnet'));
    assert.ok(removed.includes('device vxnet0 (with its addresses and routes)'));
    const link = await lab.exec(n1.ns, ['ip', 'link', 'show', 'vxnet0']);
    assert.notEqual(link.code, 0, 'vxnet0 is gone');
    const n2 = api.getNode('node2')!.metadata.annotations ?? {};
    assert.ok(Object.keys(n2).some((k) => k.startsWith('vxnet.io/')), 'the other node keeps its annotations');

    const again = await cleanup();
    const summary = again.stderr.split('\n').find((l) => l.includes('cleanup:')) ?? again.stderr;
    say(`second cleanup --kubernetes: exit ${again.code}; ${summary}`);
    assert.equal(again.code, 0);
    assert.match(summary, /nothing of vxnet was left on this node/);
  });
});
