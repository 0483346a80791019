/**
 * The network between the nodes: routers, links and the hosts around the cluster, built the
 * way a user's world varies, not only the way our own bench likes it.
 *
 *   - one router namespace; each node alone on its own /24 behind it (every node-to-node
 *     packet is routed, never bridged);
 *   - per node, an underlay MTU, set on both ends of the node's link (1500, a cloud's 1460, a
 *     tunnel's 1400, jumbo 9001);
 *   - a narrow hop: some nodes hang off a second router whose link to the first has a smaller
 *     MTU on both ends, so the path between nodes is narrower than either node's own interface.
 *     Linux routers answer a DF packet that does not fit with ICMP "fragmentation needed", as
 *     real routers do (rate-limited by the kernel's defaults), and fragment the rest;
 *   - an outside host standing for the internet: it has an address of its own behind the router
 *     and no route to any pod CIDR, so it can only answer a pod that was masqueraded;
 *   - an attacker namespace that is not a peer (badinput.test.ts).
 *
 * Every router port finishes checksums and segmentation in software, as a NIC puts packets on
 * a wire (see wireLike), and every host port merges what it receives (GRO), as a NIC's driver
 * does (see nicLike). Nothing is created in the root namespace: veth pairs are born with both
 * ends inside lab namespaces.
 */
import { inNs, run, runOk } from './exec.js';
import {
  ATTACKER_SUBNET,
  OUTSIDE_IP,
  OUTSIDE_ROUTER_IP,
  TRANSIT_ROUTER1_IP,
  TRANSIT_ROUTER2_IP,
  underlaySubnet,
} from './topology.js';

/** The node-facing facts the underlay needs. */
export interface UnderlayNode {
  readonly index: number;
  readonly ns: string;
  readonly underlayIP: string;
  readonly underlayMTU: number;
  readonly uplink: string;
  /** The router namespace this node hangs off. */
  readonly routerNs: string;
  readonly routerIP: string;
  readonly routerIface: string;
}

export interface UnderlayPlan {
  readonly router: string;
  readonly nodes: readonly UnderlayNode[];
  /** The second router and the MTU of its link to the first, when some nodes sit behind it. */
  readonly narrowHop?: { readonly router: string; readonly mtu: number };
  readonly outside?: string;
  readonly attacker?: string;
  /** Nodes forward IPv6 too (dual-stack pods). */
  readonly ipv6?: boolean;
}

/** Creates and registers a namespace (the lab records it before it exists). */
export type AddNamespace = (name: string) => Promise<void>;

const UPLINK = 'eth0';

async function sysctl(ns: string, ...settings: string[]): Promise<void> {
  await runOk(inNs(ns, ['sysctl', '-q', '-w', ...settings]), { timeoutMs: 5000 });
}

/**
 * Make a router port behave like a real wire. A veth hands the peer namespace the sender's
 * socket buffer as is, checksum still to be filled in (CHECKSUM_PARTIAL) and segmentation still
 * to be done (GSO). Kernel code on the far side honours that metadata; a userspace receiver
 * reading a UDP socket gets the bytes only, so an inner TCP segment from a kernel VXLAN sender
 * would arrive with an unfinished checksum, which no NIC would ever put on a wire. Turning
 * off TX checksumming (and so TSO/GSO) on the router's egress port makes the kernel finish
 * checksums and segment there, exactly where a NIC would.
 */
function wireLike(routerNs: string, iface: string): Promise<void> {
  return setFeature(routerNs, iface, 'tx', 'off');
}

/**
 * Make a host port behave like a real NIC's receive side. Every NIC driver hands received packets
 * to the kernel through NAPI, which merges a flow's packets (GRO) before the stack sees them: TCP
 * segments, and UDP datagrams for sockets that asked for it (`UDP_GRO`, which vxnet sets) or for a
 * tunnel's socket (kernel VXLAN). A veth does no GRO unless it is switched on, so without this
 * every datagram the wire-like router port cut would reach the host one by one, a cost no real
 * node pays. docs/performance.md has the same-run numbers, on and off, for every path.
 */
function nicLike(hostNs: string, iface: string): Promise<void> {
  return setFeature(hostNs, iface, 'gro', 'on');
}

