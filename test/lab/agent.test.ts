/**
 * Agent behaviour that only shows on a running node: static peers changed live (by editing the
 * config file, and by SIGHUP) while a ping flow keeps going; a bad edit keeps the table in force;
 * `vxnet status` prints the peer table and counters; and an ICMP "net unreachable" from the
 * agent really reaches a pod that pings an address no node owns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { ping } from '../../src/lab/checks.js';
import { defaultAgentEntry, type Lab } from '../../src/lab/lab.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip();

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

interface StatusLike { peers: Array<{ node: string }>; info: { tableGeneration: number } }

async function peersOf(lab: Lab, i: number): Promise<string[]> {
  return ((await lab.status(i)) as StatusLike).peers.map((p) => p.node).sort();
}

async function waitPeers(lab: Lab, i: number, want: string[], timeoutMs = 5000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const got = await peersOf(lab, i);
    if (JSON.stringify(got) === JSON.stringify(want)) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) assert.fail(`node${i} peers ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function editConfig(lab: Lab, i: number, f: (cfg: { peers: Array<{ node: string }> }) => unknown): void {
  const path = lab.node(i).configPath!;
  const cfg = JSON.parse(readFileSync(path, 'utf8')) as { peers: Array<{ node: string }> };
  writeFileSync(path, `${JSON.stringify(f(cfg), null, 2)}\n`);
}

test('static peers change live (file edit and SIGHUP) while traffic to other peers keeps flowing', { skip, timeout: 180_000 }, async () => {
  await withLab({ nodes: 3 }, async (lab) => {
    const original = readFileSync(lab.node(1).configPath!, 'utf8');
    // A steady ping p1a -> p2a runs through every change below.
    const flow = ping(lab, lab.pod('p1a').ns, lab.pod('p2a').ip, { count: 150, intervalS: 0.02, waitS: 1 });

    editConfig(lab, 1, (c) => ({ ...c, peers: c.peers.filter((p) => p.node !== 'node3') }));
    const ms = await waitPeers(lab, 1, ['node2']);
    say(`file edit removing node3 applied in ${ms} ms`);
    const cut = await ping(lab, lab.pod('p1a').ns, lab.pod('p3a').ip, { count: 2, intervalS: 0.1, waitS: 1 });
    assert.equal(cut.received, 0, 'node3 unreachable once removed');

    // A bad edit (overlapping pod CIDR) is refused and the table in force stays.
    editConfig(lab, 1, (c) => ({ ...c, peers: [...c.peers, { node: 'bad', underlayIP: '192.168.199.2', podCIDR: '10.244.2.0/25', vtepMAC: '02:00:00:00:09:09' }] }));
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(await peersOf(lab, 1), ['node2'], 'a bad edit keeps the previous peers');
    assert.match(lab.agentLog(1, 20), /peers not reloaded|overlaps/);

    // Restore the file and send SIGHUP: the watch and the signal both re-read it (whichever is
    // first applies it, the other finds nothing new); the log shows the signal was handled.
    writeFileSync(lab.node(1).configPath!, original);
    process.kill(lab.agentPid(1)!, 'SIGHUP');
    const back = await waitPeers(lab, 1, ['node2', 'node3']);
    say(`restored peers applied in ${back} ms`);
    assert.match(lab.agentLog(1, 30), /SIGHUP: reloading peers/);
    const again = await ping(lab, lab.pod('p1a').ns, lab.pod('p3a').ip, { count: 3, intervalS: 0.1 });
    assert.equal(again.received, again.sent);

    const f = await flow;
    say(`ping p1a -> p2a during the reloads: ${f.received}/${f.sent}`);
    assert.equal(f.received, f.sent, 'the data path kept forwarding during every reload');
    const gen = ((await lab.status(1)) as StatusLike).info.tableGeneration;
    assert.ok(gen >= 3, `table generation ${gen}: one per applied change`);
  });
});

test('vxnet status prints the peer table and counters; ICMP net unreachable reaches the pod', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2 }, async (lab) => {
    await ping(lab, lab.pod('p1a').ns, lab.pod('p2a').ip, { count: 3, intervalS: 0.1 });
    const node = process.execPath;
    const main = defaultAgentEntry();
    const r = await lab.exec(lab.node(1).ns, [node, main, 'status'], { timeoutMs: 10_000 });
    say(`vxnet status:\n${r.stdout}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node node1: ready/);
    assert.match(r.stdout, /^PEER\s+UNDERLAY\s+POD CIDRS\s+VTEP MAC\s+PATH MTU\s+TX PKTS/m);
    assert.match(r.stdout, /^node2\s+192\.168\.102\.2\s+10\.244\.2\.0\/24\s+02:76:78:6c:00:02\s+1500\s+[1-9]/m);
    assert.match(r.stdout, /packets tx [1-9]\d* rx [1-9]/);

    // 10.244.77.1 is inside the cluster CIDR but no node owns it.
    const u = await lab.exec(lab.pod('p1a').ns, ['ping', '-n', '-c', '1', '-W', '2', '10.244.77.1'], { timeoutMs: 10_000 });
    say(`ping to an unowned cluster address: ${u.stdout.split('\n').find((l) => /From|Unreachable/.test(l)) ?? u.stdout}`);
    assert.match(u.stdout, /From 10\.244\.1\.0 icmp_seq=1 Destination Net Unreachable/);
    const m = await lab.metrics(1);
    const noRoute = m.find((s) => s.name === 'vxnet_dropped_total' && s.labels['reason'] === 'no_route')?.value;
    assert.ok((noRoute ?? 0) >= 1, `no_route drops: ${noRoute}`);
  });
});
