/**
 * The other direction of the Kubernetes peer source: what this node writes about itself on its
 * own Node object, so that the other nodes can make it their peer.
 *
 * Every write goes through the `nodes/status` subresource, as flannel's kube subnet manager does.
 * The API server's status strategy for Nodes keeps metadata changes made there and resets only
 * `spec`, so one grant (`patch nodes/status`) covers both the annotations and the
 * NetworkUnavailable condition, and the agent never needs `patch nodes`, which would let it
 * change any Node's spec (taints, unschedulable, pod CIDRs).
 *
 *   publish()             one merge patch (RFC 7386) of our annotation keys; others are untouched
 *   setNetworkAvailable() one strategic merge patch of status.conditions, merged by `type`, so
 *                         the kubelet's conditions stay as they are
 *   checkOwnNode(node)    called by the watcher with each version of our Node it sees: if someone
 *                         stripped or changed what we published, publish again (rate-limited)
 *   unpublish()           the uninstall: remove exactly our annotation keys and our condition
 *
 * Writes are retried on network errors, 429 and 5xx with the watcher's backoff; a 403 or 404
 * fails at once with an operator message (kube-client.ts).
 */
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { annotationKeys, publishAnnotations, type AnnotationKeys, type NodeLike } from './kube-node.js';
import { backoffDelay, DEFAULT_BACKOFF, errorMessage, REQUEST_TIMEOUT_MS, statusOf, toKubeApiError, withTimeout, type LogFn } from './kube-client.js';

/** Field manager name on every write, so `kubectl get node -o yaml --show-managed-fields` says who. */
export const FIELD_MANAGER = 'vxnet';
/** The condition reason `setNetworkAvailable()` writes (flannel writes `FlannelIsUp`). */
export const NETWORK_UP_REASON = 'VxnetIsUp';
/** The condition type we set; other network agents and cloud route controllers set it too. */
export const NETWORK_CONDITION = 'NetworkUnavailable';
/** Someone fighting over our annotations gets one republish per this many ms, not a write storm. */
const REPUBLISH_MIN_INTERVAL_MS = 30_000;

/** What this node publishes about its own VTEP. */
export interface SelfVtep {
  /** The address peers send to: the public-ip-overwrite annotation, else the underlay IP. */
  readonly underlayIP: string;
  readonly vtepMAC: string;
  readonly vni: number;
  readonly port: number;
  /** This node finishes inner checksums a sender leaves unfinished (VXLAN RCO). */
  readonly remoteChecksum?: boolean;
}

export interface NodePublisherOptions {
  readonly kubeConfig: KubeConfig;
  /** Our own Node: the only object this module writes. */
  readonly nodeName: string;
  /** `vxnet.io` or `flannel.alpha.coreos.com` (see kube-node.ts). */
  readonly annotationPrefix: string;
  readonly self: SelfVtep;
  /** Attempts per write on network errors, 429 and 5xx. Default 5. */
  readonly writeAttempts?: number;
  /** Delays between attempts: doubling from min to max, with ±20% jitter. Default 500..30000. */
  readonly backoffMs?: { readonly min: number; readonly max: number };
  readonly log?: LogFn;
}

export class NodePublisher {
  private readonly kc: KubeConfig;
  private readonly api: CoreV1Api;
  private readonly keys: AnnotationKeys;
  private readonly nodeName: string;
  private readonly self: SelfVtep;
  private readonly writeAttempts: number;
  private readonly backoff: { readonly min: number; readonly max: number };
  private readonly log: LogFn;
  /** What publish() last wrote, to notice when someone removes it from our Node. */
  private published: Record<string, string> | undefined;
  private lastRepublishAt = 0;
  private stopped = false;

  constructor(opts: NodePublisherOptions) {
    if (!opts.nodeName) throw new TypeError('NodePublisher: nodeName is required');
    this.kc = opts.kubeConfig;
    this.api = this.kc.makeApiClient(CoreV1Api);
    this.keys = annotationKeys(opts.annotationPrefix);
    this.nodeName = opts.nodeName;
    this.self = opts.self;
    this.writeAttempts = Math.max(1, opts.writeAttempts ?? 5);
    this.backoff = opts.backoffMs ?? DEFAULT_BACKOFF;
    this.log = opts.log ?? (() => {});
  }

