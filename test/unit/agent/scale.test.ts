/**
 * Start-up work at scale, without root: 65,536 static peers read from a file, checked, and laid
 * out in the forwarding table, then one peer changed and the table patched. The bounds are
 * generous (about five times what this 2-core machine takes even when loaded), so they pass on a
 * busy CI runner and still fail if the checks turn quadratic again: a pairwise overlap check took
 * a minute for 4,000 peers. The real agent's times are in bench/startup.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../../src/agent/config.js';
import { makeTables } from '../../../src/table/update.js';
import { ForwardingTable } from '../../../src/table/table.js';
import { ipv4ToNumber } from '../../../src/wire/addr.js';

const N = 65_536;
const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
const ip = (a: number): string => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

test(`${N.toLocaleString('en-US')} static peers: read, checked and built in under 10 s of CPU; one change patched in under 2 s`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-scale-'));
  try {
    const peers = Array.from({ length: N }, (_, i) => {
      const k = i + 1;
      return { node: `n${k}`, underlayIP: ip(0xac100000 + k + 1), podCIDR: `${ip(0x0a000000 + k * 128)}/25`, vtepMAC: `02:${hex2(k >>> 24)}:${hex2((k >>> 16) & 255)}:${hex2((k >>> 8) & 255)}:${hex2(k & 255)}:01` };
    });
    const path = join(dir, 'big.json');
    writeFileSync(path, JSON.stringify({ node: 'n0', underlayIP: '172.16.0.1', clusterCIDR: '10.0.0.0/8', podCIDR: '10.0.0.0/25', peers }));

    const t0 = cpuMs();
    const cfg = loadConfigFile(path, {}, { env: {} });
    const t1 = cpuMs();
    const tables = makeTables(cfg.peers, cfg);
    const t2 = cpuMs();
    const changed = cfg.peers.slice();
    changed[4711] = { ...changed[4711]!, underlayIP: '198.51.100.7' };
    const patched = makeTables(changed, cfg, tables);
    const t3 = cpuMs();
    process.stderr.write(`observed: ${N} peers: config read and checked in ${(t1 - t0).toFixed(0)} ms CPU, tables built in ${(t2 - t1).toFixed(0)} ms, ` +
      `one peer changed and patched in ${(t3 - t2).toFixed(0)} ms (${JSON.stringify(patched.made)})\n`);

    assert.equal(cfg.peers.length, N);
    assert.equal(tables.peers.length, N);
    assert.ok(t2 - t0 < 10_000, `check and build took ${(t2 - t0).toFixed(0)} ms of CPU, want < 10,000`);
    assert.deepEqual(patched.made, { patched: [4711] }, 'a one-peer change is a patch');
    assert.ok(t3 - t2 < 2_000, `the patch took ${(t3 - t2).toFixed(0)} ms of CPU, want < 2,000`);
    const table = new ForwardingTable(patched.sab);
    assert.equal(table.slotForUnderlay(ipv4ToNumber('198.51.100.7')), 4711);
    assert.equal(table.lookup(ipv4ToNumber(ip(0x0a000000 + 4712 * 128 + 5))), 4711, 'the patched peer still owns its pod CIDR');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
