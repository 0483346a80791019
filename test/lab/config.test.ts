/**
 * The bad-config table against the real agent binary (issue 11 §7): each case runs `vxnet agent`
 * in a fresh network namespace and checks the exit code, the message, and that nothing was left
 * on the node: links, addresses and routes of the namespace are the same before and after. The
 * configuration errors exit 2 before anything is touched. The runtime failures (a metrics address
 * this host does not have, a metrics port in use) exit 1, and since the metrics server now starts
 * before the device, they too leave nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, ftruncateSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { agentSkip } from './helpers.js';
import { Solo, SOLO_UNDERLAY, withSolo } from './solo.js';
import { background, inNs } from '../../src/lab/exec.js';

const skip = agentSkip(['ip']);

const base = {
  node: 'n1', underlayIP: SOLO_UNDERLAY, clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', metricsAddr: '127.0.0.1:9469',
  peers: [
    { node: 'n2', underlayIP: '172.16.0.2', podCIDR: '10.244.2.0/24', vtepMAC: '02:00:00:00:00:02' },
    { node: 'n3', underlayIP: '172.16.0.3', podCIDR: '10.244.3.0/24', vtepMAC: '02:00:00:00:00:03' },
  ],
};
type Cfg = typeof base & Record<string, unknown>;
const edit = (f: (c: Cfg) => void): Cfg => {
  const c = structuredClone(base) as Cfg;
  f(c);
  return c;
};

interface Case {
  name: string;
  /** The config: an object (written as JSON), text, or a function that writes it and returns its path. */
  config: unknown | ((s: Solo) => string);
  exit: number;
  want: RegExp;
}

