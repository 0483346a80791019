/**
 * The node's kernel state across the agent's life (issue 8): it survives the agent, exactly one
 * agent holds a node, and `vxnet cleanup` takes everything away again.
 *
 * - Killed with SIGKILL, the agent leaves its persistent device, address and route behind: pod
 *   packets for other nodes still route into the device, which drops them, and tshark on the
 *   node's uplink sees none of them leave unencapsulated. A new agent adopts the device as it
 *   is and forwarding resumes.
 * - A device of the agent's name that it must not adopt (a TAP, a single-queue TUN device, a
 *   bridge) stops it with what the name is taken by; the device is left as it was.
 * - A second agent (another device name, port, metrics address and CNI directory) finds the
 *   first one's lock, exits 2 naming it, and leaves every link, address, route, rule and file
 *   as it was; the first one keeps forwarding.
 * - On an uplink whose GRO is off, the agent warns once, with the command that turns it on, and
 *   `/status` says `underlayGro: false`; forwarding is unaffected.
 * - `vxnet cleanup` refuses while the agent runs, and once it has stopped leaves node1 exactly
 *   as it was before the agent started: links, addresses, routes of both families, the nftables
 *   ruleset and the CNI directory. A second run finds nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultAgentCommand, defaultAgentEntry, type Lab } from '../../src/lab/lab.js';
import { startCapture } from '../../src/lab/capture.js';
import { waitFor } from '../../src/lab/exec.js';
import { agentSkip, withLab } from './helpers.js';
import { logLines, nodeState } from './node-support.js';

const skip = agentSkip(['ip', 'bridge', 'ping', 'ethtool', 'nft', 'tshark']);

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

async function killAgent(lab: Lab, i: number, signal: NodeJS.Signals): Promise<void> {
  process.kill(lab.agentPid(i)!, signal);
  await waitFor(`node${i}'s agent to exit`, async () => (lab.agentRunning(i) ? undefined : true), 10_000, 50);
}

/** Starts node i's agent again with its own config; resolves once /healthz answers 200. */
async function restartAgent(lab: Lab, i: number): Promise<number> {
  const node = lab.node(i);
  const t0 = Date.now();
  lab.startProcess(node, [...defaultAgentCommand(), '--config', node.configPath!], 'agent.log');
  await waitFor(`node${i}'s new agent to answer /healthz`, async () => {
    if (!lab.agentRunning(i)) throw new Error(`the new agent exited:\n${lab.agentLog(i, 20)}`);
    return (await lab.agentHttp(i, '/healthz', 1000).catch(() => ({ status: 0 }))).status === 200 ? true : undefined;
  }, 20_000, 50);
  return Date.now() - t0;
}

async function pings(lab: Lab, fromNs: string, to: string, count = 3): Promise<number> {
  const r = await lab.exec(fromNs, ['ping', '-n', '-c', String(count), '-i', '0.1', '-W', '1', to], { timeoutMs: 15_000 });
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
}

