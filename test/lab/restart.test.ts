/**
 * Restarts under load (issue 8, "Restarts and upgrades lose nothing"; issue 11, item 7): iperf3
 * TCP from a pod on node1 to a pod on node2, reported every 0.1 s by the receiving side, while
 * node1's agent is
 *   (a) stopped with SIGTERM and started again,
 *   (b) killed with SIGKILL and started again,
 *   (c) replaced by a successor that takes its fds over (--takeover, src/node/handover.ts).
 *
 * Every case asserts that the TCP connection survives (iperf3 completes with its one connection)
 * and that tshark on node1's uplink sees no packet with a pod address leave unencapsulated (the
 * BPF filter matches outer headers only, so VXLAN traffic does not count). (c) asserts that the
 * successor opened nothing of its own and logs the hand-over, and that no 0.1 s interval around
 * the hand-over went without data; on a machine whose load average exceeds its cores, where
 * intervals go empty without any hand-over, it checks the pause the successor measured instead.
 * Seconds at zero throughput and retransmits are printed, not asserted: they depend on the
 * machine's load (docs/operations.md has the measured table).
 *
 * A fourth test covers refusals without load: the pod it replaced asking back, a successor with
 * another port; both wait for the lock, touch nothing, and the waiting one starts once the holder
 * stops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { defaultAgentCommand, type Lab } from '../../src/lab/lab.js';
import { startCapture } from '../../src/lab/capture.js';
import { sleep, waitFor, type Background } from '../../src/lab/exec.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip(['ip', 'bridge', 'iperf3', 'tshark']);

/** The iperf3 run: long enough to cover a restart (an agent's start takes seconds on a loaded
 * machine) and TCP's back-off after it. */
const SECONDS = 15;
/** When the agent is disturbed, into the run. */
const DISTURB_AT_MS = 1500;
const INTERVAL = 0.1;
const IPERF_PORT = 5301;

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

interface Interval { sum?: { bytes?: number; seconds?: number; start?: number } }
interface IperfRun {
  error?: string;
  start?: { connected?: unknown[] };
  intervals?: Interval[];
  end?: { sum_sent?: { retransmits?: number; bytes?: number }; sum_received?: { bytes?: number } };
  server_output_json?: { intervals?: Interval[] };
}

interface Outcome { trace: string; zeroIntervals: number; zeroSeconds: number; longestZeroSeconds: number; retransmits: number; bytes: number; connections: number }

function outcome(j: IperfRun, window?: { from: number; to: number }): Outcome {
  // The receiver's intervals: what arrived, not what was written into the sender's buffer.
  const intervals = j.server_output_json?.intervals ?? j.intervals ?? [];
  // The last interval may be a sliver after the run's end; judge only whole ones.
  const whole = intervals.filter((i) => (i.sum?.seconds ?? 0) >= INTERVAL * 0.5)
    .filter((i) => !window || ((i.sum?.start ?? 0) >= window.from && (i.sum?.start ?? 0) < window.to));
  let zero = 0;
  let run = 0;
  let longest = 0;
  for (const i of whole) {
    if ((i.sum?.bytes ?? 0) === 0) {
      zero++;
      run++;
      longest = Math.max(longest, run);
    } else {
      run = 0;
    }
  }
  // One character per interval, for the log: '.' data, '0' none.
  const trace = whole.map((i) => ((i.sum?.bytes ?? 0) === 0 ? '0' : '.')).join('');
  return {
    trace, zeroIntervals: zero, zeroSeconds: Math.round(zero * INTERVAL * 10) / 10, longestZeroSeconds: Math.round(longest * INTERVAL * 10) / 10,
    retransmits: j.end?.sum_sent?.retransmits ?? 0, bytes: j.end?.sum_received?.bytes ?? 0, connections: j.start?.connected?.length ?? 0,
  };
}

