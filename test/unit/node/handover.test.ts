/**
 * The hand-over protocol in one process, over a real Unix socket in a temporary run directory,
 * with /dev/null fds standing in for the TUN queues and sockets: the successor receives every fd
 * (as new fds of the same open files) and the lock with them; the running agent pauses only on
 * "ready" and reports the successor; a mismatched shape, the replaced pod asking back, a second
 * successor during a hand-over, and nobody listening are each refused with the reason; an abort
 * leaves the running agent forwarding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { HandoverError, HandoverServer, requestHandover, shapeMismatch, type HandoverShape, type HandoverSource, type Party } from '../../../src/node/handover.js';
import { acquireNodeLock, NodeLock, RunDir } from '../../../src/node/lock.js';

const SHAPE: HandoverShape = { device: 'vxnet0', port: 8472, vni: 1, queues: 2, senders: 2, vnetHeader: true, gro: true, metricsAddr: '127.0.0.1:9469', underlayIP: '10.0.0.1' };

interface Fixture {
  run: RunDir;
  server: HandoverServer;
  events: string[];
  fds: number[];
  lock: NodeLock;
  done: () => void;
}

function fixture(predecessor?: Party): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-handover-'));
  const run = new RunDir(join(dir, 'run'));
  const lock = acquireNodeLock(run, { role: 'agent', node: 'n1', pod: 'pod-old' });
  const fds = Array.from({ length: 6 }, () => openSync('/dev/null', 'r'));
  const events: string[] = [];
  const source: HandoverSource = {
    shape: () => SHAPE,
    offer: () => ({
      lockFd: lock.descriptor!,
      tun: { fd: fds[0]!, fds: [fds[0]!, fds[1]!], name: 'vxnet0', vnetHeader: true, offloads: 7 },
      udp: { rxFd: fds[2]!, rxFds: [fds[2]!, fds[3]!], txFds: [fds[4]!, fds[5]!], port: 8472, gro: true, gso: true },
      metricsFd: undefined,
    }),
    pause: async () => { events.push('paused'); },
    handedOver: (to) => { events.push(`handed over to ${to.pid}/${to.pod}`); },
  };
  const server = new HandoverServer(run, { pid: process.pid, pod: 'pod-old' }, source, () => undefined,
    { predecessor, readyTimeoutMs: 5000, replyTimeoutMs: 5000 });
  server.start();
  return {
    run, server, events, fds, lock,
    done: () => {
      server.stop(true);
      for (const fd of fds) closeSync(fd);
      lock.release();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a hand-over passes every fd and the lock; the running agent pauses only on "ready"', async () => {
  const f = fixture();
  try {
    const pending = await requestHandover(f.run, { pid: 4242, pod: 'pod-new' }, SHAPE, 5000);
    const got = pending.got;
    assert.deepEqual(got.from, { pid: process.pid, pod: 'pod-old' });
    assert.equal(got.tun.fds.length, 2);
    assert.equal(got.udp.rxFds.length, 2);
    assert.equal(got.udp.txFds.length, 2);
    assert.equal(got.tun.offloads, 7);
    assert.equal(got.metricsFd, undefined);
    // New fd numbers for the same open files.
    const received = [...got.tun.fds, ...got.udp.rxFds, ...got.udp.txFds];
    received.forEach((fd, i) => {
      assert.notEqual(fd, f.fds[i]);
      assert.equal(fstatSync(fd).ino, fstatSync(f.fds[i]!).ino);
    });
    assert.equal(fstatSync(got.lockFd).ino, fstatSync(f.lock.descriptor!).ino, 'the lock file comes along');
    assert.deepEqual(f.events, [], 'still forwarding while the successor prepares');
    // The successor's lock rewrites the file to name it.
    const taken = NodeLock.handedOver(f.run, got.lockFd, { role: 'agent', node: 'n1', pod: 'pod-new' });
    assert.equal((JSON.parse(readFileSync(f.run.lock, 'utf8')) as { pod: string }).pod, 'pod-new');
    const t = await pending.release(5000);
    assert.ok(t.stoppedAt >= t.askedAt);
    assert.deepEqual(f.events, ['paused', 'handed over to 4242/pod-new']);
    assert.equal(f.server.counts.given, 1);
    // A second successor after that is refused: this agent has handed over.
    await assert.rejects(requestHandover(f.run, { pid: 5, pod: 'pod-x' }, SHAPE, 5000), /refused: this agent has handed the node over already/);
    for (const fd of received) closeSync(fd);
    taken.release();
  } finally {
    f.done();
  }
});

test('refusals: another shape (the differences named), the replaced pod, a hand-over in progress; an abort keeps the agent forwarding', async () => {
  const f = fixture({ pid: 1, pod: 'pod-older' });
  try {
    await assert.rejects(requestHandover(f.run, { pid: 7, pod: 'pod-new' }, { ...SHAPE, port: 8479, queues: 4 }, 5000),
      /refused: the fds do not fit the asking agent's config: port 8472 here, 8479 asked; queues 2 here, 4 asked/);
    await assert.rejects(requestHandover(f.run, { pid: 8, pod: 'pod-older' }, SHAPE, 5000), /refused: this agent took the node over from pod pod-older/);
    const first = await requestHandover(f.run, { pid: 9, pod: 'pod-new' }, SHAPE, 5000);
    await assert.rejects(requestHandover(f.run, { pid: 10, pod: 'pod-other' }, SHAPE, 5000), /refused: a hand-over to another agent is in progress/);
    first.abort('test');
    first.closeFds();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(f.events, [], 'aborted: never paused');
    assert.equal(f.server.counts.refused, 3);
    assert.equal(f.server.counts.failed, 1);
    assert.equal(f.server.counts.taken, 1, 'this agent took over itself');
    // After the abort, the next successor is served.
    const again = await requestHandover(f.run, { pid: 11, pod: 'pod-new' }, SHAPE, 5000);
    again.abort('test');
    again.closeFds();
  } finally {
    f.done();
  }
});

test('nobody listening: a HandoverError that says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-handover-'));
  try {
    const err = await requestHandover(new RunDir(dir), { pid: 1 }, SHAPE, 1000).catch((e: unknown) => e);
    assert.ok(err instanceof HandoverError);
    assert.match(err.message, /nobody listens on .*agent\.sock \(ENOENT\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shapeMismatch: an underlay address one side does not know yet is not compared', () => {
  assert.deepEqual(shapeMismatch(SHAPE, { ...SHAPE, underlayIP: undefined }), []);
  assert.deepEqual(shapeMismatch(SHAPE, { ...SHAPE, underlayIP: '10.0.0.2' }), ['underlayIP 10.0.0.1 here, 10.0.0.2 asked']);
});

test('vxnet probe fails while the node lock is held by another pod\'s agent, naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-handover-'));
  try {
    const run = new RunDir(join(dir, 'run'));
    const lock = acquireNodeLock(run, { role: 'agent', node: 'n1', pod: 'pod-old' });
    const main = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
    const r = spawnSync(process.execPath, [main, 'probe', '--run-dir', run.path, '--metrics', '127.0.0.1:1'], { env: { ...process.env, POD_UID: 'pod-new' }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`the node's agent is not this pod's \\(pod-new\\): the lock is held by pid ${process.pid} of pod pod-old`));
    // This pod's agent holds it: the probe goes on to ask /healthz (nobody answers on port 1).
    const own = spawnSync(process.execPath, [main, 'probe', '--run-dir', run.path, '--metrics', '127.0.0.1:1'], { env: { ...process.env, POD_UID: 'pod-old' }, encoding: 'utf8' });
    assert.equal(own.status, 1);
    assert.match(own.stderr, /cannot reach the agent at http:\/\/127\.0\.0\.1:1\/healthz/);
    lock.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
