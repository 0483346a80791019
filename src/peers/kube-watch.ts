/**
 * The Kubernetes peer source: every Node that publishes a VXLAN VTEP becomes a peer.
 *
 * Design. This is a small reflector in the client-go sense, written out so its failure modes are
 * ours to choose. One loop does list, then watch from the list's resourceVersion, forever:
 *
 *   list (resourceVersion=0: served from the API server's watch cache; streamed, kube-list.ts)
 *     -> watch ?resourceVersion=N&allowWatchBookmarks=true&timeoutSeconds=T
 *        ADDED/MODIFIED/DELETED  update the node map; BOOKMARK  only advances N
 *        ERROR 410 (or HTTP 410) history compacted: re-list (a consistent read this time)
 *        stream ends normally    watch again from N, at once
 *        anything else           exponential backoff (resyncBackoffMs), then watch again from N
 *
 * Every Node is converted to a Peer once per event (`kube-node.ts`) and compared with the Peer it
 * had before; updates that change nothing the data path uses (heartbeats, labels, conditions,
 * which are most Node updates) stop there. A re-list replaces the whole map, so a node deleted
 * while we were not watching disappears then: that is our `DeletedFinalStateUnknown`. Changes
 * mark the snapshot dirty; a timer delivers the full peer set at most once per `batchMs`
 * (50 ms), so a burst of 1,000 node updates costs the agent one table rebuild.
 *
 * Outages. The last snapshot stays in force: nothing is delivered while the API is unreachable,
 * so the data path keeps forwarding to the peers it knows. `stale()` turns true once there has
 * been no contact with the API for `staleAfterMs` (10 s); the agent reports that on /readyz.
 * A watch that goes silent for longer than its own timeout (a half-open TCP connection) is
 * dropped and re-established, so silence cannot pass for health forever.
 *
 * Scale. Memory is one Peer and one key string per node: the list is converted Node by Node as
 * it streams in and never held whole. An event costs one conversion and one string compare; a
 * snapshot costs one pass over N peers and a sort that is nearly linear (the map is in name
 * order, as the list delivered it, with later additions at the end), at most 20 times a second, and keeps the Peer objects of unchanged nodes,
 * so a consumer can tell what changed by identity. Each agent holds one watch, and the API
 * server fans Node events out from its watch cache, which is how flannel and kube-proxy scale to
 * thousands of nodes too.
 *
 * This module only reads. What the node writes about itself is kube-publish.ts; the watcher hands
 * it every version of our own Node it sees (`onOwnNode`), so a stripped annotation is noticed
 * without a second watch.
 */
import { KubeConfig, Watch } from '@kubernetes/client-node';
import type { Peer, PeerSource, PeerSourceEvents } from './source.js';
import { listNodes } from './kube-list.js';
import { annotationKeys, nodeToPeer, peerKey, SkipReason, type AnnotationKeys, type NodeLike } from './kube-node.js';
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  errorMessage,
  KubeApiError,
  LIST_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  statusOf,
  toKubeApiError,
  type LogFn,
  type LogLevel,
} from './kube-client.js';

export interface KubePeerSourceOptions {
  /** This node's Kubernetes name; it is never a peer of itself. */
  readonly nodeName: string;
  readonly kubeConfig: KubeConfig;
  /** `vxnet.io` or `flannel.alpha.coreos.com` (see kube-node.ts). */
  readonly annotationPrefix: string;
  /** Called with every version of our own Node the list and the watch deliver. */
  readonly onOwnNode?: (node: NodeLike) => void;
  /** Retry delays after a failed list/watch: doubling from min to max, with ±20% jitter. Default 500..30000. */
  readonly resyncBackoffMs?: { readonly min: number; readonly max: number };
  /** `stale()` turns true after this long without contact with the API. Default 10000. */
  readonly staleAfterMs?: number;
  /** Snapshots are delivered at most this often. Default 50. */
  readonly batchMs?: number;
  /** Server-side watch timeout; each watch asks for 1 to 1.5 times this. Default 300. */
  readonly watchTimeoutSeconds?: number;
  /** A watch with no event (bookmarks included) for this long is dropped. Default: 1.5 × timeout + 30 s. */
  readonly watchIdleMs?: number;
  readonly log?: LogFn;
}

interface Entry {
  /** Undefined: the node is known but not a peer (see `skip`). */
  readonly peer: Peer | undefined;
  readonly key: string;
  readonly skip: SkipReason | undefined;
}

type WatchEnd =
  | { readonly kind: 'closed'; readonly healthy: boolean }
  | { readonly kind: 'gone'; readonly healthy: boolean }
  | { readonly kind: 'silent' }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'error'; readonly err: unknown };

