/**
 * A stand-in for the Kubernetes API server, Nodes only, over real HTTP.
 *
 * The peer source is tested with the real `@kubernetes/client-node` against this server, so the
 * requests, headers, watch streaming and error bodies on the wire are the ones a real API server
 * sees and sends. It speaks the subset vxnet uses, with the semantics that matter for it:
 *
 *   GET    /api/v1/nodes                    list, with metadata.resourceVersion
 *   GET    /api/v1/nodes?watch=true&...     newline-delimited events ADDED/MODIFIED/DELETED/BOOKMARK/ERROR;
 *                                           resourceVersion older than the compaction point -> 410
 *                                           (an ERROR event on a 200 stream, as the watch cache
 *                                           does, or an HTTP 410: `goneMode`); timeoutSeconds honoured
 *   GET    /api/v1/nodes/NAME               get
 *   PATCH  /api/v1/nodes/NAME[/status]      merge patch (RFC 7386) and strategic merge patch
 *                                           (lists merged by key: status.conditions by `type`);
 *                                           JSON patch and apply are refused with 415
 *   POST   /api/v1/nodes, PUT/DELETE .../NAME   so a lab can drive it with any Kubernetes client
 *
 * Like the real thing, the main resource ignores changes to `status` and the status subresource
 * ignores changes to `spec`; a write that changes nothing does not bump the resourceVersion and
 * sends no event. Every API request is logged (method, path, content type and the RBAC verb and
 * resource it needs), which is how the RBAC manifest is checked against what the agent really
 * calls. Faults are injected on purpose: `compact()`/`expireWatches()` force 410s, `setDown(true)`
 * closes the listener and every connection (the port is reused by `setDown(false)`),
 * `setFailing(503)` answers every API call with an error.
 *
 * It keeps every object in memory and the last `historyLimit` events for watch resumption. It
 * listens on 127.0.0.1 unless told otherwise. It is test support: the tests, the benches and the
 * lab tests use it, and it is not part of the image (the Dockerfile builds only src/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { kubeletNode, SCALE_MAX_NODES } from './kube-nodes.js';
import { makeTestCertificates, type TestCertificates } from './tls.js';

/** A Node as stored and served: plain JSON. */
export interface NodeObject {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: {
    name: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  spec?: { podCIDR?: string; podCIDRs?: string[]; [k: string]: unknown };
  status?: {
    addresses?: Array<{ type: string; address: string }>;
    conditions?: Array<Record<string, unknown>>;
    [k: string]: unknown;
  };
}

export interface StandInOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port); kept across setDown/start so clients reconnect to the same URL. */
  readonly port?: number;
  /** When set, every API request must carry `Authorization: Bearer <token>`. */
  readonly token?: string;
  /**
   * Serve HTTPS with this certificate (see tls.ts); the kubeconfig then carries `ca` as its
   * certificate-authority-data, and the client verifies the server against it, as on a cluster.
   */
  readonly tls?: TestCertificates;
  /** Events kept for watch resumption. Default 10000. */
  readonly historyLimit?: number;
  /** How a too-old watch is refused: an ERROR event on a 200 stream (default) or HTTP 410. */
  readonly goneMode?: 'event' | 'http';
  /** Send BOOKMARK events this often to watches that allow them. Default 0 (only `sendBookmark()`). */
  readonly bookmarkIntervalMs?: number;
  /** Requests kept in `requests`. Default 10000. */
  readonly requestLogLimit?: number;
}

/** One API request as the RBAC authorizer would see it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
  /** Kubernetes verb: get, list, watch, create, update, patch, delete. */
  readonly verb: string;
  /** `nodes` or `nodes/status` (the path, for anything the stand-in does not serve). */
  readonly resource: string;
  readonly status: number;
}

export interface NodeFixture {
  readonly name: string;
  readonly podCIDR?: string;
  readonly podCIDRs?: readonly string[];
  readonly internalIP?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
}

