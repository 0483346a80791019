/**
 * The kernel side of a node, set with iproute2 the way flannel sets up `flannel.1`: the TUN device
 * gets the node's pod-CIDR network address as a /32 (so host-network traffic to remote pods has a
 * routable source that the remote node's anti-spoofing accepts), the overlay MTU, and ONE route,
 * the cluster CIDR via the device. The node's own pod CIDR is more specific and stays on the
 * bridge (`cni0`), so only remote pods go through the TUN. Nothing else: no ARP, no FDB, no
 * per-peer route, which is why the kernel state does not grow with the cluster.
 *
 * Dual stack adds the same two things for IPv6: the podCIDR6 network address as a /128 and one
 * route, clusterCIDR6 via the device. The device still gets no link-local address: a TUN device
 * has no link layer, so an IPv6 route through it needs no next hop and no neighbour discovery,
 * and the /128 is the source the kernel picks for host-to-remote-pod traffic (RFC 6724 rule 5,
 * the outgoing interface's address). `nodad`: there is no link on which an address could be
 * duplicated. Forwarding IPv6 between cni0 and the device needs net.ipv6.conf.all.forwarding=1,
 * a node setting the agent checks but does not change (on a node that takes its own IPv6 route
 * from router advertisements, turning forwarding on stops it from accepting them).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, writeFile } from 'node:fs/promises';

const run = promisify(execFile);

export class KernelSetupError extends Error {
  constructor(step: string, detail: string) {
    super(`${step} failed: ${detail.trim()} (the agent needs CAP_NET_ADMIN and iproute2's "ip" in PATH)`);
    this.name = 'KernelSetupError';
  }
}

async function ip(step: string, args: string[]): Promise<void> {
  try {
    await run('ip', args, { timeout: 10_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new KernelSetupError(`${step} (ip ${args.join(' ')})`, e.stderr || e.message);
  }
}

async function sysctl(key: string, value: string): Promise<void> {
  try {
    await writeFile(`/proc/sys/${key}`, value);
  } catch (err) {
    throw new KernelSetupError(`sysctl ${key.replace(/\//g, '.')}=${value}`, (err as Error).message);
  }
}

export interface DeviceSetup {
  readonly device: string;
  /** Pod CIDR network address, dotted quad. */
  readonly address: string;
  readonly mtu: number;
  readonly clusterCIDR: string;
  /** podCIDR6 network address, when the node has IPv6 pods. */
  readonly address6?: string | undefined;
  readonly clusterCIDR6?: string | undefined;
  /** TUN txqueuelen (packets, or super-packets with TSO). */
  readonly queueLength: number;
}

export async function configureDevice(s: DeviceSetup): Promise<void> {
  // No IPv6 link-local address: pods are IPv4 here, and router solicitations would only be dropped.
  await ip('disable IPv6 address generation', ['link', 'set', 'dev', s.device, 'addrgenmode', 'none']);
  await ip('set MTU', ['link', 'set', 'dev', s.device, 'mtu', String(s.mtu)]);
  // The kernel queues packets for the TUN reader in a ring of txqueuelen entries and drops when
  // it is full; TCP reads a drop as congestion. See docs/performance.md for the measured choice.
  await ip('set queue length', ['link', 'set', 'dev', s.device, 'txqueuelen', String(s.queueLength)]);
  await ip('flush old addresses', ['addr', 'flush', 'dev', s.device]);
  await ip('add address', ['addr', 'add', `${s.address}/32`, 'dev', s.device]);
  const dual = s.address6 !== undefined && s.clusterCIDR6 !== undefined;
  if (dual) {
    // A node booted with IPv6 disabled by default creates new devices with it off.
    await sysctl(`net/ipv6/conf/${s.device}/disable_ipv6`, '0');
    await ip('add IPv6 address', ['-6', 'addr', 'add', `${s.address6}/128`, 'dev', s.device, 'nodad']);
  }
  await ip('bring up', ['link', 'set', 'dev', s.device, 'up']);
  // ICMP errors that the agent writes back through TUN come from this same /32; without
  // accept_local the kernel would drop them as martians (a local source arriving from outside).
  await sysctl(`net/ipv4/conf/${s.device}/accept_local`, '1');
  await ip('add cluster route', ['route', 'replace', s.clusterCIDR, 'dev', s.device, 'src', s.address]);
  if (dual) await ip('add IPv6 cluster route', ['-6', 'route', 'replace', s.clusterCIDR6!, 'dev', s.device]);
}

/** Whether the node forwards IPv6 (net.ipv6.conf.all.forwarding), which IPv6 pods need. */
export async function ipv6ForwardingEnabled(): Promise<boolean> {
  try {
    return (await readFile('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8')).trim() === '1';
  } catch {
    return false;
  }
}

/** The first IPv4 address of interface `iface`, for `--iface`. */
export async function interfaceIPv4(iface: string): Promise<string> {
  try {
    const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', iface], { timeout: 10_000 });
    const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(stdout);
    if (!m) throw new Error(`no IPv4 address on ${iface}`);
    return m[1]!;
  } catch (err) {
    throw new KernelSetupError(`read address of interface ${iface}`, (err as { stderr?: string; message: string }).stderr || (err as Error).message);
  }
}