test('no agent running: the device, address and route stay, nothing leaks onto the underlay, and a new agent adopts the device', { skip, timeout: 180_000 }, async () => {
  await withLab({ nodes: 2, podsPerNode: 1 }, async (lab) => {
    const n1 = lab.node(1);
    const p1 = lab.pod('p1a');
    const p2 = lab.pod('p2a');
    assert.equal(await pings(lab, p1.ns, p2.ip), 3, 'p1a reaches p2a with the agent running');

    await killAgent(lab, 1, 'SIGKILL');
    const link = (await lab.execOk(n1.ns, ['ip', '-d', '-o', 'link', 'show', 'vxnet0'])).stdout;
    const route = (await lab.execOk(n1.ns, ['ip', 'route', 'show', '10.244.0.0/16'])).stdout.trim();
    const addr = (await lab.execOk(n1.ns, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'vxnet0'])).stdout;
    say(`after SIGKILL: route "${route}"; vxnet0 ${/<[^>]*>/.exec(link)?.[0]} ${/persist \w+/.exec(link)?.[0]}; address ${/inet (\S+)/.exec(addr)?.[1]}`);
    assert.match(link, /persist on/, 'the device is persistent');
    assert.match(link, /NO-CARRIER/, 'no reader: no carrier');
    assert.match(route, /^10\.244\.0\.0\/16 dev vxnet0 .*src 10\.244\.1\.0/, 'the cluster route stays on the device');
    assert.match(addr, /inet 10\.244\.1\.0\/32/);

    // Pod traffic to the other node while no agent runs: ICMP, UDP and TCP, from a pod and from
    // the host network. Anything with a pod address that leaves node1 unencapsulated is a leak.
    const dropsBefore = Number(/TX:[^\n]*\n\s*\d+\s+\d+\s+\d+\s+(\d+)/.exec((await lab.execOk(n1.ns, ['ip', '-s', 'link', 'show', 'vxnet0'])).stdout)?.[1] ?? 0);
    const cap = await startCapture(lab, n1.ns, { iface: n1.uplink, filter: 'net 10.244.0.0/16', fields: ['ip.src', 'ip.dst', 'ip.proto'], seconds: 20 });
    const sent = await pings(lab, p1.ns, p2.ip, 10);
    await lab.exec(p1.ns, ['sh', '-c', `for i in 1 2 3 4 5; do echo x > /dev/udp/${p2.ip}/7777; done; timeout 1 bash -c 'exec 3<>/dev/tcp/${p2.ip}/7000' || true`], { timeoutMs: 10_000 });
    await pings(lab, n1.ns, p2.ip, 5);
    const leaked = await cap.stop(0, 1500);
    const dropsAfter = Number(/TX:[^\n]*\n\s*\d+\s+\d+\s+\d+\s+(\d+)/.exec((await lab.execOk(n1.ns, ['ip', '-s', 'link', 'show', 'vxnet0'])).stdout)?.[1] ?? 0);
    say(`no agent: ${sent}/10 pings answered; tshark on ${n1.uplink} saw ${leaked.length} packets to or from 10.244.0.0/16; vxnet0 TX dropped +${dropsAfter - dropsBefore}`);
    assert.equal(sent, 0, 'nothing is forwarded without an agent');
    assert.deepEqual(leaked, [], 'no packet with a pod address left node1 unencapsulated');
    assert.ok(dropsAfter > dropsBefore, 'the packets were dropped at the device');

    const ms = await restartAgent(lab, 1);
    const adopted = logLines(lab, 1).filter((l) => l['msg'] === 'adopted the existing device').at(-1);
    const back = await pings(lab, p1.ns, p2.ip);
    say(`new agent healthy ${ms} ms after start; log "adopted the existing device", changed ${JSON.stringify(adopted?.['changed'])}; p1a -> p2a ${back}/3`);
    assert.ok(adopted, 'the new agent says it adopted the device');
    assert.deepEqual(adopted['changed'], [], 'the device was exactly as the agent wants it');
    assert.equal(back, 3, 'forwarding resumes with the new agent');

    // A graceful stop leaves it in place too.
    await killAgent(lab, 1, 'SIGTERM');
    const after = (await lab.execOk(n1.ns, ['ip', 'route', 'show', '10.244.0.0/16'])).stdout.trim();
    say(`after SIGTERM: route "${after}"`);
    assert.match(after, /^10\.244\.0\.0\/16 dev vxnet0/);
  });
});

test('an uplink without GRO: the agent says so and how to turn it on, /status shows it, and it forwards all the same', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2, podsPerNode: 1 }, async (lab) => {
    const groInfo = async (): Promise<unknown> => {
      const r = await lab.agentHttp(1, '/status');
      return (JSON.parse(r.body) as { info: { offloads: { underlayGro?: boolean } } }).info.offloads.underlayGro;
    };
    const groWarnings = (): Array<Record<string, unknown>> => logLines(lab, 1).filter((l) => /^GRO is off/.test(String(l['msg'])));
    assert.equal(await groInfo(), true, 'the lab’s uplinks do GRO, as a NIC does');
    assert.equal(groWarnings().length, 0);

    await killAgent(lab, 1, 'SIGTERM');
    await lab.execOk(lab.node(1).ns, ['ethtool', '-K', 'eth0', 'gro', 'off']);
    await restartAgent(lab, 1);
    const warned = groWarnings();
    say(`GRO off on node1's eth0: ${JSON.stringify(warned.at(-1))}`);
    assert.equal(warned.length, 1);
    assert.equal(warned[0]!['level'], 'warn');
    assert.match(String(warned[0]!['msg']), /ethtool -K eth0 gro on/);
    assert.equal(await groInfo(), false);
    assert.equal(await pings(lab, lab.pod('p1a').ns, lab.pod('p2a').ip), 3, 'forwarding does not depend on GRO');
  });
});

