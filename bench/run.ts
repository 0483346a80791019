/**
 * `npm run bench`: the data-path comparison (src/lab/bench.ts) written to docs/benchmarks.md and
 * docs/bench-chart.svg. Needs root (network namespaces). Options: --quick, --only k1,k2
 * (direct, kernel, vxnet, vxnet-nooffload, socat, openvpn), --rounds N (default 3), --out DIR.
 */
import { fileURLToPath } from 'node:url';
import { runBench } from '../src/lab/bench.js';

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

await runBench({
  outDir: value('--out') ?? fileURLToPath(new URL('../../docs', import.meta.url)),
  quick: args.includes('--quick'),
  ...(value('--rounds') ? { rounds: Number(value('--rounds')) } : {}),
  ...(only ? { only } : {}),
  log: (m) => void process.stderr.write(`${m}\n`),
});
