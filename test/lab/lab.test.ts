/**
 * vxnet end to end: three nodes, each on its own routed subnet, every pod attached by the real
 * CNI plugins from the conflist the agent wrote. Asserts the underlay is routed (no L2
 * adjacency), the full pod mesh answers ping, iperf3 moves data both ways, servers see client
 * pod addresses unchanged (no NAT), and host-network processes reach remote and local pods.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentSkip, assertClusterWorks, withLab } from './helpers.js';

const skip = agentSkip();

test('vxnet 3-node lab: routed underlay, pod mesh, iperf3, no NAT, host network', { skip, timeout: 240_000 }, async () => {
  await withLab({ nodes: 3 }, async (lab) => {
    for (const n of lab.nodes) {
      const f = join(n.dir, 'net.d', '10-vxnet.conflist');
      assert.ok(existsSync(f), `${n.name}: the agent wrote ${f}`);
      const conf = JSON.parse(readFileSync(f, 'utf8')) as { plugins: { type: string; mtu?: number }[] };
      assert.equal(conf.plugins[0]?.type, 'bridge');
      assert.equal(conf.plugins[0]?.mtu, 1450, `${n.name}: pod MTU leaves room for 50 bytes of VXLAN`);
    }
    await assertClusterWorks(lab);
    for (const n of lab.nodes) assert.ok(lab.agentRunning(n.index), `${n.name}: agent still running after the checks`);
  });
});
