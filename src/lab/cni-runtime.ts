/**
 * A minimal CNI runtime (CNI spec 1.0, "Network configuration lists"): just enough of what a
 * container runtime does to attach a namespace with the real plugin binaries.
 *
 * ADD runs the list's plugins in order. Each gets its own entry from `plugins` as stdin, with the
 * list's `name` and `cniVersion` added and, from the second plugin on, `prevResult` set to the
 * previous plugin's stdout. DEL runs them in reverse order with the final ADD result as
 * `prevResult`. Parameters go in the environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 * CNI_IFNAME, CNI_PATH). Plugins run inside the node's namespace (`ip netns exec NODE`), where
 * the bridge and the host side of the veth belong. host-local's `dataDir` is overridden so
 * address leases land in the lab's own directory, never in /var/lib/cni. Capability arguments
 * (hostPort's `portMappings`) reach, as `runtimeConfig`, exactly the plugins that declare the
 * capability in the conflist, as the spec says a runtime must pass them.
 */
import { inNs, run } from './exec.js';

export const DEFAULT_CNI_PATH = '/usr/lib/cni';

export interface CniInvocation {
  /** The parsed network configuration list (`{cniVersion, name, plugins: [...]}`). */
  readonly conflist: Record<string, unknown>;
  readonly containerId: string;
  /** Path of the pod's network namespace, e.g. /var/run/netns/NAME. */
  readonly netnsPath: string;
  readonly ifName?: string;
  readonly cniPath?: string;
  /** Namespace the plugins run in (the node's); null: this process's namespace. */
  readonly pluginNs: string | null;
  /** Replaces `ipam.dataDir` of every host-local ipam block. */
  readonly ipamDataDir?: string;
  /** Capability arguments by name, e.g. { portMappings: [...] } for hostPorts. */
  readonly capabilityArgs?: Readonly<Record<string, unknown>>;
  readonly timeoutMs?: number;
}

/** One hostPort as a container runtime hands it to the portmap plugin. */
export interface PortMapping {
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp';
}

/** The parts of a CNI 1.0 result the lab reads. */
export interface CniResult {
  readonly cniVersion?: string;
  readonly interfaces?: readonly { name: string; mac?: string; sandbox?: string }[];
  readonly ips?: readonly { address: string; gateway?: string; interface?: number }[];
  readonly routes?: readonly { dst: string; gw?: string }[];
  readonly [k: string]: unknown;
}

export class CniError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: 'ADD' | 'DEL',
    message: string,
  ) {
    super(`CNI ${command} ${plugin}: ${message}`);
    this.name = 'CniError';
  }
}

function pluginsOf(conflist: Record<string, unknown>): Record<string, unknown>[] {
  const plugins = conflist['plugins'];
  if (!Array.isArray(plugins) || plugins.length === 0) {
    throw new Error('CNI conflist has no "plugins" list');
  }
  return plugins as Record<string, unknown>[];
}

function pluginConfig(
  inv: CniInvocation,
  plugin: Record<string, unknown>,
  prevResult: CniResult | undefined,
): Record<string, unknown> {
  const conf: Record<string, unknown> = {
    ...plugin,
    name: inv.conflist['name'],
    cniVersion: inv.conflist['cniVersion'],
  };
  const ipam = conf['ipam'];
  if (inv.ipamDataDir !== undefined && ipam !== null && typeof ipam === 'object') {
    const i = ipam as Record<string, unknown>;
    if (i['type'] === 'host-local') conf['ipam'] = { ...i, dataDir: inv.ipamDataDir };
  }
  const caps = conf['capabilities'];
  if (inv.capabilityArgs !== undefined && caps !== null && typeof caps === 'object') {
    const runtimeConfig: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(inv.capabilityArgs)) {
      if ((caps as Record<string, unknown>)[k] === true) runtimeConfig[k] = v;
    }
    if (Object.keys(runtimeConfig).length > 0) conf['runtimeConfig'] = runtimeConfig;
  }
  if (prevResult !== undefined) conf['prevResult'] = prevResult;
  return conf;
}

async function invoke(
  inv: CniInvocation,
  command: 'ADD' | 'DEL',
  conf: Record<string, unknown>,
): Promise<string> {
  const type = String(conf['type']);
  if (!/^[A-Za-z0-9_-]+$/.test(type)) throw new CniError(type, command, 'bad plugin type');
  const cniPath = inv.cniPath ?? DEFAULT_CNI_PATH;
  const r = await run(inNs(inv.pluginNs, [`${cniPath}/${type}`]), {
    timeoutMs: inv.timeoutMs ?? 15_000,
    input: JSON.stringify(conf),
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: inv.containerId,
      CNI_NETNS: inv.netnsPath,
      CNI_IFNAME: inv.ifName ?? 'eth0',
      CNI_PATH: cniPath,
    },
  });
  if (r.code !== 0) {
    let msg = r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`;
    try {
      const e = JSON.parse(r.stdout) as { msg?: string; details?: string };
      if (e.msg) msg = e.details ? `${e.msg}: ${e.details}` : e.msg;
    } catch {
      /* not a CNI error object */
    }
    throw new CniError(type, command, r.timedOut ? `timed out: ${msg}` : msg);
  }
  return r.stdout;
}

/** Attach: run every plugin's ADD in order; return the final result. */
export async function cniAdd(inv: CniInvocation): Promise<CniResult> {
  let prev: CniResult | undefined;
  for (const plugin of pluginsOf(inv.conflist)) {
    const out = await invoke(inv, 'ADD', pluginConfig(inv, plugin, prev));
    try {
      prev = JSON.parse(out) as CniResult;
    } catch {
      throw new CniError(String(plugin['type']), 'ADD', `result is not JSON: ${out.slice(0, 200)}`);
    }
  }
  return prev ?? {};
}

/** Detach: every plugin's DEL in reverse order. Collects errors and keeps going. */
export async function cniDel(inv: CniInvocation, prevResult?: CniResult): Promise<CniError[]> {
  const errors: CniError[] = [];
  for (const plugin of [...pluginsOf(inv.conflist)].reverse()) {
    try {
      await invoke(inv, 'DEL', pluginConfig(inv, plugin, prevResult));
    } catch (err) {
      errors.push(err instanceof CniError ? err : new CniError(String(plugin['type']), 'DEL', String(err)));
    }
  }
  return errors;
}

/** The first IPv6 address in a result, without its prefix length. */
export function resultIPv6(result: CniResult): string | null {
  for (const ip of result.ips ?? []) {
    const addr = ip.address.split('/')[0] ?? '';
    if (addr.includes(':')) return addr;
  }
  return null;
}

/** The first IPv4 address in a result, without its prefix length. */
export function resultIPv4(result: CniResult): string | null {
  for (const ip of result.ips ?? []) {
    const addr = ip.address.split('/')[0] ?? '';
    if (/^\d+\.\d+\.\d+\.\d+$/.test(addr)) return addr;
  }
  return null;
}
