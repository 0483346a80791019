/**
 * Configuration checking: the plain value read from a JSON or YAML file (`config-text.ts`)
 * becomes a checked `AgentConfig`.
 *
 * Every problem is reported as a `ConfigError` that names the field in the file's own terms
 * (`peers[1].vtepMAC`), says what was wrong and what would be right. Unknown fields are errors
 * too, so a typo never silently becomes a default. Checks that need the whole picture run here,
 * before the data path sees anything: pod CIDRs inside the cluster CIDR, no two owners of one
 * address, no duplicate peers, names, underlay addresses or VTEP MACs, and no cluster CIDR that
 * would route the node's own traffic into the TUN device. A live reload that fails them keeps
 * the running table.
 *
 * Scale. The checks across peers sort instead of comparing pairs (`table/conflicts.ts`), so a
 * peer list costs n log n; each peer is parsed once, and the parse is kept for the table build
 * (`table/snapshot.ts`). Measurements are in docs/configuration.md.
 */
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { AgentConfig, TuningConfig } from './config-types.js';
import type { Peer } from '../peers/source.js';
import type { LogFn } from './log.js';
import { deriveVtepMAC } from './mac.js';
import { parseConfigValue, readBoundedBytes, TextFileError } from './config-text.js';
import {
  cidr6Contains, cidrContains, cidrContainsAddress, formatCidr4, formatCidr6, ipv4ToNumber, looksLikeIpv6,
  ipv6ToBigInt, macToNumber, numberToIpv4, numberToMac, parseCidr4, parseCidr6, parseUnicastMac, SPECIAL_IPV4, specialRange4, specialRange6, type Cidr4, type Cidr6,
} from '../wire/addr.js';
import { findOverlaps, firstDuplicate, firstDuplicateString, type Block } from '../table/conflicts.js';
import { DEFAULT_RUN_DIR } from '../node/lock.js';
import { factsKey, rememberAddresses, rememberChecked } from '../table/snapshot.js';

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
/** A peer list at least this long is logged when its check starts and ends. */
export const LARGE_PEER_LIST = 1000;

/** Environment variables the agent reads (the DaemonSet's env is checked against this list). */
export const AGENT_ENV = ['NODE_NAME', 'KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'VXNET_LOG_LEVEL', 'VXNET_TAKEOVER', 'POD_UID'] as const;

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
const NO_CIDR6: readonly Cidr6[] = [];
const MAC_WHY = 'every VTEP needs its own (kernel VXLAN peers key their forwarding entries by MAC)';
/**
 * A Kubernetes node name: a lower-case RFC 1123 DNS subdomain, 1 to 253 characters of a-z 0-9 .
 * and -, starting and ending with a letter or digit. Peers' names go into metric labels, so a
 * quote or a newline must never pass. A scanner: the equivalent regex costs several times more
 * per name, and a large peer list has tens of thousands.
 */
export function isNodeName(s: string): boolean {
  const n = s.length;
  if (n < 1 || n > 253) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const alnum = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
    if (!alnum && (i === 0 || i === n - 1 || (c !== 0x2d && c !== 0x2e))) return false;
  }
  return true;
}

type Obj = Record<string, unknown>;

/** Overrides from the command line or environment, applied before validation. */
export interface ConfigOverrides {
  readonly node?: string;
  readonly kubeconfig?: string;
  readonly underlayIP?: string;
  readonly iface?: string;
  readonly peerSource?: 'static' | 'kubernetes';
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Where to say that a large peer list is being checked, and how long it took. */
  readonly log?: LogFn;
  /** Told the bytes of every file read (the config, its peers file), e.g. to fingerprint them. */
  readonly onRead?: OnRead;
}

/** Called with the path and the bytes of each file the config loader read. */
export type OnRead = (path: string, bytes: Uint8Array) => void;

