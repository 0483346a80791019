/**
 * The data path as the agent sees it: worker threads, one per queue, each serving both
 * directions of its own TUN queue and receiving socket (all share the sending sockets), shared
 * counters and per-peer state, `publish` for a new forwarding table, and `health` from the
 * workers' heartbeats.
 *
 * Why threads and blocking calls rather than a libuv poll on the main thread: the hot loops
 * never share an event loop with the control plane (Kubernetes watches, metrics scrapes), and a
 * blocking poll costs no wake-ups when idle. Why queues: a worker's throughput is bounded by the
 * core it runs on; more queues spread flows over more cores (the kernel picks a TUN queue and a
 * receiving socket by flow, so a flow stays on one worker, in order). See docs/performance.md
 * for the measurements and the model.
 */
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { Counter, COUNTER_SLOTS, newCounters, readCounters, type CounterSnapshot } from './counters.js';
import { PeerStates, type PeerReading } from './peer-state.js';
import { Control, type DataPathParams, type TableMessage, type WorkerInit } from './worker.js';

export type EngineOptions = DataPathParams;

/** A worker that has not stamped its heartbeat for this long is stuck. */
export const STALL_MS = 5000;
/** A worker whose I/O has failed this many times in a row (about 5 s of back-off) is failing. */
export const FAILING_CALLS = 10;

/** The tables of one generation, as the control plane builds them. */
export interface Tables {
  readonly table: SharedArrayBuffer;
  readonly table6?: SharedArrayBuffer | undefined;
  /** The node name of every slot, in slot order: they key the per-peer state. */
  readonly nodes: readonly string[];
  /** PeerFlags (encap.ts) of every slot; absent: none. */
  readonly flags?: Uint8Array | undefined;
}

interface Running { readonly worker: Worker; readonly port: MessagePort; readonly exited: Promise<void>; readonly block: number }

export class DataPath {
  readonly counters: Float64Array;
  readonly peers: PeerStates;
  private readonly control: Int32Array;
  private readonly queues: number;
  private workers: Running[] = [];
  private generation = 0;
  private stateOf: Int32Array = new Int32Array(0);
  private startedAt = 0;
  private workerError = '';

  constructor(private readonly o: EngineOptions) {
    this.queues = Math.max(1, o.queues);
    this.counters = newCounters(this.queues);
    this.peers = new PeerStates(this.queues);
    this.control = new Int32Array(new SharedArrayBuffer((Control.SeenBase + this.queues) * 4));
  }

  get tableGeneration(): number { return this.generation; }
  /** Slot -> peer state index of the table in force. */
  get currentStateOf(): Int32Array { return this.stateOf; }

