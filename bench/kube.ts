/**
 * Kubernetes start-up at scale: how long an agent takes from "list the Nodes" to a forwarding
 * table, and what one Node's update costs afterwards, at 1,000, 5,000 and 15,000 Nodes.
 *
 * The API stand-in runs in its own process (as an API server would), serving Nodes shaped like a
 * kubelet's (test/support/kube-nodes.ts, about 8 KB of JSON each; bare Nodes would flatter the
 * decoder). This process runs the agent's real Kubernetes path through @kubernetes/client-node:
 *
 *   list       listNodes: the whole list over HTTP, streamed through the decoder
 *   convert    nodeToPeer on every Node
 *   start      KubePeerSource.start: list + convert + the first snapshot (what the agent waits for)
 *   agent      what Agent.applyPeers then does with a snapshot: compare it with the peers in force
 *              (samePeerList), map every peer to table input and screen it (tableInputs: address
 *              and MAC parsing, conflicts), and buildTable
 *   update     one Node's public-ip changed through the API: from the write to the snapshot that
 *              carries it, then the agent's compare and table for that snapshot (makeTables with
 *              the tables in force: a patch)
 *
 * Every time is also given per peer, and the update's cost next to a full rebuild. Peak RSS is
 * this process's (the stand-in's memory is not in it; sizes run smallest first, so each row's
 * peak is its own). `--typed` adds the list through the generated CoreV1Api (the typed decoding
 * the agent used before), time and peak RSS, in a process of its own so it does not inflate ours.
 *
 *   node dist/bench/kube.js [--nodes 1000,5000,15000] [--typed] [--out FILE]
 *
 * Prints a markdown table (and writes it to FILE). It asserts nothing about time; the bounds a
 * regression must not cross are in test/kube/scale.test.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { loadKubeConfig } from '../src/peers/kube-client.js';
import { listNodes } from '../src/peers/kube-list.js';
import { annotationKeys, nodeToPeer, VXNET_PREFIX, type NodeLike } from '../src/peers/kube-node.js';
import { KubePeerSource } from '../src/peers/kube-watch.js';
import { samePeerList, type Peer } from '../src/peers/source.js';
import { buildTable } from '../src/table/table.js';
import { tableInputs, type LocalFacts } from '../src/table/snapshot.js';
import { makeTables, type Tables } from '../src/table/update.js';
import { spawnStandIn } from '../test/support/kube-apiserver.js';
import { SCALE_CLUSTER_CIDR, scaleNodeName } from '../test/support/kube-nodes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface StartupRow {
  readonly nodes: number;
  readonly listMB: number;
  readonly listMs: number;
  readonly typed: { readonly ms: number; readonly cpuMs: number; readonly peakRssMB: number } | undefined;
  readonly convertMs: number;
  readonly startMs: number;
  /** CPU this process used for the start: less sensitive than wall time to other load on the machine. */
  readonly startCpuMs: number;
  readonly compareMs: number;
  readonly mapMs: number;
  readonly buildMs: number;
  readonly updateSnapshotMs: number;
  readonly updateAgentMs: number;
  readonly peakRssMB: number;
}

/** This node as the agent's table builder sees it: outside the scale Nodes' pod CIDRs and addresses. */
const SCALE_LOCAL: LocalFacts = {
  clusterCIDR: SCALE_CLUSTER_CIDR, podCIDR: '10.255.255.0/24', underlayIP: '192.0.2.1', vtepMAC: '02:ff:ff:ff:ff:fe', port: 8472, vni: 1,
};

/**
 * What Agent.applyPeers does with a snapshot, timed in its three parts. With the tables in force
 * (`prev`) the table is made as the agent makes it (a patch when few peers changed), all of it
 * counted as build.
 */
function agentApply(peers: readonly Peer[], inForce: readonly Peer[], prev?: Tables): { compareMs: number; mapMs: number; buildMs: number; tables?: Tables } {
  const t0 = performance.now();
  const same = samePeerList(peers, inForce);
  const t1 = performance.now();
  if (same) return { compareMs: t1 - t0, mapMs: 0, buildMs: 0 };
  if (prev) {
    const tables = makeTables(peers, SCALE_LOCAL, prev);
    return { compareMs: t1 - t0, mapMs: 0, buildMs: performance.now() - t1, tables };
  }
  const input = tableInputs(peers, SCALE_LOCAL);
  const t2 = performance.now();
  buildTable(input.input);
  const buildMs = performance.now() - t2;
  return { compareMs: t1 - t0, mapMs: t2 - t1, buildMs, tables: makeTables(peers, SCALE_LOCAL) };
}