/** Reads and checks a config file. Every failure is a ConfigError naming the file. */
export function loadConfigFile(path: string, overrides: ConfigOverrides = {}, opts: LoadOptions = {}): AgentConfig {
  const raw = readValue(path, (err) => new ConfigError('(file)', err.reason, path), opts.onRead);
  try {
    return checkConfig(raw, {
      path, overrides, env: opts.env ?? process.env, ...(opts.log ? { log: opts.log } : {}), ...(opts.onRead ? { onRead: opts.onRead } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError && !err.file) throw new ConfigError(err.field, detailOf(err), path);
    throw err;
  }
}

/** Reads and parses a config or peers file; `fail` turns the reason into the caller's error. */
function readValue(path: string, fail: (err: TextFileError) => ConfigError, onRead?: OnRead): unknown {
  try {
    const bytes = readBoundedBytes(path);
    onRead?.(path, bytes);
    return parseConfigValue(bytes.toString('utf8'), path);
  } catch (err) {
    if (err instanceof TextFileError) throw fail(err);
    throw err;
  }
}

function detailOf(err: ConfigError): string {
  return err.message.replace(/^field "[^"]*": /, '');
}

interface CheckContext { path?: string; overrides?: ConfigOverrides; env?: NodeJS.ProcessEnv; log?: LogFn; onRead?: OnRead }

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
  if (!isNodeName(node)) throw new ConfigError('node', `${describe(node)} is not a valid node name (lower-case DNS subdomain)`);
  const device = optString(o, 'device') ?? DEFAULTS.device;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(device)) throw new ConfigError('device', `${describe(device)} is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
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
  const cluster = parseCidr4(clusterCIDR);
  if (cluster.prefix < 8 || cluster.prefix > 30) {
    // The cluster CIDR becomes a route via the TUN device: /0 would replace the default route.
    throw new ConfigError('clusterCIDR', `${clusterCIDR}: the prefix must be from /8 to /30 (it becomes one route via the TUN device)`);
  }
  const special = specialRange4(cluster);
  if (special) {
    throw new ConfigError('clusterCIDR', `${clusterCIDR} overlaps ${formatCidr4(special.cidr)}, ${special.what}; routing it into the TUN device would break the node. Use private space such as 10.244.0.0/16`);
  }
  const inKube = peerSource === 'kubernetes';
  const podCIDRRaw = optString(o, 'podCIDR');
  const podCIDR = podCIDRRaw !== undefined ? cidr(podCIDRRaw, 'podCIDR') : inKube ? '' : cidr(requireString(o, 'podCIDR'), 'podCIDR');
  if (podCIDR && !cidrContains(cluster, parseCidr4(podCIDR))) {
    throw new ConfigError('podCIDR', `${podCIDR} is not inside clusterCIDR ${clusterCIDR}`);
  }
  // Dual stack: IPv6 pods are optional and come on top of IPv4 ones (the underlay stays IPv4).
  const clusterCIDR6Raw = optString(o, 'clusterCIDR6');
  const clusterCIDR6 = clusterCIDR6Raw !== undefined ? cidr6(clusterCIDR6Raw, 'clusterCIDR6') : undefined;
  if (clusterCIDR6 !== undefined) {
    const c6 = parseCidr6(clusterCIDR6);
    if (c6.prefix < 8 || c6.prefix > 126) {
      throw new ConfigError('clusterCIDR6', `${clusterCIDR6}: the prefix must be from /8 to /126 (it becomes one route via the TUN device)`);
    }
    const special6 = specialRange6(c6);
    if (special6) {
      throw new ConfigError('clusterCIDR6', `${clusterCIDR6} overlaps ${formatCidr6(special6.cidr)}, ${special6.what}; routing it into the TUN device would break the node. Use a unique local range such as fd00:10:244::/56`);
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
  const underlayField = kubeUnderlay !== undefined ? 'kubernetes.underlayIP' : 'underlayIP';
  const underlayIP = underlayRaw !== undefined ? ipv4(underlayRaw, underlayField) : inKube ? '' : ipv4(requireString(o, 'underlayIP'), 'underlayIP');
  if (underlayIP) checkUnderlay(ipv4ToNumber(underlayIP), '', underlayField, cluster);

  const macRaw = optString(o, 'vtepMAC');
  let vtepMAC = '';
  if (macRaw !== undefined) vtepMAC = numberToMac(unicastMac(macRaw, '', 'vtepMAC'));
  else if (!inKube) vtepMAC = deriveVtepMAC(node);

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
  if (inKube && (o.peers !== undefined || peersFile !== undefined)) {
    throw new ConfigError(o.peers !== undefined ? 'peers' : 'peersFile', 'static peers cannot be combined with peerSource "kubernetes" (peers come from the Node objects)');
  }
  let peersRaw: unknown = o.peers ?? [];
  if (peersFile !== undefined) {
    if (o.peers !== undefined) throw new ConfigError('peersFile', 'give either "peers" or "peersFile", not both');
    peersRaw = readPeersFile(peersFile, ctx.onRead);
  }
  const self: PeerCheckSelf = {
    node, underlayIP, podCIDR, clusterCIDR, vtepMAC,
    ...(clusterCIDR6 !== undefined ? { clusterCIDR6 } : {}), ...(podCIDR6 !== undefined ? { podCIDR6 } : {}),
  };
  const peers = checkPeers(peersRaw, self, { ...(ctx.log ? { log: ctx.log } : {}), source: peersFile ?? ctx.path ?? '(config)' });

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
 * Queues (one worker thread each) when the config names none: one per two cores, leaving the
 * other half to the kernel's own work on the same packets (softirq, TCP, the pods), at least
 * one, at most eight (docs/performance.md has the model).
 */
export function defaultQueues(cores = availableParallelism()): number {
  return Math.max(1, Math.min(8, Math.floor(cores / 2)));
}

/**
 * The checks that need facts Kubernetes mode learns only from the cluster (the underlay address):
 * run once those are filled in. Static mode ran them in `checkConfig` already.
 */
export function checkNodeFacts(cfg: Pick<AgentConfig, 'underlayIP' | 'clusterCIDR'>): void {
  checkUnderlay(ipv4Field(cfg.underlayIP, '', 'underlayIP'), '', 'underlayIP', parseCidr4(cfg.clusterCIDR));
}

export function readPeersFile(path: string, onRead?: OnRead): unknown {
  const v = readValue(path, (err) => new ConfigError('peersFile', err.message), onRead);
  if (Array.isArray(v)) return v;
  if (v && typeof v === 'object' && 'peers' in v) return (v as Obj).peers;
  throw new ConfigError('peersFile', `${path} must hold a list of peers or {"peers": [...]}`);
}

/** What the peer checks need to know about this node. */
export type PeerCheckSelf = Pick<AgentConfig, 'node' | 'underlayIP' | 'podCIDR' | 'clusterCIDR' | 'vtepMAC' | 'clusterCIDR6' | 'podCIDR6'>;

/** A pod CIDR on its way through the overlap sweep, with what an error must say about it. */
interface CheckedCidr<T extends number | bigint> extends Block<T> {
  readonly text: string;
  /** Index of the peer, or -1 for this node. */
  readonly entry: number;
  /** Index in the peer's `podCIDRs`, or -1 for its `podCIDR` (this node: its podCIDR or podCIDR6). */
  readonly index: number;
}

/**
 * Checks a peer list against itself and against this node: used for the file, the peers file
 * and every reload. Each entry is checked on its own first (fields, addresses, nothing equal to
 * this node's); then all entries at once, in this order: duplicate names, duplicate underlay
 * addresses, duplicate MACs, overlapping pod CIDRs. Each of those reports the earliest
 * entry that clashes with an earlier one, as a reading from the top would find it. Field names
 * and node descriptions for messages are built only when there is a message: this loop runs
 * once per peer, tens of thousands of times.
 */
export function checkPeers(raw: unknown, self: PeerCheckSelf, opts: { log?: LogFn; source?: string } = {}): Peer[] {
  if (!Array.isArray(raw)) throw new ConfigError('peers', 'must be a list');
  const started = Date.now();
  const large = raw.length >= LARGE_PEER_LIST && opts.log !== undefined;
  if (large) opts.log!('info', 'checking a large peer list', { peers: raw.length, source: opts.source });
  const cluster = parseCidr4(self.clusterCIDR);
  const cluster6 = self.clusterCIDR6 !== undefined ? parseCidr6(self.clusterCIDR6) : undefined;
  const selfUnderlay = self.underlayIP ? ipv4ToNumber(self.underlayIP) : -1;
  const selfMAC = self.vtepMAC ? macToNumber(self.vtepMAC) : -1;
  const v4: Array<CheckedCidr<number>> = [];
  const v6: Array<CheckedCidr<bigint>> = [];
  let seq = 0;
  if (self.podCIDR) v4.push(block4(parseCidr4(self.podCIDR), self.podCIDR, -1, -1, seq++));
  if (self.podCIDR6) v6.push(block6(parseCidr6(self.podCIDR6), self.podCIDR6, -1, -1, seq++));
  const underlays = new Float64Array(raw.length);
  const macs = new Float64Array(raw.length);
  const peers: Peer[] = [];
  for (let i = 0; i < raw.length; i++) {
    const f = `peers[${i}].`;
    const po = asObject(raw[i], `peers[${i}]`);
    unknownKeys(po, PEER_KEYS, f);
    const node = requireString(po, 'node', f);
    if (!isNodeName(node)) throw new ConfigError(`${f}node`, `${describe(node)} is not a valid node name (lower-case DNS subdomain, as Kubernetes names nodes)`);
    if (node === self.node) throw new ConfigError(`${f}node`, `"${node}" is this node itself; list only other nodes`);

    const underlayIP = requireString(po, 'underlayIP', f);
    const underlay = ipv4Field(underlayIP, f, 'underlayIP');
    if (underlay === selfUnderlay) throw new ConfigError(`${f}underlayIP`, `${underlayIP} is this node's own underlayIP`);
    checkUnderlay(underlay, f, 'underlayIP', cluster, node);
    underlays[i] = underlay;

    const listed = po.podCIDRs !== undefined;
    let texts: unknown[] | undefined;
    if (listed) {
      if (!Array.isArray(po.podCIDRs) || po.podCIDRs.length === 0) throw new ConfigError(`${f}podCIDRs`, 'must be a non-empty list of CIDRs');
      texts = po.podCIDRs;
    }
    const count = texts === undefined ? 1 : texts.length;
    const cidrs: string[] = [];
    const parsed4: Cidr4[] = [];
    let parsed6: Cidr6[] | undefined;
    let hasV4 = false;
    for (let j = 0; j < count; j++) {
      const t = texts === undefined ? requireString(po, 'podCIDR', f) : texts[j];
      const key = texts === undefined ? -1 : j;
      if (typeof t !== 'string') throw new ConfigError(cidrFieldName(i, key), `must be a CIDR string, got ${describe(t)}`);
      if (looksLikeIpv6(t)) {
        const c = cidr6Field(t, f, key);
        const text = formatCidr6(c);
        if (cluster6 === undefined) {
          throw new ConfigError(cidrFieldName(i, key), `${text} is an IPv6 CIDR, but this node has no clusterCIDR6; set clusterCIDR6 and podCIDR6 to carry IPv6 pods, or list only IPv4 CIDRs`);
        }
        if (!cidr6Contains(cluster6, c)) throw new ConfigError(cidrFieldName(i, key), `${text} is not inside clusterCIDR6 ${self.clusterCIDR6}`);
        v6.push(block6(c, text, i, key, seq++));
        cidrs.push(text);
        (parsed6 ??= []).push(c);
      } else {
        // The strict parser accepts only the canonical text, so the input is its own normal form.
        const c = cidrField(t, f, key);
        if (!cidrContains(cluster, c)) throw new ConfigError(cidrFieldName(i, key), `${t} is not inside clusterCIDR ${self.clusterCIDR}`);
        v4.push(block4(c, t, i, key, seq++));
        cidrs.push(t);
        parsed4.push(c);
        hasV4 = true;
      }
    }
    if (!hasV4) {
      throw new ConfigError(listed ? `${f}podCIDRs` : `${f}podCIDR`, 'needs an IPv4 CIDR: every node has an IPv4 pod CIDR, and IPv6 ones come in addition to it');
    }

    const macText = requireString(po, 'vtepMAC', f);
    const mac = unicastMac(macText, f, 'vtepMAC');
    // Already in normal form (colons, lower case) is the common case: keep the string.
    const vtepMAC = macText.charCodeAt(2) === 0x3a && !/[A-F]/.test(macText) ? macText : numberToMac(mac);
    if (mac === selfMAC) throw new ConfigError(`${f}vtepMAC`, `${vtepMAC} is this node's own vtepMAC; ${MAC_WHY}`);
    macs[i] = mac;
    const port = optInt(po, 'port', 1, 65535, f);
    const vni = optInt(po, 'vni', 0, 0xffffff, f);
    const peer: { -readonly [K in keyof Peer]: Peer[K] } = { node, underlayIP, podCIDRs: cidrs, vtepMAC };
    if (port !== undefined) peer.port = port;
    if (vni !== undefined) peer.vni = vni;
    if (optBool(po, 'remoteChecksum', f)) peer.remoteChecksum = true;
    peers.push(peer);
    rememberAddresses(peer, { underlay, mac, v4: parsed4, v6: parsed6 ?? NO_CIDR6 });
  }
  const dupN = firstDuplicateString(peers.map((p) => p.node));
  if (dupN !== undefined) throw new ConfigError(`peers[${dupN.later}].node`, `duplicate peer "${peers[dupN.later]!.node}" (also peers[${dupN.earlier}])`);
  const dupU = firstDuplicate(underlays);
  if (dupU !== undefined) {
    throw new ConfigError(`peers[${dupU.later}].underlayIP`, `${peers[dupU.later]!.underlayIP} is already peers[${dupU.earlier}]'s underlayIP`);
  }
  const dupM = firstDuplicate(macs);
  if (dupM !== undefined) {
    throw new ConfigError(`peers[${dupM.later}].vtepMAC`, `${peers[dupM.later]!.vtepMAC} is already peers[${dupM.earlier}]'s vtepMAC; ${MAC_WHY}`);
  }
  const ownerOf = (b: CheckedCidr<number | bigint>): string => (b.entry < 0 ? `this node (${self.node})` : `peer "${peers[b.entry]!.node}"`);
  for (const blocks of [v4, v6] as Array<ReadonlyArray<CheckedCidr<number | bigint>>>) {
    const first = findOverlaps(blocks).first;
    if (first === undefined) continue;
    const later = blocks[first.later]!;
    const earlier = blocks[first.earlier]!;
    throw new ConfigError(cidrFieldName(later.entry, later.index), `${later.text} overlaps ${earlier.text} of ${ownerOf(earlier)}`);
  }
  if (large) opts.log!('info', 'peer list checked', { peers: peers.length, ms: Date.now() - started, source: opts.source });
  rememberChecked(peers, factsKey(self));
  return peers;
}