/** A Node as a kubelet registers it, with the pod CIDR the IPAM controller would assign. */
export function makeNode(f: NodeFixture): NodeObject {
  const node: NodeObject = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: f.name, labels: { 'kubernetes.io/hostname': f.name, ...(f.labels ?? {}) } },
    spec: {},
    status: {
      addresses: [],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
    },
  };
  if (f.annotations) node.metadata.annotations = { ...f.annotations };
  const cidrs = f.podCIDRs ?? (f.podCIDR ? [f.podCIDR] : []);
  if (cidrs.length > 0) {
    node.spec!.podCIDR = cidrs[0]!;
    node.spec!.podCIDRs = [...cidrs];
  }
  if (f.internalIP) node.status!.addresses!.push({ type: 'InternalIP', address: f.internalIP });
  node.status!.addresses!.push({ type: 'Hostname', address: f.name });
  return node;
}

interface HistoryEvent {
  readonly rv: number;
  /** The serialized event line, so a replay to many watchers costs no re-encoding. */
  readonly line: string;
}

interface OpenWatch {
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const MAX_BODY = 1 << 20;
/** Strategic merge patch list keys for Node (from the API's patchMergeKey tags). */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  'status.conditions': 'type',
  'status.addresses': 'type',
  'status.images': 'names',
  'spec.taints': 'key',
};

export class ApiStandIn {
  readonly requests: RecordedRequest[] = [];
  /**
   * Called with the Node's name when a write request's body has arrived, before the write is
   * checked and applied: a test can change the Node here, as a concurrent client would.
   */
  beforeWrite: ((name: string) => void) | undefined;
  /**
   * Breaks the next list responses: 'stall' sends the first half of the body and then nothing
   * (the connection stays open), 'truncate' sends the first half and closes the connection.
   */
  listFault: 'stall' | 'truncate' | undefined;
  private readonly opts: Required<Omit<StandInOptions, 'token' | 'tls'>> & { token: string | undefined; tls: TestCertificates | undefined };
  private readonly nodes = new Map<string, NodeObject>();
  /** Each stored Node's JSON, encoded once per change, as the watch cache keeps serialized objects. */
  private readonly encoded = new Map<string, string>();
  /** Node names in list order; undefined after an add or a delete. */
  private sortedNames: string[] | undefined;
  private history: HistoryEvent[] = [];
  private rv = 1;
  private listCache: { rv: number; body: Buffer } | undefined;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedRV = 1;
  private server: Server | undefined;
  private readonly watches = new Set<OpenWatch>();
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private boundPort: number;
  private failing: number | undefined;
  private watchesServed = 0;

  constructor(opts: StandInOptions = {}) {
    this.opts = {
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      token: opts.token,
      tls: opts.tls,
      historyLimit: opts.historyLimit ?? 10_000,
      goneMode: opts.goneMode ?? 'event',
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 0,
      requestLogLimit: opts.requestLogLimit ?? 10_000,
    };
    this.boundPort = this.opts.port;
  }

  // ---- lifecycle ----

