/**
 * What the node-state lab tests read from a running lab: the agent's repair counters and log
 * lines, a timestamped ping stream (to measure how long forwarding stopped), and a node
 * namespace's kernel state as text, for before/after comparisons.
 */
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';

/** vxnet_kernel_repairs_total by `what`, from node i's /metrics. */
export async function kernelRepairs(lab: Lab, i: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await lab.metrics(i)) if (s.name === 'vxnet_kernel_repairs_total') out[s.labels['what']!] = s.value;
  return out;
}

export interface RepairLine { readonly ts: string; readonly what: string; readonly detail: string; readonly trigger: string }

/** The "kernel state repaired" lines of node i's agent log, oldest first. */
export function repairLogLines(lab: Lab, i: number): RepairLine[] {
  return logLines(lab, i).filter((l) => l['msg'] === 'kernel state repaired') as unknown as RepairLine[];
}

/** Every JSON line of node i's agent log. */
export function logLines(lab: Lab, i: number): Array<Record<string, unknown>> {
  const f = join(lab.node(i).dir, 'agent.log');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** A ping every `intervalS` from `ns` to `ip`, for at most `maxSeconds`, with reply timestamps. */
export function pingStream(lab: Lab, ns: string, ip: string, intervalS: number, maxSeconds: number): { replies: () => number[]; stop: () => { sent: number; replies: number } } {
  const p = lab.spawn(ns, ['ping', '-D', '-n', '-i', String(intervalS), '-W', '1', '-w', String(maxSeconds), ip], (maxSeconds + 10) * 1000);
  const replies = (): number[] => [...p.stdout.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]));
  return {
    replies,
    stop: () => {
      const sent = Math.max(0, ...[...p.stdout.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])));
      p.child.kill('SIGINT');
      return { sent, replies: replies().length };
    },
  };
}

/**
 * What vxnet could change in a node namespace, as text: links, addresses, IPv4 and IPv6 routes
 * of every table, the nftables ruleset, and the files of the given directories (a missing one
 * lists as empty). Take it once the namespace's own links have settled (carrier up, IPv6
 * duplicate address detection done): those change by themselves for a second or so.
 */
export async function nodeState(lab: Lab, ns: string, dirs: readonly string[]): Promise<Record<string, string>> {
  const text = async (argv: string[]): Promise<string> => (await lab.execOk(ns, argv)).stdout.trim();
  const files = dirs.map((d) => `${d}: ${existsSync(d) ? readdirSync(d).sort().join(' ') : ''}`).join('\n');
  return {
    'ip link': await text(['ip', '-o', 'link', 'show']),
    // An IPv6 address is "tentative" until duplicate address detection ends, which a bridge
    // with no port up yet (cni0) can take a while to do: the flag is the kernel's, not vxnet's.
    'ip addr': (await text(['ip', '-o', 'addr', 'show'])).replace(/ tentative/g, ''),
    // The kernel adds a link-local address's local route only once its DAD has ended, so it
    // appears between two snapshots on a young interface (seen on eth0 in a CI run of .ci/run).
    'ip route': withoutLinkLocalRoutes(await text(['ip', 'route', 'show', 'table', 'all'])),
    'ip -6 route': withoutLinkLocalRoutes(await text(['ip', '-6', 'route', 'show', 'table', 'all'])),
    'nft list ruleset': await text(['nft', 'list', 'ruleset']),
    files,
  };
}

/** A route listing without the kernel's `local fe80::… table local` routes (see nodeState). */
function withoutLinkLocalRoutes(listing: string): string {
  return listing.split('\n').filter((l) => !/^local fe80::\S* dev \S+ table local proto kernel/.test(l)).join('\n');
}