/** `peers[i].podCIDR` or `peers[i].podCIDRs[j]` (j >= 0). Entry -1 is this node (never the later of a pair). */
function cidrFieldName(entry: number, index: number): string {
  return index < 0 ? `peers[${entry}].podCIDR` : `peers[${entry}].podCIDRs[${index}]`;
}

function block4(c: Cidr4, text: string, entry: number, index: number, seq: number): CheckedCidr<number> {
  return { start: c.net, end: c.net + 2 ** (32 - c.prefix), seq, text, entry, index };
}

function block6(c: Cidr6, text: string, entry: number, index: number, seq: number): CheckedCidr<bigint> {
  return { start: c.net, end: c.net + (1n << BigInt(128 - c.prefix)), seq, text, entry, index };
}

/**
 * An underlay address must be one the node can send VXLAN to: not inside the cluster CIDR
 * (the route to the TUN device would swallow the datagrams, a loop), and not an address that
 * is nobody's (0.0.0.0/8), a group (multicast) or reserved/broadcast. `node` is undefined for
 * this node.
 */
function checkUnderlay(addr: number, prefix: string, key: string, cluster: Cidr4, node?: string): void {
  const who = (): string => (node === undefined ? 'this node' : `peer "${node}"`);
  if (cidrContainsAddress(cluster, addr)) {
    throw new ConfigError(`${prefix}${key}`, `${numberToIpv4(addr)} (${who()}) is inside clusterCIDR ${formatCidr4(cluster)}: VXLAN datagrams to it would be routed into the TUN device. The cluster CIDR must not contain any node's underlay address`);
  }
  for (const r of SPECIAL_IPV4) {
    if (!r.hostAddress && cidrContainsAddress(r.cidr, addr)) {
      throw new ConfigError(`${prefix}${key}`, `${numberToIpv4(addr)} (${who()}) is in ${formatCidr4(r.cidr)}, ${r.what}, which cannot be a node's underlay address`);
    }
  }
}

