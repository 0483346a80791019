/**
 * The lab's address plan, as pure functions (docs/dev/contracts.md, "Lab defaults").
 *
 *   node i (1-based): underlay 192.168.(100+i).2/24, its router port 192.168.(100+i).1
 *                     pod CIDR 10.244.i.0/24, bridge cni0 10.244.i.1, tunnel address 10.244.i.0/32
 *   attacker:         192.168.250.2/24 behind router port 192.168.250.1
 *   outside host:     203.0.113.10/24 behind router port 203.0.113.1 (TEST-NET-3, RFC 5737: an
 *                     address that stands for the internet and is routed nowhere outside the lab)
 *   narrow hop:       a second router behind the first on 192.168.254.0/24 (.1 the first, .2
 *                     the second); the nodes behind it keep their own subnets
 *   Services:         ClusterIPs from 10.96.0.0/16 (kubeadm's default service CIDR)
 *   dual stack:       cluster fd00:10:244::/56, node i's pod CIDR fd00:10:244:<i in hex>::/64,
 *                     bridge cni0 <that>::1, tunnel address <that>:: (a /128); the underlay stays IPv4
 *
 * Each node sits alone on its own subnet, so any node-to-node packet crosses the router
 * namespace: the overlay is tested over a routed underlay, as in a real cluster spread over
 * racks, never over a shared L2 segment that would hide ARP or MTU mistakes.
 */

export const CLUSTER_CIDR = '10.244.0.0/16';
export const CLUSTER_CIDR6 = 'fd00:10:244::/56';
export const SERVICE_CIDR = '10.96.0.0/16';
/** The lab's default underlay MTU, Ethernet's. */
export const UNDERLAY_MTU = 1500;
export const METRICS_ADDR = '127.0.0.1:9469';
export const ATTACKER_SUBNET = 250;
export const OUTSIDE_ROUTER_IP = '203.0.113.1';
export const OUTSIDE_IP = '203.0.113.10';
export const TRANSIT_ROUTER1_IP = '192.168.254.1';
export const TRANSIT_ROUTER2_IP = '192.168.254.2';
export const MAX_NODES = 99;

export function underlaySubnet(i: number): string {
  return `192.168.${100 + i}.0/24`;
}
export function underlayIP(i: number): string {
  return `192.168.${100 + i}.2`;
}
export function routerIP(i: number): string {
  return `192.168.${100 + i}.1`;
}
export function podCIDR(i: number): string {
  return `10.244.${i}.0/24`;
}
/** Network address of node i's pod CIDR; the overlay device's own /32 (as flannel does). */
export function tunnelAddress(i: number): string {
  return `10.244.${i}.0`;
}
export function podGateway(i: number): string {
  return `10.244.${i}.1`;
}

/** Node i's IPv6 pod CIDR: the i-th /64 of the /56 (i up to 255). */
export function podCIDR6(i: number): string {
  return `fd00:10:244:${i.toString(16)}::/64`;
}
/** Network address of node i's IPv6 pod CIDR: the overlay device's own /128. */
export function tunnelAddress6(i: number): string {
  return `fd00:10:244:${i.toString(16)}::`;
}
export function podGateway6(i: number): string {
  return `fd00:10:244:${i.toString(16)}::1`;
}

/** A deterministic, locally administered unicast VTEP MAC for node i: 02:76:78:6c:00:ii. */
export function vtepMAC(i: number): string {
  return `02:76:78:6c:${hex2((i >> 8) & 0xff)}:${hex2(i & 0xff)}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Pod letter suffix: 0 -> a, 1 -> b, ... */
export function podLetter(j: number): string {
  return String.fromCharCode(97 + j);
}

/** Dotted quad -> unsigned 32-bit integer; throws on anything else. */
export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  let v = 0;
  for (const p of parts) {
    const n = Number(p);
    if (!/^\d{1,3}$/.test(p) || n > 255) throw new Error(`not an IPv4 address: ${ip}`);
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function cidrContains(cidr: string, ip: string): boolean {
  const [net, lenS] = cidr.split('/');
  const len = Number(lenS);
  if (net === undefined || !Number.isInteger(len) || len < 0 || len > 32) {
    throw new Error(`not an IPv4 CIDR: ${cidr}`);
  }
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((ipToInt(net) & mask) >>> 0) === ((ipToInt(ip) & mask) >>> 0);
}
