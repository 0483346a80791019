/**
 * The data plane under test: the vxnet agent, started in the node's namespace with a config the
 * lab writes. Static peers come from the lab's own address plan (VTEP MACs given explicitly, so
 * the lab does not depend on how the agent would derive them, and kernel nodes can be peers);
 * with `peerSource: 'kubernetes'` the agent learns everything from the API instead. The node is
 * ready when the agent has written its conflist and answers /healthz, which is the order the
 * agent itself promises a kubelet.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VXLAN_OVERHEAD } from '../../wire/vxlan.js';
import { readTail, waitFor } from '../exec.js';
import { CLUSTER_CIDR, CLUSTER_CIDR6, METRICS_ADDR, UNDERLAY_MTU } from '../topology.js';
import type { Backend, BackendHost, BackendNode } from './backend.js';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags.js';

const DEVICE = 'vxnet0';

/** The agent entry point in this build: dist/src/cli/main.js next to dist/src/lab/. */
export function defaultAgentEntry(): string {
  return fileURLToPath(new URL('../../cli/main.js', import.meta.url));
}

/** How the lab starts an agent: this node binary with the agent's own flags (as the image does). */
export function defaultAgentCommand(): string[] {
  return [process.execPath, ...AGENT_NODE_FLAGS, defaultAgentEntry(), 'agent'];
}

/** Whether the agent of `node` has written a conflist into the node's net.d yet. */
export function hasConflist(node: BackendNode): boolean {
  const d = join(node.dir, 'net.d');
  return existsSync(d) && readdirSync(d).some((f) => f.endsWith('.conflist'));
}

/** The agent's JSON config for `node` (see src/agent/config-types.ts). */
export function agentConfig(host: BackendHost, node: BackendNode): Record<string, unknown> {
  const o = host.options;
  const common = {
    node: node.name,
    device: DEVICE,
    vni: host.vni,
    port: host.port,
    clusterCIDR: CLUSTER_CIDR,
    ...(o.ipv6 ? { clusterCIDR6: CLUSTER_CIDR6 } : {}),
    // 'lab': what an operator writes by hand; underlayMTU only where it is not the default.
    ...((o.agentMTU ?? 'lab') === 'lab' ? { mtu: node.mtu, ...(node.underlayMTU !== UNDERLAY_MTU ? { underlayMTU: node.underlayMTU } : {}) } : {}),
    metricsAddr: METRICS_ADDR,
    cniConfDir: join(node.dir, 'net.d'),
    // The node lock and hand-over socket: one run directory per node, as each real node has its
    // own /run/vxnet (agents of different nodes share this machine's /run).
    runDir: join(node.dir, 'run'),
  };
  let cfg: Record<string, unknown>;
  if (o.peerSource === 'kubernetes') {
    // Everything else comes from the API, as in a cluster: the pod CIDR from spec.podCIDR, the
    // underlay IP from the InternalIP, the VTEP MAC derived (or read back from our annotation).
    if (!o.apiServer) throw new Error('peerSource kubernetes needs apiServer');
    cfg = {
      ...common,
      peerSource: 'kubernetes',
      kubernetes: {
        kubeconfig: o.apiServer.kubeconfig,
        ...(o.apiServer.annotationPrefix ? { annotationPrefix: o.apiServer.annotationPrefix } : {}),
      },
    };
  } else {
    cfg = {
      ...common,
      peerSource: 'static',
      underlayIP: node.underlayIP,
      podCIDR: node.podCIDR,
      ...(node.podCIDR6 ? { podCIDR6: node.podCIDR6 } : {}),
      vtepMAC: node.vtepMAC,
      peers: host.peersOf(node).map((p) => ({
        node: p.name,
        underlayIP: p.underlayIP,
        podCIDRs: p.podCIDR6 ? [p.podCIDR, p.podCIDR6] : [p.podCIDR],
        vtepMAC: p.vtepMAC,
        ...(p.remoteChecksum ? { remoteChecksum: true } : {}),
      })),
    };
  }
  return { ...cfg, ...(o.agentConfigExtra ?? {}) };
}

export const vxnet: Backend = {
  kind: 'vxnet',
  summary: 'the vxnet agent (TUN, userspace VXLAN)',
  dualStack: true,
  vtep: true,
  relay: true,
  writesConflist: true,
  masquerades: true,
  device: () => DEVICE,
  podMTU: (underlayMTU) => underlayMTU - VXLAN_OVERHEAD,

  async start(host: BackendHost, node: BackendNode): Promise<void> {
    const cfgPath = join(node.dir, 'agent.json');
    mkdirSync(join(node.dir, 'net.d'), { recursive: true });
    writeFileSync(cfgPath, JSON.stringify(agentConfig(host, node), null, 2) + '\n');
    node.configPath = cfgPath;
    const argv = [...(host.options.agentCommand ?? defaultAgentCommand()), '--config', cfgPath];
    const agent = host.startProcess(node, argv, 'agent.log');
    // Generous: on the shared 2-core machine at a load of 20 an agent took just over 20 s to
    // forward (worker threads and nft runs starved); an agent that fails exits, and is seen at once.
    const timeoutMs = host.options.agentReadyTimeoutMs ?? 60_000;
    try {
      await waitFor(
        `${node.name}'s agent to forward`,
        async () => {
          if (!agent.running) throw new Error(`agent exited with ${agent.exitCode}`);
          if (!hasConflist(node)) return undefined;
          const h = await host.agentHttp(node.index, '/healthz', 1000);
          return h.status === 200 ? true : undefined;
        },
        timeoutMs,
        150,
      );
    } catch (err) {
      throw new Error(
        `${node.name}: agent not ready (${(err as Error).message}); command: ${argv.join(' ')}\n--- ${join(node.dir, 'agent.log')} (tail) ---\n${readTail(join(node.dir, 'agent.log'), 25)}`,
      );
    }
    host.log(`${node.name}: agent pid ${agent.pid} forwarding`);
  },
};