// ---- small typed readers; each names the field on failure ----

/** A value as an error message shows it: strings quoted and cut short, never a whole object. */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v !== null && typeof v === 'object') return 'an object';
  return String(v);
}

function asObject(v: unknown, field: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(field, `must be an object, got ${describe(v)}`);
  return v as Obj;
}

function unknownKeys(o: Obj, allowed: readonly string[], prefix: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ConfigError(`${prefix}${k.length > 80 ? `${k.slice(0, 77)}...` : k}`, `unknown field (known: ${allowed.join(', ')})`);
  }
}

function optString(o: Obj, key: string, prefix = ''): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${prefix}${key}`, `must be a non-empty string, got ${describe(v)}`);
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
    throw new ConfigError(`${prefix}${key}`, `must be an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

function optBool(o: Obj, key: string, prefix: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(`${prefix}${key}`, `must be true or false, got ${describe(v)}`);
  return v;
}

function optEnum<T extends string>(o: Obj, key: string, values: readonly T[]): T | undefined {
  const v = optString(o, key);
  if (v === undefined) return undefined;
  if (!values.includes(v as T)) throw new ConfigError(key, `must be one of ${values.join(', ')}, got ${describe(v)}`);
  return v as T;
}

// ---- addresses: the parsers of wire/addr.ts, with the field named on failure ----

