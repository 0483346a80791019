/**
 * The hand-over: a running agent passes its open file descriptors (the node lock, the TUN queues,
 * the UDP sockets, the metrics listener) to a successor, so an upgrade re-opens and re-binds
 * nothing and no packet meets a closed socket or a detached queue.
 *
 * Both ends speak over a Unix SOCK_SEQPACKET socket at `RunDir.handoverSocket`, next to the lock
 * (a hostPath both pods of a rolling update share). Every message is one JSON text; the fds ride
 * on the offer as SCM_RIGHTS (the addon has the syscalls; everything else is here):
 *
 *   successor                               running agent
 *   request {pid, pod, shape}        --->   refuses (another shape, a hand-over in progress, the
 *                                    <---     pod it replaced asking back) or offers:
 *                                    <---   offer {description} + fds    (still forwarding)
 *   adopts the fds, prepares
 *   everything short of its workers
 *   ready                            --->   stops accepting metrics connections, stops its
 *                                           workers at a batch boundary
 *                                    <---   stopped {at}                 and exits 0
 *   starts its workers on the same fds
 *
 * Why this order: the running agent forwards until the successor has done all that can fail, so
 * a successor that fails before `ready` leaves the node as it was (it says `abort`, or just dies,
 * and its copies of the fds close with it). Between `ready` and `stopped` nobody forwards, for as
 * long as the old workers take to finish their batch and the new ones take to start; packets
 * wait in the TUN queues and socket buffers meanwhile. Two agents never forward at once: the
 * successor starts its workers only on `stopped`. Any other ending (the running agent gone
 * mid-way, a refusal, a timeout) makes the successor close what it got and wait for the lock, then
 * start the normal way; the running agent, unless it sent `stopped`, keeps forwarding.
 *
 * The lock travels as an fd: flock(2) belongs to the open file, so some process holds it at
 * every moment, and the successor rewrites the file to name itself.
 *
 * Anti ping-pong: in Kubernetes the replaced pod's container is restarted after its agent exits
 * (restartPolicy Always) and would ask for the node back. An agent refuses requests from the pod
 * (POD_UID) it took the node over from; the refused agent waits for the lock, which it gets only
 * if this one stops, and is deleted with its pod.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { nativeIo } from '../device/native.js';
import type { TunHandle } from '../device/native-tun.js';
import type { UdpHandles } from '../device/native-udp.js';
import type { LogFn } from '../agent/log.js';
import type { RunDir } from './lock.js';
import { errnoName } from './netlink/socket.js';

const ETIMEDOUT = 110;
const ENOENT = 2;
const ECONNREFUSED = 111;
/** Largest message either side sends or takes. */
const MAX_MESSAGE = 16 * 1024;
/** fds one offer can carry (the addon's limit). */
const MAX_FDS = 64;

/** What must be equal on both sides for the successor to use the fds as they are. */
export interface HandoverShape {
  readonly device: string;
  readonly port: number;
  readonly vni: number;
  readonly queues: number;
  readonly senders: number;
  readonly vnetHeader: boolean;
  readonly gro: boolean;
  readonly metricsAddr: string;
  /** Unknown to a successor that learns it from the cluster later: then not compared. */
  readonly underlayIP?: string | undefined;
}

/** Who asks or answers: its pid, and its pod when it runs in Kubernetes. */
export interface Party { readonly pid: number; readonly pod?: string | undefined }

/** What the successor receives, and the fds in it. */
export interface HandedOver {
  readonly from: Party;
  readonly shape: HandoverShape;
  readonly lockFd: number;
  readonly tun: TunHandle;
  readonly udp: UdpHandles;
  /** The metrics listener, when the running agent had one to pass. */
  readonly metricsFd: number | undefined;
}

/** The offer's JSON: the fds in order lock, TUN queues, receiving sockets, senders, metrics. */
interface Offer {
  readonly type: 'offer';
  readonly from: Party;
  readonly shape: HandoverShape;
  readonly tun: { name: string; queues: number; vnetHeader: boolean; offloads: number };
  readonly udp: { port: number; rx: number; tx: number; gro: boolean; gso: boolean };
  readonly metrics: boolean;
}

