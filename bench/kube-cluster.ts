/**
 * The cluster bench: iperf3 between two pods on two different nodes of a real cluster, so the
 * traffic crosses the vxnet overlay (pod -> cni0 -> TUN -> VXLAN/UDP -> underlay -> peer).
 *
 * Pods are pinned with `spec.nodeName` (picked from the Node list: Ready, with a pod CIDR,
 * workers before control-plane nodes), which also bypasses taints, so a two-node kubeadm cluster
 * with one control-plane node works. One server pod runs `iperf3 -s`; each test is one client
 * pod running `iperf3 -c <server pod IP> -J ...` to completion; its JSON report is read from the
 * pod log. Pod IPs are used directly (no Service), so kube-proxy is not on the path.
 *
 * Tests: TCP with 1 stream, TCP with 4 streams (-P 4), 64-byte UDP as fast as the sender can
 * (-u -b 0 -l 64), as in the lab bench. The report is a markdown table in the lab bench's shape:
 * Gbit/s, UDP packets/s received and loss, plus TCP retransmits. Everything the
 * bench creates carries the label `app.kubernetes.io/name=vxnet-bench` and is deleted at the end,
 * also on failure; `kubectl delete pod -l app.kubernetes.io/name=vxnet-bench` cleans up after a
 * crash.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Container, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { nodePodCIDRs } from '../src/peers/kube-node.js';
import { toKubeApiError } from '../src/peers/kube-client.js';

export const BENCH_LABEL = { 'app.kubernetes.io/name': 'vxnet-bench' } as const;
/** Any image with iperf3 on PATH works; this one is small and has it as its entrypoint. */
export const DEFAULT_IPERF3_IMAGE = 'docker.io/networkstatic/iperf3:latest';
export const IPERF3_PORT = 5201;

export interface KubeBenchOptions {
  /** Default "default". */
  readonly namespace?: string;
  readonly image?: string;
  /** Seconds per test. Default 10. */
  readonly durationSeconds?: number;
  /** Node names; picked from the Node list when absent. */
  readonly serverNode?: string;
  readonly clientNode?: string;
  /** iperf3 -b for the UDP test; "0" is as fast as possible. Default "0". */
  readonly udpBandwidth?: string;
  /** UDP payload bytes (-l). Default 64, as in the lab bench: a packet-rate test, not a throughput one. */
  readonly udpLength?: number;
  /** How long to wait for a pod to start or finish, beyond the test duration. Default 120 s. */
  readonly podTimeoutMs?: number;
  readonly log?: (msg: string) => void;
}

export interface BenchTest {
  /** Row label. */
  readonly name: string;
  /** Short name used in pod names. */
  readonly id: string;
  readonly args: readonly string[];
}

export type IperfResult =
  | { readonly kind: 'tcp'; readonly gbps: number; readonly retransmits: number | undefined }
  | { readonly kind: 'udp'; readonly gbps: number; readonly pps: number; readonly lossPercent: number }
  | { readonly kind: 'error'; readonly message: string };

export interface KubeBenchReport {
  readonly serverNode: string;
  readonly clientNode: string;
  readonly serverPodIP: string;
  readonly durationSeconds: number;
  readonly rows: ReadonlyArray<{ readonly test: BenchTest; readonly result: IperfResult }>;
}

/** The tests, in the order they run. */
export function benchTests(opts: Pick<KubeBenchOptions, 'udpBandwidth' | 'udpLength'> = {}): BenchTest[] {
  const len = opts.udpLength ?? 64;
  return [
    { name: 'TCP, 1 stream', id: 'tcp1', args: [] },
    { name: 'TCP, 4 streams', id: 'tcp4', args: ['-P', '4'] },
    { name: `UDP ${len} B`, id: 'udp', args: ['-u', '-b', opts.udpBandwidth ?? '0', '-l', String(len)] },
  ];
}

/**
 * Two distinct nodes: Ready, with an IPv4 pod CIDR, not cordoned; workers first. Explicit names
 * win but must exist and differ.
 */
export function pickNodes(nodes: readonly V1Node[], want: { server?: string; client?: string } = {}): { server: string; client: string } {
  const usable = nodes.filter((n) => {
    const ready = n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    return ready && !n.spec?.unschedulable && nodePodCIDRs(n).length > 0;
  });
  const isControlPlane = (n: V1Node): boolean =>
    Object.keys(n.metadata?.labels ?? {}).some((l) => l === 'node-role.kubernetes.io/control-plane' || l === 'node-role.kubernetes.io/master');
  const ordered = [...usable.filter((n) => !isControlPlane(n)), ...usable.filter(isControlPlane)].map((n) => n.metadata!.name!);
  const names = new Set(nodes.map((n) => n.metadata?.name));
  for (const w of [want.server, want.client]) {
    if (w !== undefined && !names.has(w)) throw new Error(`node "${w}" does not exist`);
  }
  const server = want.server ?? ordered.find((n) => n !== want.client);
  const client = want.client ?? ordered.find((n) => n !== server);
  if (server === undefined || client === undefined) {
    throw new Error(
      `the cluster bench needs two Ready nodes with a pod CIDR; found ${ordered.length} (${ordered.join(', ') || 'none'}). ` +
        'Is vxnet running on them (kubectl -n vxnet get pods -o wide)?',
    );
  }
  if (server === client) throw new Error(`server and client must be on different nodes (both "${server}")`);
  return { server, client };
}