export class KubePeerSource implements PeerSource {
  readonly name: string;
  private readonly kc: KubeConfig;
  private readonly keys: AnnotationKeys;
  private readonly nodeName: string;
  private readonly onOwnNode: (node: NodeLike) => void;
  private readonly backoff: { readonly min: number; readonly max: number };
  private readonly staleAfterMs: number;
  private readonly batchMs: number;
  private readonly watchTimeoutSeconds: number;
  private readonly watchIdleMs: number;
  private readonly log: LogFn;

  private events: PeerSourceEvents | undefined;
  private nodes = new Map<string, Entry>();
  /** Resource version to watch from; undefined: list first. */
  private rv: string | undefined;
  /** The next list must be a consistent read (after 410), not served from the watch cache. */
  private consistentList = false;
  private stopped = false;
  private loopDone: Promise<void> | undefined;
  private cancelWatch: (() => void) | undefined;
  private readonly sleepers = new Set<() => void>();

  private connected = false;
  private lastContact = 0;
  private outageSince: number | undefined;

  private dirty = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastFlushAt = 0;
  private snapshotCount = 0;
  private listCount = 0;
  private eventCount = 0;
  private current: readonly Peer[] = [];

  constructor(opts: KubePeerSourceOptions) {
    if (!opts.nodeName) throw new TypeError('KubePeerSource: nodeName is required');
    this.kc = opts.kubeConfig;
    this.keys = annotationKeys(opts.annotationPrefix);
    this.nodeName = opts.nodeName;
    this.onOwnNode = opts.onOwnNode ?? (() => {});
    this.backoff = opts.resyncBackoffMs ?? DEFAULT_BACKOFF;
    this.staleAfterMs = opts.staleAfterMs ?? 10_000;
    this.batchMs = opts.batchMs ?? 50;
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
    this.watchIdleMs = opts.watchIdleMs ?? this.watchTimeoutSeconds * 1500 + 30_000;
    this.log = opts.log ?? (() => {});
    this.name = `kubernetes:${this.kc.getCurrentCluster()?.server ?? '?'}`;
  }

  /** Lists nodes once and delivers the first snapshot (or reports why not), then keeps watching. */
  async start(events: PeerSourceEvents): Promise<void> {
    if (this.events) throw new Error('KubePeerSource.start called twice');
    this.events = events;
    this.stopped = false;
    this.lastContact = Date.now();
    let failures = 0;
    try {
      await this.relist();
      this.flush();
    } catch (err) {
      failures = 1;
      this.noteFailure(err, 'list nodes');
    }
    this.loopDone = this.loop(failures);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelWatch?.();
    for (const wake of [...this.sleepers]) wake();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.loopDone;
  }

  stale(): boolean {
    return !this.connected && Date.now() - this.lastContact > this.staleAfterMs;
  }

  staleSeconds(): number {
    return this.stale() ? (Date.now() - this.lastContact) / 1000 : 0;
  }

  /** The peer set last delivered. */
  peers(): readonly Peer[] {
    return this.current;
  }

  /** Counters for /metrics and tests. */
  stats(): { snapshots: number; lists: number; events: number; nodes: number; peers: number; connected: boolean; resourceVersion: string | undefined } {
    return {
      snapshots: this.snapshotCount,
      lists: this.listCount,
      events: this.eventCount,
      nodes: this.nodes.size,
      peers: this.current.length,
      connected: this.connected,
      resourceVersion: this.rv,
    };
  }

  // ---- the reflector loop ----

  private async loop(initialFailures: number): Promise<void> {
    let failures = initialFailures;
    // Bounded in time: every pass either waits on the network or sleeps a backoff > 0.
    while (!this.stopped) {
      if (failures > 0) await this.sleep(backoffDelay(failures, this.backoff));
      if (this.stopped) break;
      let listedNow = false;
      try {
        if (this.rv === undefined) {
          await this.relist();
          listedNow = true;
        }
        const end = await this.watchOnce();
        switch (end.kind) {
          case 'stopped':
            return;
          case 'closed':
            failures = end.healthy ? 0 : failures + 1;
            break;
          case 'gone':
            this.rv = undefined;
            this.consistentList = true;
            this.log('info', 'watch history expired (410 Gone); re-listing nodes');
            // The server answered, so any outage is over: re-list now, or after the shortest
            // backoff if the watch failed at once. A 410 right after a fresh list would loop
            // list/watch without pause: back off more each time then.
            failures = listedNow ? failures + 1 : end.healthy ? 0 : 1;
            break;
          case 'silent':
            this.log('warn', 'node watch went silent; reconnecting', { idleMs: this.watchIdleMs });
            failures = 0;
            break;
          case 'error':
            throw end.err;
        }
      } catch (err) {
        failures++;
        this.noteFailure(err, this.rv === undefined ? 'list nodes' : 'watch nodes');
      }
    }
  }

