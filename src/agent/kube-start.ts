/**
 * Kubernetes mode for the agent: fill in what the config file leaves to the cluster, then hand
 * the agent a peer source and a hook for "forwarding now".
 *
 * Order of facts, each with its source:
 *   node name     --node, the file's `node`, or NODE_NAME (downward API)
 *   pod CIDR      the file's `podCIDR`, else the Node's spec.podCIDRs (waits up to 60 s for IPAM)
 *   pod CIDR6     with clusterCIDR6 only: the file's `podCIDR6`, else the Node's IPv6 spec.podCIDRs
 *                 entry (IPAM assigns both families at once)
 *   underlay IP   --underlay-ip / kubernetes.underlayIP, else --iface / kubernetes.iface, else the
 *                 config's underlayIP, else the Node's InternalIP: the address our socket binds
 *   public IP     the Node's public-ip-overwrite annotation (1:1 NAT in front of the node), else
 *                 the underlay IP: the address we publish, where peers send
 *   VTEP MAC      the file's `vtepMAC`, else the one this node published before (so peers' FDB
 *                 entries stay valid across restarts), else derived from the node name
 * Then ONE patch publishes our VTEP, and once the data path forwards, the Node condition
 * NetworkUnavailable=False is set (both through nodes/status: peers/kube-publish.ts).
 *
 * This is agent start-up, so it lives with the agent: it needs the config checks, the kernel
 * (an interface's address) and the MAC derivation, while peers/ only knows Nodes and peers.
 */
import type { AgentConfig } from './config-types.js';
import { ConfigError, cidr, cidr6, cidr6Inside } from './config.js';
import { deriveVtepMAC } from './mac.js';
import { interfaceIPv4 } from '../node/interfaces.js';
import type { LogFn } from './log.js';
import { loadKubeConfig, loadSelf } from '../peers/kube-client.js';
import { NodePublisher } from '../peers/kube-publish.js';
import { KubePeerSource } from '../peers/kube-watch.js';
import type { PeerSource } from '../peers/source.js';

/** How long a starting agent waits for IPAM to give its Node a pod CIDR; the DaemonSet's startupProbe allows for it. */
export const POD_CIDR_WAIT_MS = 60_000;

export interface PreparedKubernetes {
  readonly config: AgentConfig;
  readonly source: PeerSource;
  readonly publisher: NodePublisher;
  readonly onForwarding: () => Promise<void>;
}

export async function prepareKubernetes(cfg: AgentConfig, log: LogFn): Promise<PreparedKubernetes> {
  const prefix = cfg.kubernetes.annotationPrefix;
  const kc = loadKubeConfig(cfg.kubernetes.kubeconfig);
  const self = await loadSelf(kc, cfg.node, prefix, { waitForPodCIDRMs: cfg.podCIDR ? 0 : POD_CIDR_WAIT_MS });

  let podCIDR = cfg.podCIDR;
  if (!podCIDR) {
    const first = self.podCIDRs[0];
    if (!first) throw new ConfigError('podCIDR', `node ${cfg.node} has no IPv4 spec.podCIDR(s); start kube-controller-manager with --allocate-node-cidrs and --cluster-cidr, or set podCIDR in the config`);
    podCIDR = cidr(first, `Node ${cfg.node} spec.podCIDR`);
  }

  let podCIDR6 = cfg.podCIDR6;
  if (cfg.clusterCIDR6 && !podCIDR6) {
    const first6 = self.podCIDRs6[0];
    if (!first6) {
      throw new ConfigError('podCIDR6', `node ${cfg.node} has no IPv6 spec.podCIDRs entry, but clusterCIDR6 is set; run a dual-stack cluster (kube-controller-manager --cluster-cidr=<IPv4 CIDR>,<IPv6 CIDR>), set podCIDR6 in the config, or remove clusterCIDR6`);
    }
    podCIDR6 = cidr6(first6, `Node ${cfg.node} spec.podCIDRs`);
    if (!cidr6Inside(podCIDR6, cfg.clusterCIDR6)) {
      throw new ConfigError('podCIDR6', `node ${cfg.node}'s IPv6 pod CIDR ${podCIDR6} is not inside clusterCIDR6 ${cfg.clusterCIDR6}; make clusterCIDR6 the cluster's IPv6 --cluster-cidr`);
    }
  }

  let underlayIP = cfg.kubernetes.underlayIP ?? '';
  let underlayFrom = 'kubernetes.underlayIP';
  if (!underlayIP && cfg.kubernetes.iface) {
    underlayIP = interfaceIPv4(cfg.kubernetes.iface);
    underlayFrom = `interface ${cfg.kubernetes.iface}`;
  }
  if (!underlayIP && cfg.underlayIP) {
    underlayIP = cfg.underlayIP;
    underlayFrom = 'config underlayIP';
  }
  if (!underlayIP && self.internalIP) {
    underlayIP = self.internalIP;
    underlayFrom = 'Node InternalIP';
  }
  if (!underlayIP) throw new ConfigError('underlayIP', `node ${cfg.node} has no InternalIP; set --underlay-ip, --iface or kubernetes.underlayIP`);

  const publicIP = self.publicIPOverwrite ?? underlayIP;
  const vtepMAC = cfg.vtepMAC || self.vtepMAC || deriveVtepMAC(cfg.node);
  const config: AgentConfig = { ...cfg, podCIDR, underlayIP, vtepMAC, ...(podCIDR6 ? { podCIDR6 } : {}) };
  log('info', 'kubernetes facts', { node: cfg.node, podCIDR, ...(podCIDR6 ? { podCIDR6 } : {}), underlayIP, underlayFrom, publicIP, vtepMAC, annotationPrefix: prefix });

  const publisher = new NodePublisher({
    nodeName: cfg.node, kubeConfig: kc, annotationPrefix: prefix,
    self: { underlayIP: publicIP, vtepMAC, vni: cfg.vni, port: cfg.port, remoteChecksum: cfg.offloads.remoteChecksum },
    log,
  });
  await publisher.publish();
  const source = new KubePeerSource({
    nodeName: cfg.node, kubeConfig: kc, annotationPrefix: prefix,
    onOwnNode: (node) => publisher.checkOwnNode(node),
    log,
  });
  return {
    config, source, publisher,
    onForwarding: async () => {
      try {
        await publisher.setNetworkAvailable();
        log('info', 'node condition NetworkUnavailable=False set', { node: cfg.node });
      } catch (err) {
        log('error', 'could not set NetworkUnavailable=False; pods may stay unscheduled', { error: (err as Error).message });
      }
    },
  };
}