/** The list through the generated CoreV1Api, in a process of its own: time and CPU of the second call, peak RSS. */
async function typedList(kubeconfig: string): Promise<{ ms: number; cpuMs: number; peakRssMB: number }> {
  const script = [
    "import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';",
    'const kc = new KubeConfig(); kc.loadFromFile(process.argv[1]);',
    'const api = kc.makeApiClient(CoreV1Api);',
    "await api.listNode({ resourceVersion: '0' });",
    'const t = performance.now();',
    'const c = process.cpuUsage();',
    "await api.listNode({ resourceVersion: '0' });",
    'const u = process.cpuUsage(c);',
    'console.log(JSON.stringify({ ms: performance.now() - t, cpuMs: (u.user + u.system) / 1000, peakRssMB: process.resourceUsage().maxRSS / 1024 }));',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, kubeconfig], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the typed-list process exited with ${code}`)));
    createInterface(child.stdout!).once('line', resolve);
  });
  return JSON.parse(line) as { ms: number; cpuMs: number; peakRssMB: number };
}

async function measure(nodes: number, typed: boolean, dir: string, log: (m: string) => void): Promise<StartupRow> {
  log(`kube bench: ${nodes} Nodes: starting the stand-in`);
  const standIn = await spawnStandIn(['--scale', String(nodes), '--bookmark-ms', '0'], join(dir, `kubeconfig-${nodes}`));
  const kc = loadKubeConfig(standIn.kubeconfig);
  try {
    const keys = annotationKeys(VXNET_PREFIX);
    await listNodes(kc, { resourceVersion: '0' }, () => {}, 120_000); // warm up the client and the JIT

    let t = performance.now();
    const collected: NodeLike[] = [];
    const list = await listNodes(kc, { resourceVersion: '0' }, (n) => void collected.push(n), 120_000);
    const listMs = performance.now() - t;

    t = performance.now();
    for (const n of collected) nodeToPeer(n, keys);
    const convertMs = performance.now() - t;
    collected.length = 0;

    const typedResult = typed ? await typedList(standIn.kubeconfig) : undefined;

    let last: readonly Peer[] = [];
    let waiting: { test: (p: readonly Peer[]) => boolean; done: () => void } | undefined;
    const source = new KubePeerSource({ nodeName: scaleNodeName(1), kubeConfig: kc, annotationPrefix: VXNET_PREFIX, watchTimeoutSeconds: 600 });
    t = performance.now();
    const cpu0 = process.cpuUsage();
    await source.start({
      snapshot: (p) => {
        last = p;
        if (waiting?.test(p)) waiting.done();
      },
      error: (e) => log(`kube bench: ${e.message}`),
    });
    const startMs = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    const startCpuMs = (cpu.user + cpu.system) / 1000;
    if (last.length !== nodes - 1) throw new Error(`first snapshot has ${last.length} peers, want ${nodes - 1}`);
    const full = agentApply(last, []);

    // One Node changes: the watch event, the snapshot, and what the agent does with it.
    await new Promise((r) => setTimeout(r, 200)); // let the watch open
    const inForce = last;
    const target = scaleNodeName(2);
    const arrived = new Promise<void>((resolve) => {
      waiting = { test: (p) => p.find((x) => x.node === target)?.underlayIP === '198.51.100.2', done: resolve };
    });
    t = performance.now();
    await kc.makeApiClient(CoreV1Api).patchNodeStatus(
      { name: target, body: { metadata: { annotations: { 'vxnet.io/public-ip': '198.51.100.2' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await Promise.race([arrived, new Promise((_, reject) => setTimeout(() => reject(new Error('the update did not arrive within 30 s')), 30_000).unref())]);
    const updateSnapshotMs = performance.now() - t;
    const update = agentApply(last, inForce, full.tables);
    await source.stop();

    return {
      nodes,
      listMB: list.bytes / 1e6,
      listMs,
      typed: typedResult,
      convertMs,
      startMs,
      startCpuMs,
      compareMs: full.compareMs,
      mapMs: full.mapMs,
      buildMs: full.buildMs,
      updateSnapshotMs,
      updateAgentMs: update.compareMs + update.mapMs + update.buildMs,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    await standIn.stop();
  }
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const us = (v: number, n: number): string => ((v * 1000) / n).toFixed(1);

export function renderStartup(rows: readonly StartupRow[], machine: string): string {
  const typed = rows.some((r) => r.typed !== undefined);
  const out = [
    '## Kubernetes start-up at scale',
    '',
    `Generated by \`node dist/bench/kube.js\` (bench/kube.ts; also run by \`npm run bench\`). ${machine}`,
    "Nodes shaped like a kubelet's (about 8 KB of JSON each), served by the API stand-in in its own process;",
    "this process runs the agent's path through @kubernetes/client-node. Times in ms, with µs per peer in",
    'brackets. "agent" is what Agent.applyPeers does with a snapshot; the one-node update row is the same',
    'work again for a snapshot that differs in one peer. The stand-in answers a list from bytes it keeps until the',
    'next change, as the API server answers from its watch cache, so the times are the client\'s; a real API',
    'server adds its own encoding and the network.',
    '',
    `| Nodes | list (MB) | list | convert | start: list, convert, first snapshot | start: CPU | agent: compare | agent: map | agent: buildTable | one Node updated: API write to snapshot | one Node updated: agent | peak RSS (MB) |${typed ? ' before: typed list | before: its CPU | before: peak RSS (MB) |' : ''}`,
    `|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${typed ? '---:|---:|---:|' : ''}`,
  ];
  const cell = (v: number, n: number): string => `${ms(v)} (${us(v, n)})`;
  for (const r of rows) {
    const n = r.nodes;
    out.push(
      `| ${n.toLocaleString('en-US')} | ${r.listMB.toFixed(1)} | ${cell(r.listMs, n)} | ${cell(r.convertMs, n)} | ${cell(r.startMs, n)} | ${cell(r.startCpuMs, n)} | ` +
        `${cell(r.compareMs, n)} | ${cell(r.mapMs, n)} | ${cell(r.buildMs, n)} | ${ms(r.updateSnapshotMs)} | ${ms(r.updateAgentMs)} | ${r.peakRssMB.toFixed(0)} |` +
        (typed ? (r.typed ? ` ${cell(r.typed.ms, n)} | ${cell(r.typed.cpuMs, n)} | ${r.typed.peakRssMB.toFixed(0)} |` : ' - | - | - |') : ''),
    );
  }
  out.push('');
  return out.join('\n');
}

