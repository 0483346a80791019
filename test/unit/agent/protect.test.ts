/**
 * The checks that protect the node (issue 11 §2, §3): configs that parse but would wreck the node
 * or its peers are refused with a message that says why, naming the field; every file the agent
 * reads is bounded (size, kind, nesting); a metrics address that cannot be bound is refused
 * before anything starts. Each case is one row: what is wrong, the field, and words the message
 * must contain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfig, checkNodeFacts, ConfigError, loadConfigFile, parseHostPort } from '../../../src/agent/config.js';
import { deriveVtepMAC } from '../../../src/agent/mac.js';
import { MAX_FILE_BYTES, MAX_NESTING } from '../../../src/agent/config-text.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');

type Cfg = Record<string, unknown> & { peers: Array<Record<string, unknown>> };
const base = (): Cfg => ({
  node: 'n1', underlayIP: '192.0.2.1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24',
  peers: [
    { node: 'n2', underlayIP: '192.0.2.2', podCIDR: '10.244.2.0/24', vtepMAC: '02:00:00:00:00:02' },
    { node: 'n3', underlayIP: '192.0.2.3', podCIDR: '10.244.3.0/24', vtepMAC: '02:00:00:00:00:03' },
  ],
});
const edit = (f: (c: Cfg) => void) => (): Cfg => {
  const c = base();
  f(c);
  return c;
};

const cases: Array<{ name: string; field: string; want: RegExp; cfg: () => unknown }> = [
  { name: 'loopback cluster CIDR', field: 'clusterCIDR', want: /127\.0\.0\.0\/8 overlaps 127\.0\.0\.0\/8, loopback/,
    cfg: edit((c) => { c.clusterCIDR = '127.0.0.0/8'; c.podCIDR = '127.1.0.0/24'; c.peers = []; }) },
  { name: '"this network" cluster CIDR', field: 'clusterCIDR', want: /"this network"/, cfg: edit((c) => { c.clusterCIDR = '0.0.0.0/8'; }) },
  { name: 'link-local cluster CIDR', field: 'clusterCIDR', want: /link-local/, cfg: edit((c) => { c.clusterCIDR = '169.254.0.0/16'; }) },
  { name: 'multicast cluster CIDR', field: 'clusterCIDR', want: /multicast/, cfg: edit((c) => { c.clusterCIDR = '224.0.0.0/8'; }) },
  { name: 'reserved cluster CIDR', field: 'clusterCIDR', want: /reserved and limited broadcast/, cfg: edit((c) => { c.clusterCIDR = '240.0.0.0/8'; }) },
  { name: "a cluster CIDR that holds this node's underlay", field: 'underlayIP', want: /192\.0\.2\.1 \(this node\) is inside clusterCIDR 192\.0\.0\.0\/16: VXLAN datagrams to it would be routed into the TUN device/,
    cfg: edit((c) => { c.clusterCIDR = '192.0.0.0/16'; c.podCIDR = '192.0.1.0/24'; c.peers = []; }) },
  { name: "a cluster CIDR that holds a peer's underlay", field: 'peers[0].underlayIP', want: /10\.244\.9\.9 \(peer "n2"\) is inside clusterCIDR 10\.244\.0\.0\/16/,
    cfg: edit((c) => { c.peers[0]!.underlayIP = '10.244.9.9'; }) },
  { name: 'an underlay in 0.0.0.0/8', field: 'underlayIP', want: /0\.0\.0\.0 \(this node\) is in 0\.0\.0\.0\/8/, cfg: edit((c) => { c.underlayIP = '0.0.0.0'; }) },
  { name: 'a multicast peer underlay', field: 'peers[1].underlayIP', want: /239\.1\.1\.1 \(peer "n3"\) is in 224\.0\.0\.0\/4, multicast/, cfg: edit((c) => { c.peers[1]!.underlayIP = '239.1.1.1'; }) },
  { name: 'a broadcast peer underlay', field: 'peers[1].underlayIP', want: /255\.255\.255\.255 .* is in 240\.0\.0\.0\/4/, cfg: edit((c) => { c.peers[1]!.underlayIP = '255.255.255.255'; }) },
  { name: 'two peers with one VTEP MAC', field: 'peers[1].vtepMAC', want: /02:00:00:00:00:02 is already peers\[0\]'s vtepMAC; every VTEP needs its own \(kernel VXLAN peers key/,
    cfg: edit((c) => { c.peers[1]!.vtepMAC = '02-00-00-00-00-02'; }) },
  { name: "a peer with this node's configured MAC", field: 'peers[1].vtepMAC', want: /is this node's own vtepMAC/,
    cfg: edit((c) => { c.vtepMAC = '02:AA:00:00:00:01'; c.peers[1]!.vtepMAC = '02:aa:00:00:00:01'; }) },
  { name: "a peer with this node's derived MAC", field: 'peers[0].vtepMAC', want: /is this node's own vtepMAC/,
    cfg: edit((c) => { c.peers[0]!.vtepMAC = deriveVtepMAC('n1'); }) },
  { name: 'a peer name with a quote (it would break metric labels)', field: 'peers[0].node', want: /not a valid node name/, cfg: edit((c) => { c.peers[0]!.node = 'n2"}'; }) },
  { name: 'an upper-case peer name', field: 'peers[0].node', want: /not a valid node name/, cfg: edit((c) => { c.peers[0]!.node = 'N2'; }) },
  { name: 'a metrics address that is no address', field: 'metricsAddr', want: /"999\.1\.1\.1:9469" does not start with an IP address/, cfg: edit((c) => { c.metricsAddr = '999.1.1.1:9469'; }) },
  { name: 'a metrics host name', field: 'metricsAddr', want: /names are not resolved/, cfg: edit((c) => { c.metricsAddr = 'localhost:9469'; }) },
  { name: 'metrics port 0', field: 'metricsAddr', want: /port from 1 to 65535/, cfg: edit((c) => { c.metricsAddr = '127.0.0.1:0'; }) },
  { name: 'metrics port with a leading zero', field: 'metricsAddr', want: /port from 1 to 65535/, cfg: edit((c) => { c.metricsAddr = '127.0.0.1:09469'; }) },
  { name: 'IPv6 metrics host without brackets', field: 'metricsAddr', want: /not host:port/, cfg: edit((c) => { c.metricsAddr = '::1:9469'; }) },
  { name: 'a leading zero in an underlay octet', field: 'peers[0].underlayIP', want: /no leading zeros/, cfg: edit((c) => { c.peers[0]!.underlayIP = '192.0.2.02'; }) },
  { name: 'a string field holding a deep object', field: 'node', want: /must be a non-empty string, got an object$/, cfg: edit((c) => { c.node = { a: { b: { c: {} } } }; }) },
];

for (const c of cases) {
  test(`protective check: ${c.name} -> ${c.field}`, () => {
    assert.throws(() => checkConfig(c.cfg()), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `got ${String(err)}`);
      assert.equal(err.field, c.field, err.message);
      assert.match(err.message, c.want);
      return true;
    });
  });
}

test('IPv6 cluster CIDRs in special ranges are refused, table-driven', () => {
  const rows: Array<{ cidr: string; want: RegExp }> = [
    { cidr: 'fe80::/64', want: /link-local/ },
    { cidr: 'ff00::/8', want: /multicast/ },
    { cidr: '::/8', want: /reserved ::\/8/ },
    { cidr: '::ffff:0:0/96', want: /IPv4-mapped/ },
  ];
  for (const r of rows) {
    assert.throws(() => checkConfig({ ...base(), peers: [], clusterCIDR6: r.cidr, podCIDR6: r.cidr }), (err: unknown) => {
      assert.ok(err instanceof ConfigError && err.field === 'clusterCIDR6', `${r.cidr}: ${String(err)}`);
      assert.match(err.message, r.want, r.cidr);
      return true;
    });
  }
});

test('accepted edge cases: loopback and link-local underlays (one host), [::]:port, dashes in MACs', () => {
  const c = checkConfig({
    ...base(), underlayIP: '127.0.0.1', metricsAddr: '[::]:9469',
    peers: [{ node: 'n2', underlayIP: '169.254.0.2', podCIDR: '10.244.2.0/24', vtepMAC: '02-00-00-00-00-0A' }],
  });
  assert.equal(c.peers[0]!.vtepMAC, '02:00:00:00:00:0a');
  assert.deepEqual(parseHostPort('[::1]:9469', 'metricsAddr'), { host: '::1', port: 9469 });
  assert.deepEqual(parseHostPort('0.0.0.0:80', 'metricsAddr'), { host: '0.0.0.0', port: 80 });
});

test('checkNodeFacts: an underlay address learnt from the cluster is checked like a configured one', () => {
  assert.doesNotThrow(() => checkNodeFacts({ underlayIP: '192.168.1.5', clusterCIDR: '10.244.0.0/16' }));
  assert.throws(() => checkNodeFacts({ underlayIP: '10.244.3.5', clusterCIDR: '10.244.0.0/16' }), /10\.244\.3\.5 \(this node\) is inside clusterCIDR/);
});

test('overlaps report the earliest entry in file order and name the other owner', () => {
  const c = base();
  c.peers.push({ node: 'n4', underlayIP: '192.0.2.4', podCIDR: '10.244.3.128/25', vtepMAC: '02:00:00:00:00:04' });
  c.peers.push({ node: 'n5', underlayIP: '192.0.2.5', podCIDR: '10.244.2.0/23', vtepMAC: '02:00:00:00:00:05' });
  assert.throws(() => checkConfig(c), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, 'field "peers[2].podCIDR": 10.244.3.128/25 overlaps 10.244.3.0/24 of peer "n3"');
    return true;
  });
});

/** Runs `loadConfigFile` on files in a fresh directory; returns the ConfigError message. */
function loadError(files: Record<string, string | ((path: string) => void)>, main: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-protect-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      const p = join(dir, name);
      if (typeof content === 'string') writeFileSync(p, content);
      else content(p);
    }
    try {
      loadConfigFile(join(dir, main), {}, { env: {} });
    } catch (err) {
      assert.ok(err instanceof ConfigError, `got ${String(err)}`);
      return err.message.replaceAll(dir, 'DIR');
    }
    assert.fail('the config was accepted');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sparse = (bytes: number) => (path: string): void => {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
};

