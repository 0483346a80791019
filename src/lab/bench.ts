/**
 * The data-path benchmark: the same two-node lab built once per data path, the same
 * measurements on each, and a report that puts vxnet next to the kernel's own VXLAN.
 *
 * Paths: direct routing (no overlay, the ceiling), kernel VXLAN (the reference), vxnet with its
 * offloads, vxnet with every offload off, socat (a naive userspace TUN<->UDP relay, the floor
 * for a userspace design) and OpenVPN without crypto (a mature userspace tunnel), when
 * installed. Measurements, pod to pod across the router: single-stream TCP (iperf3 -t 5),
 * four streams (-P 4), 64-byte UDP at unlimited rate (received packets per second and loss),
 * ping RTT p50/p99 over 200 pings at 10 ms, and for userspace relays their CPU seconds per GB
 * moved (utime+stime of both relay processes from /proc, over the single-stream run) and memory
 * (VmRSS now, VmHWM peak, of the busier process).
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
import type { NodeKind } from './topology.js';

export interface BenchPath {
  readonly key: string;
  readonly label: string;
  readonly kind: NodeKind;
  readonly agentConfigExtra?: Record<string, unknown>;
  /** Command that must exist for this path; missing: the path is skipped. */
  readonly needs?: string;
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
  /** Relay CPU seconds (both nodes) per GB received during the single-stream run. */
  cpuSecPerGB?: number;
  /** Relay CPU seconds (both nodes) per million 64-byte packets delivered in the UDP run. */
  cpuSecPerMpkt?: number;
  rssMB?: number;
  hwmMB?: number;
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
}

const CLK_TCK = 100;

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

