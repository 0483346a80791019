/**
 * Configuration loading: a JSON or YAML file becomes a checked `AgentConfig`.
 *
 * Every problem is reported as a `ConfigError` that names the field in the file's own terms
 * (`peers[1].vtepMAC`), says what was wrong and what would be right. Unknown fields are errors
 * too, so a typo never silently becomes a default. Checks that need the whole picture (pod CIDRs
 * inside the cluster CIDR, no two owners of one address, no duplicate peers) run here, before the
 * data path sees anything; a live reload that fails them keeps the running table.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import ipaddr from 'ipaddr.js';
import YAML from 'yaml';
import type { AgentConfig, TuningConfig } from './config-types.js';
import type { Peer } from '../peers/source.js';
import { deriveVtepMAC, normaliseMAC } from './mac.js';
import { cidr6Contains, cidr6Overlaps, formatCidr6, looksLikeIpv6, parseCidr6 } from '../wire/addr.js';
import { DEFAULT_RUN_DIR } from '../node/lock.js';

export class ConfigError extends Error {
  constructor(readonly field: string, detail: string, readonly file?: string) {
    // A file that cannot be read or parsed has no field to name.
    super(`${file ? `config ${file}: ` : ''}${field === '(file)' ? '' : `field "${field}": `}${detail}`);
    this.name = 'ConfigError';
  }
}

export const DEFAULTS = {
  device: 'vxnet0',
  vni: 1,
  port: 8472,
  underlayMTU: 1500,
  metricsAddr: '127.0.0.1:9469',
  annotationPrefix: 'vxnet.io',
  batch: 64,
  socketBuffer: 4 << 20,
  senders: 8,
  tunQueueLength: 5000,
  runDir: DEFAULT_RUN_DIR,
} as const;

/** VXLAN over IPv4 costs 50 bytes: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_IPV4_OVERHEAD = 50;
/** RFC 8200 §5: every link that carries IPv6 has an MTU of at least 1280. */
export const IPV6_MIN_MTU = 1280;

