/**
 * Reading other tables' forward chains: which drop-policy chains would drop pod traffic, and
 * the exact commands the agent logs. The rulesets are what `nft -j list ruleset` printed for
 * the same rules made with iptables-nft (Docker's layout) and with nft (nftables 1.0.6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findForwardDrops } from '../../../src/netfilter/forward-policy.js';

const CLUSTER = '10.244.0.0/16';
const CLUSTER6 = 'fd00:10:244::/56';

function chain(family: string, table: string, name: string, base?: { hook: string; policy: string }): unknown {
  return { chain: { family, table, name, handle: 1, ...(base ? { type: 'filter', hook: base.hook, prio: 0, policy: base.policy } : {}) } };
}
function rule(family: string, table: string, chainName: string, expr: unknown[]): unknown {
  return { rule: { family, table, chain: chainName, handle: 2, expr } };
}
const counter = { counter: { packets: 0, bytes: 0 } };
function accept(protocol: string, field: string, addr: string, len: number): unknown[] {
  return [{ match: { op: '==', left: { payload: { protocol, field } }, right: { prefix: { addr, len } } } }, counter, { accept: null }];
}
function ruleset(...items: unknown[]): string {
  return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, ...items] });
}

const docker = [
  chain('ip', 'filter', 'FORWARD', { hook: 'forward', policy: 'drop' }),
  chain('ip', 'filter', 'DOCKER-USER'),
  rule('ip', 'filter', 'FORWARD', [counter, { jump: { target: 'DOCKER-USER' } }]),
  rule('ip', 'filter', 'DOCKER-USER', [counter, { return: null }]),
];

const cases: { name: string; rules: string; cluster6?: string; want: { chain: string; commands: string[] }[] }[] = [
  { name: 'no tables at all', rules: ruleset(), want: [] },
  {
    name: "Docker's FORWARD policy drop: advise DOCKER-USER, with iptables",
    rules: ruleset(...docker),
    want: [{ chain: 'ip filter FORWARD', commands: [`iptables -I DOCKER-USER -s ${CLUSTER} -j ACCEPT`, `iptables -I DOCKER-USER -d ${CLUSTER} -j ACCEPT`] }],
  },
  {
    name: 'Docker with the advice applied: nothing to say',
    rules: ruleset(...docker,
      rule('ip', 'filter', 'DOCKER-USER', accept('ip', 'saddr', '10.244.0.0', 16)),
      rule('ip', 'filter', 'DOCKER-USER', accept('ip', 'daddr', '10.244.0.0', 16))),
    want: [],
  },
  {
    name: 'only the source accept present: advise the missing destination one',
    rules: ruleset(...docker, rule('ip', 'filter', 'DOCKER-USER', accept('ip', 'saddr', '10.244.0.0', 16))),
    want: [{ chain: 'ip filter FORWARD', commands: [`iptables -I DOCKER-USER -d ${CLUSTER} -j ACCEPT`] }],
  },
  {
    name: 'an accept narrowed by interface does not count',
    rules: ruleset(...docker, rule('ip', 'filter', 'DOCKER-USER', [
      { match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'cni0' } }, ...accept('ip', 'saddr', '10.244.0.0', 16)])),
    want: [{ chain: 'ip filter FORWARD', commands: [`iptables -I DOCKER-USER -s ${CLUSTER} -j ACCEPT`, `iptables -I DOCKER-USER -d ${CLUSTER} -j ACCEPT`] }],
  },
  {
    name: 'an accept for another CIDR does not count',
    rules: ruleset(...docker, rule('ip', 'filter', 'DOCKER-USER', accept('ip', 'saddr', '10.245.0.0', 16)),
      rule('ip', 'filter', 'DOCKER-USER', accept('ip', 'daddr', '10.244.0.0', 16))),
    want: [{ chain: 'ip filter FORWARD', commands: [`iptables -I DOCKER-USER -s ${CLUSTER} -j ACCEPT`] }],
  },
  {
    name: 'a native inet table with policy drop, dual stack: nft commands for both families',
    rules: ruleset(chain('inet', 'firewalld', 'filter_FORWARD', { hook: 'forward', policy: 'drop' })),
    cluster6: CLUSTER6,
    want: [{ chain: 'inet firewalld filter_FORWARD', commands: [
      `nft insert rule inet firewalld filter_FORWARD ip saddr ${CLUSTER} accept`,
      `nft insert rule inet firewalld filter_FORWARD ip daddr ${CLUSTER} accept`,
      `nft insert rule inet firewalld filter_FORWARD ip6 saddr ${CLUSTER6} accept`,
      `nft insert rule inet firewalld filter_FORWARD ip6 daddr ${CLUSTER6} accept`,
    ] }],
  },
  {
    name: 'ip6tables FORWARD drop on an IPv4-only node: not our concern',
    rules: ruleset(chain('ip6', 'filter', 'FORWARD', { hook: 'forward', policy: 'drop' })),
    want: [],
  },
  {
    name: 'policy accept, or a drop on another hook: nothing',
    rules: ruleset(chain('ip', 'filter', 'FORWARD', { hook: 'forward', policy: 'accept' }), chain('ip', 'filter', 'INPUT', { hook: 'input', policy: 'drop' })),
    want: [],
  },
  {
    name: "our own table is never reported (nor ever has a drop policy)",
    rules: ruleset(chain('inet', 'vxnet', 'forward', { hook: 'forward', policy: 'drop' })),
    want: [],
  },
  { name: 'unparsable output: nothing, no throw', rules: '{"nftables": [', want: [] },
];

for (const c of cases) {
  test(`findForwardDrops: ${c.name}`, () => {
    const got = findForwardDrops(c.rules, CLUSTER, c.cluster6).map((d) => ({ chain: `${d.family} ${d.table} ${d.chain}`, commands: [...d.commands] }));
    assert.deepEqual(got, c.want);
  });
}