async function killAgent(lab: Lab, i: number, signal: NodeJS.Signals): Promise<void> {
  process.kill(lab.agentPid(i)!, signal);
  await waitFor(`node${i}'s agent to exit`, async () => (lab.agentRunning(i) ? undefined : true), 10_000, 20);
}

async function healthy(lab: Lab, i: number): Promise<boolean> {
  return (await lab.agentHttp(i, '/healthz', 1000).catch(() => ({ status: 0 }))).status === 200;
}

/** Starts node i's agent (with `extra` flags) into `logName`; resolves once it is the one answering /healthz. */
async function startAgent(lab: Lab, i: number, logName: string, extra: string[] = []): Promise<number> {
  const node = lab.node(i);
  const t0 = Date.now();
  const p = lab.startProcess(node, [...defaultAgentCommand(), '--config', node.configPath!, ...extra], logName);
  await waitFor(`node${i}'s new agent to forward`, async () => {
    if (!p.running) throw new Error(`the new agent exited:\n${readFileSync(join(node.dir, logName), 'utf8').slice(-3000)}`);
    const st = await lab.status(i).catch(() => undefined) as { info?: { pid?: number } } | undefined;
    return st?.info?.pid === p.pid && await healthy(lab, i) ? true : undefined;
  }, 30_000, 20);
  return Date.now() - t0;
}

/**
 * Runs iperf3 p1a -> p2a, calls `disturb` DISTURB_AT_MS into it, and returns the outcome and what
 * tshark saw leave node1 with a pod address.
 */
