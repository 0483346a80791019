/**
 * `npm run bench:cluster -- [options]`: runs the cluster bench (bench/kube-cluster.ts) from an
 * operator's machine and prints its markdown report on stdout (or JSON with --json). Progress
 * goes to stderr. It is a bench, not part of the agent, so it lives here and not in the image.
 *
 * Kubeconfig: --kubeconfig, else KUBECONFIG, else ~/.kube/config (like kubectl; the agent itself
 * has no home-directory fallback), else in-cluster.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadKubeConfig } from '../src/peers/kube-client.js';
import { formatKubeBenchReport, runKubeBench, type KubeBenchOptions } from './kube-cluster.js';

const KUBE_BENCH_USAGE = `usage: npm run bench:cluster -- [--kubeconfig PATH] [--namespace NS] [--image IMAGE]
       [--duration SECONDS] [--server-node NODE] [--client-node NODE]
       [--udp-bandwidth RATE] [--udp-length BYTES] [--json]
Runs iperf3 between pods on two nodes (TCP 1 stream, TCP 4 streams, UDP) and prints a table.`;

async function kubeBenchMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        kubeconfig: { type: 'string' },
        namespace: { type: 'string' },
        image: { type: 'string' },
        duration: { type: 'string' },
        'server-node': { type: 'string' },
        'client-node': { type: 'string' },
        'udp-bandwidth': { type: 'string' },
        'udp-length': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${KUBE_BENCH_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${KUBE_BENCH_USAGE}\n`);
    return 0;
  }
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  if (duration !== undefined && (!Number.isInteger(duration) || duration < 1 || duration > 3600)) {
    process.stderr.write('--duration must be a whole number of seconds, 1..3600\n');
    return 2;
  }
  const udpLength = values['udp-length'] === undefined ? undefined : Number(values['udp-length']);
  if (udpLength !== undefined && (!Number.isInteger(udpLength) || udpLength < 16 || udpLength > 65507)) {
    process.stderr.write('--udp-length must be 16..65507 bytes\n');
    return 2;
  }
  try {
    let path = values.kubeconfig;
    const home = join(homedir(), '.kube', 'config');
    if (path === undefined && !process.env['KUBECONFIG'] && existsSync(home)) path = home;
    const kc = loadKubeConfig(path);
    const opts: KubeBenchOptions = {
      log: (m) => process.stderr.write(`${m}\n`),
      ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
      ...(values.image !== undefined ? { image: values.image } : {}),
      ...(duration !== undefined ? { durationSeconds: duration } : {}),
      ...(values['server-node'] !== undefined ? { serverNode: values['server-node'] } : {}),
      ...(values['client-node'] !== undefined ? { clientNode: values['client-node'] } : {}),
      ...(values['udp-bandwidth'] !== undefined ? { udpBandwidth: values['udp-bandwidth'] } : {}),
      ...(udpLength !== undefined ? { udpLength } : {}),
    };
    const report = await runKubeBench(kc, opts);
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatKubeBenchReport(report));
    return report.rows.every((r) => r.result.kind !== 'error') ? 0 : 1;
  } catch (err) {
    process.stderr.write(`bench:cluster: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await kubeBenchMain(process.argv.slice(2));
