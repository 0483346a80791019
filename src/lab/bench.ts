/**
 * The data-path benchmark: the same two-node lab built once per data path, the same
 * measurements on each, and a report that puts vxnet next to the kernel's own VXLAN.
 *
 * Paths: direct routing (no overlay, the ceiling), kernel VXLAN (the reference), vxnet with its
 * offloads, vxnet with every offload off, socat (a naive userspace TUN<->UDP relay, the floor
 * for a userspace design) and OpenVPN without crypto (a mature userspace tunnel), when
 * installed. Measurements, pod to pod across the router: single-stream TCP (iperf3 -t 5),
 * four streams (-P 4), 64-byte UDP at unlimited rate (received packets per second and loss),
 * ping RTT p50/p99 over 200 pings at 10 ms and over a second series at 200 ms (idle gaps between
 * requests, as RPC traffic has), the whole machine's busy CPU seconds per GB delivered (from
 * /proc/stat deltas over the single-stream run, so kernel softirq work counts, for every path),
 * and for userspace relays their own CPU seconds per GB moved (utime+stime of both relay
 * processes from /proc) and memory (VmRSS now, VmHWM peak, of the busier process).
 *
 * Everything shares one machine: iperf3 client and server, both relays and the router all
 * compete for the same cores, so the numbers compare paths with each other, not with a NIC.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, release } from 'node:os';
import { Lab, type LabOptions } from './lab.js';
import { iperf, percentile, ping, podEndpoint } from './checks.js';
import { run } from './exec.js';
import { renderBarChart } from './svg-chart.js';
import { backendOf, type NodeKind } from './backends/index.js';

export interface BenchPath {
  readonly key: string;
  readonly label: string;
  readonly kind: NodeKind;
  readonly agentConfigExtra?: Record<string, unknown>;
  /** Command that must exist for this path; missing: the path is skipped. */
  readonly needs?: string;
  /** A variant of vxnet that measures one lever: in the full bench, left out of --quick. */
  readonly ablation?: boolean;
}

export const BENCH_PATHS: readonly BenchPath[] = [
  { key: 'direct', label: 'direct (no overlay)', kind: 'direct' },
  { key: 'kernel', label: 'kernel VXLAN', kind: 'kernel' },
  { key: 'vxnet', label: 'vxnet', kind: 'vxnet' },
  {
    key: 'vxnet-nooffload',
    label: 'vxnet, offloads off',
    kind: 'vxnet',
    agentConfigExtra: { offloads: { tun: false, udpGso: false, udpGro: false } },
  },
  // Two ablations of vxnet, so each lever that can be switched is measured against the default
  // in the same run: remote checksum offload off (every inner checksum finished by the sender,
  // as towards a kernel peer without remcsumrx), and two queues (two workers per agent).
  { key: 'vxnet-norco', label: 'vxnet, remote checksum off', kind: 'vxnet', agentConfigExtra: { offloads: { remoteChecksum: false } }, ablation: true },
  { key: 'vxnet-2q', label: 'vxnet, 2 queues', kind: 'vxnet', agentConfigExtra: { tuning: { queues: 2 } }, ablation: true },
  { key: 'socat', label: 'socat relay', kind: 'socat', needs: 'socat' },
  { key: 'openvpn', label: 'OpenVPN, no crypto', kind: 'openvpn', needs: 'openvpn' },
];

export interface BenchRow {
  readonly key: string;
  readonly label: string;
  tcp1Bps?: number;
  tcp1Retransmits?: number;
  tcp4Bps?: number;
  udpPps?: number;
  udpLossPct?: number;
  rttP50Ms?: number;
  rttP99Ms?: number;
  /** The same over pings 200 ms apart: every round trip starts from idle threads. */
  rttIdleP50Ms?: number;
  rttIdleP99Ms?: number;
  /** Busy CPU seconds of the whole machine (all cores, /proc/stat) per GB delivered in the
   * single-stream run: senders, receivers, relays, router and softirq work alike. */
  machineCpuSecPerGB?: number;
  /** Relay CPU seconds (both nodes) per GB received during the single-stream run. */
  cpuSecPerGB?: number;
  /** Relay CPU seconds (both nodes) per million 64-byte packets delivered in the UDP run. */
  cpuSecPerMpkt?: number;
  rssMB?: number;
  hwmMB?: number;
  /** Rounds this row combines (medians), and the single-stream TCP sample of each. */
  rounds?: number;
  tcp1Samples?: number[];
  error?: string;
  skipped?: string;
}

