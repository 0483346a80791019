/**
 * Configuration errors name the field (acceptance: a bad config file exits non-zero with a message
 * that names the field), checked both through `checkConfig` and through the real CLI binary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfig, ConfigError } from '../../../src/agent/config.js';
import { deriveVtepMAC } from '../../../src/agent/mac.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');

const base = () => ({
  node: 'n1', underlayIP: '192.0.2.1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24',
  peers: [
    { node: 'n2', underlayIP: '192.0.2.2', podCIDR: '10.244.2.0/24', vtepMAC: '02:00:00:00:00:02' },
    { node: 'n3', underlayIP: '192.0.2.3', podCIDR: '10.244.3.0/24', vtepMAC: '02:00:00:00:00:03' },
  ],
});

test('defaults: port 8472, VNI 1, MTU underlay-50, derived stable VTEP MAC, device vxnet0', () => {
  const c = checkConfig(base());
  assert.equal(c.port, 8472);
  assert.equal(c.vni, 1);
  assert.equal(c.mtu, 1450);
  assert.equal(c.device, 'vxnet0');
  assert.equal(c.metricsAddr, '127.0.0.1:9469');
  assert.equal(c.vtepMAC, deriveVtepMAC('n1'));
  assert.equal(checkConfig(base()).vtepMAC, c.vtepMAC, 'same name, same MAC');
  assert.notEqual(deriveVtepMAC('n2'), c.vtepMAC);
  assert.match(c.vtepMAC, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'locally administered unicast');
  assert.equal(c.peers.length, 2);
  assert.deepEqual(c.peers[0]!.podCIDRs, ['10.244.2.0/24']);
});

test('explicit settings are kept (VNI 42 on port 4789)', () => {
  const c = checkConfig({ ...base(), vni: 42, port: 4789, mtu: 1400, vtepMAC: '02:AB:CD:EF:00:01', device: 'vx1' });
  assert.deepEqual([c.vni, c.port, c.mtu, c.vtepMAC, c.device], [42, 4789, 1400, '02:ab:cd:ef:00:01', 'vx1']);
});

type Cfg = ReturnType<typeof base> & Record<string, unknown>;
const bad: Array<{ name: string; field: string; edit: (c: Cfg) => unknown }> = [
  { name: 'a wrong cluster CIDR', field: 'clusterCIDR', edit: (c) => ({ ...c, clusterCIDR: '10.244.0.0/33' }) },
  { name: 'a cluster CIDR that is not an address', field: 'clusterCIDR', edit: (c) => ({ ...c, clusterCIDR: 'ten.dot/16' }) },
  { name: 'host bits in the pod CIDR', field: 'podCIDR', edit: (c) => ({ ...c, podCIDR: '10.244.1.7/24' }) },
  { name: 'a pod CIDR outside the cluster CIDR', field: 'podCIDR', edit: (c) => ({ ...c, podCIDR: '10.245.1.0/24' }) },
  { name: "a peer's pod CIDR outside the cluster CIDR", field: 'peers[1].podCIDR', edit: (c) => { c.peers[1]!.podCIDR = '172.16.0.0/24'; return c; } },
  { name: 'a duplicate peer', field: 'peers[1].node', edit: (c) => { c.peers[1]!.node = 'n2'; return c; } },
  { name: 'a peer that is this node', field: 'peers[0].node', edit: (c) => { c.peers[0]!.node = 'n1'; return c; } },
  { name: 'a duplicate underlay address', field: 'peers[1].underlayIP', edit: (c) => { c.peers[1]!.underlayIP = '192.0.2.2'; return c; } },
  { name: 'overlapping pod CIDRs', field: 'peers[1].podCIDR', edit: (c) => { c.peers[1]!.podCIDR = '10.244.2.128/25'; return c; } },
  { name: "a peer overlapping this node's pod CIDR", field: 'peers[0].podCIDR', edit: (c) => { c.peers[0]!.podCIDR = '10.244.1.0/24'; return c; } },
  { name: 'a bad peer MAC', field: 'peers[0].vtepMAC', edit: (c) => { c.peers[0]!.vtepMAC = '02:00:00:00:00'; return c; } },
  { name: 'a multicast MAC', field: 'vtepMAC', edit: (c) => ({ ...c, vtepMAC: '01:00:5e:00:00:01' }) },
  { name: 'a bad underlay address', field: 'underlayIP', edit: (c) => ({ ...c, underlayIP: '192.0.2' }) },
  { name: 'a VNI beyond 24 bits', field: 'vni', edit: (c) => ({ ...c, vni: 1 << 24 }) },
  { name: 'a port of 0', field: 'port', edit: (c) => ({ ...c, port: 0 }) },
  { name: 'a misspelt field', field: 'podCidr', edit: (c) => ({ ...c, podCidr: '10.244.1.0/24' }) },
  { name: 'a missing cluster CIDR', field: 'clusterCIDR', edit: (c) => { const { clusterCIDR: _, ...rest } = c; return rest; } },
  { name: 'a device name too long', field: 'device', edit: (c) => ({ ...c, device: 'averyveryverylongname' }) },
  { name: 'offloads not a boolean', field: 'offloads.tun', edit: (c) => ({ ...c, offloads: { tun: 'yes' } }) },
  { name: 'a bad metrics address', field: 'metricsAddr', edit: (c) => ({ ...c, metricsAddr: 'localhost' }) },
];

for (const b of bad) {
  test(`config error: ${b.name} names "${b.field}"`, () => {
    assert.throws(() => checkConfig(b.edit(base() as Cfg)), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `got ${String(err)}`);
      assert.equal(err.field, b.field);
      assert.match(err.message, new RegExp(`"${b.field.replace(/[[\].]/g, '\\$&')}"`));
      return true;
    });
  });
}

test('the CLI exits 2 on a bad config and names the field and the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-cfg-'));
  try {
    const cases: Array<[string, unknown, string]> = [
      ['cidr.json', { ...base(), clusterCIDR: '10.244.0.0/40' }, 'clusterCIDR'],
      ['outside.json', { ...base(), podCIDR: '10.9.1.0/24' }, 'podCIDR'],
      ['dup.json', (() => { const c = base(); c.peers[1]!.node = 'n2'; return c; })(), 'peers[1].node'],
      ['mac.json', (() => { const c = base(); c.peers[0]!.vtepMAC = 'zz:00:00:00:00:02'; return c; })(), 'peers[0].vtepMAC'],
    ];
    for (const [file, cfg, field] of cases) {
      const path = join(dir, file);
      writeFileSync(path, JSON.stringify(cfg));
      const r = spawnSync(process.execPath, [CLI, 'agent', '--config', path], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 2, `${file}: exit ${r.status}, stderr ${r.stderr}`);
      assert.ok(r.stderr.includes(`"${field}"`), `${file}: stderr does not name ${field}: ${r.stderr}`);
      assert.ok(r.stderr.includes(path), `${file}: stderr does not name the file: ${r.stderr}`);
    }
    const yamlPath = join(dir, 'c.yaml');
    writeFileSync(yamlPath, 'node: n1\nunderlayIP: 192.0.2.1\nclusterCIDR: 10.244.0.0/16\npodCIDR: 10.250.0.0/24\n');
    const r = spawnSync(process.execPath, [CLI, 'agent', '--config', yamlPath], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /"podCIDR".*not inside clusterCIDR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
