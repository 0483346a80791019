/**
 * HTTP GET from inside a namespace. The agent's metrics server listens on 127.0.0.1 of its own
 * node namespace, which only a process in that namespace can reach, so the lab runs a tiny node
 * script there (curl is not guaranteed to be installed; node is).
 */
import { inNs, run } from './exec.js';

const FETCH_SCRIPT = `
const [url, ms] = process.argv.slice(1);
fetch(url, { signal: AbortSignal.timeout(Number(ms)) }).then(
  async (r) => { process.stdout.write(r.status + '\\n' + (await r.text())); },
  (e) => { process.stdout.write('0\\n' + String(e && e.cause ? e.cause.code || e.cause : e)); },
);`;

export interface HttpResult {
  /** 0 when nothing answered. */
  readonly status: number;
  readonly body: string;
}

export async function httpGetInNs(ns: string, url: string, timeoutMs = 3000): Promise<HttpResult> {
  const r = await run(inNs(ns, [process.execPath, '-e', FETCH_SCRIPT, url, String(timeoutMs)]), {
    timeoutMs: timeoutMs + 5000,
  });
  const nl = r.stdout.indexOf('\n');
  if (r.code !== 0 || nl < 0) return { status: 0, body: r.stderr || r.stdout };
  return { status: Number(r.stdout.slice(0, nl)) || 0, body: r.stdout.slice(nl + 1) };
}

/** One sample of Prometheus text format: `name{labels} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parse Prometheus text exposition (enough of it for counters and gauges). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    for (const lm of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[lm[1] as string] = (lm[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = Number(m[4]);
    if (!Number.isNaN(value)) out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

/** Sum of every sample of `name` whose labels include `match`. */
export function sampleValue(
  samples: readonly Sample[],
  name: string,
  match: Readonly<Record<string, string>> = {},
): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
