/**
 * `npm run bench`: the data-path comparison (src/lab/bench.ts) written to docs/benchmarks.md and
 * docs/bench-chart.svg, then Kubernetes start-up at scale (bench/kube.ts, under a minute) written
 * to docs/benchmarks-kube.md, then static start-up at scale (bench/startup.ts, about a minute)
 * written to docs/benchmarks-static.md. Needs root (network namespaces). Options: --quick,
 * --only k1,k2 (direct, kernel, vxnet, vxnet-nooffload, vxnet-norco, vxnet-2q, socat, openvpn, kube-startup,
 * static-startup), --rounds N (default 3), --out DIR.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench } from '../src/lab/bench.js';
import { runKubeStartupBench } from './kube.js';
import { runStartupBench } from './startup.js';

const args = process.argv.slice(2);
const value = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = value('--only')?.split(',');

if (process.getuid?.() !== 0) {
  process.stderr.write('npm run bench needs root: it builds network namespaces\n');
  process.exit(2);
}

const outDir = value('--out') ?? fileURLToPath(new URL('../../docs', import.meta.url));
const log = (m: string): void => void process.stderr.write(`${m}\n`);
const dataPaths = only?.filter((k) => k !== 'kube-startup' && k !== 'static-startup');
if (!only || (dataPaths && dataPaths.length > 0)) {
  await runBench({
    outDir,
    quick: args.includes('--quick'),
    ...(value('--rounds') ? { rounds: Number(value('--rounds')) } : {}),
    ...(dataPaths ? { only: dataPaths } : {}),
    log,
  });
}
if (!only || only.includes('kube-startup')) {
  const md = await runKubeStartupBench({ log });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'benchmarks-kube.md'), `# Kubernetes start-up benchmark\n\n${md.replace(/^## .*\n\n/, '')}`);
  log(`bench: wrote ${join(outDir, 'benchmarks-kube.md')}`);
}
if (!only || only.includes('static-startup')) {
  mkdirSync(outDir, { recursive: true });
  await runStartupBench({ outDir, log });
  log(`bench: wrote ${join(outDir, 'benchmarks-static.md')}`);
}