test('bounded inputs: size, kind and nesting of every file, table-driven', () => {
  const good = JSON.stringify({ ...base(), peers: undefined, peersFile: 'peers.json' });
  const rows: Array<{ name: string; files: Record<string, string | ((p: string) => void)>; main: string; want: RegExp }> = [
    { name: 'a config over the size limit', files: { 'big.json': sparse(MAX_FILE_BYTES + 1) }, main: 'big.json',
      want: /^config DIR\/big\.json: larger than 64 MiB \(67108864 bytes\), the limit for a config or peers file/ },
    { name: 'a peers file over the size limit', files: { 'c.json': good, 'peers.json': sparse(MAX_FILE_BYTES + 1) }, main: 'c.json',
      want: /field "peersFile": DIR\/peers\.json: larger than 64 MiB/ },
    { name: 'a peers file that is a device', files: { 'c.json': JSON.stringify({ ...base(), peers: undefined, peersFile: '/dev/urandom' }) }, main: 'c.json',
      want: /field "peersFile": \/dev\/urandom: a character device, not a regular file/ },
    { name: 'a config that is a directory', files: { 'd.json': (p) => mkdirSync(p) }, main: 'd.json',
      want: /d\.json: a directory, not a regular file/ },
    { name: 'deeply nested JSON', files: { 'deep.json': `{"node":${'['.repeat(100_000)}${']'.repeat(100_000)}}` }, main: 'deep.json',
      want: new RegExp(`^config DIR/deep\\.json: cannot parse: lists and objects nested deeper than ${MAX_NESTING} levels$`) },
    { name: 'deeply nested JSON that is not JSON', files: { 'deep.json': `{"node":${'['.repeat(100_000)}` }, main: 'deep.json',
      want: /nested deeper than/ },
    { name: 'deeply nested YAML flow', files: { 'deep.yaml': `node: ${'['.repeat(5000)}${']'.repeat(5000)}\n` }, main: 'deep.yaml',
      want: /cannot parse: lists and objects nested deeper than/ },
    { name: 'deeply nested YAML blocks', files: { 'deep.yaml': `node:\n${Array.from({ length: 40 }, (_, i) => `${' '.repeat(i + 1)}a:`).join('\n')} 1\n` }, main: 'deep.yaml',
      want: /nested deeper than 32 levels/ },
    { name: 'brackets inside strings do not count', files: { 's.json': JSON.stringify({ ...base(), node: '[['.repeat(45) }) }, main: 's.json',
      want: /field "node": "\[\[\[.*\.\.\." is not a valid node name/ },
  ];
  for (const r of rows) assert.match(loadError(r.files, r.main), r.want, r.name);
});