/** `prefix` + `key` names the field; a number key is an index into `podCIDRs` (-1: `podCIDR`). */
function fieldName(prefix: string, key: string | number): string {
  if (typeof key === 'string') return `${prefix}${key}`;
  return key < 0 ? `${prefix}podCIDR` : `${prefix}podCIDRs[${key}]`;
}

function unicastMac(s: string, prefix: string, key: string): number {
  let n: number;
  try {
    n = macToNumber(s);
  } catch {
    throw new ConfigError(fieldName(prefix, key), `${describe(s)} is not a MAC address: want six hex pairs, all separated by ":" (or all by "-"), like 02:00:00:00:00:01`);
  }
  try {
    return parseUnicastMac(s);
  } catch {
    const why = n === 0 ? 'it is all zeros' : 'its first octet is odd, which makes it a multicast or broadcast address';
    throw new ConfigError(fieldName(prefix, key), `${describe(s)} cannot be a VTEP MAC: ${why}; use a unicast one, like 02:00:00:00:00:01`);
  }
}

/** Checks a dotted-quad IPv4 address; returns it as a uint32. */
function ipv4Field(s: string, prefix: string, key: string): number {
  try {
    return ipv4ToNumber(s);
  } catch {
    throw new ConfigError(fieldName(prefix, key), `${describe(s)} is not an IPv4 address (a.b.c.d, decimal, no leading zeros)`);
  }
}

