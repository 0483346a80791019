/**
 * The data path's health from the workers' shared slots (engine.ts `workerHealth`): the rules
 * /healthz applies to a worker that stalls or whose I/O keeps failing, on each direction of each
 * queue, with the reason an operator reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAILING_CALLS, STALL_MS, workerHealth } from '../../../src/datapath/engine.js';
import { Counter, COUNTER_SLOTS, newCounters } from '../../../src/datapath/counters.js';

const T0 = 1_000_000;

function beating(queues: number, at: number): Float64Array {
  const c = newCounters(queues);
  for (let q = 0; q < queues; q++) {
    c[q * COUNTER_SLOTS + Counter.TxHeartbeat] = at;
    c[q * COUNTER_SLOTS + Counter.RxHeartbeat] = at;
  }
  return c;
}

test('workers that stamp their heartbeats are healthy', () => {
  const c = beating(2, T0 + 1000);
  assert.deepEqual(workerHealth(c, [0, 1], T0, T0 + 1000 + STALL_MS), { healthy: true, reason: 'forwarding' });
});

test('a direction that stops stamping is unhealthy once STALL_MS passed, named by queue and side', () => {
  const c = beating(2, T0 + 1000);
  c[1 * COUNTER_SLOTS + Counter.RxHeartbeat] = T0; // queue 1's inbound side stopped earlier
  const h = workerHealth(c, [0, 1], T0, T0 + 1000 + STALL_MS);
  assert.equal(h.healthy, false);
  assert.match(h.reason, /^worker 1's inbound side made no progress for 6\.0 s$/);
});

test('a worker that never stamped counts from the start of the data path', () => {
  const c = newCounters(1);
  assert.equal(workerHealth(c, [0], T0, T0 + STALL_MS).healthy, true, 'not yet');
  assert.match(workerHealth(c, [0], T0, T0 + STALL_MS + 1).reason, /worker 0's outbound side made no progress/);
});

test('I/O that keeps failing is unhealthy with its count and errno, even while the loop turns', () => {
  const c = beating(1, T0);
  c[Counter.TxFailing] = FAILING_CALLS - 1;
  c[Counter.TxLastErrno] = 77;
  assert.equal(workerHealth(c, [0], T0, T0 + 10).healthy, true, 'one call short of the limit');
  c[Counter.TxFailing] = FAILING_CALLS;
  assert.deepEqual(workerHealth(c, [0], T0, T0 + 10), {
    healthy: false, reason: `worker 0's outbound I/O keeps failing (${FAILING_CALLS} calls in a row, last errno EBADFD)`,
  });
});
