/**
 * A data-path worker thread: one runs the outbound pipeline (TUN -> UDP), one the inbound
 * (UDP -> TUN). Each blocks in the addon's poll with a short timeout, so its loop never waits
 * for the event loop and notices a stop request within `POLL_MS`.
 *
 * Table updates without locks: the control plane builds a new, immutable table in a fresh
 * SharedArrayBuffer, posts it to each worker's port, and only then bumps the generation word in
 * the shared control array. A worker compares that word with its own once per batch (one
 * Atomics.load) and, when it moved, pulls the new table off its port with the synchronous
 * `receiveMessageOnPort`. A batch in flight finishes on the table it started with; no table is
 * ever written after it is published, so nothing can be read half-updated.
 *
 * Health: every loop turn that did not fail stamps the worker's heartbeat slot. A failing I/O
 * call (a deleted TUN device, a closed socket) is counted by errno, and the worker backs off,
 * doubling its pause up to a second, instead of spinning; the control plane reads the heartbeat
 * and the failure count to decide whether the data path is healthy.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { attachTun, type TunHandle } from '../device/native-tun.js';
import { attachUdp, type UdpHandles } from '../device/native-udp.js';
import { ForwardingTable } from '../table/table.js';
import { ForwardingTable6 } from '../table/table6.js';
import { Encapsulator, type TableSet } from './encap.js';
import { Decapsulator } from './decap.js';
import { Counter, counterBlock } from './counters.js';
import { peerStateBlock } from './peer-state.js';

/** Slots of the shared control array: the published generation, the stop flag, and the
 * generation each worker last switched to (`SeenBase` + worker index). */
export const Control = { Generation: 0, Stop: 1, SeenBase: 2 } as const;
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
  /** Worker pairs: one per TUN queue and receiving socket. */
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
  readonly role: 'tx' | 'rx';
  /** This worker's index among all workers (its slot in the control array). */
  readonly index: number;
  /** Its worker pair: its queue of the TUN device and its receiving socket, and its block of
   * counters and peer state. */
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

function run(init: WorkerInit): void {
  const control = new Int32Array(init.control);
  const counters = counterBlock(init.counters, init.block);
  const peerState = peerStateBlock(init.peerState, init.block);
  const tun = attachTun(init.tun, init.block);
  const udp = attachUdp(init.udp, init.block);
  let generation = init.tables.generation;
  const tables = tableSetOf(init.tables);
  const tx = init.role === 'tx';
  const stage = tx
    ? new Encapsulator({
      tun, udp, counters, peerState, localMAC: init.localMAC, localAddress: init.localAddress, localAddress6: init.localAddress6,
      mtu: init.mtu, underlayMtu: init.underlayMtu, batch: init.batch, udpGso: init.udpGso, remoteChecksum: init.remoteChecksum,
    }, tables)
    : new Decapsulator({
      tun, udp, counters, peerState, localMAC: init.localMAC, vni: init.vni, mtu: init.mtu, batch: init.batch, remoteChecksum: init.remoteChecksum,
    }, tables);
  const seen = Control.SeenBase + init.index;
  const heartbeat = tx ? Counter.TxHeartbeat : Counter.RxHeartbeat;
  const failing = tx ? Counter.TxFailing : Counter.RxFailing;
  const lastErrno = tx ? Counter.TxLastErrno : Counter.RxLastErrno;
  Atomics.store(control, seen, generation);
  let backoff = 0;
  while (Atomics.load(control, Control.Stop) === 0) {
    if (Atomics.load(control, Control.Generation) !== generation) {
      let msg = receiveMessageOnPort(init.port);
      while (msg !== undefined) {
        const m = msg.message as TableMessage;
        stage.tables = tableSetOf(m);
        generation = m.generation;
        msg = receiveMessageOnPort(init.port);
      }
      Atomics.store(control, seen, generation);
      if (tx) counters[Counter.TableGeneration] = generation;
    }
    const n = stage.runOnce(POLL_MS);
    if (n >= 0) {
      counters[heartbeat] = Date.now();
      counters[failing] = 0;
      backoff = 0;
      continue;
    }
    counters[failing]!++;
    counters[lastErrno] = -n;
    backoff = backoff === 0 ? 1 : Math.min(BACKOFF_MAX_MS, backoff * 2);
    // A pause the stop request cuts short (the engine notifies the Stop slot).
    Atomics.wait(control, Control.Stop, 0, backoff);
  }
}

if (workerData) run(workerData as WorkerInit);