export interface Machine {
  readonly kernel: string;
  readonly cpu: string;
  readonly cores: number;
  readonly date: string;
  readonly node: string;
  readonly iperf3: string;
}

export interface BenchOptions {
  /** Directory for benchmarks.md and bench-chart.svg. */
  outDir: string;
  /** Shorter runs (2 s iperf3, 50 pings) for a smoke test. */
  quick?: boolean;
  /** Only these path keys. */
  only?: readonly string[];
  log?: (msg: string) => void;
  /** Overrides for every lab (e.g. agentCommand). */
  lab?: Partial<LabOptions>;
  /** Interleaved rounds per path; default 3 (1 with quick). */
  rounds?: number;
}

const CLK_TCK = 100;

/**
 * Busy seconds of the whole machine so far: every core's user, nice, system, irq and softirq
 * time from the first line of /proc/stat. Idle, iowait and steal (time the hypervisor gave to
 * someone else) are not ours.
 */
export function machineBusySeconds(stat = readFileSync('/proc/stat', 'utf8')): number {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) return Number.NaN;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = f;
  return (user + nice + system + irq + softirq) / CLK_TCK;
}

interface ProcSample {
  cpuSeconds: number;
  rssKB: number;
  hwmKB: number;
}

/** utime+stime (all threads) and memory of a process, from /proc. */
export function procSample(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { cpuSeconds: (utime + stime) / CLK_TCK, rssKB: kb('VmRSS'), hwmKB: kb('VmHWM') };
  } catch {
    return null;
  }
}

async function commandExists(cmd: string): Promise<boolean> {
  const r = await run(['sh', '-c', `command -v ${cmd}`], { timeoutMs: 3000 });
  return r.code === 0;
}

