/**
 * What the node's underlay network is, read from the kernel: the interface that holds the
 * underlay address, its MTU, and whether it merges what it receives (GRO).
 *
 * The overlay MTU must come from the network the node is actually on, not from a default that
 * is true only on a 1500-byte LAN: cloud VMs run at 1460 (GCE), 1450 or less (OpenStack and
 * Azure tunnels) or 9001 (AWS jumbo frames). flannel, Calico and Cilium derive it the same way.
 * Each node derives its own; nodes of one cluster may differ, and the path MTU per peer
 * (datapath/path-mtu.ts) covers paths smaller than either end.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KernelSetupError } from '../node/errors.js';
import { EthtoolCmd, nativeIo } from '../device/native.js';

const run = promisify(execFile);

export interface UnderlayInterface {
  readonly name: string;
  readonly mtu: number;
}

interface IpAddrJson {
  ifname?: string;
  mtu?: number;
  addr_info?: Array<{ family?: string; local?: string }>;
}

/** Finds the interface in `ip -j addr` output that holds `address`. */
export function findInterface(json: string, address: string): UnderlayInterface | undefined {
  let links: IpAddrJson[];
  try {
    links = JSON.parse(json) as IpAddrJson[];
  } catch {
    return undefined;
  }
  if (!Array.isArray(links)) return undefined;
  for (const l of links) {
    if (typeof l.ifname !== 'string' || typeof l.mtu !== 'number') continue;
    if ((l.addr_info ?? []).some((a) => a.family === 'inet' && a.local === address)) return { name: l.ifname, mtu: l.mtu };
  }
  return undefined;
}

/** The interface that holds IPv4 `address`, and its MTU. */
export async function underlayInterface(address: string): Promise<UnderlayInterface> {
  let stdout: string;
  try {
    ({ stdout } = await run('ip', ['-j', '-4', 'addr', 'show'], { timeout: 10_000, maxBuffer: 16 << 20 }));
  } catch (err) {
    throw new KernelSetupError('read the interfaces (ip -j -4 addr show)', (err as { stderr?: string; message: string }).stderr || (err as Error).message);
  }
  const found = findInterface(stdout, address);
  if (!found) {
    throw new KernelSetupError(`find the interface holding underlayIP ${address}`,
      `no interface of this node has ${address}; underlayIP must be one of the node's own addresses (or set underlayMTU and mtu explicitly)`);
  }
  return found;
}

/**
 * Whether GRO is on for the interface: true or false, or why it could not be read (an
 * interface without ethtool support answers EOPNOTSUPP). vxnet's receiving sockets take merged
 * datagrams (UDP_GRO), which only the driver's GRO makes; with it off every datagram arrives on
 * its own, at a measured 40% less single-stream TCP (docs/operations.md).
 */
export function interfaceGro(name: string): boolean | string {
  const v = nativeIo().ethtoolGet(name, EthtoolCmd.GetGro);
  if (v < 0) return `ETHTOOL_GGRO on ${name} failed: errno ${-v}`;
  return v !== 0;
}
