/**
 * The NAT table vxnet installs, as text (golden), and the agent's netfilter step against nft
 * stand-ins that fail the way a node can: no nft at all, and an nft that refuses the table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderMasquerade, renderRemoval } from '../../../src/netfilter/masquerade.js';
import { setUpNetfilter } from '../../../src/netfilter/setup.js';
import type { Fields, Level } from '../../../src/agent/log.js';
import { checkConfig } from '../../../src/agent/config.js';

const GOLDEN_V4 = `add table inet vxnet
delete table inet vxnet
table inet vxnet {
\tcomment "vxnet agent: outbound NAT for this node's pods; replaced whole by the agent"
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 10.244.1.0/24 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade fully-random comment "pods to outside the cluster leave as the node"
\t\toifname "vxnet0" ip saddr != 10.244.0.0/16 masquerade fully-random comment "into the overlay only with a pod-CIDR source"
\t}
}
`;

test('renderMasquerade: IPv4 table, golden text', () => {
  const got = renderMasquerade({ podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16', device: 'vxnet0' });
  assert.equal(got, GOLDEN_V4);
});

test('renderMasquerade: dual stack adds the IPv6 pair, multicast ff00::/8 excluded', () => {
  const got = renderMasquerade({
    podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16', device: 'vxnet0',
    podCIDR6: 'fd00:10:244:1::/64', clusterCIDR6: 'fd00:10:244::/56',
  });
  const lines = got.split('\n').filter((l) => l.includes('masquerade'));
  assert.deepEqual(lines.map((l) => l.trim().replace(/ comment ".*"$/, '')), [
    'ip saddr 10.244.1.0/24 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade fully-random',
    'oifname "vxnet0" ip saddr != 10.244.0.0/16 masquerade fully-random',
    'ip6 saddr fd00:10:244:1::/64 ip6 daddr != { fd00:10:244::/56, ff00::/8 } masquerade fully-random',
    'oifname "vxnet0" ip6 saddr != fd00:10:244::/56 masquerade fully-random',
  ]);
});

test('renderMasquerade refuses a device name nft would read as syntax', () => {
  assert.throws(() => renderMasquerade({ podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16', device: 'x"; flush ruleset' }), /not an interface name/);
});

test('renderRemoval: create-then-delete, so removing an absent table is not an error', () => {
  assert.equal(renderRemoval(), 'add table inet vxnet\ndelete table inet vxnet\n');
});

interface Logged { level: Level; msg: string; fields?: Fields }

function recorder(): { log: (l: Level, m: string, f?: Fields) => void; lines: Logged[] } {
  const lines: Logged[] = [];
  return { log: (level, msg, fields) => void lines.push({ level, msg, ...(fields ? { fields } : {}) }), lines };
}

/** An nft stand-in: a shell script that records its stdin and arguments, then exits `code`. */
function fakeNft(dir: string, code: number, stdout = '', stderr = ''): string {
  const f = join(dir, 'nft');
  writeFileSync(f, `#!/bin/sh\necho "$@" >> ${dir}/args\ncat >> ${dir}/stdin\nprintf '%s' '${stdout}'\nprintf '%s' '${stderr}' >&2\nexit ${code}\n`);
  chmodSync(f, 0o755);
  return f;
}

const CFG = { ipMasq: true, podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16', device: 'vxnet0' };

const cases = [
  {
    name: 'no nft on the node: warn, say what was not done and how to fix it, keep going',
    cfg: CFG, command: ['/nonexistent/nft'],
    want: { masquerade: 'no-nft', level: 'warn', msg: /outbound NAT NOT installed.*apt-get install nftables.*"ipMasq": false/ },
  },
  {
    name: 'ipMasq false without nft: info only',
    cfg: { ...CFG, ipMasq: false }, command: ['/nonexistent/nft'],
    want: { masquerade: 'disabled', level: 'info', msg: /ipMasq is false/ },
  },
] as const;

for (const c of cases) {
  test(`setUpNetfilter: ${c.name}`, async () => {
    const r = recorder();
    const got = await setUpNetfilter(c.cfg, r.log, { command: c.command });
    assert.equal(got.masquerade, c.want.masquerade);
    const line = r.lines[0];
    assert.ok(line, 'one log line');
    assert.equal(line.level, c.want.level, `level: got ${line.level}, want ${c.want.level}`);
    assert.match(line.msg, c.want.msg);
  });
}

test('setUpNetfilter: nft refuses the table: error logged with nft\'s message, agent not stopped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-nft-'));
  try {
    const nft = fakeNft(dir, 1, '', 'Error: Could not process rule: No such file or directory');
    const r = recorder();
    const got = await setUpNetfilter(CFG, r.log, { command: [nft] });
    assert.equal(got.masquerade, 'failed');
    const err = r.lines.find((l) => l.level === 'error');
    assert.ok(err, `an error line; got ${JSON.stringify(r.lines)}`);
    assert.match(err.msg, /outbound NAT NOT installed/);
    assert.match(String(err.fields?.['error']), /Could not process rule/);
    // The whole table went to nft on stdin, in one transaction.
    assert.equal(readFileSync(join(dir, 'stdin'), 'utf8'), renderMasquerade(CFG), 'the install script on stdin, whole');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('setUpNetfilter: ipMasq false removes our table in one transaction and logs it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-nft-'));
  try {
    const nft = fakeNft(dir, 0, '{"nftables": []}');
    const r = recorder();
    const got = await setUpNetfilter({ ...CFG, ipMasq: false }, r.log, { command: [nft] });
    assert.equal(got.masquerade, 'disabled');
    assert.equal(readFileSync(join(dir, 'stdin'), 'utf8'), renderRemoval());
    assert.deepEqual(readFileSync(join(dir, 'args'), 'utf8').trim().split('\n'), ['-f -', '-j list ruleset']);
    assert.match(r.lines[0]?.msg ?? '', /ipMasq is false: no outbound NAT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: ipMasq defaults to true, takes false, refuses anything but a boolean', () => {
  const base = { node: 'n1', underlayIP: '192.0.2.1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', peerSource: 'static' };
  assert.equal(checkConfig(base).ipMasq, true);
  assert.equal(checkConfig({ ...base, ipMasq: false }).ipMasq, false);
  assert.throws(() => checkConfig({ ...base, ipMasq: 'no' }), /ipMasq/);
});