export async function describeMachine(): Promise<Machine> {
  const iperfV = await run(['iperf3', '--version'], { timeoutMs: 3000 });
  return {
    kernel: release(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    iperf3: (iperfV.stdout.split('\n')[0] ?? '').trim(),
  };
}

/** One round of every measurement on one path's lab. */
async function measure(lab: Lab, path: BenchPath, secs: number, pings: number, idlePings: number, log: (m: string) => void): Promise<BenchRow> {
  const row: BenchRow = { key: path.key, label: path.label };
  const a = lab.pod('p1a');
  const b = lab.pod('p2a');
  const pids = [lab.agentPid(1), lab.agentPid(2)].filter((p): p is number => p !== undefined && p > 0);
  const relay = backendOf(path.kind).relay;
  const cpuOver = async <T>(f: () => Promise<T>): Promise<{ result: T; cpu: number | undefined }> => {
    const before = pids.map(procSample);
    const result = await f();
    const after = pids.map(procSample);
    if (!relay || !before.every(Boolean) || !after.every(Boolean)) return { result, cpu: undefined };
    let cpu = 0;
    for (let i = 0; i < pids.length; i++) cpu += (after[i] as ProcSample).cpuSeconds - (before[i] as ProcSample).cpuSeconds;
    return { result, cpu };
  };

  const busyBefore = machineBusySeconds();
  const t1 = await cpuOver(() => iperf(lab, podEndpoint(b), podEndpoint(a), { seconds: secs }));
  const busy = machineBusySeconds() - busyBefore;
  row.tcp1Bps = t1.result.bitsPerSecond;
  row.tcp1Retransmits = t1.result.retransmits ?? 0;
  if (t1.cpu !== undefined && t1.result.bytes > 0) row.cpuSecPerGB = t1.cpu / (t1.result.bytes / 1e9);
  if (t1.result.bytes > 0 && Number.isFinite(busy)) row.machineCpuSecPerGB = busy / (t1.result.bytes / 1e9);
  log(`${path.key}: TCP 1 stream ${(t1.result.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, machine ${num(row.machineCpuSecPerGB, 2)} CPU s/GB`);

  const t4 = await iperf(lab, podEndpoint(b), podEndpoint(a), { seconds: secs, streams: 4 });
  row.tcp4Bps = t4.bitsPerSecond;
  log(`${path.key}: TCP 4 streams ${(t4.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);

  const u = await cpuOver(() => iperf(lab, podEndpoint(b), podEndpoint(a), { seconds: Math.min(secs, 3), udpLength: 64 }));
  row.udpPps = u.result.receivedPps ?? 0;
  const delivered = (u.result.packets ?? 0) - (u.result.lostPackets ?? 0);
  if (u.cpu !== undefined && delivered > 0) row.cpuSecPerMpkt = u.cpu / (delivered / 1e6);
  row.udpLossPct = u.result.packets ? (100 * (u.result.lostPackets ?? 0)) / u.result.packets : 0;
  log(`${path.key}: UDP 64 B ${Math.round(row.udpPps)} pps received, ${row.udpLossPct.toFixed(1)}% lost`);

  const p = await ping(lab, a.ns, b.ip, { count: pings, intervalS: 0.01, waitS: 1 });
  row.rttP50Ms = percentile(p.rttsMs, 50);
  row.rttP99Ms = percentile(p.rttsMs, 99);
  log(`${path.key}: RTT p50 ${row.rttP50Ms.toFixed(3)} ms, p99 ${row.rttP99Ms.toFixed(3)} ms`);

  const q = await ping(lab, a.ns, b.ip, { count: idlePings, intervalS: 0.2, waitS: 1 });
  row.rttIdleP50Ms = percentile(q.rttsMs, 50);
  row.rttIdleP99Ms = percentile(q.rttsMs, 99);
  log(`${path.key}: RTT at 200 ms p50 ${row.rttIdleP50Ms.toFixed(3)} ms, p99 ${row.rttIdleP99Ms.toFixed(3)} ms`);

  if (relay) {
    const mem = pids.map(procSample).filter((x): x is ProcSample => x !== null);
    if (mem.length > 0) {
      row.rssMB = Math.max(...mem.map((x) => x.rssKB)) / 1024;
      row.hwmMB = Math.max(...mem.map((x) => x.hwmKB)) / 1024;
    }
  }
  return row;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((x, y) => x - y);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

type NumericKey = 'tcp1Bps' | 'tcp1Retransmits' | 'tcp4Bps' | 'udpPps' | 'udpLossPct' | 'rttP50Ms' | 'rttP99Ms'
  | 'rttIdleP50Ms' | 'rttIdleP99Ms' | 'machineCpuSecPerGB' | 'cpuSecPerGB' | 'cpuSecPerMpkt';
const MEDIAN_KEYS: readonly NumericKey[] = ['tcp1Bps', 'tcp1Retransmits', 'tcp4Bps', 'udpPps', 'udpLossPct', 'rttP50Ms', 'rttP99Ms',
  'rttIdleP50Ms', 'rttIdleP99Ms', 'machineCpuSecPerGB', 'cpuSecPerGB', 'cpuSecPerMpkt'];

/** The median of each metric over a path's rounds; memory is the largest seen. */
export function combineRounds(path: BenchPath, rounds: readonly BenchRow[]): BenchRow {
  const row: BenchRow = { key: path.key, label: path.label, rounds: rounds.length, tcp1Samples: rounds.map((r) => r.tcp1Bps).filter((v): v is number => v !== undefined) };
  for (const k of MEDIAN_KEYS) {
    const m = median(rounds.map((r) => r[k]).filter((v): v is number => v !== undefined && Number.isFinite(v)));
    if (m !== undefined) row[k] = m;
  }
  const rss = rounds.map((r) => r.rssMB).filter((v): v is number => v !== undefined);
  const hwm = rounds.map((r) => r.hwmMB).filter((v): v is number => v !== undefined);
  if (rss.length > 0) row.rssMB = Math.max(...rss);
  if (hwm.length > 0) row.hwmMB = Math.max(...hwm);
  const errors = rounds.map((r) => r.error).filter(Boolean);
  if (errors.length > 0) row.error = errors[0];
  return row;
}

/**
 * Run the bench, write DIR/benchmarks.md and DIR/bench-chart.svg, print the table.
 *
 * These machines' speed drifts over minutes (CPU steal), so measuring the paths one after the
 * other lets a slow phase land on one path and skew every ratio. Instead every path's lab is
 * built first, then `rounds` rounds measure each path once, in an order that rotates each
 * round, and the report gives each metric's median over the rounds.
 */
export async function runBench(opts: BenchOptions): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const started = Date.now();
  const machine = await describeMachine();
  const secs = opts.quick ? 2 : 4;
  const pings = opts.quick ? 50 : 200;
  const idlePings = opts.quick ? 20 : 100;
  const roundCount = opts.rounds ?? (opts.quick ? 1 : 3);
  const paths = BENCH_PATHS.filter((p) => (opts.only ? opts.only.includes(p.key) : !(opts.quick && p.ablation)));
  const labs = new Map<string, Lab>();
  const failed = new Map<string, BenchRow>();
  const samples = new Map<string, BenchRow[]>();
  try {
    for (const path of paths) {
      if (path.needs && !(await commandExists(path.needs))) {
        failed.set(path.key, { key: path.key, label: path.label, skipped: `${path.needs} not installed` });
        continue;
      }
      log(`bench: building the ${path.label} lab`);
      try {
        labs.set(path.key, await Lab.up({
          nodes: 2, podsPerNode: 1, kind: () => path.kind,
          ...(path.agentConfigExtra ? { agentConfigExtra: path.agentConfigExtra } : {}),
          ...opts.lab,
        }));
      } catch (err) {
        failed.set(path.key, { key: path.key, label: path.label, error: (err as Error).message.split('\n').slice(0, 3).join(' | ') });
      }
    }
    const live = paths.filter((p) => labs.has(p.key));
    for (let r = 0; r < roundCount; r++) {
      for (let j = 0; j < live.length; j++) {
        const path = live[(j + r) % live.length]!;
        log(`bench: round ${r + 1}/${roundCount}, ${path.label}`);
        let row: BenchRow;
        try {
          row = await measure(labs.get(path.key)!, path, secs, pings, idlePings, log);
        } catch (err) {
          row = { key: path.key, label: path.label, error: (err as Error).message.split('\n').slice(0, 3).join(' | ') };
          log(`${path.key}: ${row.error}`);
        }
        samples.set(path.key, [...(samples.get(path.key) ?? []), row]);
      }
    }
  } finally {
    await Promise.allSettled([...labs.values()].map((l) => l.down()));
  }
  const rows = paths.map((p) => failed.get(p.key) ?? combineRounds(p, samples.get(p.key) ?? []));
  const seconds = (Date.now() - started) / 1000;
  mkdirSync(opts.outDir, { recursive: true });
  writeFileSync(join(opts.outDir, 'benchmarks.md'), renderMarkdown(rows, machine, seconds, opts.quick ?? false, roundCount));
  writeFileSync(join(opts.outDir, 'bench-chart.svg'), renderChart(rows, machine));
  process.stdout.write(`${renderTable(rows)}\n\n${renderRatios(rows)}\n\n${renderLatencyVsSocat(rows)}\n`);
  log(`bench: ${seconds.toFixed(0)} s; wrote ${join(opts.outDir, 'benchmarks.md')} and bench-chart.svg`);
  return rows;
}

// ---- report -----------------------------------------------------------------------------------

function gbps(v: number | undefined): string {
  return v === undefined ? '-' : (v / 1e9).toFixed(2);
}
function num(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}
function kpps(v: number | undefined): string {
  return v === undefined ? '-' : (v / 1000).toFixed(1);
}

export function renderTable(rows: readonly BenchRow[]): string {
  const head =
    '| Path | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | UDP 64 B received (kpps) | UDP loss | RTT p50 / p99, 10 ms (ms) | RTT p50 / p99, 200 ms (ms) | machine CPU s per GB | relay CPU s per GB | relay CPU s per Mpkt | RSS / peak (MB) |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) => {
    if (r.skipped) return `| ${r.label} | skipped: ${r.skipped} | | | | | | | | | |`;
    if (r.error && r.tcp1Bps === undefined) return `| ${r.label} | failed: ${r.error.replace(/\|/g, '/')} | | | | | | | | | |`;
    return (
      `| ${r.label} | ${gbps(r.tcp1Bps)} | ${gbps(r.tcp4Bps)} | ${kpps(r.udpPps)} | ${r.udpLossPct === undefined ? '-' : `${r.udpLossPct.toFixed(1)}%`} ` +
      `| ${num(r.rttP50Ms, 3)} / ${num(r.rttP99Ms, 3)} | ${num(r.rttIdleP50Ms, 3)} / ${num(r.rttIdleP99Ms, 3)} | ${num(r.machineCpuSecPerGB, 2)} | ${num(r.cpuSecPerGB, 2)} | ${num(r.cpuSecPerMpkt, 2)} | ${r.rssMB === undefined ? '-' : `${r.rssMB.toFixed(0)} / ${num(r.hwmMB, 0)}`} |` +
      (r.error ? ` (partial: ${r.error.replace(/\|/g, '/')})` : '')
    );
  });
  return [head, ...lines].join('\n');
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return `${(a / b).toFixed(2)}x`;
}

export function renderRatios(rows: readonly BenchRow[]): string {
  const k = rows.find((r) => r.key === 'kernel');
  const head =
    '| Path | TCP 1 stream | TCP 4 streams | UDP 64 B pps | machine CPU per GB (lower is better) | RTT p50 / p99, 10 ms (lower is better) | RTT p50 / p99, 200 ms |\n|---|---:|---:|---:|---:|---:|---:|';
  const lines = rows
    .filter((r) => !r.skipped && r.key !== 'kernel')
    .map((r) => `| ${r.label} | ${ratio(r.tcp1Bps, k?.tcp1Bps)} | ${ratio(r.tcp4Bps, k?.tcp4Bps)} | ${ratio(r.udpPps, k?.udpPps)} `
      + `| ${ratio(r.machineCpuSecPerGB, k?.machineCpuSecPerGB)} | ${ratio(r.rttP50Ms, k?.rttP50Ms)} / ${ratio(r.rttP99Ms, k?.rttP99Ms)} `
      + `| ${ratio(r.rttIdleP50Ms, k?.rttIdleP50Ms)} / ${ratio(r.rttIdleP99Ms, k?.rttIdleP99Ms)} |`);
  return [head, ...lines].join('\n');
}

/** vxnet's latency against the simplest relay (socat) measured in the same run. */
export function renderLatencyVsSocat(rows: readonly BenchRow[]): string {
  const s = rows.find((r) => r.key === 'socat');
  if (s === undefined || s.skipped) return '';
  const head = '| Path | RTT p50, 10 ms | RTT p99, 10 ms | RTT p50, 200 ms | RTT p99, 200 ms |\n|---|---:|---:|---:|---:|';
  const lines = rows
    .filter((r) => !r.skipped && r.key.startsWith('vxnet'))
    .map((r) => `| ${r.label} | ${ratio(r.rttP50Ms, s.rttP50Ms)} | ${ratio(r.rttP99Ms, s.rttP99Ms)} | ${ratio(r.rttIdleP50Ms, s.rttIdleP50Ms)} | ${ratio(r.rttIdleP99Ms, s.rttIdleP99Ms)} |`);
  return [head, ...lines].join('\n');
}

export function renderMarkdown(rows: readonly BenchRow[], m: Machine, seconds: number, quick: boolean, rounds = 1): string {
  const spread = rows
    .filter((r) => (r.tcp1Samples?.length ?? 0) > 1)
    .map((r) => `| ${r.label} | ${(r.tcp1Samples ?? []).map((v) => (v / 1e9).toFixed(2)).join(' / ')} |`);
  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts, src/lab/bench.ts) on ${m.date}; do not edit by hand.
${quick ? '\n**Quick run** (2 s iperf3, 50 pings): numbers are rough.\n' : ''}
Machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, ${m.iperf3}. The run took ${seconds.toFixed(0)} s.

Each path is its own two-node lab (see [lab.md](lab.md)): pod p1a on node1 sends to pod p2a on
node2, across a router namespace, each node on its own subnet. All the labs are built first, then
${rounds} round${rounds === 1 ? '' : 's'} measure every path once each, in an order that rotates every round. Each number
below is the median over the rounds (memory: the largest). The machine's speed drifts over
minutes, so interleaving keeps a slow phase from landing on one path and skewing the ratios. The router's ports finish
checksums and segment in software, as a NIC would put packets on a wire, and each node's uplink merges what it
receives (GRO), as a NIC's driver does, for every path alike.
Senders, receivers, relays and the router all share the machine's ${m.cores} cores, so compare the
paths with one another; absolute numbers say little about a real network.

- **TCP**: iperf3, ${quick ? 2 : 4} s, receiver's rate; 1 stream, then 4 (-P 4).
- **UDP 64 B**: iperf3 -u -l 64 -b 0 (as fast as the sender can): packets per second that
  arrived, and the share the receiver counted lost.
- **RTT**: ${quick ? 50 : 200} pings at 10 ms intervals, then ${quick ? 20 : 100} at 200 ms (every round trip
  starts from idle threads, as request/response traffic does), 50th and 99th percentile.
- **machine CPU s per GB**: busy CPU seconds of the whole machine (user, system, irq and
  softirq time of every core, from /proc/stat) over the single-stream TCP run, per GB received.
  It counts everything the path costs, kernel work included, for every path alike (iperf3 and
  the router too, which cost the same everywhere).
- **relay CPU s per GB**: for userspace relays (vxnet, socat, OpenVPN), utime+stime of both relay
  processes over the single-stream TCP run, per GB received. **relay CPU s per Mpkt**: the same over
  the 64-byte UDP run, per million packets delivered. **RSS / peak**: VmRSS and VmHWM of the
  larger process after the runs.

## Results

${renderTable(rows)}

## Relative to kernel VXLAN

${renderRatios(rows)}
${renderLatencyVsSocat(rows) ? `
## Latency relative to socat (lower is better)

${renderLatencyVsSocat(rows)}
` : ''}${spread.length > 0 ? `
## Single-stream TCP, each round (Gbit/s)

| Path | rounds |
|---|---|
${spread.join('\n')}
` : ''}
![bar chart of the results](bench-chart.svg)
`;
}

export function renderChart(rows: readonly BenchRow[], m: Machine): string {
  const ok = rows.filter((r) => !r.skipped);
  const bars = (f: (r: BenchRow) => number | undefined): { label: string; value: number }[] =>
    ok.map((r) => ({ label: r.label, value: f(r) ?? Number.NaN }));
  return renderBarChart(
    'vxnet lab: pod to pod across a router (2 nodes)',
    [
      { title: 'TCP, 1 stream', unit: 'Gbit/s', bars: bars((r) => (r.tcp1Bps === undefined ? undefined : r.tcp1Bps / 1e9)) },
      { title: 'TCP, 4 streams', unit: 'Gbit/s', bars: bars((r) => (r.tcp4Bps === undefined ? undefined : r.tcp4Bps / 1e9)) },
      { title: 'UDP 64-byte packets received', unit: 'kpps', bars: bars((r) => (r.udpPps === undefined ? undefined : r.udpPps / 1000)), digits: 1 },
      { title: 'Ping RTT p50', unit: 'ms, lower is better', bars: bars((r) => r.rttP50Ms), digits: 3 },
    ],
    `${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, ${m.date}`,
  );
}