async function benchPath(path: BenchPath, opts: BenchOptions): Promise<BenchRow> {
  const row: BenchRow = { key: path.key, label: path.label };
  const log = opts.log ?? (() => undefined);
  if (path.needs && !(await commandExists(path.needs))) {
    row.skipped = `${path.needs} not installed`;
    return row;
  }
  const secs = opts.quick ? 2 : 5;
  const pings = opts.quick ? 50 : 200;
  const lab = await Lab.up({
    nodes: 2,
    podsPerNode: 1,
    kind: () => path.kind,
    ...(path.agentConfigExtra ? { agentConfigExtra: path.agentConfigExtra } : {}),
    ...opts.lab,
  });
  try {
    const a = lab.pod('p1a');
    const b = lab.pod('p2a');
    const pids = [lab.agentPid(1), lab.agentPid(2)].filter((p): p is number => p !== undefined && p > 0);
    const relay = path.kind === 'vxnet' || path.kind === 'socat' || path.kind === 'openvpn';

    const before = pids.map(procSample);
    const t1 = await iperf(lab, podEndpoint(b), podEndpoint(a), { seconds: secs });
    const after = pids.map(procSample);
    row.tcp1Bps = t1.bitsPerSecond;
    row.tcp1Retransmits = t1.retransmits ?? 0;
    if (relay && t1.bytes > 0 && before.every(Boolean) && after.every(Boolean)) {
      let cpu = 0;
      for (let i = 0; i < pids.length; i++) cpu += (after[i] as ProcSample).cpuSeconds - (before[i] as ProcSample).cpuSeconds;
      row.cpuSecPerGB = cpu / (t1.bytes / 1e9);
    }
    log(`${path.key}: TCP 1 stream ${(t1.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);

    const t4 = await iperf(lab, podEndpoint(b), podEndpoint(a), { seconds: secs, streams: 4 });
    row.tcp4Bps = t4.bitsPerSecond;
    log(`${path.key}: TCP 4 streams ${(t4.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);

    const beforeUdp = pids.map(procSample);
    const u = await iperf(lab, podEndpoint(b), podEndpoint(a), { seconds: Math.min(secs, 3), udpLength: 64 });
    const afterUdp = pids.map(procSample);
    row.udpPps = u.receivedPps ?? 0;
    const delivered = (u.packets ?? 0) - (u.lostPackets ?? 0);
    if (relay && delivered > 0 && beforeUdp.every(Boolean) && afterUdp.every(Boolean)) {
      let cpu = 0;
      for (let i = 0; i < pids.length; i++) cpu += (afterUdp[i] as ProcSample).cpuSeconds - (beforeUdp[i] as ProcSample).cpuSeconds;
      row.cpuSecPerMpkt = cpu / (delivered / 1e6);
    }
    row.udpLossPct = u.packets ? (100 * (u.lostPackets ?? 0)) / u.packets : 0;
    log(`${path.key}: UDP 64 B ${Math.round(row.udpPps)} pps received, ${row.udpLossPct.toFixed(1)}% lost`);

    const p = await ping(lab, a.ns, b.ip, { count: pings, intervalS: 0.01, waitS: 1 });
    row.rttP50Ms = percentile(p.rttsMs, 50);
    row.rttP99Ms = percentile(p.rttsMs, 99);
    log(`${path.key}: RTT p50 ${row.rttP50Ms.toFixed(3)} ms, p99 ${row.rttP99Ms.toFixed(3)} ms`);

    if (relay) {
      const mem = pids.map(procSample).filter((s): s is ProcSample => s !== null);
      if (mem.length > 0) {
        row.rssMB = Math.max(...mem.map((s) => s.rssKB)) / 1024;
        row.hwmMB = Math.max(...mem.map((s) => s.hwmKB)) / 1024;
      }
    }
  } catch (err) {
    row.error = (err as Error).message.split('\n').slice(0, 3).join(' | ');
    log(`${path.key}: ${row.error}`);
  } finally {
    await lab.down();
  }
  return row;
}

/** Run the bench, write DIR/benchmarks.md and DIR/bench-chart.svg, print the table. */
export async function runBench(opts: BenchOptions): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const started = Date.now();
  const machine = await describeMachine();
  const rows: BenchRow[] = [];
  for (const path of BENCH_PATHS) {
    if (opts.only && !opts.only.includes(path.key)) continue;
    log(`bench: ${path.label}`);
    try {
      rows.push(await benchPath(path, opts));
    } catch (err) {
      rows.push({ key: path.key, label: path.label, error: (err as Error).message.split('\n').slice(0, 3).join(' | ') });
    }
  }
  const seconds = (Date.now() - started) / 1000;
  mkdirSync(opts.outDir, { recursive: true });
  writeFileSync(join(opts.outDir, 'benchmarks.md'), renderMarkdown(rows, machine, seconds, opts.quick ?? false));
  writeFileSync(join(opts.outDir, 'bench-chart.svg'), renderChart(rows, machine));
  process.stdout.write(`${renderTable(rows)}\n\n${renderRatios(rows)}\n`);
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
    '| Path | TCP 1 stream (Gbit/s) | TCP 4 streams (Gbit/s) | UDP 64 B received (kpps) | UDP loss | RTT p50 / p99 (ms) | CPU s per GB | CPU s per Mpkt | RSS / peak (MB) |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) => {
    if (r.skipped) return `| ${r.label} | skipped: ${r.skipped} | | | | | | | |`;
    if (r.error && r.tcp1Bps === undefined) return `| ${r.label} | failed: ${r.error.replace(/\|/g, '/')} | | | | | | | |`;
    return (
      `| ${r.label} | ${gbps(r.tcp1Bps)} | ${gbps(r.tcp4Bps)} | ${kpps(r.udpPps)} | ${r.udpLossPct === undefined ? '-' : `${r.udpLossPct.toFixed(1)}%`} ` +
      `| ${num(r.rttP50Ms, 3)} / ${num(r.rttP99Ms, 3)} | ${num(r.cpuSecPerGB, 2)} | ${num(r.cpuSecPerMpkt, 2)} | ${r.rssMB === undefined ? '-' : `${r.rssMB.toFixed(0)} / ${num(r.hwmMB, 0)}`} |` +
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
    '| Path | TCP 1 stream | TCP 4 streams | UDP 64 B pps | RTT p50 (lower is better) |\n|---|---:|---:|---:|---:|';
  const lines = rows
    .filter((r) => !r.skipped && r.key !== 'kernel')
    .map((r) => `| ${r.label} | ${ratio(r.tcp1Bps, k?.tcp1Bps)} | ${ratio(r.tcp4Bps, k?.tcp4Bps)} | ${ratio(r.udpPps, k?.udpPps)} | ${ratio(r.rttP50Ms, k?.rttP50Ms)} |`);
  return [head, ...lines].join('\n');
}

export function renderMarkdown(rows: readonly BenchRow[], m: Machine, seconds: number, quick: boolean): string {
  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts, src/lab/bench.ts) on ${m.date}; do not edit by hand.
${quick ? '\n**Quick run** (2 s iperf3, 50 pings): numbers are rough.\n' : ''}
Machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, ${m.iperf3}. The run took ${seconds.toFixed(0)} s.

Each path is a fresh two-node lab (see [lab.md](lab.md)): pod p1a on node1 sends to pod p2a on
node2, across a router namespace, each node on its own subnet. The router's ports finish
checksums and segment in software, as a NIC would put packets on a wire, for every path alike.
Senders, receivers, relays and the router all share the machine's ${m.cores} cores, so compare the
paths with one another; absolute numbers say little about a real network.

- **TCP**: iperf3, ${quick ? 2 : 5} s, receiver's rate; 1 stream, then 4 (-P 4).
- **UDP 64 B**: iperf3 -u -l 64 -b 0 (as fast as the sender can): packets per second that
  arrived, and the share the receiver counted lost.
- **RTT**: ${quick ? 50 : 200} pings at 10 ms intervals, 50th and 99th percentile.
- **CPU s per GB**: for userspace relays (vxnet, socat, OpenVPN), utime+stime of both relay
  processes over the single-stream TCP run, per GB received. **CPU s per Mpkt**: the same over
  the 64-byte UDP run, per million packets delivered. **RSS / peak**: VmRSS and VmHWM of the
  larger process after the runs.

## Results

${renderTable(rows)}

## Relative to kernel VXLAN

${renderRatios(rows)}

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
