/**
 * The lab validated on its own, with no vxnet code in the path: a 3-node lab whose nodes all
 * run Linux's vxlan device (wired as flannel does) must pass every check lab.test.ts makes of
 * vxnet, and a 'direct' lab (plain routes, no overlay) must too. If these fail, the lab is
 * wrong, not the agent.
 */
import { test } from 'node:test';
import { assertClusterWorks, assertAllPodsPing, assertIperfBothWays, labSkip, withLab } from './helpers.js';

const skip = labSkip();

test('all-kernel 3-node lab: routed underlay, pod mesh, iperf3, no NAT, host network', { skip, timeout: 180_000 }, async () => {
  await withLab({ nodes: 3, kind: () => 'kernel' }, assertClusterWorks);
});

test('direct 2-node lab (no overlay): pods ping and iperf3 both ways', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2, kind: () => 'direct' }, async (lab) => {
    await assertAllPodsPing(lab);
    await assertIperfBothWays(lab, 'p1a', 'p2a');
  });
});
