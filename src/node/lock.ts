/**
 * One agent per node: an exclusive flock(2) on `agent.lock` in the run directory (`runDir`,
 * /run/vxnet by default; the DaemonSet mounts it from the host, so the old and the new pod of an
 * update share it). The agent takes it before it touches anything else on the node (before any
 * address, route, rule, file or Node object), and a second agent that cannot take it exits with
 * who holds it. `vxnet cleanup` takes the same lock, so it never runs under a live agent.
 *
 * Why flock and not a pid file or fcntl: the kernel drops an flock lock when its last fd closes,
 * also when the process is killed, so a crashed agent never leaves a stale lock behind. And the
 * lock belongs to the open file, not to the process: a running agent can pass the locked fd to
 * its successor over SCM_RIGHTS together with the TUN and UDP fds, so that during a hand-over
 * some process holds the lock at every moment. A new agent that finds the lock held and means
 * to take over asks the holder through the hand-over socket, whose path sits next to the lock
 * (`RunDir.handoverSocket`); one that does not, exits.
 *
 * The holder writes who it is into the file (pid, node, device, network namespace, start time)
 * for the message a refused agent prints. The lock is checked against the path after it is
 * taken: if cleanup unlinked the file in between, the lock is on a file nobody else will open,
 * so it is taken again on the new one.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readlinkSync, statSync, unlinkSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { FlockOp, nativeIo } from '../device/native.js';
import { errnoText } from './netlink/socket.js';

export const DEFAULT_RUN_DIR = '/run/vxnet';
const EWOULDBLOCK = 11;

/** The run directory's files: one place that names them, for the agent, cleanup and the hand-over. */
export class RunDir {
  constructor(readonly path: string) {}
  /** Held with flock by the live agent; its content says who that is. */
  get lock(): string { return join(this.path, 'agent.lock'); }
  /** Where the live agent listens for a successor that asks for its fds (the hand-over). */
  get handoverSocket(): string { return join(this.path, 'agent.sock'); }
}

/** Who holds the lock, as the holder wrote it. */
export interface LockHolder {
  readonly pid: number;
  /** "agent" or "cleanup". */
  readonly role: string;
  readonly node?: string;
  readonly device?: string;
  /** The holder's network namespace, as /proc/self/ns/net reads ("net:[4026531840]"). */
  readonly netns?: string;
  /** The Kubernetes pod the holder runs in (POD_UID), when it says. */
  readonly pod?: string;
  readonly since: string;
}

/** Who is taking the lock. */
export interface LockTaker { role: 'agent' | 'cleanup'; node?: string; device?: string; pod?: string }

/** The lock is held by a live process. */
export class NodeLockedError extends Error {
  constructor(readonly lockPath: string, readonly holder: LockHolder | undefined, readonly wanted: string) {
    super(lockedMessage(lockPath, holder, wanted));
    this.name = 'NodeLockedError';
  }
}

/** The lock could not be taken for another reason (a read-only or missing run directory, ...). */
export class LockError extends Error {
  constructor(path: string, detail: string) {
    super(`cannot take the node lock ${path}: ${detail}; the run directory (runDir) must be writable (in Kubernetes: the DaemonSet's run-vxnet hostPath)`);
    this.name = 'LockError';
  }
}

function ownNetns(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/net');
  } catch {
    return undefined;
  }
}

function describeHolder(h: LockHolder): string {
  const parts = [`pid ${h.pid}`, h.node && `node ${h.node}`, h.device && `device ${h.device}`, `since ${h.since}`].filter(Boolean);
  return `${h.role === 'cleanup' ? 'vxnet cleanup' : 'another vxnet agent'} (${parts.join(', ')})`;
}

function lockedMessage(path: string, holder: LockHolder | undefined, wanted: string): string {
  const who = holder ? describeHolder(holder) : 'another process';
  const here = ownNetns();
  const elsewhere = holder?.netns && here && holder.netns !== here
    ? ` It runs in another network namespace (${holder.netns}; this one is ${here}): give each network namespace its own runDir.`
    : '';
  const what = wanted === 'cleanup'
    ? `${who} holds ${path}: refusing to clean up under a live agent. Stop it first (Kubernetes: kubectl -n vxnet delete daemonset vxnet), then run vxnet cleanup again.`
    : `${who} holds ${path}: one agent per node. This agent exits without touching the node. Stop the other one first.`;
  return `${what}${elsewhere}`;
}