test('a device of the name the agent cannot adopt (TAP, single-queue TUN, bridge): the agent exits 1 saying so, and leaves it alone', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 1, podsPerNode: 0 }, async (lab) => {
    const n1 = lab.node(1);
    await killAgent(lab, 1, 'SIGTERM');
    const cases = [
      { name: 'a TAP device', make: 'ip tuntap add vxnet0 mode tap', want: /vxnet0 already exists and is a TAP device \(layer 2\); vxnet needs a TUN device/ },
      { name: 'a single-queue TUN device', make: 'ip tuntap add vxnet0 mode tun', want: /vxnet0 already exists as a single-queue TUN device, which vxnet \(multi-queue\) cannot attach to/ },
      { name: 'a bridge', make: 'ip link add vxnet0 type bridge', want: /vxnet0 already exists and is a bridge device, not a TUN device: another program owns that name/ },
    ];
    for (const c of cases) {
      await lab.execOk(n1.ns, ['sh', '-c', `ip link del vxnet0 2>/dev/null; ${c.make}`]);
      const before = (await lab.execOk(n1.ns, ['ip', '-d', '-o', 'link', 'show', 'vxnet0'])).stdout.replace(/^\d+: /, '');
      const r = await lab.exec(n1.ns, [...defaultAgentCommand(), '--config', n1.configPath!], { timeoutMs: 30_000 });
      const line = r.stderr.split('\n').find((l) => l.includes('agent failed to start')) ?? r.stderr.trim();
      const after = (await lab.execOk(n1.ns, ['ip', '-d', '-o', 'link', 'show', 'vxnet0'])).stdout.replace(/^\d+: /, '');
      say(`${c.name} named vxnet0: exit ${r.code}; ${line}`);
      assert.equal(r.code, 1, `${c.name}: exit code`);
      assert.match(line, c.want, c.name);
      assert.equal(after, before, `${c.name}: left as it was`);
    }
  });
});

test('a second agent on the node exits 2 before it touches anything; the first keeps forwarding', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2, podsPerNode: 1 }, async (lab) => {
    const n1 = lab.node(1);
    const cfg = JSON.parse(readFileSync(n1.configPath!, 'utf8')) as Record<string, unknown>;
    const second = join(n1.dir, 'second.json');
    const secondCni = join(n1.dir, 'net2.d');
    writeFileSync(second, JSON.stringify({ ...cfg, device: 'vxnet9', port: 8473, metricsAddr: '127.0.0.1:9470', cniConfDir: secondCni }));
    const dirs = [join(n1.dir, 'net.d'), join(n1.dir, 'run'), secondCni];
    const before = await nodeState(lab, n1.ns, dirs);
    const lock = readFileSync(join(n1.dir, 'run', 'agent.lock'), 'utf8');

    const r = await lab.exec(n1.ns, [...defaultAgentCommand(), '--config', second], { timeoutMs: 30_000 });
    const line = r.stderr.split('\n').find((l) => l.includes('another agent holds this node')) ?? '';
    say(`second agent: exit ${r.code}; ${line}`);
    assert.equal(r.code, 2, `exit code: got ${r.code}, want 2; stderr:\n${r.stderr}`);
    assert.match(line, new RegExp(`another vxnet agent \\(pid ${lab.agentPid(1)}, node node1, device vxnet0`), 'names the live agent');
    assert.match(line, /This agent exits without touching the node/);
    assert.ok(!r.stderr.includes('tun device open') && !r.stderr.includes('udp sockets open'), 'it opened nothing');

    const after = await nodeState(lab, n1.ns, dirs);
    for (const k of Object.keys(before)) assert.equal(after[k], before[k], `${k} changed under the second agent`);
    assert.equal(readFileSync(join(n1.dir, 'run', 'agent.lock'), 'utf8'), lock, 'the lock file still names the first agent');
    assert.ok(!existsSync(secondCni), 'no CNI directory of its own was created');
    const h = await lab.agentHttp(1, '/healthz');
    const p = await pings(lab, lab.pod('p1a').ns, lab.pod('p2a').ip);
    say(`first agent: /healthz ${h.status}; p1a -> p2a ${p}/3; links, routes, nft ruleset and files unchanged`);
    assert.equal(h.status, 200);
    assert.equal(p, 3);
  });
});