  /** Starts listening (again, on the same port after a stop/setDown). */
  async start(): Promise<{ url: string; host: string; port: number }> {
    if (!this.server) {
      const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
      const tls = this.opts.tls;
      const server: Server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, handler) : createServer(handler);
      server.keepAliveTimeout = 5_000;
      server.listen(this.boundPort, this.opts.host);
      await once(server, 'listening');
      this.server = server;
      this.boundPort = (server.address() as AddressInfo).port;
      if (this.opts.bookmarkIntervalMs > 0) {
        this.bookmarkTimer = setInterval(() => this.sendBookmark(), this.opts.bookmarkIntervalMs);
      }
    }
    return { url: this.url, host: this.opts.host, port: this.boundPort };
  }

  /** Closes the listener and every connection, open watches included. State is kept. */
  async stop(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.bookmarkTimer = undefined;
    const server = this.server;
    this.server = undefined;
    for (const w of [...this.watches]) this.endWatch(w, true);
    if (!server) return;
    const closed = once(server, 'close');
    server.close();
    server.closeAllConnections();
    await closed;
  }

  /** down=true: the API is unreachable (connection refused); false: back on the same port. */
  async setDown(down: boolean): Promise<void> {
    if (down) await this.stop();
    else await this.start();
  }

  /** Answer every API request with this HTTP status (e.g. 503); undefined: normal service. */
  setFailing(status: number | undefined): void {
    this.failing = status;
  }

  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `${this.opts.tls ? 'https' : 'http'}://${host}:${this.boundPort}`;
  }

  get port(): number {
    return this.boundPort;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Watch streams open right now. */
  get openWatches(): number {
    return this.watches.size;
  }

  /** Watch requests answered since start (including refused ones). */
  get watchRequests(): number {
    return this.watchesServed;
  }

  // ---- objects ----

  addNode(node: NodeObject): NodeObject {
    const name = node.metadata?.name;
    if (!name) throw new TypeError('addNode: metadata.name is required');
    if (this.nodes.has(name)) throw new Error(`addNode: node ${name} exists`);
    const stored = structuredClone(node);
    stored.apiVersion = 'v1';
    stored.kind = 'Node';
    stored.metadata.uid ??= randomUUID();
    stored.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.commit('ADDED', stored);
    return structuredClone(stored);
  }

  /** Applies `mutate` to a copy of the node; stores and announces it if anything changed. */
  updateNode(name: string, mutate: (node: NodeObject) => void): NodeObject {
    const old = this.nodes.get(name);
    if (!old) throw new Error(`updateNode: no node ${name}`);
    const next = structuredClone(old);
    mutate(next);
    this.replace(old, next);
    return structuredClone(this.nodes.get(name)!);
  }

  deleteNode(name: string): boolean {
    const old = this.nodes.get(name);
    if (!old) return false;
    this.nodes.delete(name);
    this.encoded.delete(name);
    this.sortedNames = undefined;
    this.rv++;
    const gone = structuredClone(old);
    gone.metadata.resourceVersion = String(this.rv);
    this.record('DELETED', gone);
    return true;
  }

  getNode(name: string): NodeObject | undefined {
    const n = this.nodes.get(name);
    return n ? structuredClone(n) : undefined;
  }

  listNodes(): NodeObject[] {
    return [...this.nodes.values()].map((n) => structuredClone(n));
  }

  // ---- fault injection ----

  /** Forgets the event history: any watch from an older resourceVersion now gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.compactedRV = this.rv;
  }

  /** compact() and tell every open watch its history is gone (ERROR 410), then close it. */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watches]) {
      w.res.write(eventLine('ERROR', goneStatus(this.compactedRV)));
      this.endWatch(w, false);
    }
  }

  /** Ends every open watch normally, as the server does when timeoutSeconds runs out. */
  closeWatches(): void {
    for (const w of [...this.watches]) this.endWatch(w, false);
  }

  /** Sends a BOOKMARK with the current resourceVersion to watches that asked for bookmarks. */
  sendBookmark(): void {
    const line = eventLine('BOOKMARK', { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } });
    for (const w of this.watches) if (w.bookmarks) w.res.write(line);
  }

  /**
   * Bumps the resourceVersion n times without a Node event, as writes to other kinds (Pods,
   * Leases) do on a real cluster, where resourceVersions are global. Only a BOOKMARK then tells a
   * Node watcher how far it may resume from.
   */
  touchOtherResources(n = 1): void {
    this.rv += n;
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  // ---- kubeconfig ----

  /** A kubeconfig (YAML) pointing at this server. */
  kubeconfigText(): string {
    return kubeconfigYaml(this.url, this.opts.token, this.opts.tls?.ca);
  }

  writeKubeconfig(path: string): string {
    writeFileSync(path, this.kubeconfigText(), { mode: 0o600 });
    return path;
  }

  /** An in-memory KubeConfig for the real client. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigText());
    return kc;
  }

  // ---- internals: storage ----

  private commit(type: 'ADDED' | 'MODIFIED', node: NodeObject): void {
    this.rv++;
    node.metadata.resourceVersion = String(this.rv);
    if (!this.nodes.has(node.metadata.name)) this.sortedNames = undefined;
    this.nodes.set(node.metadata.name, node);
    this.encoded.set(node.metadata.name, this.record(type, node));
  }

  /** Stores `next` in place of `old` unless nothing changed. Identity fields are kept. */
  private replace(old: NodeObject, next: NodeObject): void {
    next.apiVersion = 'v1';
    next.kind = 'Node';
    next.metadata.name = old.metadata.name;
    next.metadata.uid = old.metadata.uid;
    next.metadata.creationTimestamp = old.metadata.creationTimestamp;
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    if (JSON.stringify(next) === JSON.stringify(old)) return;
    this.commit('MODIFIED', next);
  }

  /** Appends the event to the history and to every open watch; returns the Node's JSON. */
  private record(type: string, node: NodeObject): string {
    const json = JSON.stringify(node);
    const line = `{"type":${JSON.stringify(type)},"object":${json}}\n`;
    this.history.push({ rv: this.rv, line });
    if (this.history.length > this.opts.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.opts.historyLimit);
      this.compactedRV = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watches) w.res.write(line);
    return json;
  }

  /**
   * The list body, from the encoded Nodes in name order, as the API server sorts by key. Kept as
   * bytes until the next change (every change moves `rv`), as the API server answers a list
   * from its watch cache: building a 120 MB body on every list made the stand-in, not the client
   * under test, the slow side of the start-up bench (1.4-1.9 s per 15,000-Node list to curl).
   */
  private listBody(): Buffer {
    if (this.listCache?.rv === this.rv) return this.listCache.body;
    this.sortedNames ??= [...this.nodes.keys()].sort();
    const items = this.sortedNames.map((n) => this.encoded.get(n)!).join(',');
    const body = Buffer.from(`{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"${this.rv}"},"items":[${items}]}`);
    this.listCache = { rv: this.rv, body };
    return body;
  }

  // ---- internals: HTTP ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://standin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/healthz' || path === '/readyz' || path === '/livez') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    const query = Object.fromEntries(url.searchParams.entries());
    const m = /^\/api\/v1\/nodes(?:\/([^/]+))?(?:\/(status))?$/.exec(path);
    const name = m?.[1] !== undefined ? decodeURIComponent(m[1]) : undefined;
    const sub = m?.[2];
    const method = req.method ?? 'GET';
    const verb = kubeVerb(method, name !== undefined, query['watch'] === 'true' || query['watch'] === '1');
    const contentType = req.headers['content-type']?.split(';')[0]?.trim();
    const log = (status: number): void => {
      if (this.requests.length >= this.opts.requestLogLimit) this.requests.shift();
      const resource = !m ? path : sub ? `nodes/${sub}` : 'nodes';
      this.requests.push({ method, path, query, contentType, verb, resource, status });
    };
    const reply = (status: number, body: unknown): void => {
      log(status);
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    if (path === '/version') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ major: '1', minor: '30', gitVersion: 'v1.30.0-vxnet-standin' }));
      return;
    }
    if (!m) {
      reply(404, status(404, 'NotFound', `the stand-in serves only /api/v1/nodes, not ${path}`));
      return;
    }
    if (this.opts.token !== undefined && req.headers.authorization !== `Bearer ${this.opts.token}`) {
      reply(401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (this.failing !== undefined) {
      reply(this.failing, status(this.failing, 'ServiceUnavailable', 'stand-in told to fail'));
      return;
    }
    if (name === undefined) {
      if (verb === 'watch') {
        log(200);
        this.watch(res, query);
      } else if (verb === 'list') {
        log(200);
        const body = this.listBody();
        res.writeHead(200, { 'Content-Type': 'application/json' });
        if (this.listFault === undefined) res.end(body);
        else {
          const fault = this.listFault;
          res.write(body.subarray(0, body.length >> 1), () => {
            if (fault === 'truncate') res.destroy();
          });
        }
      } else if (verb === 'create') {
        this.withBody(req, reply, (body) => {
          const node = body as unknown as NodeObject;
          const n = node?.metadata?.name;
          if (!n) return reply(422, status(422, 'Invalid', 'metadata.name: Required value'));
          if (this.nodes.has(n)) return reply(409, status(409, 'AlreadyExists', `nodes "${n}" already exists`));
          return reply(201, this.addNode(node));
        });
      } else {
        reply(405, status(405, 'MethodNotAllowed', `${method} is not supported on the node collection`));
      }
      return;
    }
    const old = this.nodes.get(name);
    if (!old) {
      reply(404, status(404, 'NotFound', `nodes "${name}" not found`));
      return;
    }
    switch (verb) {
      case 'get':
        reply(200, old);
        return;
      case 'delete':
        this.deleteNode(name);
        reply(200, old);
        return;
      case 'patch':
      case 'update':
        if (verb === 'patch' && contentType !== 'application/merge-patch+json' && contentType !== 'application/strategic-merge-patch+json') {
          req.resume();
          reply(415, status(415, 'UnsupportedMediaType', `the stand-in accepts merge-patch+json and strategic-merge-patch+json, not ${contentType ?? 'no content type'}`));
          return;
        }
        this.withBody(req, reply, (body) => {
          this.beforeWrite?.(name);
          // The object as it is now, not as it was when the request arrived.
          const old = this.nodes.get(name);
          if (!old) return reply(404, status(404, 'NotFound', `nodes "${name}" not found`));
          const expected = (body['metadata'] as JsonObject | undefined)?.['resourceVersion'];
          if (typeof expected === 'string' && expected !== old.metadata.resourceVersion) {
            return reply(409, status(409, 'Conflict', `Operation cannot be fulfilled on nodes "${name}": the object has been modified`));
          }
          let next: NodeObject;
          if (verb === 'update') {
            next = structuredClone(body) as unknown as NodeObject;
          } else {
            const strategic = contentType === 'application/strategic-merge-patch+json';
            next = mergePatch(old as unknown as Json, body, strategic ? '' : null) as unknown as NodeObject;
          }
          if (!next || typeof next !== 'object' || !next.metadata) return reply(422, status(422, 'Invalid', 'patch removed metadata'));
          // The main resource ignores status; the status subresource ignores spec (as the real strategies do).
          if (sub === 'status') {
            if (old.spec === undefined) delete next.spec;
            else next.spec = structuredClone(old.spec);
          } else if (old.status === undefined) delete next.status;
          else next.status = structuredClone(old.status);
          this.replace(old, next);
          return reply(200, this.nodes.get(name));
        });
        return;
      default:
        reply(405, status(405, 'MethodNotAllowed', `${method} is not supported on nodes/${name}`));
    }
  }

  private withBody(req: IncomingMessage, reply: (status: number, body: unknown) => void, then: (body: JsonObject) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return reply(413, status(413, 'RequestEntityTooLarge', 'request body too large'));
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, status(400, 'BadRequest', 'request body is not JSON'));
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return reply(400, status(400, 'BadRequest', 'request body is not a JSON object'));
      then(body as JsonObject);
    });
  }

  private watch(res: ServerResponse, query: Record<string, string>): void {
    this.watchesServed++;
    const rvParam = query['resourceVersion'];
    const from = rvParam === undefined || rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify(status(400, 'BadRequest', `invalid resourceVersion ${rvParam}`)));
      return;
    }
    if (from !== undefined && from < this.compactedRV) {
      if (this.opts.goneMode === 'http') {
        res.writeHead(410, { 'Content-Type': 'application/json' }).end(JSON.stringify(goneStatus(from, this.compactedRV)));
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
        res.end(eventLine('ERROR', goneStatus(from, this.compactedRV)));
      }
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = { res, bookmarks: query['allowWatchBookmarks'] === 'true', timer: undefined };
    if (from === undefined) {
      // No resourceVersion: "start at the most recent", which begins with a synthetic ADDED per object.
      for (const n of this.nodes.values()) res.write(eventLine('ADDED', n));
    } else {
      for (const e of this.history) if (e.rv > from) res.write(e.line);
    }
    const timeout = Number(query['timeoutSeconds']);
    if (Number.isFinite(timeout) && timeout > 0) {
      w.timer = setTimeout(() => this.endWatch(w, false), timeout * 1000);
    }
    this.watches.add(w);
    res.on('close', () => this.endWatch(w, false));
  }

  private endWatch(w: OpenWatch, destroy: boolean): void {
    if (!this.watches.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    if (destroy) w.res.destroy();
    else w.res.end();
  }
}

