/**
 * `vxnet lab up|down|list|test|bench`. The CLI (src/cli/main.ts) hands everything after `lab`
 * to labMain and exits with its return value.
 */
import { Lab, labDown, type LabOptions } from './lab.js';
import { runChecks, type CheckResult } from './checks.js';
import { listLabIds, readState } from './state.js';
import { NODE_KINDS, isNodeKind } from './backends/index.js';

const USAGE = () => `usage: vxnet lab <command> [options]

  up     [--nodes N] [--kind K[,K...]] [--vni N] [--port N] [--pods N] [--id ID] [--attacker] [--ipv6]
         [--underlay-mtu M[,M...]] [--narrow-hop I[,I...]:M] [--agent-mtu auto] [--no-outside] [--no-service]
         build a lab that stays up; prints pods and the peer table (--ipv6: dual-stack pods;
         --underlay-mtu: node i's uplink MTU, the last repeats; --narrow-hop: nodes I behind a
         second router over an M-byte link; --agent-mtu auto: no MTU in agent configs; an outside
         host and one Service are included unless turned off)
  down   ID... | --all          remove labs (agents, namespaces, files)
  list                          labs recorded in /run/vxnet-lab
  test   [up options] [--keep]  build a lab, run the connectivity checks, remove it (--keep: leave it up)
  bench  [--out DIR] [--quick] [--rounds N] [--only P,...]
                                benchmark the data paths (2-node labs, N interleaved rounds,
                                medians), print the table, write DIR/benchmarks.md and
                                DIR/bench-chart.svg; P: direct kernel vxnet vxnet-nooffload
                                vxnet-norco vxnet-2q (left out of --quick) socat openvpn

  K is one of ${NODE_KINDS.join(', ')}; a list gives node 1, 2, ... (the last repeats).`;

interface Parsed {
  opts: LabOptions;
  rest: string[];
  flags: Set<string>;
  values: Map<string, string>;
}

/** "1500,1400" -> node i's MTU, the last one repeating. */
function perNode(list: string, flag: string): (i: number) => number {
  const v = list.split(',').map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 576 || n > 65535) throw new Error(`${flag}: not an MTU (576..65535): ${x}`);
    return n;
  });
  return (i) => v[Math.min(i, v.length) - 1]!;
}

function parse(args: readonly string[]): Parsed {
  // What a new user's `lab up` and `lab test` show by default: the world outside the cluster
  // and one Service, beside the pods.
  const opts: LabOptions = { outside: true, service: true };
  const rest: string[] = [];
  const flags = new Set<string>();
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const val = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const v = val();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a}: not a number: ${v}`);
      return n;
    };
    switch (a) {
      case '--nodes':
        opts.nodes = num();
        break;
      case '--vni':
        opts.vni = num();
        break;
      case '--port':
        opts.port = num();
        break;
      case '--pods':
        opts.podsPerNode = num();
        break;
      case '--id':
        opts.id = val();
        break;
      case '--attacker':
        opts.attacker = true;
        break;
      case '--ipv6':
        opts.ipv6 = true;
        break;
      case '--no-outside':
        opts.outside = false;
        break;
      case '--no-service':
        opts.service = false;
        break;
      case '--underlay-mtu':
        opts.underlayMTU = perNode(val(), a);
        break;
      case '--narrow-hop': {
        const v = val();
        const m = /^(\d+(?:,\d+)*):(\d+)$/.exec(v);
        if (!m) throw new Error(`${a}: want NODES:MTU, e.g. 2:1400, got ${v}`);
        opts.narrowHop = { nodes: m[1]!.split(',').map(Number), mtu: perNode(m[2]!, a)(1) };
        break;
      }
      case '--agent-mtu': {
        const v = val();
        if (v !== 'auto' && v !== 'lab') throw new Error(`${a}: auto or lab, got ${v}`);
        opts.agentMTU = v;
        break;
      }
      case '--kind': {
        const list = val().split(',');
        const kinds = list.map((k) => {
          if (!isNodeKind(k)) throw new Error(`unknown kind ${k} (one of ${NODE_KINDS.join(', ')})`);
          return k;
        });
        opts.kind = (i) => kinds[Math.min(i, kinds.length) - 1]!;
        break;
      }
      case '--out':
      case '--rounds':
      case '--only':
        values.set(a.slice(2), val());
        break;
      default:
        if (a.startsWith('--')) flags.add(a.slice(2));
        else rest.push(a);
    }
  }
  return { opts, rest, flags, values };
}

/** The lab Service has its endpoints on nodes 2 and 3: a 1-node lab goes without it. */
function fitService(opts: LabOptions): void {
  if ((opts.nodes ?? 3) < 2) opts.service = false;
}

function printCheck(r: CheckResult): void {
  process.stdout.write(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}\n      ${r.observed}\n`);
}

export async function labMain(args: readonly string[]): Promise<number> {
  const [cmd, ...restArgs] = args;
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  try {
    switch (cmd) {
      case 'up': {
        const p = parse(restArgs);
        fitService(p.opts);
        const lab = await Lab.up({ ...p.opts, persist: true, log });
        process.stdout.write(`${await lab.describe()}\n\nremove with: vxnet lab down ${lab.id}\n`);
        return 0;
      }
      case 'down': {
        const p = parse(restArgs);
        const ids = p.flags.has('all') ? listLabIds() : p.rest;
        if (ids.length === 0) {
          process.stderr.write('vxnet lab down: give lab ids or --all\n');
          return 2;
        }
        for (const id of ids) {
          const removed = await labDown(id);
          process.stdout.write(`lab ${id}: removed ${removed.length} namespaces\n`);
        }
        return 0;
      }
      case 'list': {
        for (const id of listLabIds()) {
          const st = readState(id);
          process.stdout.write(`${id}  ${st?.createdAt ?? '?'}  ${st?.namespaces.length ?? 0} namespaces\n`);
        }
        return 0;
      }
      case 'test': {
        const p = parse(restArgs);
        fitService(p.opts);
        const keep = p.flags.has('keep');
        const lab = await Lab.up({ ...p.opts, persist: keep, log });
        try {
          process.stdout.write(`${await lab.describe()}\n\n`);
          const results = await runChecks(lab, printCheck);
          const failed = results.filter((r) => !r.ok).length;
          process.stdout.write(`\n${results.length - failed} passed, ${failed} failed\n`);
          return failed === 0 ? 0 : 1;
        } finally {
          if (keep) process.stdout.write(`lab kept; remove with: vxnet lab down ${lab.id}\n`);
          else await lab.down();
        }
      }
      case 'bench': {
        const p = parse(restArgs);
        const { runBench } = await import('./bench.js');
        const only = p.values.get('only')?.split(',');
        await runBench({
          outDir: p.values.get('out') ?? 'docs',
          quick: p.flags.has('quick'),
          ...(only ? { only } : {}),
          ...(p.values.has('rounds') ? { rounds: Number(p.values.get('rounds')) } : {}),
          log,
        });
        return 0;
      }
      default:
        process.stderr.write(`${USAGE()}\n`);
        return cmd === undefined || cmd === 'help' || cmd === '--help' ? 0 : 2;
    }
  } catch (err) {
    process.stderr.write(`vxnet lab ${cmd}: ${(err as Error).message}\n`);
    return 1;
  }
}
