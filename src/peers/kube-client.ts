/**
 * What every Kubernetes module here shares: loading a kubeconfig, the one-shot read of our own
 * Node at start-up, timeouts and retry delays, and the error type every Kubernetes failure is
 * turned into.
 *
 * Errors are phrased for the operator: which call failed, against which API server, and what to
 * check (credentials, RBAC, NODE_NAME, the IPAM flags). The watcher, the publisher and these
 * helpers share `toKubeApiError`, so a 403 reads the same wherever it happens.
 */
import { existsSync } from 'node:fs';
import { ApiException, CoreV1Api, KubeConfig, type V1Node } from '@kubernetes/client-node';
import { NodeListDecodeError } from './kube-list-decode.js';
import { annotationKeys, nodeInternalIP, nodePodCIDRs, nodePodCIDRs6, normalizeIPv4, vtepMACFromAnnotations, type AnnotationKeys, type NodeLike } from './kube-node.js';

/** Environment variables the Kubernetes mode reads (the DaemonSet sets NODE_NAME). */
export const KUBE_ENV = ['NODE_NAME', 'KUBECONFIG'] as const;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** A control-plane failure, phrased for the operator, with the HTTP status or socket error code. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
  /** True for errors a retry may fix: no answer, 429, 5xx. */
  get retryable(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
}

/** A list of 5,000 nodes is a few MB; a minute means the server or the path is in trouble. */
export const LIST_TIMEOUT_MS = 60_000;
/** Single-object requests and the wait for a watch's response headers. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Retry delays after a failed call: doubling from min to max. */
export const DEFAULT_BACKOFF = { min: 500, max: 30_000 } as const;

