/**
 * Services as kube-proxy's nftables mode programs them, for a lab that has no kube-proxy.
 *
 * The shape follows kube-proxy (pkg/proxy/nftables): one table of its own, `ip kube-proxy`;
 * a `services` chain entered from the nat prerouting and output hooks that looks up
 * (destination, protocol, port) in a verdict map of ClusterIPs and one of NodePorts; per
 * Service port a `service-…` chain that marks for masquerade what does not come from a pod
 * (`ip saddr != <cluster CIDR>`) and picks an endpoint at random (`numgen random mod N`); per
 * endpoint an `endpoint-…` chain that marks hairpin traffic and DNATs; per NodePort an
 * `external-…` chain that marks everything (externalTrafficPolicy Cluster); and one
 * `masquerading` chain at postrouting that masquerades whatever carries the mark (0x4000).
 * Traffic to a ClusterIP port nobody serves is rejected, to an unallocated ClusterIP dropped.
 *
 * Only what the lab's tests need is generated (TCP, ClusterIP and NodePort, no session
 * affinity, no load balancers), written as one `nft -f` transaction per node. The point is to
 * show what vxnet must carry once kube-proxy has rewritten a packet: DNATed pod-to-pod flows,
 * replies that conntrack un-DNATs, and masqueraded node traffic whose source is the node's
 * overlay address.
 */
import { createHash } from 'node:crypto';
import { installRuleset } from './nft-lab.js';
import { CLUSTER_CIDR, SERVICE_CIDR } from './topology.js';

export interface ServiceEndpoint {
  readonly ip: string;
  readonly port: number;
  /** The node the endpoint pod runs on (for test output). */
  readonly node: number;
}

export interface ClusterService {
  readonly namespace: string;
  readonly name: string;
  readonly portName: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly nodePort?: number;
  readonly endpoints: readonly ServiceEndpoint[];
}

/** kube-proxy's default masquerade bit (--masquerade-bit 14). */
export const MASQUERADE_MARK = '0x4000';

/** The lab's one Service: ClusterIP 10.96.0.10:80 and NodePort 30080 -> port 8080 of the first pods of nodes 2 and 3. */
export function demoService(pods: readonly { name: string; ip: string; nodeIndex: number }[]): ClusterService {
  const firstOn = (i: number) => pods.find((p) => p.nodeIndex === i);
  const endpoints: ServiceEndpoint[] = [];
  for (const i of [2, 3]) {
    const p = firstOn(i);
    if (p) endpoints.push({ ip: p.ip, port: 8080, node: i });
  }
  if (endpoints.length === 0) throw new Error('the lab Service needs pods on node 2 (and 3): build at least 2 nodes');
  return { namespace: 'lab', name: 'echo', portName: 'http', clusterIP: '10.96.0.10', port: 80, nodePort: 30080, endpoints };
}

function hashOf(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 8).toUpperCase();
}

function portId(s: ClusterService): string {
  return `${s.namespace}/${s.name}/tcp/${s.portName}`;
}

/** The whole `ip kube-proxy` table for a node whose NodePort addresses are `nodeIPs`, as `nft -f` text. */
export function renderKubeProxy(services: readonly ClusterService[], nodeIPs: readonly string[], clusterCIDR = CLUSTER_CIDR, serviceCIDR = SERVICE_CIDR): string {
  const out: string[] = [
    'add table ip kube-proxy',
    'delete table ip kube-proxy',
    'table ip kube-proxy {',
    '\tcomment "Services as kube-proxy\'s nftables mode writes them (vxnet lab)"',
    `\tset cluster-ips { type ipv4_addr; ${services.length ? `elements = { ${services.map((s) => s.clusterIP).join(', ')} }` : ''} }`,
    `\tset nodeport-ips { type ipv4_addr; ${nodeIPs.length ? `elements = { ${nodeIPs.join(', ')} }` : ''} }`,
  ];
  const serviceIps: string[] = [];
  const nodePorts: string[] = [];
  const chains: string[] = [];
  for (const s of services) {
    const id = portId(s);
    const h = hashOf(id);
    const svc = `service-${h}-${id}`;
    const eps = s.endpoints.map((e) => ({ e, chain: `endpoint-${hashOf(`${id}__${e.ip}/${e.port}`)}-${id}__${e.ip}/${e.port}` }));
    serviceIps.push(`${s.clusterIP} . tcp . ${s.port} : goto ${svc}`);
    chains.push(
      `\tchain ${svc} {`,
      `\t\tip daddr ${s.clusterIP} tcp dport ${s.port} ip saddr != ${clusterCIDR} jump mark-for-masquerade`,
      `\t\tnumgen random mod ${eps.length} vmap { ${eps.map((x, i) => `${i} : goto ${x.chain}`).join(', ')} }`,
      '\t}',
    );
    for (const { e, chain } of eps) {
      chains.push(
        `\tchain ${chain} {`,
        `\t\tip saddr ${e.ip} jump mark-for-masquerade`,
        `\t\tmeta l4proto tcp dnat to ${e.ip}:${e.port}`,
        '\t}',
      );
    }
    if (s.nodePort !== undefined) {
      const ext = `external-${h}-${id}`;
      nodePorts.push(`tcp . ${s.nodePort} : goto ${ext}`);
      chains.push(`\tchain ${ext} {`, '\t\tjump mark-for-masquerade', `\t\tgoto ${svc}`, '\t}');
    }
  }
  out.push(
    `\tmap service-ips { type ipv4_addr . inet_proto . inet_service : verdict; ${serviceIps.length ? `elements = { ${serviceIps.join(', ')} }` : ''} }`,
    `\tmap service-nodeports { type inet_proto . inet_service : verdict; ${nodePorts.length ? `elements = { ${nodePorts.join(', ')} }` : ''} }`,
    `\tchain mark-for-masquerade { mark set mark or ${MASQUERADE_MARK}; }`,
    '\tchain masquerading {',
    `\t\tmark and ${MASQUERADE_MARK} == 0 return`,
    `\t\tmark set mark xor ${MASQUERADE_MARK}`,
    '\t\tmasquerade fully-random',
    '\t}',
    '\tchain services {',
    '\t\tip daddr . meta l4proto . th dport vmap @service-ips',
    '\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    '\t}',
    '\tchain cluster-ips-check {',
    '\t\tip daddr @cluster-ips reject comment "a ClusterIP port nobody serves"',
    `\t\tip daddr ${serviceCIDR} drop comment "an unallocated ClusterIP"`,
    '\t}',
    '\tchain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }',
    '\tchain nat-output { type nat hook output priority -100; policy accept; jump services; }',
    '\tchain nat-postrouting { type nat hook postrouting priority srcnat; policy accept; jump masquerading; }',
    '\tchain filter-forward { type filter hook forward priority filter; policy accept; ct state new jump cluster-ips-check; }',
    '\tchain filter-output { type filter hook output priority filter; policy accept; ct state new jump cluster-ips-check; }',
    ...chains,
    '}',
    '',
  );
  return out.join('\n');
}

/** Programs `services` into every node namespace, each with its own underlay IP as NodePort address. */
export async function installServices(lab: { nodes: readonly { ns: string; underlayIP: string }[] }, services: readonly ClusterService[]): Promise<void> {
  await Promise.all(lab.nodes.map((n) => installRuleset(n.ns, renderKubeProxy(services, [n.underlayIP]))));
}
