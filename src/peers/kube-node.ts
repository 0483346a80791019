/**
 * What a Kubernetes Node says about its VTEP, and the reverse: the annotations a node publishes.
 *
 * The format is flannel's, so a vxnet node and a flannel node can read each other. Each node
 * carries, under one annotation prefix (`flannel.alpha.coreos.com/` or our own `vxnet.io/`):
 *
 *   <prefix>/backend-type         "vxlan"
 *   <prefix>/backend-data         {"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}   (flannel's JSON, byte for byte)
 *   <prefix>/public-ip            the underlay IPv4 address its VTEP listens on
 *   <prefix>/kube-subnet-manager  "true"  (flannel's prefix only: flannel ignores nodes without it)
 *   vxnet.io/remote-checksum      "true"  (vxnet nodes, whatever the prefix: they finish inner
 *                                          checksums a sender leaves unfinished, VXLAN RCO)
 *
 * The pod CIDR is not an annotation: it is `spec.podCIDRs` (or the older `spec.podCIDR`), which the
 * node IPAM controller assigns. In a dual-stack cluster that list holds one CIDR per family; a
 * peer carries both (IPv4 first), and a node without an IPv4 one is not a peer, because the
 * IPv4 pod network is what every vxnet node has (IPv6 comes on top). When `public-ip` is missing we fall back to the node's InternalIP,
 * so a node annotated by hand (or by a tool that knows only backend-type/backend-data) still works.
 * `backend-data` may carry a `Port` field: our extension for nodes that listen on a port other than
 * the cluster's; flannel's decoder ignores unknown fields, and we never write it under flannel's
 * prefix.
 *
 * Everything here is pure and allocation-light: converting 5,000 nodes is one pass of string work,
 * no regular expressions per node (addresses are parsed by `wire/addr.ts`, the one parser of each).
 */
import type { Peer } from './source.js';
import { formatCidr4, formatCidr6, ipv4ToNumber, numberToIpv4, numberToMac, parseCidr4, parseCidr6, parseUnicastMac } from '../wire/addr.js';

/** flannel's annotation prefix; using it makes vxnet and flannel nodes peers of each other. */
export const FLANNEL_PREFIX = 'flannel.alpha.coreos.com';
/** Our own prefix: vxnet nodes only. */
export const VXNET_PREFIX = 'vxnet.io';
/** IANA assigns 4789 (RFC 7348 section 5); Linux and flannel default to 8472. */
export const FLANNEL_DEFAULT_PORT = 8472;

export interface AnnotationKeys {
  readonly prefix: string;
  readonly backendType: string;
  readonly backendData: string;
  readonly publicIP: string;
  /** Set by an operator to force the address a node publishes (flannel's name). */
  readonly publicIPOverwrite: string;
  readonly kubeSubnetManager: string;
  /** Our extension, under our own prefix even with flannel's: flannel ignores it, and flannel's
   * own keys stay exactly as flannel writes them. */
  readonly remoteChecksum: string;
  /** True when the prefix is flannel's: write flannel's exact format, including kube-subnet-manager. */
  readonly flannel: boolean;
}

/** An annotation prefix is a DNS subdomain, optionally followed by one `/name` part. */
const PREFIX_SYNTAX = /^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\/[a-z0-9_-]*)?\/?$/;

export class AnnotationPrefixError extends Error {
  override readonly name = 'AnnotationPrefixError';
}

/**
 * The annotation keys for a prefix. `vxnet.io` gives `vxnet.io/backend-type`; a prefix that
 * already holds a slash (`example.com/net`) gives `example.com/net-backend-type`, which is how
 * flannel treats such prefixes too.
 */
export function annotationKeys(prefix: string): AnnotationKeys {
  const p = prefix.trim();
  if (p === '' || p.length > 253 || !PREFIX_SYNTAX.test(p)) {
    throw new AnnotationPrefixError(
      `annotation prefix "${prefix}" is not a DNS subdomain (optionally with one "/name" part); ` +
        `use "${VXNET_PREFIX}" or "${FLANNEL_PREFIX}" in kubernetes.annotationPrefix`,
    );
  }
  let base: string;
  if (p.endsWith('/')) base = p;
  else if (p.includes('/')) base = p.endsWith('-') ? p : `${p}-`;
  else base = `${p}/`;
  return {
    prefix: p.replace(/\/$/, ''),
    backendType: `${base}backend-type`,
    backendData: `${base}backend-data`,
    publicIP: `${base}public-ip`,
    publicIPOverwrite: `${base}public-ip-overwrite`,
    kubeSubnetManager: `${base}kube-subnet-manager`,
    remoteChecksum: `${VXNET_PREFIX}/remote-checksum`,
    flannel: base === `${FLANNEL_PREFIX}/`,
  };
}

