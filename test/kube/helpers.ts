/**
 * Shared pieces of the Kubernetes tests: a recording PeerSourceEvents sink, a bounded poll, and a
 * KubePeerSource and a NodePublisher wired to a stand-in with test-sized timers, as the agent wires
 * them (the watcher hands our own Node to the publisher). No test here sleeps for a fixed time
 * to "let things settle" when it can wait for the thing itself.
 */
import { ApiStandIn, makeNode, type NodeObject } from '../support/kube-apiserver.js';
import type { LogLevel } from '../../src/peers/kube-client.js';
import { annotationKeys, publishAnnotations, VXNET_PREFIX } from '../../src/peers/kube-node.js';
import { NodePublisher, type NodePublisherOptions } from '../../src/peers/kube-publish.js';
import { KubePeerSource, type KubePeerSourceOptions } from '../../src/peers/kube-watch.js';
import type { Peer, PeerSourceEvents } from '../../src/peers/source.js';

export interface Snapshot {
  readonly at: number;
  readonly peers: readonly Peer[];
}

export class Recorder implements PeerSourceEvents {
  readonly snapshots: Snapshot[] = [];
  readonly errors: Error[] = [];
  snapshot(peers: readonly Peer[]): void {
    this.snapshots.push({ at: performance.now(), peers });
  }
  error(err: Error): void {
    this.errors.push(err);
  }
  get last(): readonly Peer[] | undefined {
    return this.snapshots[this.snapshots.length - 1]?.peers;
  }
  names(): string[] {
    return (this.last ?? []).map((p) => p.node);
  }
  /** Waits for a snapshot (delivered after index `from`) that satisfies `pred`. */
  async next(pred: (peers: readonly Peer[]) => boolean, timeoutMs: number, from = 0): Promise<Snapshot> {
    let found: Snapshot | undefined;
    await waitFor(() => (found = this.snapshots.slice(from).find((s) => pred(s.peers))) !== undefined, timeoutMs, 'a matching snapshot');
    return found!;
  }
}

export interface LogLine {
  readonly level: LogLevel;
  readonly msg: string;
  readonly fields: Record<string, unknown> | undefined;
}

/** Polls `pred` every 5 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(pred: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function mac(i: number): string {
  return `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`;
}

/** Node i, as a vxnet (or flannel) agent would have annotated it, or bare when `annotated` is false. */
export function peerNode(i: number, opts: { prefix?: string; annotated?: boolean; port?: number } = {}): NodeObject {
  const ip = `192.168.${100 + i}.2`;
  const keys = annotationKeys(opts.prefix ?? VXNET_PREFIX);
  return makeNode({
    name: `node-${i}`,
    podCIDR: `10.244.${i}.0/24`,
    internalIP: ip,
    ...(opts.annotated === false ? {} : { annotations: publishAnnotations({ underlayIP: ip, vni: 1, vtepMAC: mac(i), port: opts.port ?? 8472 }, keys) }),
  });
}

export interface Harness {
  readonly standIn: ApiStandIn;
  readonly source: KubePeerSource;
  readonly publisher: NodePublisher;
  readonly rec: Recorder;
  readonly logs: LogLine[];
  close(): Promise<void>;
}

/**
 * A stand-in holding `self` (node-1, bare) plus `nodes`, and a source and a publisher for node-1
 * with fast timers; `prefix` is the annotation prefix of both.
 */
export async function harness(
  nodes: readonly NodeObject[],
  opts: {
    prefix?: string;
    source?: Partial<KubePeerSourceOptions>;
    publisher?: Partial<NodePublisherOptions>;
    standIn?: ConstructorParameters<typeof ApiStandIn>[0];
    start?: boolean;
  } = {},
): Promise<Harness> {
  const standIn = new ApiStandIn(opts.standIn);
  standIn.addNode(peerNode(1, { annotated: false }));
  for (const n of nodes) standIn.addNode(n);
  await standIn.start();
  const logs: LogLine[] = [];
  const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => void logs.push({ level, msg, fields });
  const annotationPrefix = opts.prefix ?? VXNET_PREFIX;
  const publisher = new NodePublisher({
    nodeName: 'node-1',
    kubeConfig: standIn.kubeConfig(),
    annotationPrefix,
    self: { underlayIP: '192.168.101.2', vtepMAC: mac(1), vni: 1, port: 8472 },
    backoffMs: { min: 20, max: 100 },
    log,
    ...opts.publisher,
  });
  const source = new KubePeerSource({
    nodeName: 'node-1',
    kubeConfig: standIn.kubeConfig(),
    annotationPrefix,
    onOwnNode: (node) => publisher.checkOwnNode(node),
    resyncBackoffMs: { min: 20, max: 100 },
    staleAfterMs: 300,
    log,
    ...opts.source,
  });
  const rec = new Recorder();
  if (opts.start !== false) await source.start(rec);
  return {
    standIn,
    source,
    publisher,
    rec,
    logs,
    async close() {
      publisher.stop();
      await source.stop();
      await standIn.stop();
    },
  };
}
