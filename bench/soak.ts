/**
 * `npm run soak -- --minutes N`: a two-node lab kept under mixed load for N minutes while the
 * agents' resources are sampled, to catch what only time shows (a leak of memory, descriptors or
 * heap). Issue 11 §7 asks for it beside the bounded lab tests, which are too short to see a slow
 * leak.
 *
 * Load, all bounded in rate and time: iperf3 TCP between the first pods of the two nodes and
 * iperf3 UDP at a modest rate between the second pods, each in back-to-back runs of a minute that
 * alternate direction (-R), so flows start and end all the time as in a cluster; plus one ping
 * stream across the nodes for the whole soak. TCP is rate-capped too (--tcp-rate): the soak is
 * about time, not peak speed, and other work shares the machine.
 *
 * Every ~10 s it samples each agent's RSS (/proc/PID/status), open descriptors (/proc/PID/fd)
 * and the main thread's V8 heap (from /status; /metrics does not export it), appends the sample
 * to a JSON-lines file under /tmp, and at the end prints start/end/min/max and the least-squares
 * slope per hour of each series over the samples after a warm-up (start-up allocation and the
 * first GCs are not a leak), the drops by reason, and what the load moved.
 *
 * Options: --minutes N (default 10), --every S (seconds between samples), --warmup M (minutes
 * left out of the slopes), --tcp-rate and --udp-rate (iperf3 -b), --samples FILE (the JSON
 * lines; default /tmp/vxnet-soak-<time>.jsonl), --out FILE (the report, also printed). Needs root.
 */
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Lab } from '../src/lab/lab.js';
import { sleep, type Background } from '../src/lab/exec.js';
import { httpGetInNs, parsePrometheus, type Sample } from '../src/lab/http.js';
import { parsePing } from '../src/lab/checks.js';
import { METRICS_ADDR } from '../src/lab/topology.js';

export interface SoakOptions {
  minutes: number;
  /** Seconds between samples. */
  sampleSeconds: number;
  /** Samples before this many minutes are left out of the slopes. */
  warmupMinutes: number;
  /** iperf3 -b for TCP and UDP. */
  tcpRate: string;
  udpRate: string;
  /** JSON-lines file for the samples. */
  samplesFile: string;
  log: (msg: string) => void;
}

export interface SoakSample {
  /** Seconds since the load started. */
  t: number;
  node: number;
  rssMiB: number;
  fds: number;
  /** null when /status did not answer. */
  heapMiB: number | null;
}

export interface SeriesSummary {
  start: number;
  end: number;
  min: number;
  max: number;
  /** Least-squares slope per hour over the samples after the warm-up; NaN with fewer than 2. */
  slopePerHour: number;
}

/** Least-squares slope of y over x (x in seconds), per hour. */
export function slopePerHour(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) * (x - mx);
  }
  return den === 0 ? Number.NaN : (num / den) * 3600;
}

export function summarize(samples: readonly SoakSample[], pick: (s: SoakSample) => number | null, warmupSeconds: number): SeriesSummary | null {
  const pts = samples.map((s) => [s.t, pick(s)] as const).filter((p): p is readonly [number, number] => p[1] !== null);
  if (pts.length === 0) return null;
  const ys = pts.map((p) => p[1]);
  return {
    start: ys[0] as number,
    end: ys[ys.length - 1] as number,
    min: Math.min(...ys),
    max: Math.max(...ys),
    slopePerHour: slopePerHour(pts.filter((p) => p[0] >= warmupSeconds)),
  };
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function heapMiB(lab: Lab, i: number): Promise<number | null> {
  try {
    const r = await lab.agentHttp(i, '/status', 3000);
    const st = JSON.parse(r.body) as { info?: { memory?: { heapUsed?: number } } };
    const h = st.info?.memory?.heapUsed;
    return typeof h === 'number' ? h / 2 ** 20 : null;
  } catch {
    return null;
  }
}

async function scrape(lab: Lab, i: number): Promise<Sample[]> {
  const r = await httpGetInNs(lab.node(i).ns, `http://${METRICS_ADDR}/metrics`, 5000);
  return r.status === 200 ? parsePrometheus(r.body) : [];
}

function byLabel(samples: readonly Sample[], name: string, label: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of samples) if (s.name === name) m.set(s.labels[label] ?? '', s.value);
  return m;
}

