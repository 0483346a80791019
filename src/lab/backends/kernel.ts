/**
 * Linux's own vxlan device, wired the way flannel's vxlan backend wires `flannel.<VNI>`: no
 * learning, and per peer one permanent neighbour entry (its tunnel address -> its VTEP MAC),
 * one FDB entry (that MAC -> its underlay IP) and one onlink route for its pod CIDR. It is the
 * reference every vxnet number is compared with, and a peer vxnet must interoperate with.
 *
 * Dual stack: the one device carries both families (an IPv6 /128, and per peer a permanent IPv6
 * neighbour entry with the same MAC, so the same FDB entry, and an onlink route). flannel would
 * use a second device, flannel-v6.<VNI>, but that one runs over an IPv6 underlay (its peers
 * publish public-ipv6); over an IPv4 underlay the single device is what the kernel can do.
 *
 * Like flannel with its default --ip-masq, the node masquerades its pods' traffic to the world
 * outside the cluster, with the same nftables table the vxnet agent installs.
 */
import { inNs, runOk, type RunResult } from '../exec.js';
import { VXLAN_OVERHEAD } from '../../wire/vxlan.js';
import { installMasquerade } from '../../netfilter/masquerade.js';
import { CLUSTER_CIDR, CLUSTER_CIDR6 } from '../topology.js';
import type { Backend, BackendHost, BackendNode } from './backend.js';

/** What programming one peer into a kernel VXLAN node takes. */
export interface KernelPeer {
  readonly tunnelAddress: string;
  readonly vtepMAC: string;
  readonly underlayIP: string;
  readonly podCIDR: string;
  readonly tunnelAddress6?: string;
  readonly podCIDR6?: string;
}

/** Programs a kernel VXLAN node's peers as flannel's vxlan backend does (see the module comment). */
export async function programKernelPeers(node: BackendNode, peers: readonly KernelPeer[]): Promise<void> {
  const dev = node.device as string;
  const ip = (...a: string[]): Promise<RunResult> => runOk(['ip', '-n', node.ns, ...a]);
  for (const p of peers) {
    await ip('neigh', 'replace', p.tunnelAddress, 'lladdr', p.vtepMAC, 'dev', dev, 'nud', 'permanent');
    await runOk(['bridge', '-n', node.ns, 'fdb', 'append', p.vtepMAC, 'dev', dev, 'dst', p.underlayIP, 'self', 'permanent']);
    await ip('route', 'replace', p.podCIDR, 'via', p.tunnelAddress, 'dev', dev, 'onlink');
    if (node.tunnelAddress6 && p.tunnelAddress6 && p.podCIDR6) {
      await ip('-6', 'neigh', 'replace', p.tunnelAddress6, 'lladdr', p.vtepMAC, 'dev', dev, 'nud', 'permanent');
      await ip('-6', 'route', 'replace', p.podCIDR6, 'via', p.tunnelAddress6, 'dev', dev, 'onlink');
    }
  }
}

export const kernel: Backend = {
  kind: 'kernel',
  summary: "Linux's vxlan device, wired as flannel's vxlan backend does",
  dualStack: true,
  vtep: true,
  relay: false,
  writesConflist: false,
  masquerades: true,
  device: (vni) => `vxnet.${vni}`,
  podMTU: (underlayMTU) => underlayMTU - VXLAN_OVERHEAD,

  async start(host: BackendHost, node: BackendNode): Promise<void> {
    const dev = node.device as string;
    const ip = (...a: string[]): Promise<RunResult> => runOk(['ip', '-n', node.ns, ...a]);
    const rco = host.options.kernelRemoteChecksum;
    const rcoArgs = rco === undefined ? [] : ['udpcsum', ...(rco !== 'tx' ? ['remcsumrx'] : []), ...(rco !== 'rx' ? ['remcsumtx'] : [])];
    await ip('link', 'add', dev, 'type', 'vxlan', 'id', String(host.vni), 'local', node.underlayIP, 'dev', node.uplink,
      'dstport', String(host.port), 'nolearning', ...rcoArgs);
    await ip('link', 'set', dev, 'address', node.vtepMAC, 'mtu', String(node.mtu));
    await ip('addr', 'add', `${node.tunnelAddress}/32`, 'dev', dev);
    if (node.tunnelAddress6) await ip('-6', 'addr', 'add', `${node.tunnelAddress6}/128`, 'dev', dev, 'nodad');
    await ip('link', 'set', dev, 'up');
    if (host.options.programKernelPeers ?? true) await programKernelPeers(node, host.peersOf(node));
    await installMasquerade({
      podCIDR: node.podCIDR, clusterCIDR: CLUSTER_CIDR, device: dev,
      ...(node.podCIDR6 ? { podCIDR6: node.podCIDR6, clusterCIDR6: CLUSTER_CIDR6 } : {}),
    }, { command: inNs(node.ns, ['nft']) });
  },
};
