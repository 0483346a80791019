/**
 * A namespace lab whose agents take their peers from the Kubernetes API: the API stand-in
 * (test/support/kube-apiserver.ts) with one Node per lab node as kubelet and IPAM would register
 * it, relayed into every node namespace, so the real client inside each agent talks to it. Shared
 * by the Kubernetes lab test and the peer-churn test.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiStandIn, makeNode, kubeconfigYaml } from '../support/kube-apiserver.js';
import { ApiRelay, NODE_API_PORT } from '../../src/lab/api-relay.js';
import { podCIDR, podCIDR6, underlayIP } from '../../src/lab/topology.js';
import type { Lab, LabOptions } from '../../src/lab/lab.js';
import { withLab } from './helpers.js';

/** A stand-in with Nodes as kubelet + IPAM would register them, and the relay into the lab. */
export async function withApiLab(nodes: number, prefixAnnotations: (i: number) => Record<string, string> | undefined,
  opts: Partial<LabOptions>, f: (lab: Lab, api: ApiStandIn) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-kube-lab-'));
  const api = new ApiStandIn({ bookmarkIntervalMs: 2000 });
  const { port } = await api.start();
  for (let i = 1; i <= nodes; i++) {
    const annotations = prefixAnnotations(i);
    // A dual-stack cluster's IPAM gives every Node one pod CIDR of each family.
    const cidrs = opts.ipv6 ? { podCIDRs: [podCIDR(i), podCIDR6(i)] } : { podCIDR: podCIDR(i) };
    api.addNode(makeNode({ name: `node${i}`, ...cidrs, internalIP: underlayIP(i), ...(annotations ? { annotations } : {}) }));
  }
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(`http://127.0.0.1:${NODE_API_PORT}`));
  const relay = await ApiRelay.start(join(dir, 'api.sock'), port);
  try {
    await withLab({
      ...opts,
      nodes,
      peerSource: 'kubernetes',
      apiServer: { kubeconfig, ...(opts.apiServer?.annotationPrefix ? { annotationPrefix: opts.apiServer.annotationPrefix } : {}) },
      beforeDataPlanes: (lab) => relay.intoNamespaces(lab, lab.nodes.map((n) => n.ns), 600_000),
    }, (lab) => f(lab, api));
  } finally {
    await relay.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