/** The delay before retry number `failures` (1-based): doubling from min, capped at max, ±20% jitter. */
export function backoffDelay(failures: number, range: { readonly min: number; readonly max: number }): number {
  const base = Math.min(range.max, range.min * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
}

/**
 * Rejects after `ms` if `p` has not settled. The client has no per-request timeout; without this
 * a server that accepts the connection and never answers would stall the loop for good.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KubeApiError(`${what}: no response within ${ms / 1000} s`)), ms);
  });
  p.catch(() => {}); // a late failure of the abandoned request is not an unhandled rejection
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Facts about the agent's own Node. */
export interface SelfFacts {
  /** IPv4 pod CIDRs (`spec.podCIDRs`, else `spec.podCIDR`), normalised. Empty until IPAM assigns one. */
  podCIDRs: string[];
  /** IPv6 pod CIDRs (dual stack), normalised; assigned together with the IPv4 one. */
  podCIDRs6: string[];
  /** First IPv4 InternalIP. */
  internalIP?: string;
  annotations: Record<string, string>;
  /** VTEP MAC this node published before (its backend-data), so a restart keeps it. */
  vtepMAC?: string;
  /** `<prefix>/public-ip-overwrite`, set by an operator to force the published underlay address. */
  publicIPOverwrite?: string;
}

export interface LoadSelfOptions {
  /** Keep polling this long while the node has no pod CIDR yet (IPAM assigns it shortly after join). Default 0. */
  readonly waitForPodCIDRMs?: number;
  readonly pollMs?: number;
}

/** Reads the agent's own Node: pod CIDRs, InternalIP, annotations. */
export async function loadSelf(kc: KubeConfig, nodeName: string, prefix: string, opts: LoadSelfOptions = {}): Promise<SelfFacts> {
  const keys = annotationKeys(prefix);
  const api = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + (opts.waitForPodCIDRMs ?? 0);
  const pollMs = Math.max(10, opts.pollMs ?? 2000);
  for (;;) {
    let node: V1Node;
    try {
      node = await withTimeout(api.readNode({ name: nodeName }), REQUEST_TIMEOUT_MS, 'get node');
    } catch (err) {
      const e = toKubeApiError(err, 'get node', nodeName, kc);
      // Within the wait window, an API that is still coming up (node boot) is worth waiting for.
      if (!e.retryable || Date.now() + pollMs > deadline) throw e;
      await new Promise((r) => setTimeout(r, pollMs));
      continue;
    }
    const facts = selfFacts(node, keys);
    if (facts.podCIDRs.length > 0 || Date.now() + pollMs > deadline) {
      if (facts.podCIDRs.length === 0 && opts.waitForPodCIDRMs) {
        throw new KubeApiError(
          `node "${nodeName}" has no IPv4 pod CIDR (spec.podCIDRs) after ${opts.waitForPodCIDRMs} ms: ` +
            'run kube-controller-manager with --allocate-node-cidrs=true --cluster-cidr=<clusterCIDR> ' +
            '(kubeadm: kubeadm init --pod-network-cidr=<clusterCIDR>), or set podCIDR in the vxnet config',
        );
      }
      return facts;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export function selfFacts(node: NodeLike, keys: AnnotationKeys): SelfFacts {
  const annotations = { ...(node.metadata?.annotations ?? {}) };
  const facts: SelfFacts = { podCIDRs: nodePodCIDRs(node), podCIDRs6: nodePodCIDRs6(node), annotations };
  const internalIP = nodeInternalIP(node);
  if (internalIP !== undefined) facts.internalIP = internalIP;
  const mac = vtepMACFromAnnotations(annotations, keys);
  if (mac !== undefined) facts.vtepMAC = mac;
  const overwrite = normalizeIPv4(annotations[keys.publicIPOverwrite]);
  if (overwrite !== undefined) facts.publicIPOverwrite = overwrite;
  return facts;
}

/** The VTEP MAC our node published before, or undefined (the caller then derives one). */
export async function readVtepMAC(kc: KubeConfig, nodeName: string, prefix: string): Promise<string | undefined> {
  return (await loadSelf(kc, nodeName, prefix)).vtepMAC;
}

export interface LoadKubeConfigOptions {
  /** Environment to read KUBECONFIG and KUBERNETES_SERVICE_* from. Default process.env. */
  readonly env?: Record<string, string | undefined>;
  /** Prefix for the service-account files (tests). Default ''. */
  readonly inClusterPrefix?: string;
}

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Loads a kubeconfig: `path` (--kubeconfig / kubernetes.kubeconfig), else `$KUBECONFIG`, else the
 * pod's service account (in-cluster). Unlike kubectl there is no fallback to ~/.kube/config or
 * localhost:8080: an agent that silently talks to the wrong cluster is worse than one that stops.
 */
export function loadKubeConfig(path?: string, opts: LoadKubeConfigOptions = {}): KubeConfig {
  const env = opts.env ?? process.env;
  const kc = new KubeConfig();
  const fromFile = (file: string, origin: string): void => {
    if (!existsSync(file)) throw new KubeConfigError(`kubeconfig ${file} (from ${origin}) does not exist`);
    try {
      // loadFromFile (not loadFromString) resolves certificate paths relative to the file.
      kc.loadFromFile(file);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${file} (from ${origin}) is not a valid kubeconfig: ${errorMessage(err)}`);
    }
  };
  if (path) {
    fromFile(path, '--kubeconfig');
  } else if (env['KUBECONFIG']) {
    const files = env['KUBECONFIG'].split(':').filter((f) => f !== '');
    const first = files.find((f) => existsSync(f));
    if (first === undefined) throw new KubeConfigError(`none of the files in KUBECONFIG=${env['KUBECONFIG']} exists`);
    fromFile(first, 'KUBECONFIG');
  } else {
    const prefix = opts.inClusterPrefix ?? '';
    if (!env['KUBERNETES_SERVICE_HOST'] || !env['KUBERNETES_SERVICE_PORT']) {
      throw new KubeConfigError(
        'no kubeconfig: pass --kubeconfig FILE (or kubernetes.kubeconfig in the config), set KUBECONFIG, ' +
          'or run in a pod (KUBERNETES_SERVICE_HOST/PORT are not set, so this is not one)',
      );
    }
    if (!existsSync(prefix + SA_TOKEN)) {
      throw new KubeConfigError(
        `running in a pod but ${SA_TOKEN} is missing: the DaemonSet needs serviceAccountName: vxnet and ` +
          'automountServiceAccountToken left on (deploy/03-daemonset.yaml)',
      );
    }
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    // loadFromCluster reads process.env; make it see the environment we were given.
    process.env['KUBERNETES_SERVICE_HOST'] = env['KUBERNETES_SERVICE_HOST'];
    process.env['KUBERNETES_SERVICE_PORT'] = env['KUBERNETES_SERVICE_PORT'];
    try {
      kc.loadFromCluster(prefix);
    } finally {
      restoreEnv('KUBERNETES_SERVICE_HOST', saved.host);
      restoreEnv('KUBERNETES_SERVICE_PORT', saved.port);
    }
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster || !cluster.server) {
    throw new KubeConfigError(`kubeconfig has no current cluster with a server address (current-context "${kc.getCurrentContext()}")`);
  }
  return kc;
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

// ---- errors ----

/** The HTTP status of a client error, or undefined when there was no HTTP answer. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  // Only HTTP statuses: a DOMException's numeric `code` (23 for a timeout) is not one.
  const http = (v: unknown): v is number => typeof v === 'number' && v >= 100 && v <= 599;
  if (e && http(e.statusCode)) return e.statusCode;
  if (e && http(e.code)) return e.code;
  return undefined;
}

/**
 * The message of an error and of its causes. The client's HTTP layer (undici) reports a refused
 * connection or a TLS failure as "fetch failed" with the real reason in `cause`, which is the
 * part an operator needs.
 */
export function errorMessage(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const msg = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown }).code;
    const text = typeof code === 'string' && !msg.includes(code) ? `${msg} (${code})` : msg;
    if (text && !parts.includes(text)) parts.push(text);
    e = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  }
  return parts.join(': ');
}

/** The first socket-level error code (ECONNREFUSED, ETIMEDOUT, ...) of an error or its causes. */
function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  }
  return undefined;
}

function apiMessage(err: ApiException<unknown>): string | undefined {
  let body: unknown = err.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text.slice(0, 200) || undefined;
    }
  }
  const m = (body as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : undefined;
}

/** Phrases any client error for the operator: what failed, against which server, and what to check. */
export function toKubeApiError(err: unknown, what: string, nodeName: string | undefined, kc: KubeConfig): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const server = kc.getCurrentCluster()?.server ?? '(no server)';
  const status = statusOf(err);
  if (status !== undefined) {
    const detail = err instanceof ApiException ? apiMessage(err) : errorMessage(err);
    const suffix = detail ? `: ${detail}` : '';
    switch (status) {
      case 401:
        return new KubeApiError(`${what}: the API server at ${server} rejected our credentials (401)${suffix}; check the kubeconfig or the service account token`, status);
      case 403:
        return new KubeApiError(`${what}: forbidden (403)${suffix}; the vxnet ClusterRole (deploy/01-rbac.yaml) must grant it`, status);
      case 404:
        if (nodeName === undefined) return new KubeApiError(`${what}: not found (404)${suffix}`, status);
        return new KubeApiError(`${what}: node "${nodeName}" not found (404)${suffix}; NODE_NAME must be the Kubernetes node name (spec.nodeName)`, status);
      default:
        return new KubeApiError(`${what}: the API server at ${server} answered ${status}${suffix}`, status);
    }
  }
  if (err instanceof NodeListDecodeError) return new KubeApiError(`${what}: ${err.message} (from ${server})`);
  const code = errorCode(err);
  const tls = code === undefined ? undefined : TLS_FAILURES[code];
  if (tls !== undefined) {
    return new KubeApiError(`${what}: TLS to the API server at ${server} failed: ${tls} (${code}); ${TLS_FIX}`, undefined, code);
  }
  return new KubeApiError(`${what}: no answer from the Kubernetes API at ${server}: ${errorMessage(err)}`, undefined, code);
}

/** OpenSSL's verification errors as Node reports them, in words for the operator. */
const TLS_FAILURES: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its certificate is not signed by the CA the kubeconfig trusts',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its certificate is not signed by the CA the kubeconfig trusts',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate chain ends in a CA the kubeconfig does not trust',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it presented a self-signed certificate the kubeconfig does not trust',
  CERT_SIGNATURE_FAILURE: 'its certificate signature does not verify',
  CERT_HAS_EXPIRED: 'its certificate has expired',
  CERT_NOT_YET_VALID: 'its certificate is not valid yet (is this node\'s clock right?)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate does not name the address in the kubeconfig',
};
const TLS_FIX =
  'the kubeconfig\'s certificate-authority(-data) (in a pod: the service account\'s ca.crt) must be the CA ' +
  'that signed the API server\'s certificate, and the server address must be one the certificate names';