/**
 * Drops the kernel counts where the agent cannot: each node's TUN device queue (tx dropped: the
 * kernel had no room to queue a packet for the agent to read), and UDP receive-buffer overflows
 * in the node namespaces (the agent's socket) and the pods (iperf3's).
 */
async function kernelDrops(lab: Lab): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const n of lab.nodes) {
    if (n.device === null) continue;
    const r = await lab.exec(n.ns, ['ip', '-s', '-j', 'link', 'show', 'dev', n.device]);
    try {
      const l = (JSON.parse(r.stdout) as Array<{ stats64?: { tx?: { dropped?: number }; rx?: { dropped?: number } } }>)[0];
      out.set(`${n.name} ${n.device} tx_dropped`, l?.stats64?.tx?.dropped ?? 0);
      out.set(`${n.name} ${n.device} rx_dropped`, l?.stats64?.rx?.dropped ?? 0);
    } catch {
      // no device stats: nothing to add
    }
  }
  for (const ns of [...lab.nodes.map((n) => [n.name, n.ns] as const), ...lab.pods.map((p) => [p.name, p.ns] as const)]) {
    const r = await lab.exec(ns[1], ['cat', '/proc/net/snmp']);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
    const head = (lines[0] ?? '').split(/\s+/);
    const vals = (lines[1] ?? '').split(/\s+/);
    const i = head.indexOf('RcvbufErrors');
    if (i > 0) out.set(`${ns[0]} UDP RcvbufErrors`, Number(vals[i]));
  }
  return out;
}

interface LoadTotals {
  runs: number;
  failed: number;
  bytes: number;
  /** Receiver's rate of each run, bits/s. */
  rates: number[];
  udpPackets: number;
  udpLost: number;
}

/** iperf3 clients in back-to-back runs of at most runSeconds until `until`, alternating -R. */
async function loadLoop(lab: Lab, fromNs: string, serverIp: string, port: number, udp: boolean, rate: string, until: number, runSeconds: number): Promise<LoadTotals> {
  const tot: LoadTotals = { runs: 0, failed: 0, bytes: 0, rates: [], udpPackets: 0, udpLost: 0 };
  while (Date.now() < until - 5000) {
    const secs = Math.max(5, Math.min(runSeconds, Math.floor((until - Date.now()) / 1000) - 2));
    const argv = ['iperf3', '-c', serverIp, '-p', String(port), '-t', String(secs), '-b', rate, '-J', '--connect-timeout', '3000'];
    if (udp) argv.push('-u', '-l', '1200');
    if (tot.runs % 2 === 1) argv.push('-R');
    const r = await lab.exec(fromNs, argv, { timeoutMs: (secs + 20) * 1000 });
    tot.runs++;
    try {
      const j = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
        error?: string;
        end?: { sum_received?: { bytes?: number; bits_per_second?: number }; sum?: { bytes?: number; bits_per_second?: number; packets?: number; lost_packets?: number } };
      };
      if (j.error) throw new Error(j.error);
      const sum = udp ? j.end?.sum : j.end?.sum_received;
      tot.bytes += sum?.bytes ?? 0;
      tot.rates.push(sum?.bits_per_second ?? 0);
      if (udp) {
        tot.udpPackets += j.end?.sum?.packets ?? 0;
        tot.udpLost += j.end?.sum?.lost_packets ?? 0;
      }
    } catch (err) {
      tot.failed++;
      lab.log(`soak: iperf3 ${udp ? 'UDP' : 'TCP'} run ${tot.runs} failed: ${(err as Error).message.slice(0, 200)}`);
      await sleep(1000);
    }
  }
  return tot;
}

const fmt = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : '-');