/** Environment variables the agent reads (the DaemonSet's env is checked against this list). */
export const AGENT_ENV = ['NODE_NAME', 'KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'VXNET_LOG_LEVEL'] as const;

/** Top-level keys of the config file (the ConfigMap is checked against this list). */
export const CONFIG_KEYS = [
  'node', 'device', 'vni', 'port', 'underlayIP', 'clusterCIDR', 'podCIDR', 'clusterCIDR6', 'podCIDR6', 'vtepMAC', 'mtu',
  'underlayMTU', 'metricsAddr', 'perPeerMetrics', 'cniConfDir', 'runDir', 'peerSource', 'peers', 'peersFile', 'offloads',
  'kubernetes', 'annotationPrefix', 'tuning', 'ipMasq',
] as const;

const PEER_KEYS = ['node', 'underlayIP', 'podCIDR', 'podCIDRs', 'vtepMAC', 'port', 'vni', 'remoteChecksum'];
const OFFLOAD_KEYS = ['tun', 'udpGso', 'udpGro', 'remoteChecksum'];
const KUBE_KEYS = ['annotationPrefix', 'kubeconfig', 'iface', 'underlayIP'];
const TUNING_KEYS = ['batch', 'socketBuffer', 'senders', 'tunQueueLength', 'queues'];

type Obj = Record<string, unknown>;

/** Overrides from the command line or environment, applied before validation. */
export interface ConfigOverrides {
  readonly node?: string;
  readonly kubeconfig?: string;
  readonly underlayIP?: string;
  readonly iface?: string;
  readonly peerSource?: 'static' | 'kubernetes';
}

export function parseConfigText(text: string, file: string): unknown {
  const trimmed = text.trimStart();
  try {
    if (file.endsWith('.json') || trimmed.startsWith('{')) return JSON.parse(text);
    return YAML.parse(text);
  } catch (err) {
    throw new ConfigError('(file)', `cannot parse: ${(err as Error).message}`, file);
  }
}

export function loadConfigFile(path: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read: ${(err as Error).message}`, path);
  }
  const raw = parseConfigText(text, path);
  try {
    return checkConfig(raw, { path, overrides, env });
  } catch (err) {
    if (err instanceof ConfigError && !err.file) throw new ConfigError(err.field, detailOf(err), path);
    throw err;
  }
}

function detailOf(err: ConfigError): string {
  return err.message.replace(/^field "[^"]*": /, '');
}

interface CheckContext { path?: string; overrides?: ConfigOverrides; env?: NodeJS.ProcessEnv }

export function checkConfig(raw: unknown, ctx: CheckContext = {}): AgentConfig {
  const env = ctx.env ?? {};
  const ov = ctx.overrides ?? {};
  const o = asObject(raw, '(top level)');
  unknownKeys(o, CONFIG_KEYS as readonly string[], '');

  const peerSource = ov.peerSource ?? optEnum(o, 'peerSource', ['static', 'kubernetes'] as const)
    ?? (env.KUBERNETES_SERVICE_HOST ? 'kubernetes' : 'static');
  const kube = o.kubernetes === undefined ? {} : asObject(o.kubernetes, 'kubernetes');
  unknownKeys(kube, KUBE_KEYS, 'kubernetes.');
  const annotationPrefix = optString(kube, 'annotationPrefix', 'kubernetes.') ?? optString(o, 'annotationPrefix')
    ?? DEFAULTS.annotationPrefix;
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(\/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)?$/.test(annotationPrefix)) {
    throw new ConfigError('kubernetes.annotationPrefix', `"${annotationPrefix}" is not a DNS subdomain (e.g. "vxnet.io" or "flannel.alpha.coreos.com")`);
  }
  const kubeUnderlay = ov.underlayIP ?? optString(kube, 'underlayIP', 'kubernetes.');
  if (kubeUnderlay !== undefined) ipv4(kubeUnderlay, 'kubernetes.underlayIP');

  const node = ov.node ?? optString(o, 'node') ?? env.NODE_NAME;
  if (!node) throw new ConfigError('node', 'missing: set "node" in the file or NODE_NAME in the environment');
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(node)) {
    throw new ConfigError('node', `"${node}" is not a valid node name (lower-case DNS subdomain)`);
  }
  const device = optString(o, 'device') ?? DEFAULTS.device;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(device)) throw new ConfigError('device', `"${device}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  const vni = optInt(o, 'vni', 0, 0xffffff, '') ?? DEFAULTS.vni;
  const port = optInt(o, 'port', 1, 65535, '') ?? DEFAULTS.port;
  // Neither given: the agent reads the MTU of the interface that holds underlayIP when it starts
  // (mtuFrom "interface"); until then these are placeholders for a 1500-byte network.
  const underlayMTUSet = optInt(o, 'underlayMTU', 576, 65535, '');
  const mtuSet = optInt(o, 'mtu', 576, 65535 - VXLAN_IPV4_OVERHEAD, '');
  const underlayMTU = underlayMTUSet ?? (mtuSet !== undefined ? mtuSet + VXLAN_IPV4_OVERHEAD : DEFAULTS.underlayMTU);
  const mtu = mtuSet ?? underlayMTU - VXLAN_IPV4_OVERHEAD;
  const mtuFrom = mtuSet !== undefined ? 'mtu' : underlayMTUSet !== undefined ? 'underlayMTU' : 'interface';
  if (mtu + VXLAN_IPV4_OVERHEAD > underlayMTU) {
    throw new ConfigError('mtu', `${mtu} + ${VXLAN_IPV4_OVERHEAD} bytes of VXLAN overhead exceeds underlayMTU ${underlayMTU}; lower mtu or set underlayMTU`);
  }

  const clusterCIDR = cidr(requireString(o, 'clusterCIDR'), 'clusterCIDR');
  const clusterPrefix = Number(clusterCIDR.split('/')[1]);
  if (clusterPrefix < 8 || clusterPrefix > 30) {
    // The cluster CIDR becomes a route via the TUN device: /0 would replace the default route.
    throw new ConfigError('clusterCIDR', `${clusterCIDR}: the prefix must be from /8 to /30 (it becomes one route via the TUN device)`);
  }
  const inKube = peerSource === 'kubernetes';
  const podCIDRRaw = optString(o, 'podCIDR');
  const podCIDR = podCIDRRaw !== undefined ? cidr(podCIDRRaw, 'podCIDR') : inKube ? '' : cidr(requireString(o, 'podCIDR'), 'podCIDR');
  if (podCIDR && !cidrInside(podCIDR, clusterCIDR)) {
    throw new ConfigError('podCIDR', `${podCIDR} is not inside clusterCIDR ${clusterCIDR}`);
  }
  // Dual stack: IPv6 pods are optional and come on top of IPv4 ones (the underlay stays IPv4).
  const clusterCIDR6Raw = optString(o, 'clusterCIDR6');
  const clusterCIDR6 = clusterCIDR6Raw !== undefined ? cidr6(clusterCIDR6Raw, 'clusterCIDR6') : undefined;
  if (clusterCIDR6 !== undefined) {
    const prefix = Number(clusterCIDR6.split('/')[1]);
    if (prefix < 8 || prefix > 126) {
      throw new ConfigError('clusterCIDR6', `${clusterCIDR6}: the prefix must be from /8 to /126 (it becomes one route via the TUN device)`);
    }
    if (mtu < IPV6_MIN_MTU) {
      throw new ConfigError('mtu', `${mtu} is below ${IPV6_MIN_MTU}, the IPv6 minimum link MTU (RFC 8200 section 5); with clusterCIDR6 set, mtu must be at least ${IPV6_MIN_MTU}`);
    }
  }
  const podCIDR6Raw = optString(o, 'podCIDR6');
  let podCIDR6: string | undefined;
  if (podCIDR6Raw !== undefined) {
    podCIDR6 = cidr6(podCIDR6Raw, 'podCIDR6');
    if (clusterCIDR6 === undefined) throw new ConfigError('podCIDR6', `${podCIDR6} needs clusterCIDR6 (all IPv6 pod addresses of the cluster) to be set too`);
    if (!cidr6Inside(podCIDR6, clusterCIDR6)) throw new ConfigError('podCIDR6', `${podCIDR6} is not inside clusterCIDR6 ${clusterCIDR6}`);
  } else if (clusterCIDR6 !== undefined && !inKube) {
    throw new ConfigError('podCIDR6', `missing: clusterCIDR6 is set, so this node needs its own IPv6 pod CIDR (e.g. a /64 inside ${clusterCIDR6})`);
  }
  const underlayRaw = kubeUnderlay ?? optString(o, 'underlayIP');
  const underlayIP = underlayRaw !== undefined ? ipv4(underlayRaw, 'underlayIP') : inKube ? '' : ipv4(requireString(o, 'underlayIP'), 'underlayIP');

  const macRaw = optString(o, 'vtepMAC');
  let vtepMAC = '';
  if (macRaw !== undefined) {
    const m = normaliseMAC(macRaw);
    if (!m) throw new ConfigError('vtepMAC', `"${macRaw}" is not a unicast MAC address (want xx:xx:xx:xx:xx:xx, first octet even)`);
    vtepMAC = m;
  } else if (!inKube) {
    vtepMAC = deriveVtepMAC(node);
  }

  const metricsAddr = optString(o, 'metricsAddr') ?? DEFAULTS.metricsAddr;
  parseHostPort(metricsAddr, 'metricsAddr');
  const perPeerMetrics = optBool(o, 'perPeerMetrics', '') ?? false;
  const cniConfDir = optString(o, 'cniConfDir');
  const ipMasq = optBool(o, 'ipMasq', '') ?? true;
  const runDir = optString(o, 'runDir') ?? DEFAULTS.runDir;
  if (!runDir.startsWith('/')) throw new ConfigError('runDir', `"${runDir}" is not an absolute path (the default is ${DEFAULTS.runDir})`);

  const off = o.offloads === undefined ? {} : asObject(o.offloads, 'offloads');
  unknownKeys(off, OFFLOAD_KEYS, 'offloads.');
  const offloads = {
    tun: optBool(off, 'tun', 'offloads.') ?? true,
    udpGso: optBool(off, 'udpGso', 'offloads.') ?? true,
    udpGro: optBool(off, 'udpGro', 'offloads.') ?? true,
    remoteChecksum: optBool(off, 'remoteChecksum', 'offloads.') ?? true,
  };
  const tun = o.tuning === undefined ? {} : asObject(o.tuning, 'tuning');
  unknownKeys(tun, TUNING_KEYS, 'tuning.');
  const senders = optInt(tun, 'senders', 1, 128, 'tuning.') ?? DEFAULTS.senders;
  if ((senders & (senders - 1)) !== 0) throw new ConfigError('tuning.senders', `${senders} is not a power of two`);
  const batch = optInt(tun, 'batch', 1, 1024, 'tuning.');
  const tuning: TuningConfig = {
    ...(batch !== undefined ? { batch } : {}),
    socketBuffer: optInt(tun, 'socketBuffer', 65536, 1 << 30, 'tuning.') ?? DEFAULTS.socketBuffer,
    senders,
    tunQueueLength: optInt(tun, 'tunQueueLength', 16, 100_000, 'tuning.') ?? DEFAULTS.tunQueueLength,
    queues: optInt(tun, 'queues', 1, 64, 'tuning.') ?? defaultQueues(),
  };

  let peersFile = optString(o, 'peersFile');
  if (peersFile !== undefined && ctx.path) peersFile = resolve(dirname(ctx.path), peersFile);
  let peersRaw: unknown = o.peers ?? [];
  if (peersFile !== undefined) {
    if (o.peers !== undefined) throw new ConfigError('peersFile', 'give either "peers" or "peersFile", not both');
    peersRaw = readPeersFile(peersFile);
  }
  if (inKube && (o.peers !== undefined || peersFile !== undefined)) {
    throw new ConfigError(o.peers !== undefined ? 'peers' : 'peersFile', 'static peers cannot be combined with peerSource "kubernetes" (peers come from the Node objects)');
  }
  const peers = checkPeers(peersRaw, {
    node, underlayIP, podCIDR, clusterCIDR, port, vni,
    ...(clusterCIDR6 !== undefined ? { clusterCIDR6 } : {}), ...(podCIDR6 !== undefined ? { podCIDR6 } : {}),
  });

  return {
    node, device, vni, port, underlayIP, clusterCIDR, podCIDR, vtepMAC, mtu, underlayMTU, mtuFrom, metricsAddr, perPeerMetrics, runDir,
    ...(clusterCIDR6 !== undefined ? { clusterCIDR6 } : {}), ...(podCIDR6 !== undefined ? { podCIDR6 } : {}),
    peerSource, peers, offloads, tuning, ipMasq,
    kubernetes: {
      annotationPrefix,
      ...(optString(kube, 'kubeconfig', 'kubernetes.') !== undefined || ov.kubeconfig !== undefined
        ? { kubeconfig: ov.kubeconfig ?? optString(kube, 'kubeconfig', 'kubernetes.') } : {}),
      ...(ov.iface ?? optString(kube, 'iface', 'kubernetes.') ? { iface: ov.iface ?? optString(kube, 'iface', 'kubernetes.') } : {}),
      ...(kubeUnderlay !== undefined ? { underlayIP: kubeUnderlay } : {}),
    },
    ...(cniConfDir !== undefined ? { cniConfDir } : {}),
    ...(peersFile !== undefined ? { peersFile } : {}),
    ...(ctx.path !== undefined ? { path: ctx.path } : {}),
  };
}

/**
 * Worker pairs when the config names none: one per two cores (each pair is two busy threads
 * under load), at least one, at most eight (past that the kernel's own softirq work, which the
 * pairs leave to the other cores, dominates; docs/performance.md has the model).
 */
export function defaultQueues(cores = availableParallelism()): number {
  return Math.max(1, Math.min(8, Math.floor(cores / 2)));
}

export function readPeersFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('peersFile', `cannot read ${path}: ${(err as Error).message}`);
  }
  const v = parseConfigText(text, path);
  if (Array.isArray(v)) return v;
  if (v && typeof v === 'object' && 'peers' in v) return (v as Obj).peers;
  throw new ConfigError('peersFile', `${path} must hold a list of peers or {"peers": [...]}`);
}