/** A bench pod: one iperf3 container, pinned to `node` with spec.nodeName, never restarted. */
function iperfPod(name: string, node: string, image: string, labels: Record<string, string>, args: string[], extra: Partial<V1Container> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { ...BENCH_LABEL, ...labels } },
    spec: {
      nodeName: node,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'iperf3', image, command: ['iperf3'], args, ...extra }],
    },
  };
}

/** The iperf3 server pod, pinned to `node`. */
export function serverPod(name: string, node: string, image: string): V1Pod {
  return iperfPod(name, node, image, { 'vxnet.io/bench-role': 'server' }, ['-s', '-p', String(IPERF3_PORT)], {
    ports: [{ containerPort: IPERF3_PORT, protocol: 'TCP' }, { containerPort: IPERF3_PORT, protocol: 'UDP' }],
    readinessProbe: { tcpSocket: { port: IPERF3_PORT }, periodSeconds: 1 },
  });
}

/** One client pod that runs one test to completion and leaves its JSON report in the log. */
export function clientPod(name: string, node: string, image: string, serverIP: string, durationSeconds: number, test: BenchTest): V1Pod {
  const args = ['-c', serverIP, '-p', String(IPERF3_PORT), '-J', '-t', String(durationSeconds), ...test.args];
  return iperfPod(name, node, image, { 'vxnet.io/bench-role': 'client', 'vxnet.io/bench-test': test.id }, args);
}

interface IperfJson {
  error?: string;
  start?: { test_start?: { protocol?: string } };
  end?: {
    sum_sent?: { bits_per_second?: number; retransmits?: number };
    sum_received?: { bits_per_second?: number; packets?: number; lost_packets?: number; seconds?: number; lost_percent?: number };
    sum?: { bits_per_second?: number; packets?: number; lost_packets?: number; seconds?: number; lost_percent?: number };
  };
}

/**
 * Reads an `iperf3 -J` report. TCP: receiver throughput, sender retransmits. UDP: what arrived,
 * from the receiver's numbers the client reports (`sum_received` in iperf3 >= 3.13, else `sum`
 * scaled by the loss): pps = (packets - lost) / seconds.
 */
export function parseIperf3(text: string): IperfResult {
  const start = text.indexOf('{');
  let j: IperfJson;
  try {
    j = JSON.parse(start >= 0 ? text.slice(start) : text) as IperfJson;
  } catch {
    return { kind: 'error', message: `not iperf3 JSON: ${text.slice(0, 200).trim() || '(empty log)'}` };
  }
  if (j.error) return { kind: 'error', message: `iperf3: ${j.error}` };
  const proto = j.start?.test_start?.protocol;
  if (proto === 'UDP') {
    const s = j.end?.sum;
    const r = j.end?.sum_received;
    const packets = r?.packets ?? s?.packets;
    const lost = r?.lost_packets ?? s?.lost_packets;
    const seconds = r?.seconds ?? s?.seconds;
    if (packets === undefined || lost === undefined || !seconds) return { kind: 'error', message: 'iperf3 UDP report has no end.sum packets/seconds' };
    const lossPercent = packets > 0 ? (100 * lost) / packets : 0;
    const bps = r?.bits_per_second ?? (s?.bits_per_second ?? 0) * (1 - lossPercent / 100);
    return { kind: 'udp', gbps: bps / 1e9, pps: (packets - lost) / seconds, lossPercent };
  }
  const received = j.end?.sum_received?.bits_per_second;
  if (received === undefined) return { kind: 'error', message: 'iperf3 TCP report has no end.sum_received' };
  return { kind: 'tcp', gbps: received / 1e9, retransmits: j.end?.sum_sent?.retransmits };
}

function cell(r: IperfResult | undefined, f: (r: IperfResult & { kind: 'tcp' | 'udp' }) => string): string {
  return r === undefined || r.kind === 'error' ? '-' : f(r);
}

/**
 * The markdown report, in the lab bench's shape (src/lab/bench.ts renderTable): one row per path
 * with the same first five columns, so a cluster result can sit under the lab's table. RTT, CPU
 * and memory are lab-only; the cluster row adds TCP retransmits instead. Failed tests show `-`
 * and are listed under the table.
 */