type Message =
  | { type: 'request'; from: Party; shape: HandoverShape }
  | { type: 'refused'; reason: string }
  | Offer
  | { type: 'ready' }
  | { type: 'abort'; reason: string }
  | { type: 'stopped'; at: number };

/** The differences that make a successor's shape unusable with these fds, in words; empty: none. */
export function shapeMismatch(running: HandoverShape, successor: HandoverShape): string[] {
  const out: string[] = [];
  for (const k of Object.keys(running) as (keyof HandoverShape)[]) {
    if (k === 'underlayIP' && (running.underlayIP === undefined || successor.underlayIP === undefined)) continue;
    if (running[k] !== successor[k]) out.push(`${k} ${String(running[k])} here, ${String(successor[k])} asked`);
  }
  return out;
}

// ---- messages over the socket ----

function send(fd: number, m: Message, fds: readonly number[] = []): void {
  const bytes = new TextEncoder().encode(JSON.stringify(m));
  if (bytes.length > MAX_MESSAGE) throw new Error(`hand-over message too large (${bytes.length} bytes)`);
  const r = nativeIo().sendFds(fd, bytes, bytes.length, Int32Array.from(fds), fds.length);
  if (r !== 0) throw new Error(`send ${m.type}: ${errnoName(r)}`);
}

type Received = { kind: 'message'; message: Message; fds: number[] } | { kind: 'closed' } | { kind: 'timeout' } | { kind: 'error'; reason: string };

/** The next message on fd within timeoutMs, waiting on the event loop (never blocking it). */
function receive(fd: number, timeoutMs: number): Promise<Received> {
  const io = nativeIo();
  return new Promise((resolve) => {
    let watch = 0;
    const finish = (r: Received): void => {
      clearTimeout(timer);
      if (watch > 0) io.unwatchReadable(watch);
      watch = -1;
      resolve(r);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    const readNow = (pollError: number): void => {
      const buf = new Uint8Array(MAX_MESSAGE);
      const out = new Int32Array(1 + MAX_FDS);
      const n = io.recvFds(fd, buf, 0, out);
      if (n === -ETIMEDOUT) {
        // Nothing queued: a spurious wake-up, unless polling failed.
        if (pollError < 0) finish({ kind: 'error', reason: `poll failed (${pollError})` });
        return;
      }
      if (n < 0) return finish({ kind: 'error', reason: errnoName(-n) });
      if (n === 0) return finish({ kind: 'closed' });
      const fds = Array.from(out.subarray(1, 1 + out[0]!));
      try {
        const message = JSON.parse(new TextDecoder().decode(buf.subarray(0, n))) as Message;
        if (typeof message !== 'object' || message === null || typeof message.type !== 'string') throw new Error('not a message');
        finish({ kind: 'message', message, fds });
      } catch (err) {
        for (const f of fds) io.close(f);
        finish({ kind: 'error', reason: `unreadable message: ${(err as Error).message}` });
      }
    };
    try {
      watch = io.watchReadable(fd, (status) => {
        if (watch < 0) return;
        // An error on the socket (ECONNRESET: the peer closed with our message unread) still
        // leaves the messages it sent before in the queue: read those first.
        readNow(status);
      });
    } catch (err) {
      finish({ kind: 'error', reason: (err as Error).message });
    }
  });
}

/**
 * Closes a connection fd once the event loop has let go of its watch: libuv finishes closing a
 * poll handle at the end of the loop turn, and doing so takes the fd number out of epoll again;
 * were the number reused by then (the next connection), that would silence the new one's watch.
 */
function closeConnection(fd: number): void {
  setTimeout(() => nativeIo().close(fd), 0);
}

function describe(r: Received, waitingFor: string): string {
  switch (r.kind) {
    case 'closed': return `the other agent closed the connection before ${waitingFor}`;
    case 'timeout': return `no ${waitingFor} in time`;
    case 'error': return `${waitingFor}: ${r.reason}`;
    case 'message': return `got ${r.message.type} instead of ${waitingFor}`;
  }
}

// ---- the successor's side ----

/** A hand-over under way: the fds are ours (copies), the old agent still forwards until `release`. */
export class PendingHandover {
  private open = true;

  constructor(readonly got: HandedOver, private readonly conn: number) {}

  /**
   * Tells the old agent to stop and waits until it did. Returns the ms forwarding was paused for
   * on the old agent's side so far (measured by the caller from `stoppedAt`). Throws when the old
   * agent did not confirm: the caller must then not forward on these fds.
   */
  async release(timeoutMs: number): Promise<{ stoppedAt: number; askedAt: number }> {
    const askedAt = Date.now();
    try {
      send(this.conn, { type: 'ready' });
    } catch (err) {
      this.closeConn();
      throw new HandoverError(`the old agent is gone (${(err as Error).message})`);
    }
    const r = await receive(this.conn, timeoutMs);
    this.closeConn();
    if (r.kind !== 'message' || r.message.type !== 'stopped') {
      if (r.kind === 'message') for (const f of r.fds) nativeIo().close(f);
      throw new HandoverError(describe(r, 'the old agent\'s "stopped"'));
    }
    for (const f of r.fds) nativeIo().close(f);
    return { stoppedAt: r.message.at, askedAt };
  }

  /** Gives up before `release`: tells the old agent, which keeps forwarding. The fds stay with
   * whoever took them (`closeFds` when nobody did). */
  abort(reason: string): void {
    if (this.open) {
      try {
        send(this.conn, { type: 'abort', reason });
      } catch {
        // the old agent is gone; nothing to tell
      }
    }
    this.closeConn();
  }

  /** Closes our copies of every fd received (when no agent took them over). */
  closeFds(): void {
    closeHanded(this.got);
  }

  private closeConn(): void {
    if (!this.open) return;
    this.open = false;
    closeConnection(this.conn);
  }
}

export class HandoverError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'HandoverError';
  }
}

