/**
 * A data-path worker thread: one per queue, serving both directions of it. It sleeps in one
 * poll on its TUN queue and its receiving socket, and runs the outbound pipeline (TUN -> UDP)
 * and/or the inbound one (UDP -> TUN) for whichever woke it, each without waiting again.
 *
 * Why one thread for both directions rather than a thread per direction: a request/response
 * round trip crosses a node twice, once each way. With a thread per direction each half wakes a
 * different sleeping thread, with its own caches and JIT state; with one, both halves run on
 * the same thread, which is still running when a quick reply comes back, and there is one V8
 * isolate (a whole heap) fewer. Under bulk load the two directions share a core, which more
 * queues spread again (docs/performance.md has the measurements either way).
 *
 * Table updates without locks: the control plane builds a new, immutable table in a fresh
 * SharedArrayBuffer, posts it to each worker's port, and only then bumps the generation word in
 * the shared control array. A worker compares that word with its own once per loop turn (one
 * Atomics.load) and, when it moved, pulls the new table off its port with the synchronous
 * `receiveMessageOnPort`. A batch in flight finishes on the table it started with; no table is
 * ever written after it is published, so nothing can be read half-updated.
 *
 * Health: each direction stamps its own heartbeat when its I/O did not fail. A failing read (a
 * deleted TUN device, a closed socket) is counted by errno, and that direction backs off,
 * doubling its pause up to a second, instead of spinning, while the other goes on; the control
 * plane reads the heartbeats and the failure counts to decide whether the data path is healthy.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { attachTun, tunQueueFd, type TunHandle } from '../device/native-tun.js';
import { attachUdp, udpQueueFd, type UdpHandles } from '../device/native-udp.js';
import { nativeIo, TunOffload } from '../device/native.js';
import { ForwardingTable } from '../table/table.js';
import { ForwardingTable6 } from '../table/table6.js';
import { Encapsulator, type TableSet } from './encap.js';
import { Decapsulator } from './decap.js';
import { Counter, counterBlock } from './counters.js';
import { peerStateBlock } from './peer-state.js';

/** The TUN offloads that let the receive side write UDP super-packets (USO), both families. */
const USO = TunOffload.Uso4 | TunOffload.Uso6;

/** Slots of the shared control array: the published generation, the stop flag, the hold flag
 * (set: started workers wait before their first batch; a hand-over's successor starts them so),
 * and the generation each worker last switched to (`SeenBase` + its queue; 0 once it left its
 * loop). */
export const Control = { Generation: 0, Stop: 1, Hold: 2, SeenBase: 3 } as const;
export const POLL_MS = 100;
/** The longest pause between retries of a failing I/O call. */
export const BACKOFF_MAX_MS = 1000;

/** What every worker knows about the node; the engine's options are exactly these. */
export interface DataPathParams {
  readonly tun: TunHandle;
  readonly udp: UdpHandles;
  readonly localMAC: Uint8Array;
  readonly localAddress: number;
  /** IPv6 TUN address (16 bytes), when the node has IPv6 pods: the source of ICMPv6 errors. */
  readonly localAddress6?: Uint8Array | undefined;
  readonly vni: number;
  /** The overlay MTU, and the MTU of the local underlay interface. */
  readonly mtu: number;
  readonly underlayMtu: number;
  readonly batch: number;
  readonly udpGso: boolean;
  /** Workers: one per TUN queue and receiving socket. */
  readonly queues: number;
  /** VXLAN remote checksum offload: send it to peers that take it, accept it from any peer. */
  readonly remoteChecksum: boolean;
}

/** The tables of one generation, as posted to the workers. */
export interface TableMessage {
  readonly generation: number;
  readonly table: SharedArrayBuffer;
  /** The IPv6 table built from the same peer list; the two are always switched together. */
  readonly table6?: SharedArrayBuffer | undefined;
  /** Slot -> peer state index, an Int32Array over a SharedArrayBuffer. */
  readonly stateOf: SharedArrayBuffer;
  /** Slot -> PeerFlags (encap.ts), a Uint8Array over a SharedArrayBuffer. */
  readonly peerFlags: SharedArrayBuffer;
}

export interface WorkerInit extends DataPathParams {
  /** Its queue: its queue of the TUN device and its receiving socket, its block of counters and
   * peer state, and its slot in the control array. */
  readonly block: number;
  readonly control: SharedArrayBuffer;
  readonly counters: SharedArrayBuffer;
  readonly peerState: SharedArrayBuffer;
  readonly tables: TableMessage;
  readonly port: MessagePort;
}

export function tableSetOf(m: TableMessage): TableSet {
  return {
    table: new ForwardingTable(m.table),
    table6: m.table6 === undefined ? undefined : new ForwardingTable6(m.table6),
    stateOf: new Int32Array(m.stateOf),
    peerFlags: new Uint8Array(m.peerFlags),
  };
}

/** One direction of a queue: its stage, its heartbeat and failure slots, and its back-off. */
interface Side {
  readonly stage: { tables: TableSet; runOnce(timeoutMs: number): number };
  readonly fd: number;
  readonly heartbeat: number;
  readonly failing: number;
  readonly lastErrno: number;
  /** The current pause after failures (0: none), and when the next try is due. */
  backoff: number;
  retryAt: number;
}

/** The loop of one worker, one `step` per wake-up; separate from the thread so it can be driven
 * and inspected on its own. */