  /** No more retries or republishes after this. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Publishes this node's VTEP: one merge patch of `metadata.annotations` on our own Node,
   * through nodes/status. Merge patch touches only the keys it names, so other annotations stay.
   */
  async publish(): Promise<void> {
    const annotations = publishAnnotations(this.self, this.keys);
    await this.write('patch node annotations (nodes/status)', () =>
      this.api.patchNodeStatus(
        { name: this.nodeName, body: { metadata: { annotations } }, fieldManager: FIELD_MANAGER },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    this.published = annotations;
    this.log('info', 'published VTEP on node', { node: this.nodeName, annotations });
  }

  /**
   * Sets the NetworkUnavailable condition to False, as flannel and calico do, so the node loses
   * its `node.kubernetes.io/network-unavailable` taint where a cloud provider put it. A strategic
   * merge patch on nodes/status merges `conditions` by `type`, leaving the kubelet's alone.
   */
  async setNetworkAvailable(): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const condition = {
      type: NETWORK_CONDITION,
      status: 'False',
      reason: NETWORK_UP_REASON,
      message: 'vxnet is running on this node',
      lastTransitionTime: now,
      lastHeartbeatTime: now,
    };
    await this.write('patch node status', () =>
      this.api.patchNodeStatus(
        { name: this.nodeName, body: { status: { conditions: [condition] } }, fieldManager: FIELD_MANAGER },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      ),
    );
    this.log('info', 'set NetworkUnavailable=False', { node: this.nodeName });
  }

  /** If someone stripped or changed what we published (a flannel uninstall, a hand edit), put it back. */
  checkOwnNode(node: NodeLike): void {
    const want = this.published;
    if (!want || this.stopped) return;
    const have = node.metadata?.annotations ?? {};
    const changed = Object.keys(want).filter((k) => have[k] !== want[k]);
    if (changed.length === 0) return;
    const now = Date.now();
    if (now - this.lastRepublishAt < REPUBLISH_MIN_INTERVAL_MS) return;
    this.lastRepublishAt = now;
    this.log('warn', 'our node annotations were changed by someone else; publishing again', { node: this.nodeName, keys: changed });
    this.publish().catch((err: unknown) => this.log('error', 'republish failed', { error: errorMessage(err) }));
  }

  private async write(what: string, call: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await withTimeout(call(), REQUEST_TIMEOUT_MS, what);
        return;
      } catch (err) {
        const e = toKubeApiError(err, what, this.nodeName, this.kc);
        if (!e.retryable || attempt >= this.writeAttempts || this.stopped) throw e;
        this.log('warn', `${what} failed, retrying`, { attempt, error: e.message });
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, this.backoff)).unref());
      }
    }
  }
}

/** What `unpublish` found on the Node and what it removed. */
export interface UnpublishResult {
  /** False when the Node does not exist (nothing to do, not an error). */
  readonly nodeFound: boolean;
  /** Our annotation keys that were present and are now gone, sorted. */
  readonly removedAnnotations: readonly string[];
  /** True when our NetworkUnavailable condition was present and is now gone. */
  readonly removedCondition: boolean;
  /** The reason of a NetworkUnavailable condition someone else set, which was left alone. */
  readonly foreignConditionReason?: string;
}

/** Bounded retries when the Node changes between our read and our write (409 Conflict). */
const UNPUBLISH_ATTEMPTS = 5;

/**
 * The API part of an uninstall: removes from our own Node exactly the annotation keys an agent
 * with this prefix publishes (`publishAnnotations`' keys; never `public-ip-overwrite`, which an
 * operator sets, and never anyone else's key) and the NetworkUnavailable condition, only if its
 * reason is ours. A condition with another reason belongs to another agent or a cloud route
 * controller and is kept.
 *
 * Safe to run any number of times: it reads the Node first and writes only if something of ours
 * is there, so a second run (or a run on a node vxnet never touched) makes no write at all. The
 * write is one patch on nodes/status carrying the resourceVersion it read, so a concurrent change
 * makes it fail with 409 and it reads and decides again, instead of deleting a condition that was
 * just replaced.
 */
export async function unpublish(kc: KubeConfig, nodeName: string, prefix: string, log: LogFn = () => {}): Promise<UnpublishResult> {
  const keys = annotationKeys(prefix);
  // The key list of publishAnnotations, for any VTEP: the values do not matter here.
  const ours = Object.keys(publishAnnotations({ underlayIP: '0.0.0.0', vni: 0, vtepMAC: '02:00:00:00:00:01', port: 1, remoteChecksum: true }, keys));
  const api = kc.makeApiClient(CoreV1Api);
  for (let attempt = 1; ; attempt++) {
    let node: V1Node;
    try {
      node = await withTimeout(api.readNode({ name: nodeName }), REQUEST_TIMEOUT_MS, 'get node');
    } catch (err) {
      if (statusOf(err) === 404) return { nodeFound: false, removedAnnotations: [], removedCondition: false };
      throw toKubeApiError(err, 'get node', nodeName, kc);
    }
    const present = node.metadata?.annotations ?? {};
    const removedAnnotations = ours.filter((k) => k in present).sort();
    const condition = node.status?.conditions?.find((c) => c.type === NETWORK_CONDITION);
    const removedCondition = condition?.reason === NETWORK_UP_REASON;
    const foreign = condition && !removedCondition ? { foreignConditionReason: condition.reason ?? '' } : {};
    if (removedAnnotations.length === 0 && !removedCondition) return { nodeFound: true, removedAnnotations, removedCondition, ...foreign };

    const body: Record<string, unknown> = {
      metadata: {
        resourceVersion: node.metadata?.resourceVersion,
        ...(removedAnnotations.length > 0 ? { annotations: Object.fromEntries(removedAnnotations.map((k) => [k, null])) } : {}),
      },
      ...(removedCondition ? { status: { conditions: [{ type: NETWORK_CONDITION, $patch: 'delete' }] } } : {}),
    };
    try {
      await withTimeout(
        api.patchNodeStatus({ name: nodeName, body, fieldManager: FIELD_MANAGER }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)),
        REQUEST_TIMEOUT_MS,
        'patch node status',
      );
    } catch (err) {
      if (statusOf(err) === 409 && attempt < UNPUBLISH_ATTEMPTS) {
        log('info', 'node changed while removing our annotations; reading it again', { node: nodeName, attempt });
        continue;
      }
      throw toKubeApiError(err, 'patch node status (remove our annotations and condition)', nodeName, kc);
    }
    log('info', 'removed our annotations and condition from the node', { node: nodeName, annotations: removedAnnotations, condition: removedCondition });
    return { nodeFound: true, removedAnnotations, removedCondition, ...foreign };
  }
}