function closeHanded(h: HandedOver): void {
  const io = nativeIo();
  for (const fd of [h.lockFd, ...h.tun.fds, ...h.udp.rxFds, ...h.udp.txFds, ...(h.metricsFd === undefined ? [] : [h.metricsFd])]) io.close(fd);
}

/**
 * Asks the agent listening on the run directory's socket for its fds. Resolves to the pending
 * hand-over, or throws HandoverError saying why not (nobody listens, refused, a timeout).
 */
export async function requestHandover(runDir: RunDir, me: Party, shape: HandoverShape, timeoutMs: number): Promise<PendingHandover> {
  const io = nativeIo();
  const conn = io.unixSeqpacket(runDir.handoverSocket, 0);
  if (conn < 0) {
    const why = -conn === ENOENT || -conn === ECONNREFUSED
      ? `nobody listens on ${runDir.handoverSocket} (${errnoName(-conn)}): the agent holding the node is still starting, or too old to hand over`
      : `connect ${runDir.handoverSocket}: ${errnoName(-conn)}`;
    throw new HandoverError(why);
  }
  try {
    send(conn, { type: 'request', from: me, shape });
  } catch (err) {
    io.close(conn);
    throw new HandoverError((err as Error).message);
  }
  const r = await receive(conn, timeoutMs);
  if (r.kind !== 'message' || r.message.type !== 'offer') {
    if (r.kind === 'message') for (const f of r.fds) io.close(f);
    closeConnection(conn);
    if (r.kind === 'message' && r.message.type === 'refused') throw new HandoverError(`refused: ${r.message.reason}`);
    throw new HandoverError(describe(r, 'an offer'));
  }
  const o = r.message;
  const fds = r.fds;
  const want = 1 + o.tun.queues + o.udp.rx + o.udp.tx + (o.metrics ? 1 : 0);
  if (fds.length !== want || o.tun.queues < 1 || o.udp.rx < 1) {
    for (const f of fds) io.close(f);
    closeConnection(conn);
    throw new HandoverError(`the offer carried ${fds.length} fds, its description ${want}`);
  }
  let at = 0;
  const take = (n: number): number[] => fds.slice(at, (at += n));
  const lockFd = take(1)[0]!;
  const tunFds = take(o.tun.queues);
  const rxFds = take(o.udp.rx);
  const txFds = take(o.udp.tx);
  const metricsFd = o.metrics ? take(1)[0] : undefined;
  const got: HandedOver = {
    from: o.from, shape: o.shape, lockFd, metricsFd,
    tun: { fd: tunFds[0]!, fds: tunFds, name: o.tun.name, vnetHeader: o.tun.vnetHeader, offloads: o.tun.offloads },
    udp: { rxFd: rxFds[0]!, rxFds, txFds, port: o.udp.port, gro: o.udp.gro, gso: o.udp.gso },
  };
  return new PendingHandover(got, conn);
}