/** The parts of a Node we read. Both the client's V1Node and raw watch JSON fit this shape. */
export interface NodeLike {
  metadata?: { name?: string; annotations?: Record<string, string> | undefined; resourceVersion?: string } | undefined;
  spec?: { podCIDR?: string | undefined; podCIDRs?: string[] | undefined } | undefined;
  status?: { addresses?: Array<{ type: string; address: string }> | undefined } | undefined;
}

/** flannel's vxlan backend-data plus our optional Port. */
export interface BackendData {
  readonly vni?: number;
  readonly vtepMAC: string;
  readonly port?: number;
}

/** Lower-case, colon-separated MAC, or undefined when `s` is not a unicast 6-byte MAC (flannel accepts `-` too). */
export function normalizeMAC(s: unknown): string | undefined {
  if (typeof s !== 'string') return undefined;
  try {
    return numberToMac(parseUnicastMac(s));
  } catch {
    return undefined;
  }
}

/** Dotted-quad IPv4 (four decimal parts, nothing else), or undefined. */
export function normalizeIPv4(s: unknown): string | undefined {
  if (typeof s !== 'string') return undefined;
  try {
    return numberToIpv4(ipv4ToNumber(s));
  } catch {
    return undefined;
  }
}

/** `a.b.c.d/len` with host bits cleared, or undefined when `s` is not an IPv4 CIDR. */
export function normalizeIPv4CIDR(s: unknown): string | undefined {
  if (typeof s !== 'string') return undefined;
  try {
    return formatCidr4(parseCidr4(s));
  } catch {
    return undefined;
  }
}

/** `addr/len` (IPv6, RFC 5952 form) with host bits cleared, or undefined when `s` is not an IPv6 CIDR. */
export function normalizeIPv6CIDR(s: unknown): string | undefined {
  if (typeof s !== 'string' || !s.includes(':')) return undefined;
  try {
    return formatCidr6(parseCidr6(s));
  } catch {
    return undefined;
  }
}

export type BackendDataResult = { ok: true; data: BackendData } | { ok: false; why: string };

/** Parses `<prefix>/backend-data`. Unknown fields are ignored, as Go's decoder does. */
export function parseBackendData(text: string | undefined): BackendDataResult {
  if (text === undefined || text === '') return { ok: false, why: 'no backend-data annotation' };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, why: 'backend-data is not JSON' };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, why: 'backend-data is not a JSON object' };
  const o = raw as Record<string, unknown>;
  const vtepMAC = normalizeMAC(o['VtepMAC']);
  if (vtepMAC === undefined) return { ok: false, why: `backend-data VtepMAC ${JSON.stringify(o['VtepMAC'] ?? null)} is not a unicast MAC` };
  let vni: number | undefined;
  if (o['VNI'] !== undefined && o['VNI'] !== null) {
    const v = o['VNI'];
    // RFC 7348 section 5: the VNI is 24 bits.
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffff) return { ok: false, why: `backend-data VNI ${JSON.stringify(v)} is not a 24-bit integer` };
    vni = v;
  }
  let port: number | undefined;
  if (o['Port'] !== undefined && o['Port'] !== null) {
    const v = o['Port'];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) return { ok: false, why: `backend-data Port ${JSON.stringify(v)} is not a UDP port` };
    port = v;
  }
  const data: { vni?: number; vtepMAC: string; port?: number } = { vtepMAC };
  if (vni !== undefined) data.vni = vni;
  if (port !== undefined) data.port = port;
  return { ok: true, data };
}

/**
 * The backend-data text a node publishes. Under flannel's prefix this is exactly what flannel's
 * Go code marshals, `{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}` (field order and lower-case MAC
 * included), so flannel nodes see no difference. Under any other prefix `Port` is appended, so a
 * node listening on a non-default port is still reached.
 */
export function formatBackendData(self: { vni: number; vtepMAC: string; port: number }, keys: AnnotationKeys): string {
  const mac = normalizeMAC(self.vtepMAC);
  if (mac === undefined) throw new TypeError(`vtepMAC ${self.vtepMAC} is not a unicast MAC`);
  if (keys.flannel) return JSON.stringify({ VNI: self.vni, VtepMAC: mac });
  return JSON.stringify({ VNI: self.vni, VtepMAC: mac, Port: self.port });
}

/** Every annotation `publish()` sets on the agent's own Node. */
export function publishAnnotations(self: { underlayIP: string; vni: number; vtepMAC: string; port: number; remoteChecksum?: boolean }, keys: AnnotationKeys): Record<string, string> {
  const out: Record<string, string> = {
    [keys.backendType]: 'vxlan',
    [keys.backendData]: formatBackendData(self, keys),
    [keys.publicIP]: self.underlayIP,
  };
  if (keys.flannel) out[keys.kubeSubnetManager] = 'true';
  if (self.remoteChecksum) out[keys.remoteChecksum] = 'true';
  return out;
}