/** The holder recorded in the lock file, if it is readable. */
function readLockHolder(runDir: RunDir): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(runDir.lock, 'utf8')) as LockHolder;
    return typeof h.pid === 'number' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** A held node lock. `release` closes it; so does the process's exit, however it ends. */
export class NodeLock {
  private fd: number | undefined;

  constructor(readonly runDir: RunDir, fd: number) {
    this.fd = fd;
  }

  /** The locked fd, for a hand-over to pass on. */
  get descriptor(): number | undefined { return this.fd; }

  /** The lock as a predecessor passed it over (its locked fd): the file now names this process. */
  static handedOver(runDir: RunDir, fd: number, me: LockTaker): NodeLock {
    writeHolder(fd, me);
    return new NodeLock(runDir, fd);
  }

  /** Removes the lock file (cleanup does, as the last thing it removes), keeping the lock until release. */
  unlink(): void {
    try {
      unlinkSync(this.runDir.lock);
    } catch {
      // already gone
    }
  }

  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Takes the node lock without waiting. Throws NodeLockedError when a live process holds it,
 * LockError when it cannot be taken at all.
 */
export function acquireNodeLock(runDir: RunDir, me: LockTaker): NodeLock {
  const io = nativeIo();
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      mkdirSync(runDir.path, { recursive: true, mode: 0o755 });
      fd = openSync(runDir.lock, 'a+', 0o644);
    } catch (err) {
      throw new LockError(runDir.lock, (err as Error).message);
    }
    const r = io.flock(fd, FlockOp.Exclusive | FlockOp.NonBlocking);
    if (r === EWOULDBLOCK) {
      closeSync(fd);
      throw new NodeLockedError(runDir.lock, readLockHolder(runDir), me.role);
    }
    if (r !== 0) {
      closeSync(fd);
      throw new LockError(runDir.lock, `flock: ${errnoText(r)}`);
    }
    let current: number | undefined;
    try {
      current = statSync(runDir.lock).ino;
    } catch {
      current = undefined;
    }
    if (current !== fstatSync(fd).ino) {
      closeSync(fd); // the file was unlinked (by cleanup) after we opened it: lock the new one
      continue;
    }
    writeHolder(fd, me);
    return new NodeLock(runDir, fd);
  }
  throw new LockError(runDir.lock, 'the lock file kept being replaced while it was taken');
}

function writeHolder(fd: number, me: LockTaker): void {
  const holder: LockHolder = {
    pid: process.pid, role: me.role, ...(me.node ? { node: me.node } : {}), ...(me.device ? { device: me.device } : {}),
    ...(ownNetns() ? { netns: ownNetns()! } : {}), ...(me.pod ? { pod: me.pod } : {}), since: new Date().toISOString(),
  };
  ftruncateSync(fd, 0);
  writeSync(fd, `${JSON.stringify(holder)}\n`, 0);
}

/** Who holds the lock now, as the holder wrote it (for a successor's log and `vxnet probe`). */
export function lockHolder(runDir: RunDir): LockHolder | undefined {
  return readLockHolder(runDir);
}

/**
 * Takes the node lock, waiting while a live agent holds it (a successor whose hand-over failed or
 * was refused: it starts normally once the old agent is gone). `onWait` is called at the start
 * and then every `reportMs`, for a log line; `signal` ends the wait.
 */
export async function waitForNodeLock(runDir: RunDir, me: LockTaker, o: { pollMs?: number; reportMs?: number; onWait?: (err: NodeLockedError, waitedMs: number) => void; signal?: AbortSignal } = {}): Promise<NodeLock> {
  const started = Date.now();
  let reported = -Infinity;
  for (;;) {
    try {
      return acquireNodeLock(runDir, me);
    } catch (err) {
      if (!(err instanceof NodeLockedError)) throw err;
      const waited = Date.now() - started;
      if (waited - reported >= (o.reportMs ?? 30_000)) {
        reported = waited;
        o.onWait?.(err, waited);
      }
    }
    if (o.signal?.aborted) throw new Error('stopped while waiting for the node lock');
    await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? 100));
  }
}
