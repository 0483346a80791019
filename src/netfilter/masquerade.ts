/**
 * Outbound NAT for this node's pods: the `inet vxnet` nftables table, which vxnet owns alone.
 *
 * What is rewritten, and why (flannel's --ip-masq, Calico's natOutgoing and Cilium's default
 * masquerade draw the same line):
 * - a packet from this node's pod CIDR to anything outside the cluster CIDR (and not multicast)
 *   leaves with the address of the interface it leaves by: clouds drop packets whose source is
 *   a pod address, and the world has no route back to one. Replies come back to the node over
 *   the underlay and conntrack hands them to the pod.
 * - a packet that leaves through the overlay device with a source outside the cluster CIDR
 *   takes the device's address (the node's pod-CIDR network address): every peer's
 *   anti-spoofing check drops an inner source that is not one of the sending node's pods, so
 *   without this such a packet could never arrive. kube-proxy marks the usual cases (NodePort
 *   and host-to-ClusterIP traffic) for masquerading anyway; this rule covers the rest.
 * Pod-to-pod traffic and pod traffic to anything in the cluster CIDR keep their addresses.
 *
 * The table is written whole in one `nft -f` transaction that creates it, deletes it and
 * defines it again, so an install and a replacement on restart are the same atomic step and
 * no other table (kube-proxy's, Docker's, the distribution's firewall) is ever read or touched.
 */
import { nft, type NftOptions } from './nft.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'vxnet';

export interface MasqueradeSpec {
  /** This node's pods. */
  readonly podCIDR: string;
  /** Every pod of the cluster. */
  readonly clusterCIDR: string;
  /** The overlay device (vxnet0). */
  readonly device: string;
  /** Dual stack: this node's IPv6 pods and the cluster's. */
  readonly podCIDR6?: string;
  readonly clusterCIDR6?: string;
}

const MULTICAST4 = '224.0.0.0/4';
const MULTICAST6 = 'ff00::/8';

/** nft quotes interface names; ours are [A-Za-z0-9_.-] (config.ts), so no escaping is needed. */
function quoted(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new Error(`not an interface name: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

function familyRules(ip: 'ip' | 'ip6', pods: string, cluster: string, multicast: string, device: string): string[] {
  return [
    `${ip} saddr ${pods} ${ip} daddr != { ${cluster}, ${multicast} } masquerade fully-random comment "pods to outside the cluster leave as the node"`,
    `oifname ${device} ${ip} saddr != ${cluster} masquerade fully-random comment "into the overlay only with a pod-CIDR source"`,
  ];
}

/** The transaction that installs (or replaces) the whole table, as `nft -f` text. */
export function renderMasquerade(spec: MasqueradeSpec): string {
  const dev = quoted(spec.device);
  const rules = familyRules('ip', spec.podCIDR, spec.clusterCIDR, MULTICAST4, dev);
  if (spec.podCIDR6 !== undefined && spec.clusterCIDR6 !== undefined) {
    rules.push(...familyRules('ip6', spec.podCIDR6, spec.clusterCIDR6, MULTICAST6, dev));
  }
  return [
    `add table ${TABLE_FAMILY} ${TABLE_NAME}`,
    `delete table ${TABLE_FAMILY} ${TABLE_NAME}`,
    `table ${TABLE_FAMILY} ${TABLE_NAME} {`,
    `\tcomment "vxnet agent: outbound NAT for this node's pods; replaced whole by the agent"`,
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** The transaction that removes the table if it exists (idempotent). */
export function renderRemoval(): string {
  return `add table ${TABLE_FAMILY} ${TABLE_NAME}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n`;
}

/** Installs or replaces the table in one transaction. Throws NftMissingError or NftError. */
export async function installMasquerade(spec: MasqueradeSpec, opts: NftOptions = {}): Promise<void> {
  await nft(['-f', '-'], renderMasquerade(spec), opts);
}

/** Removes vxnet's table and with it every rule vxnet installed (`vxnet cleanup`). */
export async function removeVxnetTable(opts: NftOptions = {}): Promise<void> {
  await nft(['-f', '-'], renderRemoval(), opts);
}