// ---- the running agent's side ----

/** What the running agent gives and does; the agent implements it. */
export interface HandoverSource {
  readonly shape: () => HandoverShape;
  /** The fds to pass, or a reason there are none (still starting, stopping). */
  readonly offer: () => { tun: TunHandle; udp: UdpHandles; lockFd: number; metricsFd: number | undefined } | string;
  /** Stops forwarding at a batch boundary, leaving every fd open. */
  readonly pause: () => Promise<void>;
  /** After `stopped` went out: finish and exit, leaving the kernel state to the successor. */
  readonly handedOver: (to: Party, pausedAt: number) => void;
}

export interface HandoverCounts { taken: number; given: number; refused: number; failed: number }

/** Listens for successors on the run directory's socket, one at a time. */
export class HandoverServer {
  private listenFd = -1;
  private watch = 0;
  private ino = 0;
  private busy = false;
  private done = false;
  readonly counts: HandoverCounts = { taken: 0, given: 0, refused: 0, failed: 0 };

  /**
   * `predecessor`: the agent this one took the node over from; its pod is refused. `readyTimeoutMs`:
   * how long an offer waits for the successor's `ready` (its whole start, a Kubernetes pod CIDR
   * wait included); `replyTimeoutMs`: how long a connection may take to say what it wants.
   */
  constructor(private readonly runDir: RunDir, private readonly me: Party, private readonly source: HandoverSource, private readonly log: LogFn,
    private readonly o: { predecessor?: Party | undefined; readyTimeoutMs: number; replyTimeoutMs: number }) {
    if (o.predecessor) this.counts.taken = 1;
  }

  /** Binds the socket (replacing a stale one: only the lock holder calls this) and listens. */
  start(): void {
    const io = nativeIo();
    const path = this.runDir.handoverSocket;
    try {
      unlinkSync(path);
    } catch {
      // none there
    }
    const fd = io.unixSeqpacket(path, 1);
    if (fd < 0) {
      this.log('warn', 'hand-over socket not available: a successor cannot take over without a gap', { path, error: errnoName(-fd) });
      return;
    }
    chmodSync(path, 0o600);
    this.listenFd = fd;
    this.ino = lstatSync(path).ino;
    this.watch = io.watchReadable(fd, (status) => {
      if (status >= 0) this.accept();
    });
  }

  /** Stops listening; removes the socket file unless a successor has put its own there. */
  stop(removeFile: boolean): void {
    const io = nativeIo();
    if (this.watch > 0) io.unwatchReadable(this.watch);
    this.watch = 0;
    if (this.listenFd >= 0) io.close(this.listenFd);
    this.listenFd = -1;
    if (!removeFile || this.ino === 0) return;
    try {
      if (lstatSync(this.runDir.handoverSocket).ino === this.ino) unlinkSync(this.runDir.handoverSocket);
    } catch {
      // gone already
    }
  }

  private accept(): void {
    const io = nativeIo();
    for (;;) {
      const conn = io.unixAccept(this.listenFd);
      if (conn < 0) return; // EAGAIN: no more waiting
      if (this.busy || this.done) {
        // Read the request before answering: closing a socket with a message unread resets the
        // peer's, and it would lose the answer.
        const reason = this.done ? 'this agent has handed the node over already' : 'a hand-over to another agent is in progress';
        void receive(conn, this.o.replyTimeoutMs).then((r) => {
          if (r.kind === 'message') for (const f of r.fds) io.close(f);
          this.refuse(conn, reason, r.kind === 'message' && r.message.type === 'request' ? r.message.from : undefined);
          closeConnection(conn);
        });
        continue;
      }
      this.busy = true;
      this.serve(conn).catch((err: Error) => {
        this.counts.failed++;
        this.log('error', 'hand-over failed; keeping on forwarding', { error: err.message });
      }).finally(() => {
        closeConnection(conn);
        this.busy = false;
      });
    }
  }