export class QueueWorker {
  private readonly control: Int32Array;
  private readonly counters: Float64Array;
  private readonly out: Side;
  private readonly in: Side;
  private readonly io = nativeIo();
  private readonly seen: number;
  private generation: number;

  constructor(private readonly init: WorkerInit) {
    this.control = new Int32Array(init.control);
    this.counters = counterBlock(init.counters, init.block);
    const peerState = peerStateBlock(init.peerState, init.block);
    const tun = attachTun(init.tun, init.block);
    const udp = attachUdp(init.udp, init.block);
    const c = this.counters;
    const tables = tableSetOf(init.tables);
    this.generation = init.tables.generation;
    const encap = new Encapsulator({
      tun, udp, counters: c, peerState, localMAC: init.localMAC, localAddress: init.localAddress, localAddress6: init.localAddress6,
      mtu: init.mtu, underlayMtu: init.underlayMtu, batch: init.batch, udpGso: init.udpGso, remoteChecksum: init.remoteChecksum,
    }, tables);
    const decap = new Decapsulator({
      tun, udp, counters: c, peerState, localMAC: init.localMAC, vni: init.vni, mtu: init.mtu, batch: init.batch, remoteChecksum: init.remoteChecksum,
      mergeUdp: (init.tun.offloads & USO) === USO,
    }, tables);
    this.out = { stage: encap, fd: tunQueueFd(init.tun, init.block), heartbeat: Counter.TxHeartbeat, failing: Counter.TxFailing, lastErrno: Counter.TxLastErrno, backoff: 0, retryAt: 0 };
    this.in = { stage: decap, fd: udpQueueFd(init.udp, init.block), heartbeat: Counter.RxHeartbeat, failing: Counter.RxFailing, lastErrno: Counter.RxLastErrno, backoff: 0, retryAt: 0 };
    this.seen = Control.SeenBase + init.block;
    Atomics.store(this.control, this.seen, this.generation);
    c[Counter.TableGeneration] = this.generation;
  }

  stopped(): boolean {
    return Atomics.load(this.control, Control.Stop) !== 0;
  }

  /** One wake-up: switch tables if a new generation was published, wait (at most POLL_MS) for
   * either fd, and run the stage of each that is ready, once, without waiting again. */
  step(): void {
    if (Atomics.load(this.control, Control.Generation) !== this.generation) this.switchTables();
    const now = Date.now();
    const out = this.out;
    const inb = this.in;
    const outFd = out.retryAt > now ? -1 : out.fd;
    const inFd = inb.retryAt > now ? -1 : inb.fd;
    if (outFd < 0 && inFd < 0) {
      // Both directions are backing off: a pause the stop request cuts short.
      Atomics.wait(this.control, Control.Stop, 0, Math.max(1, Math.min(out.retryAt, inb.retryAt) - now));
      return;
    }
    let wait = POLL_MS;
    if (outFd < 0) wait = Math.min(wait, Math.max(1, out.retryAt - now));
    if (inFd < 0) wait = Math.min(wait, Math.max(1, inb.retryAt - now));
    const bits = this.io.pollIn(outFd, inFd, wait);
    if (bits < 0) {
      // poll itself failed (it does not, short of a bad fd table): count it on both sides.
      this.failed(out, bits, now);
      this.failed(inb, bits, now);
      return;
    }
    const stamp = Date.now();
    if (outFd >= 0) this.turn(out, (bits & 1) !== 0, stamp);
    if (inFd >= 0) this.turn(inb, (bits & 2) !== 0, stamp);
  }

  /** Runs one side if it is ready; an idle side that is not failing is alive too. */
  private turn(side: Side, ready: boolean, now: number): void {
    const n = ready ? side.stage.runOnce(-1) : 0;
    if (n >= 0) {
      this.counters[side.heartbeat] = now;
      this.counters[side.failing] = 0;
      side.backoff = 0;
      side.retryAt = 0;
      return;
    }
    this.failed(side, n, now);
  }

  private failed(side: Side, n: number, now: number): void {
    this.counters[side.failing]!++;
    this.counters[side.lastErrno] = -n;
    side.backoff = side.backoff === 0 ? 1 : Math.min(BACKOFF_MAX_MS, side.backoff * 2);
    side.retryAt = now + side.backoff;
  }

  private switchTables(): void {
    let msg = receiveMessageOnPort(this.init.port);
    while (msg !== undefined) {
      const m = msg.message as TableMessage;
      const tables = tableSetOf(m);
      this.out.stage.tables = tables;
      this.in.stage.tables = tables;
      this.generation = m.generation;
      msg = receiveMessageOnPort(this.init.port);
    }
    Atomics.store(this.control, this.seen, this.generation);
    this.counters[Counter.TableGeneration] = this.generation;
  }
}

function run(init: WorkerInit): void {
  const w = new QueueWorker(init);
  const control = new Int32Array(init.control);
  while (Atomics.load(control, Control.Hold) !== 0 && !w.stopped()) Atomics.wait(control, Control.Hold, 1, POLL_MS);
  while (!w.stopped()) w.step();
  // Out of the loop, between batches: this worker touches no fd any more.
  Atomics.store(control, Control.SeenBase + init.block, 0);
  Atomics.notify(control, Control.SeenBase + init.block);
}

if (workerData) run(workerData as WorkerInit);