export function formatKubeBenchReport(r: KubeBenchReport): string {
  const by = (id: string): IperfResult | undefined => r.rows.find((x) => x.test.id === id)?.result;
  const tcp1 = by('tcp1');
  const tcp4 = by('tcp4');
  const udp = by('udp');
  const udpName = r.rows.find((x) => x.test.id === 'udp')?.test.name ?? 'UDP';
  const gbps = (x: IperfResult | undefined): string => cell(x, (v) => v.gbps.toFixed(2));
  const retrans = (x: IperfResult | undefined): string => cell(x, (v) => (v.kind === 'tcp' && v.retransmits !== undefined ? String(v.retransmits) : '-'));
  const kpps = cell(udp, (v) => (v.kind === 'udp' ? (v.pps / 1000).toFixed(1) : '-'));
  const loss = cell(udp, (v) => (v.kind === 'udp' ? `${v.lossPercent.toFixed(1)}%` : '-'));
  const lines = [
    `Cluster bench: iperf3 between pods, ${r.durationSeconds} s per test, server pod ${r.serverPodIP} on ${r.serverNode}`,
    '',
    `| Path | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | ${udpName} received (kpps) | UDP loss | TCP retransmits (1 / 4 streams) |`,
    '|---|---:|---:|---:|---:|---:|',
    `| vxnet, pod on ${r.clientNode} -> pod on ${r.serverNode} | ${gbps(tcp1)} | ${gbps(tcp4)} | ${kpps} | ${loss} | ${retrans(tcp1)} / ${retrans(tcp4)} |`,
  ];
  const failed = r.rows.filter((x) => x.result.kind === 'error');
  if (failed.length > 0) {
    lines.push('');
    for (const f of failed) lines.push(`- ${f.test.name} failed: ${f.result.kind === 'error' ? f.result.message : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Runs the bench. Resolves with the report; every pod it created is deleted before it returns. */
export async function runKubeBench(kc: KubeConfig, opts: KubeBenchOptions = {}): Promise<KubeBenchReport> {
  const api = kc.makeApiClient(CoreV1Api);
  const namespace = opts.namespace ?? 'default';
  const image = opts.image ?? DEFAULT_IPERF3_IMAGE;
  const duration = opts.durationSeconds ?? 10;
  const podTimeoutMs = opts.podTimeoutMs ?? 120_000;
  const log = opts.log ?? (() => {});
  const call = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      throw toKubeApiError(err, what, undefined, kc);
    }
  };

  const nodes = (await call('list nodes', () => api.listNode())).items;
  const { server, client } = pickNodes(nodes, { ...(opts.serverNode ? { server: opts.serverNode } : {}), ...(opts.clientNode ? { client: opts.clientNode } : {}) });
  const suffix = randomBytes(3).toString('hex');
  const created: string[] = [];
  const create = async (pod: V1Pod): Promise<void> => {
    await call(`create pod ${pod.metadata!.name!} in namespace ${namespace}`, () => api.createNamespacedPod({ namespace, body: pod }));
    created.push(pod.metadata!.name!);
  };
  try {
    const serverName = `vxnet-bench-server-${suffix}`;
    log(`starting iperf3 server on ${server}`);
    await create(serverPod(serverName, server, image));
    const sp = await waitPod(api, namespace, serverName, podTimeoutMs, (p) => isReady(p) && !!p.status?.podIP, kc);
    const serverIP = sp.status!.podIP!;
    const rows: Array<{ test: BenchTest; result: IperfResult }> = [];
    for (const test of benchTests(opts)) {
      const name = `vxnet-bench-${test.id}-${suffix}`;
      log(`running ${test.name} from ${client}`);
      await create(clientPod(name, client, image, serverIP, duration, test));
      const done = await waitPod(api, namespace, name, podTimeoutMs + duration * 1000, (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed', kc);
      const text = await call(`read the log of pod ${name}`, () => api.readNamespacedPodLog({ name, namespace, container: 'iperf3' }));
      const result = parseIperf3(text);
      rows.push({ test, result: done.status?.phase === 'Failed' && result.kind !== 'error' ? { kind: 'error', message: 'client pod failed' } : result });
      await deletePod(api, namespace, name);
      created.splice(created.indexOf(name), 1);
    }
    return { serverNode: server, clientNode: client, serverPodIP: serverIP, durationSeconds: duration, rows };
  } finally {
    for (const name of created) await deletePod(api, namespace, name);
  }
}

function isReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function waitPod(api: CoreV1Api, namespace: string, name: string, timeoutMs: number, done: (p: V1Pod) => boolean, kc: KubeConfig): Promise<V1Pod> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let pod: V1Pod;
    try {
      pod = await api.readNamespacedPod({ name, namespace });
    } catch (err) {
      throw toKubeApiError(err, `read pod ${name}`, undefined, kc);
    }
    if (done(pod)) return pod;
    if (Date.now() > deadline) {
      const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
      const why = waiting ? `${waiting.reason ?? ''} ${waiting.message ?? ''}`.trim() : `phase ${pod.status?.phase ?? 'unknown'}`;
      throw new Error(`pod ${namespace}/${name} not done after ${timeoutMs / 1000} s (${why}); kubectl -n ${namespace} describe pod ${name}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function deletePod(api: CoreV1Api, namespace: string, name: string): Promise<void> {
  try {
    await api.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
  } catch {
    // Already gone, or the API is down: the label lets the operator clean up.
  }
}
