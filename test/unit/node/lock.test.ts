/**
 * The node lock in a temporary directory: who holds it is written into it; a second taker is
 * refused with the holder named, in this process and from another one; the lock dies with its
 * process, even under SIGKILL; a lock file unlinked under a taker is not a lock; a run directory
 * that cannot be made is a clear error; a holder in another network namespace is said so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireNodeLock, LockError, NodeLockedError, RunDir } from '../../../src/node/lock.js';

const LOCK_MODULE = fileURLToPath(new URL('../../../src/node/lock.js', import.meta.url));

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'vxnet-lock-'));
}

test('the holder is written into the lock; a second taker is refused with the holder named; release frees it', () => {
  const dir = tmp();
  try {
    const run = new RunDir(join(dir, 'run'));
    const a = acquireNodeLock(run, { role: 'agent', node: 'n1', device: 'vxnet0' });
    const holder = JSON.parse(readFileSync(run.lock, 'utf8')) as Record<string, unknown>;
    assert.equal(holder['pid'], process.pid);
    assert.equal(holder['role'], 'agent');
    assert.equal(holder['device'], 'vxnet0');
    assert.throws(() => acquireNodeLock(run, { role: 'agent', node: 'n1', device: 'vxnet9' }), (e: unknown) => {
      assert.ok(e instanceof NodeLockedError);
      assert.equal(e.holder?.pid, process.pid);
      assert.match(e.message, new RegExp(`^another vxnet agent \\(pid ${process.pid}, node n1, device vxnet0, since .*\\) holds .*agent\\.lock: one agent per node\\. This agent exits without touching the node`));
      return true;
    });
    assert.throws(() => acquireNodeLock(run, { role: 'cleanup' }), /refusing to clean up under a live agent\. Stop it first/);
    a.release();
    acquireNodeLock(run, { role: 'cleanup' }).release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the lock dies with the process that holds it, even killed with SIGKILL', async () => {
  const dir = tmp();
  try {
    const run = new RunDir(join(dir, 'run'));
    const script = `import { acquireNodeLock, RunDir } from ${JSON.stringify(LOCK_MODULE)};
acquireNodeLock(new RunDir(${JSON.stringify(run.path)}), { role: 'agent', node: 'child' });
process.stdout.write('locked\\n');
setTimeout(() => {}, 60000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the child did not take the lock within 10 s')), 10_000);
        child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('locked')) { clearTimeout(t); resolve(); } });
      });
      assert.throws(() => acquireNodeLock(run, { role: 'agent' }), (e: unknown) => e instanceof NodeLockedError && e.holder?.pid === child.pid);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const mine = acquireNodeLock(run, { role: 'agent' });
    assert.equal((JSON.parse(readFileSync(run.lock, 'utf8')) as { pid: number }).pid, process.pid, 'taken over after the holder was killed');
    mine.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock file unlinked by cleanup is not a lock: the next taker gets a new file', () => {
  const dir = tmp();
  try {
    const run = new RunDir(join(dir, 'run'));
    const cleanup = acquireNodeLock(run, { role: 'cleanup' });
    cleanup.unlink();
    const agent = acquireNodeLock(run, { role: 'agent' }); // the unlinked file is still locked; this is a new one
    cleanup.release();
    assert.throws(() => acquireNodeLock(run, { role: 'agent' }), NodeLockedError);
    agent.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run directory that cannot be made is a LockError that says what to fix', () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'file'), '');
    assert.throws(() => acquireNodeLock(new RunDir(join(dir, 'file', 'run')), { role: 'agent' }), (e: unknown) => {
      assert.ok(e instanceof LockError);
      assert.match(e.message, /^cannot take the node lock .*agent\.lock: .*ENOTDIR.*; the run directory \(runDir\) must be writable/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a holder in another network namespace: the message says to give each its own runDir', () => {
  const e = new NodeLockedError('/run/vxnet/agent.lock', { pid: 1, role: 'agent', netns: 'net:[1]', since: '2026-01-01T00:00:00.000Z' }, 'agent');
  assert.match(e.message, /It runs in another network namespace \(net:\[1\]; this one is net:\[\d+\]\): give each network namespace its own runDir\./);
  const unknown = new NodeLockedError('/run/vxnet/agent.lock', undefined, 'agent');
  assert.match(unknown.message, /^another process holds \/run\/vxnet\/agent\.lock/);
});
