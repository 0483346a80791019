/**
 * The kernel side of a node, set with iproute2 the way flannel sets up `flannel.1`: the TUN device
 * gets the node's pod-CIDR network address as a /32 (so host-network traffic to remote pods has a
 * routable source that the remote node's anti-spoofing accepts), the overlay MTU, and ONE route,
 * the cluster CIDR via the device. The node's own pod CIDR is more specific and stays on the
 * bridge (`cni0`), so only remote pods go through the TUN. Nothing else: no ARP, no FDB, no
 * per-peer route, which is why the kernel state does not grow with the cluster.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';

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
  await ip('bring up', ['link', 'set', 'dev', s.device, 'up']);
  // ICMP errors that the agent writes back through TUN come from this same /32; without
  // accept_local the kernel would drop them as martians (a local source arriving from outside).
  await sysctl(`net/ipv4/conf/${s.device}/accept_local`, '1');
  await ip('add cluster route', ['route', 'replace', s.clusterCIDR, 'dev', s.device, 'src', s.address]);
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
