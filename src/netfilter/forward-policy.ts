/**
 * Finds the forward chains of other tables that would drop pod traffic between nodes, and says
 * exactly what the operator can add to let it through.
 *
 * Docker, and some distribution firewalls, set the forward hook's policy to drop. Every base
 * chain on a hook sees the packet, in priority order, and a drop in any of them is final: an
 * accept in a table of vxnet's own only ends that table's chain. So no rule vxnet could add to
 * its own table undoes another table's drop. flannel (iptables mode) inserts ACCEPT rules for
 * the cluster CIDR into the FORWARD chain itself; vxnet does not edit tables it does not own
 * (their owners rebuild them, and kube-proxy's nftables mode follows the same rule), so it reads
 * them instead, once at start-up, and logs the two commands that would fix the node.
 *
 * A drop-policy chain counts as fixed when it, or a chain it jumps to, holds an unconditional
 * accept for the cluster CIDR as source and one as destination, the two rules this module
 * advises. Anything subtler (accepts narrowed by interface, drops by rule rather than by policy)
 * is not recognised: the agent names what it saw and leaves the judgment to the operator.
 */
import { nft, type NftOptions } from './nft.js';
import { TABLE_FAMILY, TABLE_NAME } from './masquerade.js';

export interface ForwardDrop {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  /** Cluster CIDRs (IPv4, IPv6) that this chain drops, with the commands that accept them. */
  readonly cidrs: readonly string[];
  readonly commands: readonly string[];
}

interface NftChain { family: string; table: string; name: string; hook?: string; policy?: string }
interface NftRule { family: string; table: string; chain: string; expr?: unknown[] }

type Direction = 'saddr' | 'daddr';

/** "10.244.0.0/16" from a match's right-hand side (a prefix, or a bare address). */
function cidrOf(right: unknown): string | null {
  if (typeof right === 'string') return right.includes('/') ? right : null;
  const p = (right as { prefix?: { addr?: unknown; len?: unknown } } | null)?.prefix;
  return p && typeof p.addr === 'string' && typeof p.len === 'number' ? `${p.addr}/${p.len}` : null;
}

/** The (direction, CIDR) a rule accepts without any other condition, or null. */
function unconditionalAccept(rule: NftRule): { dir: Direction; cidr: string } | null {
  const expr = rule.expr ?? [];
  let found: { dir: Direction; cidr: string } | null = null;
  let accepts = false;
  for (const e of expr) {
    const o = e as Record<string, unknown>;
    if ('counter' in o || 'comment' in o) continue;
    if ('accept' in o) { accepts = true; continue; }
    const m = o['match'] as { op?: string; left?: { payload?: { field?: string } }; right?: unknown } | undefined;
    const field = m?.left?.payload?.field;
    if (m?.op === '==' && (field === 'saddr' || field === 'daddr') && found === null) {
      const cidr = cidrOf(m.right);
      if (cidr !== null) { found = { dir: field, cidr }; continue; }
    }
    return null; // any other condition or verdict: not the rule we look for
  }
  return accepts ? found : null;
}

function targetsOf(rule: NftRule): string[] {
  const out: string[] = [];
  for (const e of rule.expr ?? []) {
    const o = e as { jump?: { target?: string }; goto?: { target?: string } };
    const t = o.jump?.target ?? o.goto?.target;
    if (typeof t === 'string') out.push(t);
  }
  return out;
}

/** iptables-nft's own tables: rules there are best added with iptables, which owns them. */
function iptablesTool(family: string, table: string): string | null {
  if (table !== 'filter') return null;
  return family === 'ip' ? 'iptables' : family === 'ip6' ? 'ip6tables' : null;
}

/**
 * Pure part: from `nft -j list ruleset` output, every forward chain with policy drop (outside
 * our own table) that lacks the accepts for the given cluster CIDRs.
 */
export function findForwardDrops(rulesetJson: string, clusterCIDR: string, clusterCIDR6?: string): ForwardDrop[] {
  let items: unknown[];
  try {
    items = (JSON.parse(rulesetJson) as { nftables?: unknown[] }).nftables ?? [];
  } catch {
    return [];
  }
  const chains: NftChain[] = [];
  const rules: NftRule[] = [];
  for (const it of items) {
    const o = it as { chain?: NftChain; rule?: NftRule };
    if (o.chain) chains.push(o.chain);
    if (o.rule) rules.push(o.rule);
  }
  const out: ForwardDrop[] = [];
  for (const c of chains) {
    if (c.hook !== 'forward' || c.policy !== 'drop') continue;
    if (c.family === TABLE_FAMILY && c.table === TABLE_NAME) continue;
    const inTable = (r: NftRule): boolean => r.family === c.family && r.table === c.table;
    // The chain and every chain reachable from it by jump or goto, within this table.
    const seen = new Set<string>([c.name]);
    const queue = [c.name];
    const accepted = new Set<string>();
    while (queue.length > 0) {
      const name = queue.shift() as string;
      for (const r of rules) {
        if (!inTable(r) || r.chain !== name) continue;
        const a = unconditionalAccept(r);
        if (a) accepted.add(`${a.dir} ${a.cidr}`);
        for (const t of targetsOf(r)) if (!seen.has(t)) { seen.add(t); queue.push(t); }
      }
    }
    const wanted: { ip: 'ip' | 'ip6'; cidr: string }[] = [];
    if (c.family === 'ip' || c.family === 'inet') wanted.push({ ip: 'ip', cidr: clusterCIDR });
    if ((c.family === 'ip6' || c.family === 'inet') && clusterCIDR6 !== undefined) wanted.push({ ip: 'ip6', cidr: clusterCIDR6 });
    const tool = iptablesTool(c.family, c.table);
    // Docker keeps DOCKER-USER for exactly this (its own rules are rebuilt on every restart).
    const userChain = tool !== null && seen.has('DOCKER-USER') ? 'DOCKER-USER' : c.name;
    const commands: string[] = [];
    const cidrs: string[] = [];
    for (const w of wanted) {
      const missing = (['saddr', 'daddr'] as const).filter((d) => !accepted.has(`${d} ${w.cidr}`));
      if (missing.length === 0) continue;
      cidrs.push(w.cidr);
      for (const d of missing) {
        commands.push(tool !== null
          ? `${tool} -I ${userChain} ${d === 'saddr' ? '-s' : '-d'} ${w.cidr} -j ACCEPT`
          : `nft insert rule ${c.family} ${c.table} ${c.name} ${w.ip} ${d} ${w.cidr} accept`);
      }
    }
    if (commands.length > 0) out.push({ family: c.family, table: c.table, chain: c.name, cidrs, commands });
  }
  return out;
}

/** Reads the node's ruleset and finds the drops (see findForwardDrops). */
export async function checkForwardPolicy(clusterCIDR: string, clusterCIDR6: string | undefined, opts: NftOptions = {}): Promise<ForwardDrop[]> {
  return findForwardDrops(await nft(['-j', 'list', 'ruleset'], '', opts), clusterCIDR, clusterCIDR6);
}