test('vxnet cleanup: refused under a live agent; after it, the node is as it was before the agent started; a second run finds nothing', { skip, timeout: 180_000 }, async () => {
  let before: Record<string, string> | undefined;
  const dirsOf = (lab: Lab): string[] => [join(lab.node(1).dir, 'net.d')];
  await withLab({
    nodes: 2,
    podsPerNode: 0,
    beforeDataPlanes: async (lab) => {
      // The lab's own links settle first (the uplink's carrier, its link-local address), so the
      // snapshot holds only what is there for good.
      const n1 = lab.node(1);
      await waitFor('node1 uplink up and settled', async () => {
        const l = await lab.execOk(n1.ns, ['ip', '-o', 'link', 'show', n1.uplink]);
        const t = await lab.execOk(n1.ns, ['ip', '-o', 'addr', 'show', 'tentative']);
        return l.stdout.includes('state UP') && t.stdout.trim() === '' ? true : undefined;
      }, 10_000);
      before = await nodeState(lab, n1.ns, dirsOf(lab));
    },
  }, async (lab) => {
    const n1 = lab.node(1);
    const node = process.execPath;
    const main = defaultAgentEntry();
    const cleanup = (): Promise<{ code: number | null; stderr: string }> => lab.exec(n1.ns, [node, main, 'cleanup', '--config', n1.configPath!], { timeoutMs: 30_000 });
    const running = await nodeState(lab, n1.ns, dirsOf(lab));
    const reach = await pings(lab, n1.ns, lab.node(2).tunnelAddress);
    say(`agent running: node1 -> node2's tunnel address ${reach}/3; ruleset has table inet vxnet: ${running['nft list ruleset']!.includes('table inet vxnet')}; net.d: ${running['files']}`);
    assert.equal(reach, 3);
    assert.match(running['nft list ruleset']!, /table inet vxnet/);

    const refused = await cleanup();
    const why = refused.stderr.split('\n').find((l) => l.includes('cleanup refused')) ?? '';
    say(`cleanup under a live agent: exit ${refused.code}; ${why}`);
    assert.equal(refused.code, 2);
    assert.match(why, /refusing to clean up under a live agent/);
    assert.deepEqual(await nodeState(lab, n1.ns, dirsOf(lab)), running, 'a refused cleanup changes nothing');

    await killAgent(lab, 1, 'SIGTERM');
    const done = await cleanup();
    const removed = done.stderr.split('\n').filter((l) => l.includes('"msg":"removed"')).map((l) => (JSON.parse(l) as { what: string }).what);
    say(`cleanup: exit ${done.code}; removed ${JSON.stringify(removed)}`);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(removed.map((w) => w.split(' (')[0]!.replace(/ \/.*/, '')).sort(), ['CNI config', 'device vxnet0', 'lock file', 'nftables table inet vxnet', 'run directory'].sort());

    const after = await nodeState(lab, n1.ns, dirsOf(lab));
    for (const k of Object.keys(before!)) assert.equal(after[k], before![k], `${k} after cleanup differs from before the agent started`);
    assert.ok(!existsSync(join(n1.dir, 'run')), 'the run directory is gone');
    say(`node1 after cleanup equals node1 before the agent: ${Object.keys(before!).join(', ')}`);

    const again = await cleanup();
    const summary = again.stderr.split('\n').find((l) => l.includes('cleanup:')) ?? '';
    say(`second cleanup: exit ${again.code}; ${summary}`);
    assert.equal(again.code, 0);
    assert.match(summary, /nothing of vxnet was left on this node/);
  });
});