export async function runKubeStartupBench(opts: { sizes?: readonly number[]; typed?: boolean; log?: (m: string) => void } = {}): Promise<string> {
  const sizes = opts.sizes ?? [1_000, 5_000, 15_000];
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-kube-bench-'));
  const rows: StartupRow[] = [];
  const t0 = performance.now();
  const loadBefore = loadavg()[0]!;
  try {
    for (const n of sizes) {
      rows.push(await measure(n, opts.typed ?? false, dir, log));
      log(`kube bench: ${n} Nodes: start ${rows.at(-1)!.startMs.toFixed(0)} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Wall times move with whatever else the machine runs; the load average says how much that was.
  const machine =
    `Node ${process.version}, ${availableParallelism()} CPUs, 1-minute load average ${loadBefore.toFixed(1)} before and ` +
    `${loadavg()[0]!.toFixed(1)} after; the run took ${((performance.now() - t0) / 1000).toFixed(0)} s.`;
  return renderStartup(rows, machine);
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const { values } = parseArgs({ options: { nodes: { type: 'string' }, typed: { type: 'boolean' }, out: { type: 'string' } } });
  const sizes = values.nodes?.split(',').map(Number);
  if (sizes?.some((n) => !Number.isInteger(n) || n < 2 || n > 65_535)) throw new Error('--nodes takes a comma-separated list of integers in 2..65535');
  const md = await runKubeStartupBench({ ...(sizes ? { sizes } : {}), typed: values.typed ?? false, log: (m) => void process.stderr.write(`${m}\n`) });
  process.stdout.write(md);
  if (values.out) writeFileSync(values.out, md);
}