/** `ethtool -K iface feature value` in `ns`, or an error that says what to install. */
async function setFeature(ns: string, iface: string, feature: string, value: 'on' | 'off'): Promise<void> {
  const r = await run(inNs(ns, ['ethtool', '-K', iface, feature, value]), { timeoutMs: 5000 });
  if (r.code !== 0) {
    throw new Error(`ethtool -K ${iface} ${feature} ${value} failed (is ethtool installed? apt-get install ethtool): ${r.stderr.trim()}`);
  }
}

async function addRouter(ns: string, addNs: AddNamespace): Promise<void> {
  await addNs(ns);
  await sysctl(ns, 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
}

/**
 * A point-to-point link from a router port to a host's eth0: `routerIface` with `routerAddr`/24
 * in `routerNs`, eth0 with `hostAddr`/24 and a default route via the router in `hostNs`, both
 * ends at `mtu`.
 */
async function hostLink(routerNs: string, routerIface: string, routerAddr: string, hostNs: string, hostAddr: string, mtu: number): Promise<void> {
  await runOk(['ip', '-n', routerNs, 'link', 'add', routerIface, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', UPLINK, 'mtu', String(mtu), 'netns', hostNs]);
  await runOk(['ip', '-n', routerNs, 'addr', 'add', `${routerAddr}/24`, 'dev', routerIface]);
  await runOk(['ip', '-n', routerNs, 'link', 'set', routerIface, 'up']);
  await wireLike(routerNs, routerIface);
  await runOk(['ip', '-n', hostNs, 'addr', 'add', `${hostAddr}/24`, 'dev', UPLINK]);
  await runOk(['ip', '-n', hostNs, 'link', 'set', UPLINK, 'up']);
  await nicLike(hostNs, UPLINK);
  await runOk(['ip', '-n', hostNs, 'route', 'add', 'default', 'via', routerAddr]);
}

export async function buildUnderlay(plan: UnderlayPlan, addNs: AddNamespace): Promise<void> {
  await addRouter(plan.router, addNs);
  const hop = plan.narrowHop;
  if (hop) {
    await addRouter(hop.router, addNs);
    // The narrow link, both ends at the hop's MTU; each router routes the other's nodes over it.
    await runOk(['ip', '-n', plan.router, 'link', 'add', 'hop', 'mtu', String(hop.mtu), 'type', 'veth', 'peer', 'name', 'hop', 'mtu', String(hop.mtu), 'netns', hop.router]);
    for (const [ns, addr] of [[plan.router, TRANSIT_ROUTER1_IP], [hop.router, TRANSIT_ROUTER2_IP]] as const) {
      await runOk(['ip', '-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'hop']);
      await runOk(['ip', '-n', ns, 'link', 'set', 'hop', 'up']);
      await wireLike(ns, 'hop');
    }
    await runOk(['ip', '-n', hop.router, 'route', 'add', 'default', 'via', TRANSIT_ROUTER1_IP]);
  }
  for (const node of plan.nodes) {
    await addNs(node.ns);
    await sysctl(
      node.ns,
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
      // A node of a dual-stack cluster routes IPv6 between its pods' bridge and the overlay.
      ...(plan.ipv6 ? ['net.ipv6.conf.all.forwarding=1'] : []),
    );
    await hostLink(node.routerNs, node.routerIface, node.routerIP, node.ns, node.underlayIP, node.underlayMTU);
    if (hop && node.routerNs === hop.router) {
      await runOk(['ip', '-n', plan.router, 'route', 'add', underlaySubnet(node.index), 'via', TRANSIT_ROUTER2_IP]);
    }
  }
  if (plan.outside) {
    await addNs(plan.outside);
    await hostLink(plan.router, 'out', OUTSIDE_ROUTER_IP, plan.outside, OUTSIDE_IP, 1500);
  }
  if (plan.attacker) {
    await addNs(plan.attacker);
    await hostLink(plan.router, 'atk', `192.168.${ATTACKER_SUBNET}.1`, plan.attacker, `192.168.${ATTACKER_SUBNET}.2`, 1500);
  }
}