interface Self {
  node: string; underlayIP: string; podCIDR: string; clusterCIDR: string; port: number; vni: number;
  /** Set when this node carries IPv6 pods; peers' IPv6 CIDRs are refused without it. */
  clusterCIDR6?: string;
  podCIDR6?: string;
}

/** Checks a peer list against itself and against this node. Used for file and reloads. */
export function checkPeers(raw: unknown, self: Self): Peer[] {
  if (!Array.isArray(raw)) throw new ConfigError('peers', 'must be a list');
  const peers: Peer[] = [];
  const byName = new Map<string, number>();
  const byUnderlay = new Map<string, number>();
  const owned: Array<{ cidr: string; who: string }> = self.podCIDR ? [{ cidr: self.podCIDR, who: `this node (${self.node})` }] : [];
  const owned6: Array<{ cidr: string; who: string }> = self.podCIDR6 ? [{ cidr: self.podCIDR6, who: `this node (${self.node})` }] : [];
  raw.forEach((p, i) => {
    const f = `peers[${i}].`;
    const po = asObject(p, `peers[${i}]`);
    unknownKeys(po, PEER_KEYS, f);
    const node = requireString(po, 'node', f);
    if (node === self.node) throw new ConfigError(`${f}node`, `"${node}" is this node itself; list only other nodes`);
    const dup = byName.get(node);
    if (dup !== undefined) throw new ConfigError(`${f}node`, `duplicate peer "${node}" (also peers[${dup}])`);
    byName.set(node, i);
    const underlayIP = ipv4(requireString(po, 'underlayIP', f), `${f}underlayIP`);
    if (underlayIP === self.underlayIP) throw new ConfigError(`${f}underlayIP`, `${underlayIP} is this node's own underlayIP`);
    const dupU = byUnderlay.get(underlayIP);
    if (dupU !== undefined) throw new ConfigError(`${f}underlayIP`, `${underlayIP} is already peers[${dupU}]'s underlayIP`);
    byUnderlay.set(underlayIP, i);
    let cidrs: string[];
    if (po.podCIDRs !== undefined) {
      if (!Array.isArray(po.podCIDRs) || po.podCIDRs.length === 0) throw new ConfigError(`${f}podCIDRs`, 'must be a non-empty list of CIDRs');
      cidrs = po.podCIDRs.map((c, j) => anyCidr(String(c), `${f}podCIDRs[${j}]`));
    } else {
      cidrs = [anyCidr(requireString(po, 'podCIDR', f), `${f}podCIDR`)];
    }
    cidrs.forEach((c, j) => {
      const field = po.podCIDRs !== undefined ? `${f}podCIDRs[${j}]` : `${f}podCIDR`;
      if (looksLikeIpv6(c)) {
        if (self.clusterCIDR6 === undefined) {
          throw new ConfigError(field, `${c} is an IPv6 CIDR, but this node has no clusterCIDR6; set clusterCIDR6 and podCIDR6 to carry IPv6 pods, or list only IPv4 CIDRs`);
        }
        if (!cidr6Inside(c, self.clusterCIDR6)) throw new ConfigError(field, `${c} is not inside clusterCIDR6 ${self.clusterCIDR6}`);
        for (const other of owned6) {
          if (cidr6Overlaps(parseCidr6(c), parseCidr6(other.cidr))) throw new ConfigError(field, `${c} overlaps ${other.cidr} of ${other.who}`);
        }
        owned6.push({ cidr: c, who: `peer "${node}"` });
        return;
      }
      if (!cidrInside(c, self.clusterCIDR)) throw new ConfigError(field, `${c} is not inside clusterCIDR ${self.clusterCIDR}`);
      for (const other of owned) {
        if (cidrOverlap(c, other.cidr)) throw new ConfigError(field, `${c} overlaps ${other.cidr} of ${other.who}`);
      }
      owned.push({ cidr: c, who: `peer "${node}"` });
    });
    if (cidrs.every(looksLikeIpv6)) {
      throw new ConfigError(po.podCIDRs !== undefined ? `${f}podCIDRs` : `${f}podCIDR`, 'needs an IPv4 CIDR: every node has an IPv4 pod CIDR, and IPv6 ones come in addition to it');
    }
    const macRaw = requireString(po, 'vtepMAC', f);
    const vtepMAC = normaliseMAC(macRaw);
    if (!vtepMAC) throw new ConfigError(`${f}vtepMAC`, `"${macRaw}" is not a unicast MAC address (want xx:xx:xx:xx:xx:xx, first octet even)`);
    const port = optInt(po, 'port', 1, 65535, f);
    const vni = optInt(po, 'vni', 0, 0xffffff, f);
    const remoteChecksum = optBool(po, 'remoteChecksum', f);
    peers.push({
      node, underlayIP, podCIDRs: cidrs, vtepMAC, ...(port !== undefined ? { port } : {}), ...(vni !== undefined ? { vni } : {}),
      ...(remoteChecksum ? { remoteChecksum } : {}),
    });
  });
  return peers;
}

