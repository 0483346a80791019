/**
 * A SIGHUP storm against a running agent (issue 11 §5, §7), after a few SIGHUPs sent while it was
 * still checking its config (which must not kill it): 1,000 signals in a burst, then 1,000
 * more spread over two seconds, with 4,000 peers in a separate peers file so that each re-read
 * costs real work. The test states how many re-reads the storm cost (from the file source's
 * counts in `/status`), how many log lines it wrote, and the agent's RSS before and after; then
 * it checks that a real change still applies after the storm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentSkip } from './helpers.js';
import { Solo, SOLO_UNDERLAY, withSolo } from './solo.js';
import { sleep, waitFor } from '../../src/lab/exec.js';
import { httpGetInNs } from '../../src/lab/http.js';

const skip = agentSkip(['ip']);

const PEERS = 4000;
const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
const peersOf = (n: number): unknown[] => Array.from({ length: n }, (_, i) => ({
  node: `p${i}`, underlayIP: `172.17.${i >> 8}.${i & 255}`, podCIDR: `10.${1 + (i >> 8)}.${i & 255}.0/24`, vtepMAC: `02:00:00:00:${hex2(i >> 8)}:${hex2(i & 255)}`,
}));

interface SourceStats { reads: number; requests: number; skipped: number }

async function sourceStats(s: Solo): Promise<SourceStats> {
  const r = await httpGetInNs(s.ns, 'http://127.0.0.1:9469/status', 5000);
  return (JSON.parse(r.body) as { info: { peerSourceStats: SourceStats } }).info.peerSourceStats;
}

test('a storm of 2,000 SIGHUPs costs a few re-reads and little memory; a real change still applies', { skip, timeout: 120_000 }, async () => {
  await withSolo(async (s) => {
    const peersPath = join(s.dir, 'peers.json');
    writeFileSync(peersPath, JSON.stringify(peersOf(PEERS)));
    const path = s.writeConfig('config.json', {
      node: 'n1', underlayIP: SOLO_UNDERLAY, clusterCIDR: '10.0.0.0/8', podCIDR: '10.0.0.0/24', metricsAddr: '127.0.0.1:9469', peersFile: 'peers.json',
    });
    const agent = s.startAgent(path);
    // SIGHUPs while the agent is still checking its config must not kill it (the default action).
    await waitFor('the config check to start', async () => (s.logLines().some((l) => l.msg === 'checking a large peer list') ? true : undefined), 30_000, 5);
    for (let i = 0; i < 5; i++) process.kill(agent.pid, 'SIGHUP');
    await waitFor('the agent to forward', async () => (s.logLines().some((l) => l.msg === 'forwarding') ? true : undefined), 30_000, 50);
    assert.ok(agent.running, 'SIGHUPs during start-up did not kill the agent');
    await sleep(1000);
    const before = await sourceStats(s);
    const rssBefore = Solo.rssMiB(agent.pid);
    const linesBefore = s.logLines().length;

    for (let i = 0; i < 1000; i++) process.kill(agent.pid, 'SIGHUP');
    for (let i = 0; i < 1000; i++) {
      process.kill(agent.pid, 'SIGHUP');
      if (i % 10 === 9) await sleep(20);
    }
    await sleep(1500);
    const after = await sourceStats(s);
    const rssAfter = Solo.rssMiB(agent.pid);
    const hupLines = s.logLines().slice(linesBefore).filter((l) => l.msg === 'SIGHUP: reloading peers');
    const signals = hupLines.reduce((n, l) => n + (typeof l['signals'] === 'number' ? l['signals'] : 1), 0);
    const reads = after.reads - before.reads;
    process.stderr.write(`observed: 2000 SIGHUPs (1000 in a burst, 1000 over ~2 s) with ${PEERS} peers: ${signals} signals seen in ${hupLines.length} log lines, ` +
      `${after.requests - before.requests} reload requests, ${reads} re-reads, ${after.skipped - before.skipped} found the same bytes; RSS ${rssBefore.toFixed(1)} -> ${rssAfter.toFixed(1)} MiB\n`);
    assert.ok(reads <= 2, `re-reads during the storm: ${reads}, want at most 2`);
    assert.ok(hupLines.length <= 40, `log lines for the storm: ${hupLines.length}`);
    assert.ok(rssAfter - rssBefore < 15, `RSS grew by ${(rssAfter - rssBefore).toFixed(1)} MiB during the storm`);
    assert.ok(agent.running);

    // A real change after the storm: one peer fewer, by file edit and SIGHUP.
    writeFileSync(peersPath, JSON.stringify(peersOf(PEERS - 1)));
    process.kill(agent.pid, 'SIGHUP');
    const line = await waitFor('the change to apply', async () => s.logLines().find((l) => l.msg === 'peers updated' && JSON.stringify(l['removed']) === `["p${PEERS - 1}"]`), 10_000, 50);
    process.stderr.write(`observed: after the storm, removing one of ${PEERS} peers applied: generation ${String(line['generation'])}, ${String(line['ms'])} ms to build\n`);
  });
});