export async function runSoak(o: SoakOptions): Promise<string> {
  const durationMs = o.minutes * 60_000;
  const lab = await Lab.up({ nodes: 2, podsPerNode: 2, log: o.log });
  const servers: Background[] = [];
  try {
    const [p1a, p1b, p2a, p2b] = ['p1a', 'p1b', 'p2a', 'p2b'].map((n) => lab.pod(n)) as [ReturnType<Lab['pod']>, ReturnType<Lab['pod']>, ReturnType<Lab['pod']>, ReturnType<Lab['pod']>];
    const life = durationMs + 120_000;
    servers.push(lab.spawn(p2a.ns, ['iperf3', '-s', '-B', p2a.ip, '-p', '5301'], life));
    servers.push(lab.spawn(p2b.ns, ['iperf3', '-s', '-B', p2b.ip, '-p', '5302'], life));
    await sleep(500);
    const pids = [1, 2].map((i) => lab.agentPid(i) ?? -1);
    const before = await Promise.all([1, 2].map((i) => scrape(lab, i)));
    const kernelBefore = await kernelDrops(lab);
    writeFileSync(o.samplesFile, '');
    const started = Date.now();
    const until = started + durationMs;
    o.log(`soak: lab ${lab.id}, agents ${pids.join(', ')}, ${o.minutes} min, TCP ${o.tcpRate}, UDP ${o.udpRate}; samples in ${o.samplesFile}`);
    const pingCount = Math.floor(durationMs / 200);
    const pinger = lab.spawn(p1a.ns, ['ping', '-n', '-q', '-i', '0.2', '-c', String(pingCount), '-W', '2', p2b.ip], durationMs + 60_000);
    const tcp = loadLoop(lab, p1a.ns, p2a.ip, 5301, false, o.tcpRate, until, 60);
    const udp = loadLoop(lab, p1b.ns, p2b.ip, 5302, true, o.udpRate, until, 60);

    const samples: SoakSample[] = [];
    let alive = true;
    while (Date.now() < until && alive) {
      const t = (Date.now() - started) / 1000;
      for (const i of [1, 2]) {
        const pid = pids[i - 1] as number;
        if (!lab.agentRunning(i)) {
          alive = false;
          o.log(`soak: node${i}'s agent is gone at ${fmt(t, 0)} s`);
          break;
        }
        const s: SoakSample = { t, node: i, rssMiB: rssMiB(pid), fds: readdirSync(`/proc/${pid}/fd`).length, heapMiB: await heapMiB(lab, i) };
        samples.push(s);
        appendFileSync(o.samplesFile, `${JSON.stringify(s)}\n`);
      }
      const last = samples.slice(-2);
      if (samples.length % 12 < 2) o.log(`soak: ${fmt(t / 60)} min: ${last.map((s) => `node${s.node} RSS ${fmt(s.rssMiB)} MiB, ${s.fds} fds, heap ${s.heapMiB === null ? '-' : fmt(s.heapMiB)} MiB`).join('; ')}`);
      await sleep(Math.min(o.sampleSeconds * 1000, Math.max(0, until - Date.now())));
    }
    const [tcpTot, udpTot] = await Promise.all([tcp, udp]);
    // ping -i 0.2 runs a little slower than 5 a second, so it is stopped, not awaited: SIGINT
    // makes it print its summary.
    const pr = parsePing((await pinger.stop('SIGINT', 5000)).stdout);
    const after = await Promise.all([1, 2].map((i) => scrape(lab, i)));
    const kernelAfter = await kernelDrops(lab);
    const elapsedMin = (Date.now() - started) / 60_000;

    const lines: string[] = [];
    lines.push(`Soak: ${fmt(elapsedMin)} min on lab ${lab.id} (2 nodes), ${new Date(started).toISOString()}; warm-up ${o.warmupMinutes} min left out of the slopes; samples every ${o.sampleSeconds} s in ${o.samplesFile}.`);
    lines.push(`Agents ${alive ? 'stayed up' : 'DID NOT stay up'}.`, '');
    lines.push('| node | series | start | end | min | max | slope per hour (after warm-up) |', '|---|---|---:|---:|---:|---:|---:|');
    const series: Array<[string, (s: SoakSample) => number | null, number]> = [['RSS (MiB)', (s) => s.rssMiB, 1], ['open fds', (s) => s.fds, 0], ['main-thread heap (MiB)', (s) => s.heapMiB, 1]];
    for (const i of [1, 2]) {
      const mine = samples.filter((s) => s.node === i);
      for (const [name, pick, d] of series) {
        const sum = summarize(mine, pick, o.warmupMinutes * 60);
        if (sum === null) continue;
        lines.push(`| node${i} | ${name} | ${fmt(sum.start, d)} | ${fmt(sum.end, d)} | ${fmt(sum.min, d)} | ${fmt(sum.max, d)} | ${fmt(sum.slopePerHour, 2)} |`);
      }
    }
    lines.push('');
    const median = (xs: number[]): number => (xs.length === 0 ? Number.NaN : [...xs].sort((a, b) => a - b)[xs.length >> 1] as number);
    lines.push(`TCP: ${tcpTot.runs} runs (${tcpTot.failed} failed), ${fmt(tcpTot.bytes / 1e9, 2)} GB, per-run rate median ${fmt(median(tcpTot.rates) / 1e6, 0)} Mbit/s, min ${fmt(Math.min(...tcpTot.rates) / 1e6, 0)} Mbit/s.`);
    lines.push(`UDP: ${udpTot.runs} runs (${udpTot.failed} failed), ${udpTot.udpPackets} datagrams, ${udpTot.udpLost} counted lost by iperf3 (${fmt((100 * udpTot.udpLost) / Math.max(1, udpTot.udpPackets), 3)}%).`);
    lines.push(`Ping p1a -> p2b every 0.2 s: ${pr.received}/${pr.sent} answered.`);
    for (const i of [1, 2]) {
      const b = byLabel(before[i - 1] ?? [], 'vxnet_dropped_total', 'reason');
      const a = byLabel(after[i - 1] ?? [], 'vxnet_dropped_total', 'reason');
      const drops = [...a].map(([r, v]) => [r, v - (b.get(r) ?? 0)] as const).filter(([, d]) => d !== 0);
      const pb = byLabel(before[i - 1] ?? [], 'vxnet_packets_total', 'direction');
      const pa = byLabel(after[i - 1] ?? [], 'vxnet_packets_total', 'direction');
      const moved = ['tx', 'rx'].map((d) => `${d} ${(pa.get(d) ?? 0) - (pb.get(d) ?? 0)}`).join(', ');
      lines.push(`node${i}: packets ${moved}; drops ${drops.length === 0 ? 'none' : drops.map(([r, d]) => `${r} ${d}`).join(', ')}.`);
    }
    const kd = [...kernelAfter].map(([k, v]) => [k, v - (kernelBefore.get(k) ?? 0)] as const).filter(([, v]) => v !== 0);
    lines.push(`Kernel drops outside the agent's counters: ${kd.length === 0 ? 'none' : kd.map(([k, v]) => `${k} ${v}`).join(', ')}.`);
    return lines.join('\n');
  } finally {
    await Promise.allSettled(servers.map((s) => s.stop('SIGKILL', 1000)));
    await lab.down();
  }
}

// ---- command line -----------------------------------------------------------------------------

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const args = process.argv.slice(2);
  const value = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const minutes = Number(value('--minutes') ?? '10');
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) {
    process.stderr.write('--minutes must be a number of minutes, more than 0 and at most 1440\n');
    process.exit(2);
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('npm run soak needs root: it builds network namespaces\n');
    process.exit(2);
  }
  const samplesFile = value('--samples') ?? `/tmp/vxnet-soak-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
  const report = await runSoak({
    minutes,
    sampleSeconds: Number(value('--every') ?? '10'),
    warmupMinutes: Number(value('--warmup') ?? String(Math.min(3, minutes / 5))),
    tcpRate: value('--tcp-rate') ?? '1G',
    udpRate: value('--udp-rate') ?? '20M',
    samplesFile,
    log: (m) => void process.stderr.write(`${m}\n`),
  });
  process.stdout.write(`${report}\n`);
  const out = value('--out');
  if (out !== undefined) writeFileSync(out, `${report}\n`);
}