  private async relist(): Promise<void> {
    // Each Node is converted as it streams in, so the list is never held whole (kube-list.ts).
    const next = new Map<string, Entry>();
    const skipped: Record<string, number> = {};
    const query: Record<string, string> = this.consistentList ? {} : { resourceVersion: '0' };
    const list = await listNodes(this.kc, query, (node) => {
      const name = node.metadata?.name;
      if (!name) return;
      if (name === this.nodeName) {
        this.onOwnNode(node);
        return;
      }
      const entry = this.convert(node, name, this.nodes.get(name));
      next.set(name, entry);
      if (entry.skip) skipped[entry.skip] = (skipped[entry.skip] ?? 0) + 1;
    }, LIST_TIMEOUT_MS);
    this.consistentList = false;
    this.listCount++;
    this.noteContact();
    let changed = next.size !== this.nodes.size;
    for (const [name, old] of this.nodes) {
      const now = next.get(name);
      if (now === undefined) {
        // Its DELETED event was lost (we were not watching): the list is the final word.
        if (old.peer) this.log('info', 'peer removed: node no longer exists', { node: name });
        changed = true;
      } else if (now.key !== old.key) {
        changed = true;
      }
    }
    this.nodes = next;
    this.rv = list.resourceVersion;
    let peers = 0;
    for (const e of next.values()) if (e.peer) peers++;
    this.log('info', 'listed nodes', { nodes: list.nodes, peers, skipped, resourceVersion: this.rv, bytes: list.bytes });
    if (changed || this.snapshotCount === 0) this.markDirty();
  }