  private refuse(conn: number, reason: string, who: Party | undefined): void {
    this.counts.refused++;
    this.log('warn', 'hand-over refused', { reason, ...(who ? { successorPid: who.pid, successorPod: who.pod } : {}) });
    try {
      send(conn, { type: 'refused', reason });
    } catch {
      // it is gone
    }
  }

  private async serve(conn: number): Promise<void> {
    const io = nativeIo();
    const r = await receive(conn, this.o.replyTimeoutMs);
    if (r.kind === 'message') for (const f of r.fds) io.close(f);
    if (r.kind !== 'message' || r.message.type !== 'request') throw new Error(describe(r, 'a request'));
    const req = r.message;
    const from: Party = { pid: Number(req.from?.pid), ...(typeof req.from?.pod === 'string' ? { pod: req.from.pod } : {}) };
    const pred = this.o.predecessor;
    if (pred?.pod !== undefined && from.pod === pred.pod) {
      return this.refuse(conn, `this agent took the node over from pod ${pred.pod}; the pod it replaced does not take it back (it is being deleted)`, from);
    }
    if (from.pod !== undefined && from.pod === this.me.pod) {
      return this.refuse(conn, 'the asking agent runs in this agent\'s own pod (a restarted container); it waits for this one to stop', from);
    }
    const mismatch = shapeMismatch(this.source.shape(), req.shape);
    if (mismatch.length > 0) {
      return this.refuse(conn, `the fds do not fit the asking agent's config: ${mismatch.join('; ')}. It starts once this agent stops (delete the old pod, or restart the agent)`, from);
    }
    const fds = this.source.offer();
    if (typeof fds === 'string') return this.refuse(conn, fds, from);
    const offer: Offer = {
      type: 'offer', from: this.me, shape: this.source.shape(),
      tun: { name: fds.tun.name, queues: fds.tun.fds.length, vnetHeader: fds.tun.vnetHeader, offloads: fds.tun.offloads },
      udp: { port: fds.udp.port, rx: fds.udp.rxFds.length, tx: fds.udp.txFds.length, gro: fds.udp.gro, gso: fds.udp.gso },
      metrics: fds.metricsFd !== undefined,
    };
    const list = [fds.lockFd, ...fds.tun.fds, ...fds.udp.rxFds, ...fds.udp.txFds, ...(fds.metricsFd === undefined ? [] : [fds.metricsFd])];
    send(conn, offer, list);
    this.log('info', 'hand-over: offered the fds to a successor; forwarding until it is ready', { successorPid: from.pid, successorPod: from.pod, fds: list.length });
    const next = await receive(conn, this.o.readyTimeoutMs);
    if (next.kind === 'message') for (const f of next.fds) io.close(f);
    if (next.kind === 'message' && next.message.type === 'abort') {
      this.counts.failed++;
      this.log('warn', 'hand-over aborted by the successor; keeping on forwarding', { reason: String(next.message.reason), successorPid: from.pid });
      return;
    }
    if (next.kind !== 'message' || next.message.type !== 'ready') throw new Error(describe(next, 'the successor\'s "ready"'));
    this.done = true;
    await this.source.pause();
    const at = Date.now();
    try {
      send(conn, { type: 'stopped', at });
    } catch (err) {
      // The successor went away after "ready": it never forwards on our fds, and neither do we
      // now. Exiting releases the lock once its copies are closed too, and a waiting agent starts.
      this.log('error', 'hand-over: the successor is gone after "ready"; exiting so that the lock frees', { error: (err as Error).message });
    }
    this.counts.given++;
    this.source.handedOver(from, at);
  }
}