/** Why a node is not a peer. Stable strings: they key the once-per-node log. */
export const SkipReason = {
  NoName: 'no-name',
  NotVxlan: 'not-vxlan',
  BadBackendData: 'bad-backend-data',
  NoPodCIDR: 'no-pod-cidr',
  NoUnderlayIP: 'no-underlay-ip',
  BadPublicIP: 'bad-public-ip',
} as const;
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];

export type NodePeerResult =
  | { readonly ok: true; readonly peer: Peer }
  | { readonly ok: false; readonly reason: SkipReason; readonly detail: string };

/** IPv4 pod CIDRs of a node: `spec.podCIDRs`, else `spec.podCIDR`; normalised, duplicates dropped. */
export function nodePodCIDRs(node: NodeLike): string[] {
  return podCIDRsOf(node, normalizeIPv4CIDR);
}

/** IPv6 pod CIDRs of a node (dual stack), the same way. */
export function nodePodCIDRs6(node: NodeLike): string[] {
  return podCIDRsOf(node, normalizeIPv6CIDR);
}

function podCIDRsOf(node: NodeLike, normalize: (s: unknown) => string | undefined): string[] {
  const list = node.spec?.podCIDRs && node.spec.podCIDRs.length > 0 ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  const out: string[] = [];
  for (const c of list) {
    const n = normalize(c);
    if (n !== undefined && !out.includes(n)) out.push(n);
  }
  return out;
}

/** The first IPv4 `InternalIP` in `status.addresses`. */
export function nodeInternalIP(node: NodeLike): string | undefined {
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== 'InternalIP') continue;
    const ip = normalizeIPv4(a.address);
    if (ip !== undefined) return ip;
  }
  return undefined;
}

/** Turns one Node into a Peer, or says (once, in words) why it is not one. */
export function nodeToPeer(node: NodeLike, keys: AnnotationKeys): NodePeerResult {
  const name = node.metadata?.name;
  if (!name) return { ok: false, reason: SkipReason.NoName, detail: 'node has no metadata.name' };
  const ann = node.metadata?.annotations ?? {};
  const type = ann[keys.backendType];
  if (type !== 'vxlan') {
    const detail = type === undefined ? `no ${keys.backendType} annotation yet (no vxnet/flannel agent has published there)` : `${keys.backendType} is "${type}", not "vxlan"`;
    return { ok: false, reason: SkipReason.NotVxlan, detail };
  }
  const bd = parseBackendData(ann[keys.backendData]);
  if (!bd.ok) return { ok: false, reason: SkipReason.BadBackendData, detail: `${keys.backendData}: ${bd.why}` };
  const podCIDRs4 = nodePodCIDRs(node);
  if (podCIDRs4.length === 0) {
    return { ok: false, reason: SkipReason.NoPodCIDR, detail: 'no IPv4 spec.podCIDRs/spec.podCIDR (is the controller manager run with --allocate-node-cidrs?)' };
  }
  const podCIDRs = [...podCIDRs4, ...nodePodCIDRs6(node)];
  let underlayIP: string | undefined;
  const publicIP = ann[keys.publicIP];
  if (publicIP !== undefined && publicIP !== '') {
    underlayIP = normalizeIPv4(publicIP);
    if (underlayIP === undefined) return { ok: false, reason: SkipReason.BadPublicIP, detail: `${keys.publicIP} "${publicIP}" is not an IPv4 address` };
  } else {
    underlayIP = nodeInternalIP(node);
    if (underlayIP === undefined) return { ok: false, reason: SkipReason.NoUnderlayIP, detail: `no ${keys.publicIP} annotation and no IPv4 InternalIP in status.addresses` };
  }
  const peer: { -readonly [K in keyof Peer]: Peer[K] } = { node: name, underlayIP, podCIDRs, vtepMAC: bd.data.vtepMAC };
  if (bd.data.port !== undefined) peer.port = bd.data.port;
  if (bd.data.vni !== undefined) peer.vni = bd.data.vni;
  if (ann[keys.remoteChecksum] === 'true') peer.remoteChecksum = true;
  return { ok: true, peer };
}

/** A string equal for two peers exactly when the data path would treat them the same. */
export function peerKey(p: Peer): string {
  return `${p.underlayIP}|${p.podCIDRs.join(',')}|${p.vtepMAC}|${p.port ?? ''}|${p.vni ?? ''}|${p.remoteChecksum ? 'rco' : ''}`;
}

/** The VTEP MAC a node published earlier under `keys`, so a restarted agent keeps it. */
export function vtepMACFromAnnotations(annotations: Record<string, string> | undefined, keys: AnnotationKeys): string | undefined {
  const bd = parseBackendData(annotations?.[keys.backendData]);
  return bd.ok ? bd.data.vtepMAC : undefined;
}