  private watchOnce(): Promise<WatchEnd> {
    const startedAt = Date.now();
    let received = 0;
    const timeoutSeconds = Math.round(this.watchTimeoutSeconds * (1 + Math.random() * 0.5));
    return new Promise<WatchEnd>((resolve) => {
      let settled = false;
      let controller: AbortController | undefined;
      let idle: NodeJS.Timeout | undefined;
      const healthy = (): boolean => received > 0 || Date.now() - startedAt >= 1000;
      const finish = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        this.connected = false;
        this.cancelWatch = undefined;
        if (idle) clearTimeout(idle);
        if (connecting) clearTimeout(connecting);
        controller?.abort();
        resolve(end);
      };
      // One timer per watch, not one per event: it re-arms itself for whatever is left of the
      // idle window since the last event, so a burst of 5,000 events costs no timer churn.
      let lastEventAt = Date.now();
      const checkIdle = (): void => {
        const left = lastEventAt + this.watchIdleMs - Date.now();
        if (left <= 0) finish({ kind: 'silent' });
        else idle = setTimeout(checkIdle, left);
      };
      const armIdle = (): void => {
        lastEventAt = Date.now();
        if (idle === undefined) idle = setTimeout(checkIdle, this.watchIdleMs);
      };
      this.cancelWatch = () => finish({ kind: 'stopped' });
      // Until the response headers arrive, a timer guards the request itself.
      let connecting: NodeJS.Timeout | undefined = setTimeout(
        () => finish({ kind: 'error', err: new Error(`no response to the watch request within ${REQUEST_TIMEOUT_MS / 1000} s`) }),
        REQUEST_TIMEOUT_MS,
      );
      const query = { resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds };
      const watch = new Watch(this.kc);
      // client-node 2.x aborts a watch that receives nothing for `requestTimeoutMs` (30 s). On a
      // quiet cluster the API server sends a bookmark about once a minute, so that would tear
      // down a healthy watch, and report an outage, every half minute, and 15,000 agents would
      // re-open 500 watches a second. Give the client our idle window instead; if the field is
      // ever renamed this does nothing and the TimeoutError below still reads as silence.
      const clientTimer = watch as unknown as { requestTimeoutMs?: unknown };
      if (typeof clientTimer.requestTimeoutMs === 'number') clientTimer.requestTimeoutMs = this.watchIdleMs;
      watch
        .watch(
          '/api/v1/nodes',
          query,
          (type: string, obj: unknown) => {
            if (settled) return;
            received++;
            this.eventCount++;
            this.noteContact();
            armIdle();
            const gone = this.onWatchEvent(type, obj);
            if (gone === 'gone') finish({ kind: 'gone', healthy: healthy() });
            else if (gone instanceof Error) finish({ kind: 'error', err: gone });
          },
          (err: unknown) => {
            if (err && (err as { name?: unknown }).name === 'TimeoutError' && this.connected) {
              // The client's own inactivity timer on a watch that was open: silence, not an outage.
              finish({ kind: 'silent' });
            } else if (err) {
              finish(statusOf(err) === 410 ? { kind: 'gone', healthy: false } : { kind: 'error', err });
            } else {
              // The server ended the stream (its timeoutSeconds, or it shut down cleanly).
              if (!settled) this.noteContact();
              finish({ kind: 'closed', healthy: healthy() });
            }
          },
        )
        .then(
          (c: AbortController) => {
            controller = c;
            clearTimeout(connecting);
            connecting = undefined;
            if (settled) {
              c.abort();
              return;
            }
            this.connected = true;
            this.noteContact();
            armIdle();
          },
          (err: unknown) => finish({ kind: 'error', err }),
        );
    });
  }

  /** Applies one watch event. Returns 'gone' on 410, an Error on other ERROR events. */
  private onWatchEvent(type: string, obj: unknown): 'gone' | Error | undefined {
    const o = obj as (NodeLike & { code?: number; message?: string; reason?: string }) | undefined;
    if (type === 'ERROR') {
      if (o?.code === 410) return 'gone';
      return new KubeApiError(`node watch returned an error: ${o?.message ?? 'unknown'} (${o?.reason ?? ''} ${o?.code ?? ''})`.trim(), o?.code);
    }
    const rv = o?.metadata?.resourceVersion;
    const name = o?.metadata?.name;
    if (type === 'ADDED' || type === 'MODIFIED') {
      if (name === this.nodeName) this.onOwnNode(o as NodeLike);
      else if (name) this.upsert(name, o as NodeLike);
    } else if (type === 'DELETED') {
      if (name && name !== this.nodeName) this.remove(name);
    }
    // BOOKMARK carries only a resourceVersion: nothing to apply, but the next watch starts there.
    if (rv) this.rv = rv;
    return undefined;
  }

  private convert(node: NodeLike, name: string, prev: Entry | undefined): Entry {
    const r = nodeToPeer(node, this.keys);
    if (r.ok) {
      if (prev?.skip) this.log('info', 'node is now a peer', { node: name });
      return { peer: r.peer, key: peerKey(r.peer), skip: undefined };
    }
    if (prev?.skip !== r.reason) {
      // Once per node per reason: a node without annotations yet is normal during a rollout.
      const level: LogLevel = r.reason === SkipReason.NotVxlan ? 'debug' : 'warn';
      this.log(level, 'node skipped', { node: name, reason: r.reason, detail: r.detail });
    }
    return { peer: undefined, key: '', skip: r.reason };
  }

  private upsert(name: string, node: NodeLike): void {
    const prev = this.nodes.get(name);
    const entry = this.convert(node, name, prev);
    this.nodes.set(name, entry);
    if (prev === undefined ? entry.peer !== undefined : prev.key !== entry.key) this.markDirty();
  }

  private remove(name: string): void {
    const prev = this.nodes.get(name);
    if (prev === undefined) return;
    this.nodes.delete(name);
    if (prev.peer) this.markDirty();
  }

  // ---- snapshot batching ----

  private markDirty(): void {
    this.dirty = true;
    if (this.flushTimer || this.stopped || !this.events) return;
    const wait = Math.max(0, this.lastFlushAt + this.batchMs - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (!this.dirty || this.stopped || !this.events) return;
    this.dirty = false;
    this.lastFlushAt = Date.now();
    const peers: Peer[] = [];
    for (const e of this.nodes.values()) if (e.peer) peers.push(e.peer);
    peers.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    this.current = peers;
    this.snapshotCount++;
    try {
      this.events.snapshot(peers);
    } catch (err) {
      this.log('error', 'snapshot consumer threw', { error: errorMessage(err) });
    }
  }

  // ---- health ----

  private noteContact(): void {
    this.lastContact = Date.now();
    if (this.outageSince !== undefined) {
      this.log('info', 'Kubernetes API reachable again', { afterSeconds: (this.lastContact - this.outageSince) / 1000 });
      this.outageSince = undefined;
    }
  }

  private noteFailure(err: unknown, what: string): void {
    const e = toKubeApiError(err, what, this.nodeName, this.kc);
    if (this.outageSince !== undefined) {
      this.log('debug', 'Kubernetes API still failing', { error: e.message });
      return;
    }
    this.outageSince = Date.now();
    // Reported through events.error only: the agent logs it, once (PeerSourceEvents contract).
    const kept = `; keeping the last ${this.current.length} peers and retrying`;
    try {
      this.events?.error(new KubeApiError(e.message + kept, e.status, e.code));
    } catch {
      // the consumer's problem; we keep running
    }
  }

  /** A timer that stop() can cut short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(t);
        this.sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}