// ---- helpers ----

function kubeVerb(method: string, named: boolean, watch: boolean): string {
  switch (method) {
    case 'GET':
      return watch ? 'watch' : named ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

function eventLine(type: string, object: unknown): string {
  return `${JSON.stringify({ type, object })}\n`;
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function goneStatus(requested: number, oldest?: number): Record<string, unknown> {
  const msg = oldest === undefined ? `too old resource version: ${requested}` : `too old resource version: ${requested} (${oldest})`;
  return status(410, 'Expired', msg);
}

function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * RFC 7386 merge patch when `path` is null. With a path it is a strategic merge patch: the same,
 * except that lists with a merge key (MERGE_KEYS) are merged element by element, an element with
 * `$patch: delete` removes its match, and other `$` directives are dropped.
 */
function mergePatch(target: Json | undefined, patch: Json, path: string | null): Json {
  if (!isObject(patch)) {
    if (path !== null && Array.isArray(patch) && Array.isArray(target) && MERGE_KEYS[path] !== undefined) {
      return mergeList(target, patch, MERGE_KEYS[path]!, path);
    }
    return structuredClone(patch);
  }
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (path !== null && k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v, path === null ? null : path === '' ? k : `${path}.${k}`);
  }
  return out;
}

function mergeList(target: Json[], patch: Json[], key: string, path: string): Json[] {
  const out = target.map((e) => structuredClone(e));
  for (const p of patch) {
    if (!isObject(p)) continue;
    const i = out.findIndex((e) => isObject(e) && e[key] === p[key]);
    if (p['$patch'] === 'delete') {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) {
      out[i] = mergePatch(out[i], p, path);
    } else {
      out.push(mergePatch({}, p, path));
    }
  }
  return out;
}

/**
 * A kubeconfig for `server`, with a bearer token or no credentials at all. An https server comes
 * with the CA (PEM) the client must verify it against. client-node refuses plain http unless the
 * cluster says `insecure-skip-tls-verify`, so an http server gets that.
 */
export function kubeconfigYaml(server: string, token?: string, caPem?: string): string {
  const user = token === undefined ? '  user: {}' : `  user:\n    token: ${JSON.stringify(token)}`;
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: standin',
    '  cluster:',
    `    server: ${JSON.stringify(server)}`,
    ...(server.startsWith('http:') ? ['    insecure-skip-tls-verify: true'] : []),
    ...(caPem !== undefined ? [`    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`] : []),
    'users:',
    '- name: standin',
    user,
    'contexts:',
    '- name: standin',
    '  context:',
    '    cluster: standin',
    '    user: standin',
    'current-context: standin',
    '',
  ].join('\n');
}

/** Nodes from a file: a JSON/YAML list (or NodeList) of Nodes, or of NodeFixture shorthands. */
export function readNodesFile(path: string): NodeObject[] {
  const doc = parseYaml(readFileSync(path, 'utf8')) as unknown;
  const list = Array.isArray(doc) ? doc : (doc as { items?: unknown[] } | null)?.items;
  if (!Array.isArray(list)) throw new Error(`${path}: expected a list of nodes (or a NodeList)`);
  return list.map((x, i) => {
    const o = x as Partial<NodeObject> & Partial<NodeFixture>;
    if (o.metadata?.name) return o as NodeObject;
    if (typeof o.name === 'string') return makeNode(o as NodeFixture);
    throw new Error(`${path}: item ${i} has neither metadata.name nor name`);
  });
}

const USAGE = `usage: node dist/test/support/kube-apiserver.js [--host 127.0.0.1] [--port 0] [--nodes FILE]
       [--token TOKEN] [--kubeconfig OUT] [--bookmark-ms N] [--gone event|http] [--tls]
       [--scale N]
Runs the Kubernetes API stand-in (Nodes only) until SIGINT/SIGTERM. --tls serves HTTPS with a
CA made at start (openssl); the kubeconfig written by --kubeconfig carries that CA. --scale N
adds N Nodes shaped like a kubelet's (kube-nodes.ts), named node-00001 on, all annotated. Prints one JSON line
{"msg":"listening","url":...} on stdout once it accepts connections.`;

/** A stand-in running in a child process (the CLI), as an API server runs apart from its clients. */
export interface StandInProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** The kubeconfig it wrote. */
  readonly kubeconfig: string;
  /** SIGTERM, and waits for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/**
 * Starts the CLI in a child process with `args` (e.g. ['--scale', '15000']) and waits, at most
 * `timeoutMs`, for its listening line. The kubeconfig goes to `kubeconfig`.
 */
export async function spawnStandIn(args: readonly string[], kubeconfig: string, timeoutMs = 120_000): Promise<StandInProcess> {
  const entry = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [entry, ...args, '--kubeconfig', kubeconfig], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the stand-in did not listen within ${timeoutMs / 1000} s`)), timeoutMs);
      child.once('exit', (code) => reject(new Error(`the stand-in exited with code ${code} before listening`)));
      createInterface(child.stdout!).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
    const { url } = JSON.parse(line) as { url: string };
    return {
      child,
      url,
      kubeconfig,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(kill);
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

/** The CLI: used by the lab to run the stand-in in its own network namespace. */
export async function main(argv: readonly string[]): Promise<void> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    if (a === '--tls') {
      args.set('tls', 'true');
      continue;
    }
    const v = argv[i + 1];
    if (!a.startsWith('--') || v === undefined) throw new Error(`bad argument ${a}\n${USAGE}`);
    args.set(a.slice(2), v);
    i++;
  }
  const known = new Set(['host', 'port', 'nodes', 'token', 'kubeconfig', 'bookmark-ms', 'gone', 'tls', 'scale']);
  for (const k of args.keys()) if (!known.has(k)) throw new Error(`unknown option --${k}\n${USAGE}`);
  const gone = args.get('gone');
  if (gone !== undefined && gone !== 'event' && gone !== 'http') throw new Error('--gone must be event or http');
  const opts: StandInOptions = {
    host: args.get('host') ?? '127.0.0.1',
    port: Number(args.get('port') ?? '0'),
    bookmarkIntervalMs: Number(args.get('bookmark-ms') ?? '10000'),
    ...(args.has('token') ? { token: args.get('token')! } : {}),
    ...(gone ? { goneMode: gone } : {}),
    ...(args.has('tls') ? { tls: makeTestCertificates() } : {}),
  };
  const scale = Number(args.get('scale') ?? '0');
  if (!Number.isInteger(scale) || scale < 0 || scale > SCALE_MAX_NODES) throw new Error(`--scale must be 0..${SCALE_MAX_NODES}`);
  const standIn = new ApiStandIn({ ...opts, historyLimit: Math.max(10_000, 2 * scale) });
  const nodesFile = args.get('nodes');
  if (nodesFile) for (const n of readNodesFile(nodesFile)) standIn.addNode(n);
  for (let i = 1; i <= scale; i++) standIn.addNode(kubeletNode(i));
  const { url } = await standIn.start();
  const kubeconfig = args.get('kubeconfig');
  if (kubeconfig) standIn.writeKubeconfig(kubeconfig);
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url, nodes: standIn.listNodes().length, kubeconfig })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await standIn.stop();
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