/** Checks a dotted-quad IPv4 address; returns it unchanged. */
export function ipv4(s: string, field: string): string {
  ipv4Field(s, '', field);
  return s;
}

/** Checks an IPv4 CIDR with no host bits set. */
function cidrField(s: string, prefix: string, key: string | number): Cidr4 {
  let p: ReturnType<typeof parseCidr4>;
  try {
    p = parseCidr4(s);
  } catch {
    throw new ConfigError(fieldName(prefix, key), `${describe(s)} is not an IPv4 CIDR (a.b.c.d/len)`);
  }
  if (p.hostBitsSet) throw new ConfigError(fieldName(prefix, key), `${describe(s)} has host bits set; did you mean ${formatCidr4(p)}?`);
  return p;
}

/** Checks an IPv4 CIDR with no host bits set; returns it normalised. */
export function cidr(s: string, field: string): string {
  return formatCidr4(cidrField(s, '', field));
}

/** Checks an IPv6 CIDR with no host bits set. */
function cidr6Field(s: string, prefix: string, key: string | number): Cidr6 {
  let p: ReturnType<typeof parseCidr6>;
  try {
    p = parseCidr6(s);
  } catch {
    throw new ConfigError(fieldName(prefix, key), `${describe(s)} is not an IPv6 CIDR (address/len, e.g. fd00:10:244::/56)`);
  }
  if (p.hostBitsSet) throw new ConfigError(fieldName(prefix, key), `${describe(s)} has host bits set; did you mean ${formatCidr6(p)}?`);
  return p;
}

/** Checks an IPv6 CIDR with no host bits set; returns it normalised (RFC 5952 address). */
export function cidr6(s: string, field: string): string {
  return formatCidr6(cidr6Field(s, '', field));
}

export function cidr6Inside(inner: string, outer: string): boolean {
  return cidr6Contains(parseCidr6(outer), parseCidr6(inner));
}

/**
 * `host:port` for the metrics server. The host must be an IP literal (IPv4, or IPv6 in
 * brackets), so a bad one fails here and not after the device is up; no name is resolved.
 */
export function parseHostPort(s: string, field: string): { host: string; port: number } {
  const bad = (why: string): ConfigError => new ConfigError(field, `${describe(s)} ${why}; e.g. 127.0.0.1:9469, 0.0.0.0:9469 or [::1]:9469`);
  const m = /^(\[[^\]]*\]|[^:[\]]*):([^:]*)$/.exec(s);
  if (!m) throw bad('is not host:port');
  const hostText = m[1]!;
  const portText = m[2]!;
  if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) throw bad('does not end in a port from 1 to 65535');
  let host: string;
  try {
    if (hostText.startsWith('[')) {
      host = hostText.slice(1, -1);
      ipv6ToBigInt(host);
    } else {
      host = hostText;
      ipv4ToNumber(host);
    }
  } catch {
    throw bad('does not start with an IP address (IPv4, or IPv6 in brackets; names are not resolved)');
  }
  return { host, port: Number(portText) };
}