  /** Starts the workers; with `held`, they wait before their first batch until `release`. */
  start(tables: Tables, held = false): void {
    this.generation = 1;
    this.startedAt = Date.now();
    const first = this.message(tables, this.generation);
    Atomics.store(this.control, Control.Generation, this.generation);
    Atomics.store(this.control, Control.Hold, held ? 1 : 0);
    for (let block = 0; block < this.queues; block++) {
      const { port1, port2 } = new MessageChannel();
      const init: WorkerInit = {
        ...this.o, block, control: this.control.buffer as SharedArrayBuffer,
        counters: this.counters.buffer as SharedArrayBuffer, peerState: this.peers.buffer, tables: first, port: port2,
      };
      // The hot loops allocate nothing per packet, so small V8 heaps suffice; they keep the
      // agent's RSS down (each worker is a whole V8 isolate; docs/performance.md).
      const worker = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: init, transferList: [port2],
        resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 48 },
      });
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.on('error', (err) => { this.workerError = `worker ${block} died: ${err.message}`; });
      this.workers.push({ worker, port: port1, exited, block });
    }
  }

  /** True once every held worker is up and waiting (or running). */
  workersUp(): boolean {
    for (let i = 0; i < this.workers.length; i++) if (Atomics.load(this.control, Control.SeenBase + i) === 0) return false;
    return this.workers.length > 0;
  }

  /** Lets held workers run. */
  release(): void {
    this.startedAt = Date.now();
    Atomics.store(this.control, Control.Hold, 0);
    Atomics.notify(this.control, Control.Hold);
  }

  /** Asks the workers to stop and resolves once each has left its loop (between batches);
   * `stop` then ends the threads. */
  async halt(timeoutMs = 2000): Promise<void> {
    Atomics.store(this.control, Control.Stop, 1);
    Atomics.notify(this.control, Control.Stop);
    const deadline = Date.now() + timeoutMs;
    while (!this.workers.every((_, i) => Atomics.load(this.control, Control.SeenBase + i) === 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Hands the workers a new table generation; they switch at their next batch. */
  publish(tables: Tables): number {
    const generation = this.generation + 1;
    const msg = this.message(tables, generation);
    for (const w of this.workers) w.port.postMessage(msg);
    this.generation = generation;
    Atomics.store(this.control, Control.Generation, generation);
    return generation;
  }

  /** The oldest generation any worker still runs on. */
  seenGeneration(): number {
    let min = this.generation;
    for (let i = 0; i < this.workers.length; i++) min = Math.min(min, Atomics.load(this.control, Control.SeenBase + i));
    return min;
  }

  /** True once every worker runs on the latest published table. */
  caughtUp(): boolean {
    return this.seenGeneration() === this.generation;
  }

  /** Every counter and the per-peer state from one reading, so that per-peer values plus the
   * removed peers' traffic add up to the totals exactly. */
  traffic(): { counters: CounterSnapshot; peers: PeerReading } {
    this.peers.release(this.seenGeneration());
    const peers = this.peers.reading();
    return { counters: readCounters(this.counters, peers.totals), peers };
  }

  /** Whether the workers run and make progress; the reason when they do not. */
  health(now = Date.now()): { healthy: boolean; reason: string } {
    if (this.workerError) return { healthy: false, reason: this.workerError };
    if (this.workers.length === 0) return { healthy: false, reason: 'data path not running' };
    return workerHealth(this.counters, this.workers.map((w) => w.block), this.startedAt, now);
  }

  async stop(): Promise<void> {
    Atomics.store(this.control, Control.Stop, 1);
    Atomics.notify(this.control, Control.Stop);
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([Promise.all(this.workers.map((w) => w.exited)), timeout]);
    for (const w of this.workers) {
      w.port.close();
      await w.worker.terminate();
    }
    this.workers = [];
  }

  private message(t: Tables, generation: number): TableMessage {
    this.stateOf = this.peers.assign(t.nodes, generation);
    this.peers.release(this.seenGeneration());
    const flags = new Uint8Array(new SharedArrayBuffer(Math.max(1, t.nodes.length)));
    if (t.flags) flags.set(t.flags.subarray(0, flags.length));
    return { generation, table: t.table, table6: t.table6, stateOf: this.stateOf.buffer as SharedArrayBuffer, peerFlags: flags.buffer as SharedArrayBuffer };
  }
}

/**
 * Whether the workers of `blocks` make progress, from their heartbeat and failure slots in the
 * shared counters: a direction whose I/O failed FAILING_CALLS times in a row, or that has not
 * stamped its heartbeat for STALL_MS (since `startedAt` if it never did), is unhealthy.
 */
export function workerHealth(counters: Float64Array, blocks: readonly number[], startedAt: number, now: number): { healthy: boolean; reason: string } {
  for (const block of blocks) {
    const base = block * COUNTER_SLOTS;
    for (const d of DIRECTIONS) {
      const beat = counters[base + d.heartbeat]!;
      const failing = counters[base + d.failing]!;
      if (failing >= FAILING_CALLS) {
        const errno = counters[base + d.lastErrno]!;
        return { healthy: false, reason: `worker ${block}'s ${d.name} I/O keeps failing (${failing} calls in a row, last errno ${errnoName(errno)})` };
      }
      const since = beat === 0 ? now - startedAt : now - beat;
      if (since > STALL_MS) return { healthy: false, reason: `worker ${block}'s ${d.name} side made no progress for ${(since / 1000).toFixed(1)} s` };
    }
  }
  return { healthy: true, reason: 'forwarding' };
}

/** The two directions a worker serves, and their health slots. */
const DIRECTIONS = [
  { name: 'outbound', heartbeat: Counter.TxHeartbeat, failing: Counter.TxFailing, lastErrno: Counter.TxLastErrno },
  { name: 'inbound', heartbeat: Counter.RxHeartbeat, failing: Counter.RxFailing, lastErrno: Counter.RxLastErrno },
] as const;

const ERRNO_NAMES: Record<number, string> = { 5: 'EIO', 9: 'EBADF', 11: 'EAGAIN', 14: 'EFAULT', 22: 'EINVAL', 77: 'EBADFD', 90: 'EMSGSIZE', 105: 'ENOBUFS' };

function errnoName(n: number): string {
  return ERRNO_NAMES[n] ?? `errno ${n}`;
}
