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
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { attachTun, type TunHandle } from '../device/native-tun.js';
import { attachUdp, type UdpHandles } from '../device/native-udp.js';
import { ForwardingTable } from '../table/table.js';
import { ForwardingTable6 } from '../table/table6.js';
import { Encapsulator } from './encap.js';
import { Decapsulator } from './decap.js';
import { Counter } from './counters.js';

export const Control = { Generation: 0, Stop: 1, TxSeen: 2, RxSeen: 3, Slots: 4 } as const;
export const POLL_MS = 100;

/** What both workers know about the node; the engine's options are exactly these. */
export interface DataPathParams {
  readonly tun: TunHandle;
  readonly udp: UdpHandles;
  readonly localMAC: Uint8Array;
  readonly localAddress: number;
  /** IPv6 TUN address (16 bytes), when the node has IPv6 pods: the source of ICMPv6 errors. */
  readonly localAddress6?: Uint8Array | undefined;
  readonly vni: number;
  readonly mtu: number;
  readonly batch: number;
  readonly udpGso: boolean;
}

export interface WorkerInit extends DataPathParams {
  readonly role: 'tx' | 'rx';
  readonly control: SharedArrayBuffer;
  readonly counters: SharedArrayBuffer;
  readonly table: SharedArrayBuffer;
  /** The IPv6 table (table6.ts), built with `table`; absent without IPv6 pods. */
  readonly table6?: SharedArrayBuffer | undefined;
  readonly peerCounters: SharedArrayBuffer;
  readonly generation: number;
  readonly port: MessagePort;
}

export interface TableMessage {
  readonly generation: number;
  readonly table: SharedArrayBuffer;
  /** The IPv6 table built from the same peer list; the two are always switched together. */
  readonly table6?: SharedArrayBuffer | undefined;
  readonly peerCounters: SharedArrayBuffer;
}

function run(init: WorkerInit): void {
  const control = new Int32Array(init.control);
  const counters = new Float64Array(init.counters);
  const tun = attachTun(init.tun);
  const udp = attachUdp(init.udp);
  let generation = init.generation;
  const stage = init.role === 'tx'
    ? new Encapsulator({ tun, udp, counters, localMAC: init.localMAC, localAddress: init.localAddress, localAddress6: init.localAddress6, mtu: init.mtu, batch: init.batch, udpGso: init.udpGso },
      new ForwardingTable(init.table), new Float64Array(init.peerCounters), table6Of(init.table6))
    : new Decapsulator({ tun, udp, counters, localMAC: init.localMAC, vni: init.vni, mtu: init.mtu, batch: init.batch },
      new ForwardingTable(init.table), new Float64Array(init.peerCounters), table6Of(init.table6));
  const seenSlot = init.role === 'tx' ? Control.TxSeen : Control.RxSeen;
  Atomics.store(control, seenSlot, generation);
  while (Atomics.load(control, Control.Stop) === 0) {
    if (Atomics.load(control, Control.Generation) !== generation) {
      let msg = receiveMessageOnPort(init.port);
      while (msg !== undefined) {
        const m = msg.message as TableMessage;
        stage.table = new ForwardingTable(m.table);
        stage.table6 = table6Of(m.table6);
        stage.peerCounters = new Float64Array(m.peerCounters);
        generation = m.generation;
        msg = receiveMessageOnPort(init.port);
      }
      Atomics.store(control, seenSlot, generation);
      if (init.role === 'tx') counters[Counter.TableGeneration] = generation;
    }
    stage.runOnce(POLL_MS);
  }
  parentPort?.postMessage({ stopped: init.role });
}

function table6Of(sab: SharedArrayBuffer | undefined): ForwardingTable6 | undefined {
  return sab === undefined ? undefined : new ForwardingTable6(sab);
}

if (workerData) run(workerData as WorkerInit);