async function underLoad(lab: Lab, disturb: (at: () => string) => Promise<string>): Promise<{ o: Outcome; j: IperfRun; startedAt: number; leaked: number; note: string }> {
  const n1 = lab.node(1);
  const p1 = lab.pod('p1a');
  const p2 = lab.pod('p2a');
  const srv = lab.spawn(p2.ns, ['iperf3', '-s', '-1', '-B', p2.ip, '-p', String(IPERF_PORT)], (SECONDS + 30) * 1000);
  const cap = await startCapture(lab, n1.ns, { iface: n1.uplink, filter: 'net 10.244.0.0/16', fields: ['ip.src', 'ip.dst', 'ip.proto'], seconds: SECONDS + 20 });
  try {
    await sleep(300);
    const startedAt = Date.now();
    const client = lab.spawn(p1.ns, ['iperf3', '-c', p2.ip, '-p', String(IPERF_PORT), '-t', String(SECONDS), '-i', String(INTERVAL), '-J', '--get-server-output', '--connect-timeout', '2000'], (SECONDS + 30) * 1000);
    await sleep(DISTURB_AT_MS);
    const note = await disturb(() => `${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    const r = await client.wait((SECONDS + 25) * 1000);
    const text = r.stdout.slice(Math.max(0, r.stdout.indexOf('{')));
    let j: IperfRun;
    try {
      j = JSON.parse(text) as IperfRun;
    } catch {
      throw new Error(`iperf3 gave no JSON (exit ${r.code}): ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`);
    }
    assert.equal(j.error, undefined, `iperf3 failed: ${j.error}`);
    assert.equal(r.code, 0, `iperf3 exit code ${r.code}`);
    const leaked = await cap.stop(0, 500);
    return { o: outcome(j), j, startedAt, leaked: leaked.length, note };
  } finally {
    if (srv.running) await srv.stop('SIGKILL', 1000);
    await cap.stop(0, 0).catch(() => undefined);
  }
}

function report(name: string, r: { o: Outcome; leaked: number; note: string }): void {
  say(`${name}: ${r.o.zeroSeconds} s at zero throughput (${r.o.zeroIntervals} of the 0.1 s intervals; longest run ${r.o.longestZeroSeconds} s), ` +
    `${r.o.retransmits} retransmits, ${(r.o.bytes / 1e6).toFixed(0)} MB received, ${r.leaked} unencapsulated pod packets on the underlay; ${r.note}; ` +
    `intervals ${r.o.trace}`);
}

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  test(`restart under load, ${signal} and start: the TCP connection survives, nothing leaks onto the underlay`, { skip, timeout: 120_000 }, async () => {
    await withLab({ nodes: 2, podsPerNode: 1 }, async (lab) => {
      const r = await underLoad(lab, async (at) => {
        const t0 = Date.now();
        const sent = at();
        await killAgent(lab, 1, signal);
        const down = Date.now() - t0;
        const ms = await startAgent(lab, 1, 'agent-restarted.log');
        return `${signal} at ${sent} into the run; the agent exited ${down} ms later; the new one forwarded ${ms} ms after its start, at ${at()}`;
      });
      report(signal, r);
      assert.equal(r.o.connections, 1, 'one TCP connection, kept to the end');
      assert.ok(r.o.bytes > 0, 'data arrived');
      assert.equal(r.leaked, 0, 'no packet with a pod address left node1 unencapsulated');
    });
  });
}

test('hand-over under load: no 0.1 s interval without data, the TCP connection survives, the old agent exits 0', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2, podsPerNode: 1 }, async (lab) => {
    const n1 = lab.node(1);
    const oldPid = lab.agentPid(1)!;
    let exit: number | null = null;
    const r = await underLoad(lab, async () => {
      const ms = await startAgent(lab, 1, 'agent-successor.log', ['--takeover']);
      await waitFor('the old agent to exit', async () => {
        try {
          process.kill(oldPid, 0);
          return undefined;
        } catch {
          return true;
        }
      }, 10_000, 20);
      const oldLog = readFileSync(join(n1.dir, 'agent.log'), 'utf8');
      exit = /handed the node over: exiting/.test(oldLog) ? 0 : null;
      return `successor forwarded ${ms} ms after its start`;
    });
    report('hand-over', r);
    const lines = readFileSync(join(n1.dir, 'agent-successor.log'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const took = lines.find((l) => l['msg'] === 'took the node over from the previous agent');
    say(`successor: ${JSON.stringify(took)}`);
    assert.ok(took, 'the successor logs the hand-over');
    assert.equal(took['predecessorPid'], oldPid);
    assert.equal(exit, 0, 'the old agent says it handed over and exits');
    assert.ok(!lines.some((l) => l['msg'] === 'udp sockets open' || l['msg'] === 'tun device open' && l['handedOver'] !== true), 'the successor opened nothing of its own');
    const metrics = (await lab.agentHttp(1, '/metrics')).body;
    assert.match(metrics, /vxnet_handovers_total\{result="taken"\} 1/);
    assert.equal(r.o.connections, 1, 'one TCP connection, kept to the end');
    assert.equal(r.leaked, 0, 'no packet with a pod address left node1 unencapsulated');
    // The intervals the hand-over can touch: from the successor's "ready" (the old agent starts
    // stopping) to 0.5 s after the successor's workers ran. (iperf3's clock starts about when it
    // was spawned; an interval is kept when it starts in the window or the 0.1 s before.)
    const at = (Date.parse(String(took['pausedAt'])) - r.startedAt) / 1000;
    const pausedMs = Number(took['pausedMs']);
    const load = loadavg()[0]!;
    if (!(at > 0.5 && at < SECONDS - 1)) {
      // The successor's start took longer than the run (seconds, on a loaded machine): the
      // connection and the leak check above still hold; the intervals say nothing about it.
      say(`the hand-over came ${at.toFixed(1)} s into the ${SECONDS} s run, at load average ${load.toFixed(1)}: intervals not judged`);
      return;
    }
    const asked = at - Number(took['waitedForStopMs']) / 1000;
    const resumed = at + pausedMs / 1000;
    const near = outcome(r.j, { from: asked - INTERVAL, to: resumed + 0.5 });
    say(`around the hand-over (${at.toFixed(1)} s into the run): intervals ${near.trace}; ${near.zeroIntervals} at zero; forwarding paused ${pausedMs} ms after the old agent took ${String(took['waitedForStopMs'])} ms to stop; load average ${load.toFixed(1)} on ${cpus().length} cores`);
    if (load < cpus().length) {
      assert.equal(near.zeroIntervals, 0, 'no 0.1 s interval without data around the hand-over');
    } else {
      // On an overloaded machine intervals go empty without any hand-over (iperf3 itself gets no
      // CPU); then the pause the successor measured is what is checked, with a generous bound.
      say('the machine is overloaded: judging the pause the successor measured, not the intervals');
      assert.ok(pausedMs < 1000, `forwarding paused ${pausedMs} ms`);
    }
  });
});

test('hand-over refusals: the pod it replaced and a successor of another shape are refused and wait; a waiting one starts once the holder stops', { skip, timeout: 120_000 }, async () => {
  await withLab({ nodes: 2, podsPerNode: 1 }, async (lab) => {
    const n1 = lab.node(1);
    const agent = (pod: string, config: string, takeover: boolean): Background =>
      lab.spawn(n1.ns, ['env', `POD_UID=${pod}`, ...defaultAgentCommand(), '--config', config, ...(takeover ? ['--takeover'] : [])], 80_000);
    const logOf = (p: Background): Array<Record<string, unknown>> => p.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const said = (p: Background, msg: RegExp): Promise<Record<string, unknown>> => waitFor(`a log line ${msg}`, async () => {
      const line = logOf(p).find((l) => msg.test(String(l['msg'])));
      if (!line && !p.running) throw new Error(`it exited (${p.exitCode}):\n${p.stderr.slice(-2000)}`);
      return line;
    }, 30_000, 50);
    const pid = async (): Promise<number | undefined> => ((await lab.status(1).catch(() => undefined)) as { info?: { pid?: number } } | undefined)?.info?.pid;

    await killAgent(lab, 1, 'SIGTERM');
    const a = agent('pod-a', n1.configPath!, false);
    await said(a, /^forwarding$/);
    const b = agent('pod-b', n1.configPath!, true);
    await said(b, /^took the node over/);
    await a.wait(10_000);
    say(`pod-b took over from pod-a; pod-a's agent exited ${a.exitCode}`);
    assert.equal(a.exitCode, 0);

    // pod-a's container restarted: it asks for the node back, is refused, and waits.
    const a2 = agent('pod-a', n1.configPath!, true);
    const refusedA = await said(a2, /hand-over not possible: refused: this agent took the node over from pod pod-a/);
    say(`pod-a again: ${String(refusedA['msg'])}`);
    assert.equal(await pid(), b.pid, 'pod-b keeps the node');
    await a2.stop('SIGTERM', 3000);

    // Another port: the fds do not fit; refused with the difference, and it waits.
    const cfg = JSON.parse(readFileSync(n1.configPath!, 'utf8')) as Record<string, unknown>;
    const other = join(n1.dir, 'other-port.json');
    writeFileSync(other, JSON.stringify({ ...cfg, port: 8479 }));
    const c = agent('pod-c', other, true);
    const refusedC = await said(c, /hand-over not possible: refused: the fds do not fit/);
    say(`another port: ${String(refusedC['msg'])}`);
    assert.match(String(refusedC['msg']), /port 8472 here, 8479 asked/);
    assert.ok(!logOf(c).some((l) => l['msg'] === 'udp sockets open'), 'the waiting agent opened nothing');
    const m = (await lab.agentHttp(1, '/metrics')).body;
    assert.match(m, /vxnet_handovers_total\{result="refused"\} 2/);
    assert.match(m, /vxnet_handovers_total\{result="taken"\} 1/);

    // The holder stops: the waiting agent takes the lock and starts the normal way.
    await b.stop('SIGTERM', 10_000);
    await said(c, /^node lock taken: starting$/);
    await said(c, /^forwarding$/);
    assert.equal(await pid(), c.pid, 'the waiting agent runs the node now');
    say('pod-c started once pod-b stopped');
    await c.stop('SIGTERM', 10_000);
  });
});