// ---- small typed readers; each names the field on failure ----

function asObject(v: unknown, field: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(field, 'must be an object');
  return v as Obj;
}

function unknownKeys(o: Obj, allowed: readonly string[], prefix: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ConfigError(`${prefix}${k}`, `unknown field (known: ${allowed.join(', ')})`);
  }
}

function optString(o: Obj, key: string, prefix = ''): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${prefix}${key}`, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function requireString(o: Obj, key: string, prefix = ''): string {
  const v = optString(o, key, prefix);
  if (v === undefined) throw new ConfigError(`${prefix}${key}`, 'missing');
  return v;
}

function optInt(o: Obj, key: string, min: number, max: number, prefix: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${prefix}${key}`, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function optBool(o: Obj, key: string, prefix: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(`${prefix}${key}`, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optEnum<T extends string>(o: Obj, key: string, values: readonly T[]): T | undefined {
  const v = optString(o, key);
  if (v === undefined) return undefined;
  if (!values.includes(v as T)) throw new ConfigError(key, `must be one of ${values.join(', ')}, got "${v}"`);
  return v as T;
}

export function ipv4(s: string, field: string): string {
  if (!ipaddr.IPv4.isValidFourPartDecimal(s)) throw new ConfigError(field, `"${s}" is not an IPv4 address (a.b.c.d)`);
  return s;
}

/** Checks an IPv4 CIDR with no host bits set; returns it normalised. */
export function cidr(s: string, field: string): string {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m || !ipaddr.IPv4.isValidFourPartDecimal(m[1]!) || Number(m[2]) > 32) {
    throw new ConfigError(field, `"${s}" is not an IPv4 CIDR (a.b.c.d/len)`);
  }
  const addr = ipaddr.IPv4.parse(m[1]!);
  const len = Number(m[2]);
  const net = ipaddr.IPv4.networkAddressFromCIDR(`${m[1]}/${len}`);
  if (net.toString() !== addr.toString()) {
    throw new ConfigError(field, `"${s}" has host bits set; did you mean ${net.toString()}/${len}?`);
  }
  return `${net.toString()}/${len}`;
}

/** Checks an IPv6 CIDR with no host bits set; returns it normalised (RFC 5952 address). */
export function cidr6(s: string, field: string): string {
  let p: ReturnType<typeof parseCidr6>;
  try {
    p = parseCidr6(s.trim());
  } catch {
    throw new ConfigError(field, `"${s}" is not an IPv6 CIDR (address/len, e.g. fd00:10:244::/56)`);
  }
  if (p.hostBitsSet) throw new ConfigError(field, `"${s}" has host bits set; did you mean ${formatCidr6(p)}?`);
  return formatCidr6(p);
}

/** An IPv4 or (when it has a colon) IPv6 CIDR, checked and normalised. */
function anyCidr(s: string, field: string): string {
  return looksLikeIpv6(s) ? cidr6(s, field) : cidr(s, field);
}

export function cidr6Inside(inner: string, outer: string): boolean {
  return cidr6Contains(parseCidr6(outer), parseCidr6(inner));
}

function cidrParts(c: string): [ipaddr.IPv4, number] {
  return ipaddr.IPv4.parseCIDR(c);
}

export function cidrInside(inner: string, outer: string): boolean {
  const [ia, il] = cidrParts(inner);
  const [oa, ol] = cidrParts(outer);
  return il >= ol && ia.match(oa, ol);
}

export function cidrOverlap(a: string, b: string): boolean {
  return cidrInside(a, b) || cidrInside(b, a);
}

export function parseHostPort(s: string, field: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(field, `"${s}" is not host:port (e.g. 127.0.0.1:9469)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
