/**
 * Start-up at scale: a real agent in a network namespace of its own (test/lab/solo.ts) with N
 * static peers, timed from the process start to its `forwarding` log line, with its CPU time and
 * RSS at that moment. Then two live updates of the same file, each timed from the write to the
 * `peers updated` line: one peer's address changed (the table is patched) and one peer removed
 * (the table is built anew). Both include re-reading and checking the whole file, which a static
 * peer list cannot avoid; the `apply` column is the table work alone, from the log line.
 *
 *   node dist/bench/startup.js [--sizes 1000,4000,16000,65536] [--out DIR]
 *
 * Needs root. Prints one JSON line per size and a table; with --out, writes DIR/benchmarks-static.md.
 * `npm run bench` runs it after the data-path comparison.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sleep } from '../src/lab/exec.js';
import { Solo, SOLO_UNDERLAY, withSolo } from '../test/lab/solo.js';

export const STARTUP_SIZES = [1000, 4000, 16000, 65536] as const;

export interface StartupResult {
  peers: number;
  /** Process start to the `forwarding` log line, ms. */
  forwardingMs: number;
  /** CPU time of the agent (all threads) by then, ms. */
  cpuMs: number;
  rssMiB: number;
  /** One peer's address changed: file write to `peers updated`, and the table work in it, ms. */
  patchMs: number;
  patchApplyMs: number;
  /** One peer removed: the same, with a full build. */
  fullMs: number;
  fullApplyMs: number;
  /** How `vxnet` logged the patch: the number of peers patched (1), or 0 if it built in full. */
  patched: number;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** N peers in 10.0.0.0/8 with a /25 each (this node has 10.0.0.0/25), underlays in 172.16.0.0/12. */
function config(n: number, change?: { underlayOf?: number; drop?: number }): unknown {
  const peers: unknown[] = [];
  for (let k = 1; k <= n; k++) {
    if (change?.drop === k) continue;
    const net = 0x0a000000 + k * 128;
    const u = change?.underlayOf === k ? 0xc6336401 : 0xac100000 + k + 1; // 198.51.100.1, or 172.16.x.y
    const ip = (a: number): string => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
    peers.push({ node: `n${k}`, underlayIP: ip(u), podCIDR: `${ip(net)}/25`, vtepMAC: `02:${hex2(k >>> 24)}:${hex2((k >>> 16) & 255)}:${hex2((k >>> 8) & 255)}:${hex2(k & 255)}:01` });
  }
  return { node: 'n0', underlayIP: SOLO_UNDERLAY, clusterCIDR: '10.0.0.0/8', podCIDR: '10.0.0.0/25', metricsAddr: '127.0.0.1:9469', peers };
}

async function waitLog(s: Solo, what: string, match: (l: Record<string, unknown> & { msg: string }) => boolean, since: number, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = s.logLines().slice(since).find(match);
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no "${what}" log line within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export async function startupAt(n: number): Promise<StartupResult> {
  return withSolo(async (s) => {
    const path = s.writeConfig('config.json', config(n));
    const t0 = Date.now();
    const agent = s.startAgent(path, 600_000);
    await waitLog(s, 'forwarding', (l) => l.msg === 'forwarding', 0, 120_000);
    const forwardingMs = Date.now() - t0;
    const cpuMs = Solo.cpuMs(agent.pid);
    const rssMiB = Solo.rssMiB(agent.pid);

    const update = async (change: { underlayOf?: number; drop?: number }): Promise<[number, Record<string, unknown>]> => {
      const since = s.logLines().length;
      const t = Date.now();
      // As an editor or a ConfigMap update does: a new file renamed over the old one.
      writeFileSync(`${path}.new`, s.configText(config(n, change)));
      renameSync(`${path}.new`, path);
      const line = await waitLog(s, 'peers updated', (l) => l.msg === 'peers updated', since, 120_000);
      return [Date.now() - t, line];
    };
    await sleep(500);
    const [patchMs, patchLine] = await update({ underlayOf: Math.ceil(n / 2) });
    await sleep(500);
    const [fullMs, fullLine] = await update({ underlayOf: Math.ceil(n / 2), drop: n });
    await agent.stop('SIGTERM', 10_000);
    return {
      peers: n, forwardingMs, cpuMs, rssMiB, patchMs, patchApplyMs: Number(patchLine['ms']), fullMs, fullApplyMs: Number(fullLine['ms']),
      patched: Number(patchLine['patched'] ?? 0),
    };
  });
}

export function startupTable(rows: readonly StartupResult[]): string {
  const head = '| peers | to `forwarding` | per peer | agent CPU | RSS | one peer changed (apply) | one peer removed (apply) |\n|---:|---:|---:|---:|---:|---:|---:|\n';
  return head + rows.map((r) =>
    `| ${r.peers.toLocaleString('en-US')} | ${r.forwardingMs} ms | ${((r.forwardingMs * 1000) / r.peers).toFixed(1)} µs | ${r.cpuMs.toFixed(0)} ms | ${r.rssMiB.toFixed(0)} MiB | ` +
    `${r.patchMs} ms (${r.patchApplyMs} ms${r.patched ? ', patched' : ', full build'}) | ${r.fullMs} ms (${r.fullApplyMs} ms) |`).join('\n') + '\n';
}

export async function runStartupBench(opts: { sizes?: readonly number[]; outDir?: string; log?: (m: string) => void } = {}): Promise<StartupResult[]> {
  const log = opts.log ?? ((m: string) => void process.stderr.write(`${m}\n`));
  const rows: StartupResult[] = [];
  const loadBefore = loadavg()[0]!.toFixed(1);
  for (const n of opts.sizes ?? STARTUP_SIZES) {
    log(`startup bench: ${n} static peers`);
    const r = await startupAt(n);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    rows.push(r);
  }
  const table = startupTable(rows);
  process.stdout.write(`\n${table}`);
  if (opts.outDir) {
    const md = `# Static start-up benchmark\n\nWritten by \`bench/startup.ts\` (\`npm run bench\`). A real agent in a network namespace with N static peers, ` +
      `timed from the process start to its \`forwarding\` log line; CPU and RSS at that moment. Then a live edit of the peer list: ` +
      `one peer's address changed (the table is patched) and one peer removed (a full build). Those times run from the file ` +
      `write to the \`peers updated\` log line and include re-reading and checking the whole file; in brackets the table work ` +
      `alone. ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), load average ${loadBefore} before the run and ${loadavg()[0]!.toFixed(1)} after it (wall times move with it, CPU times much less), measured ${new Date().toISOString().slice(0, 10)}.\n\n${table}`;
    writeFileSync(join(opts.outDir, 'benchmarks-static.md'), md);
  }
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { sizes: { type: 'string' }, out: { type: 'string' } } });
  if (process.getuid?.() !== 0) {
    process.stderr.write('the start-up bench needs root: it builds a network namespace\n');
    process.exit(2);
  }
  await runStartupBench({
    ...(values.sizes ? { sizes: values.sizes.split(',').map(Number) } : {}),
    ...(values.out ? { outDir: values.out } : {}),
  });
}