test('a large peer list says when its check starts and how long it took', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-large-'));
  try {
    const peers = Array.from({ length: 1500 }, (_, i) => ({
      node: `p${i}`, underlayIP: `172.16.${i >> 8}.${i & 255}`, podCIDR: `10.${1 + (i >> 8)}.${i & 255}.0/24`, vtepMAC: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    }));
    const path = join(dir, 'c.json');
    writeFileSync(path, JSON.stringify({ node: 'n1', underlayIP: '192.0.2.1', clusterCIDR: '10.0.0.0/8', podCIDR: '10.0.0.0/24', peers }));
    const lines: Array<{ msg: string; fields: Record<string, unknown> }> = [];
    const c = loadConfigFile(path, {}, { env: {}, log: (_level, msg, fields) => lines.push({ msg, fields: fields ?? {} }) });
    assert.equal(c.peers.length, 1500);
    assert.deepEqual(lines.map((l) => l.msg), ['checking a large peer list', 'peer list checked']);
    assert.equal(lines[0]!.fields['peers'], 1500);
    assert.equal(typeof lines[1]!.fields['ms'], 'number');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI exits 2 for an unbounded peers file, fast, naming the file and the reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-urandom-'));
  try {
    const path = join(dir, 'c.json');
    writeFileSync(path, JSON.stringify({ ...base(), peers: undefined, peersFile: '/dev/urandom' }));
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [CLI, 'agent', '--config', path], { encoding: 'utf8', timeout: 20_000 });
    process.stderr.write(`observed: exit ${r.status} after ${Date.now() - t0} ms: ${r.stderr.trim()}\n`);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /field "peersFile": \/dev\/urandom: a character device, not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