const cases: Case[] = [
  { name: 'loopback cluster CIDR', exit: 2, config: edit((c) => { c.clusterCIDR = '127.0.0.0/8'; c.podCIDR = '127.1.0.0/24'; c.peers = []; }),
    want: /field "clusterCIDR": 127\.0\.0\.0\/8 overlaps 127\.0\.0\.0\/8, loopback/ },
  { name: 'link-local IPv6 cluster CIDR', exit: 2, config: edit((c) => { c.clusterCIDR6 = 'fe80::/64'; c.podCIDR6 = 'fe80::/64'; }), want: /field "clusterCIDR6": fe80::\/64 overlaps fe80::\/10, link-local/ },
  { name: "cluster CIDR holding this node's underlay", exit: 2, config: edit((c) => { c.clusterCIDR = '172.16.0.0/16'; c.podCIDR = '172.16.9.0/24'; c.peers = []; }),
    want: /field "underlayIP": 172\.16\.0\.1 \(this node\) is inside clusterCIDR 172\.16\.0\.0\/16/ },
  { name: "cluster CIDR holding a peer's underlay", exit: 2, config: edit((c) => { c.peers[1]!.underlayIP = '10.244.99.3'; }), want: /field "peers\[1\]\.underlayIP": 10\.244\.99\.3 \(peer "n3"\) is inside clusterCIDR/ },
  { name: 'two peers with one MAC', exit: 2, config: edit((c) => { c.peers[1]!.vtepMAC = '02:00:00:00:00:02'; }), want: /field "peers\[1\]\.vtepMAC": 02:00:00:00:00:02 is already peers\[0\]'s vtepMAC/ },
  { name: "a peer with this node's MAC", exit: 2, config: edit((c) => { c.vtepMAC = '02:00:00:00:00:03'; }), want: /field "peers\[1\]\.vtepMAC": 02:00:00:00:00:03 is this node's own vtepMAC/ },
  { name: 'overlapping pod CIDRs', exit: 2, config: edit((c) => { c.peers[1]!.podCIDR = '10.244.2.128/25'; }), want: /field "peers\[1\]\.podCIDR": 10\.244\.2\.128\/25 overlaps 10\.244\.2\.0\/24 of peer "n2"/ },
  { name: 'mixed MAC separators', exit: 2, config: edit((c) => { c.peers[0]!.vtepMAC = '02:00-00:00:00:02'; }), want: /field "peers\[0\]\.vtepMAC": "02:00-00:00:00:02" is not a MAC address/ },
  { name: 'metrics address that is no address', exit: 2, config: edit((c) => { c.metricsAddr = '999.1.1.1:9469'; }), want: /field "metricsAddr": "999\.1\.1\.1:9469" does not start with an IP address/ },
  { name: 'peers file /dev/urandom', exit: 2, config: edit((c) => { (c as Record<string, unknown>).peers = undefined; c.peersFile = '/dev/urandom'; }),
    want: /field "peersFile": \/dev\/urandom: a character device, not a regular file/ },
  { name: 'a 70 MB config', exit: 2, want: /larger than 64 MiB \(67108864 bytes\)/, config: (s: Solo) => {
    const path = join(s.dir, 'huge.json');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 70 * 1024 * 1024);
    closeSync(fd);
    return path;
  } },
  { name: 'deeply nested JSON', exit: 2, config: `{"node":${'['.repeat(200_000)}${']'.repeat(200_000)}}`, want: /cannot parse: lists and objects nested deeper than 32 levels/ },
  { name: 'deeply nested YAML', exit: 2, config: (s: Solo) => s.writeConfig('deep.yaml', `node: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`), want: /cannot parse: lists and objects nested deeper than 32 levels/ },
  { name: 'an unknown field', exit: 2, config: edit((c) => { c.mtuu = 1400; }), want: /field "mtuu": unknown field/ },
  { name: 'a metrics address this host does not have', exit: 1, config: edit((c) => { c.metricsAddr = '192.0.2.99:9469'; }), want: /agent failed to start.*EADDRNOTAVAIL/ },
];

for (const c of cases) {
  test(`bad config in a fresh namespace: ${c.name} -> exit ${c.exit}, nothing left`, { skip, timeout: 60_000 }, async () => {
    await withSolo(async (s) => {
      const path = typeof c.config === 'function' ? (c.config as (s: Solo) => string)(s) : s.writeConfig('config.json', c.config);
      const before = await s.snapshot();
      const r = await s.runAgent(path, 30_000);
      const after = await s.snapshot();
      const said = (r.stderr.trim().split('\n').find((l) => /vxnet: |failed to start/.test(l)) ?? r.stderr.trim()).slice(0, 300);
      process.stderr.write(`observed: ${c.name}: exit ${r.code} after ${r.ms} ms: ${said}\n`);
      assert.equal(r.timedOut, false, 'the agent exited by itself');
      assert.equal(r.code, c.exit, `exit code; stderr: ${r.stderr.slice(-500)}`);
      assert.match(r.stderr, c.want);
      assert.equal(after, before, 'links, addresses and routes of the namespace are unchanged');
    });
  });
}

test('a metrics port in use: exit 1, and no device, address or route was created', { skip, timeout: 60_000 }, async () => {
  await withSolo(async (s) => {
    // Something else holds 127.0.0.1:9469 in the namespace.
    const holder = background(inNs(s.ns, [process.execPath, '-e', "require('net').createServer().listen(9469, '127.0.0.1'); setTimeout(() => {}, 60000)"]), { maxLifetimeMs: 60_000 });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const path = s.writeConfig('config.json', base);
      const before = await s.snapshot();
      const r = await s.runAgent(path, 30_000);
      const after = await s.snapshot();
      process.stderr.write(`observed: metrics port in use: exit ${r.code} after ${r.ms} ms\n`);
      assert.equal(r.code, 1, r.stderr.slice(-500));
      assert.match(r.stderr, /agent failed to start.*EADDRINUSE/);
      assert.equal(after, before, 'no device, address or route was created');
    } finally {
      await holder.stop('SIGKILL', 2000);
    }
  });
});
