/**
 * Interoperability with Linux's own VXLAN: node 1 runs the kernel vxlan device (configured as
 * flannel's vxlan backend does), nodes 2 and 3 run vxnet. Pods must reach each other in both
 * directions, with flannel's defaults (VNI 1, port 8472) and with the IANA port and another VNI
 * (VNI 42, port 4789), so neither value is hard-wired on either side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ping } from '../../src/lab/checks.js';
import type { Lab } from '../../src/lab/lab.js';
import { agentSkip, assertIperfBothWays, withLab } from './helpers.js';

const skip = agentSkip();

async function kernelVxnetInterop(lab: Lab): Promise<void> {
  const kernelPods = lab.podsOn(1);
  const vxnetPods = [...lab.podsOn(2), ...lab.podsOn(3)];
  for (const k of kernelPods) {
    for (const v of vxnetPods) {
      for (const [from, to] of [
        [k, v],
        [v, k],
      ] as const) {
        const r = await ping(lab, from.ns, to.ip, { count: 2, intervalS: 0.1 });
        process.stderr.write(`observed: ping ${from.name}(node${from.nodeIndex}) -> ${to.name}(node${to.nodeIndex}): ${r.received}/${r.sent}\n`);
        assert.ok(r.sent > 0 && r.received === r.sent, `ping ${from.name} -> ${to.name}`);
      }
    }
  }
  const csumErrors = async (): Promise<number> => {
    let n = 0;
    for (const p of kernelPods) {
      const r = await lab.exec(p.ns, ['nstat', '-az', 'TcpInCsumErrors', 'UdpInCsumErrors'], { timeoutMs: 5000 });
      for (const m of r.stdout.matchAll(/(?:Tcp|Udp)InCsumErrors\s+(\d+)/g)) n += Number(m[1]);
    }
    return n;
  };
  const before = await csumErrors();
  await assertIperfBothWays(lab, 'p1a', 'p2a');
  await assertIperfBothWays(lab, 'p1b', 'p3a');
  // Everything vxnet sent the kernel node was segmented and checksummed in TypeScript (TSO
  // super-packets cut into segments); the kernel's pods verify every checksum.
  const after = await csumErrors();
  process.stderr.write(`observed: checksum errors counted by the kernel node's pods: ${after - before}\n`);
  assert.equal(after - before, 0, 'the kernel peer received only correct checksums');
}

for (const { vni, port } of [
  { vni: 1, port: 8472 },
  { vni: 42, port: 4789 },
]) {
  test(`kernel vxlan node1 <-> vxnet nodes 2,3 (VNI ${vni}, port ${port})`, { skip, timeout: 180_000 }, async () => {
    await withLab({ nodes: 3, vni, port, kind: (i) => (i === 1 ? 'kernel' : 'vxnet') }, kernelVxnetInterop);
  });
}
