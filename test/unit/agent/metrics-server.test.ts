/**
 * The metrics server under idle and slow clients, on loopback with a fake status source and
 * small limits so the test is quick: a flood of idle connections churns through the cap while
 * /healthz keeps answering, a client that stalls in its headers or sends nothing is closed, and
 * the defaults are the documented ones. Every wait is bounded; the assertions are on outcomes
 * (answered, closed), with generous time bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { newCounters, readCounters } from '../../../src/datapath/counters.js';
import { metricsLimits, metricsServerStats, openFileLimit, startMetricsServer, stopMetricsServer, type StatusSource } from '../../../src/agent/metrics.js';

const fake: StatusSource = {
  node: 'n1',
  cfg: { perPeerMetrics: false },
  traffic: () => ({ counters: readCounters(newCounters(), { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 }), peers: [], removed: { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 } }),
  healthy: () => true,
  ready: () => ({ ready: true, reason: 'forwarding to 0 peers', staleSeconds: 0 }),
  info: () => ({}),
};

async function withServer(limits: Parameters<typeof startMetricsServer>[3], f: (server: Server, port: number) => Promise<void>): Promise<void> {
  const server = await startMetricsServer(fake, '127.0.0.1', 0, limits);
  try {
    await f(server, (server.address() as AddressInfo).port);
  } finally {
    await stopMetricsServer(server);
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    // Read whatever comes, so that the server's FIN is seen and the socket closes.
    s.resume();
  });
}

function closed(s: Socket, withinMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    if (s.destroyed) return resolve(0);
    const timer = setTimeout(() => reject(new Error(`not closed within ${withinMs} ms`)), withinMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

async function healthz(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) });
  await res.text();
  return res.status;
}

test('metrics server: the connection cap follows the open-file limit, table-driven', () => {
  const cases: Array<{ fdLimit: number; max: number; backlog: number }> = [
    { fdLimit: 256, max: 64, backlog: 16 },
    { fdLimit: 1024, max: 128, backlog: 32 },
    { fdLimit: 4096, max: 512, backlog: 128 },
    { fdLimit: 1_048_576, max: 512, backlog: 128 },
  ];
  for (const c of cases) {
    const l = metricsLimits(c.fdLimit);
    assert.deepEqual([l.maxConnections, l.backlog], [c.max, c.backlog], `open-file limit ${c.fdLimit}`);
  }
  const l = metricsLimits(1024);
  assert.deepEqual(
    [l.headersTimeoutMs, l.requestTimeoutMs, l.keepAliveTimeoutMs, l.idleTimeoutMs, l.checkIntervalMs, l.maxHeaderBytes],
    [5000, 10000, 5000, 10000, 1000, 8192], 'the documented timeouts',
  );
  assert.ok(openFileLimit() >= 64, `this process's open-file limit: ${openFileLimit()}`);
});

test('metrics server: 400 idle connections against a cap of 32; /healthz answers throughout', async () => {
  await withServer({ limits: { maxConnections: 32, backlog: 8 } }, async (server, port) => {
    const sockets: Socket[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 400; i++) {
      const s = await open(port);
      s.on('error', () => undefined);
      sockets.push(s);
      if (i % 50 === 49) statuses.push(await healthz(port));
    }
    // Give the server a moment to see the last connects and closes.
    await new Promise((r) => setTimeout(r, 200));
    const st = metricsServerStats(server);
    const alive = sockets.filter((s) => !s.destroyed).length;
    process.stderr.write(`observed: 400 idle connections, cap 32: server holds ${st.open}, evicted ${st.evicted}, clients still open ${alive}; /healthz ${statuses.join(',')}\n`);
    assert.deepEqual(statuses, new Array(8).fill(200), 'every /healthz during the flood answered 200');
    assert.ok(st.open <= 33, `open connections ${st.open}, want at most the cap (+1 in flight)`);
    assert.ok(st.evicted >= 400 - 33, `evicted ${st.evicted}, want at least ${400 - 33}`);
    for (const s of sockets) s.destroy();
  });
});

test('metrics server: a client stalled in its headers, and one that sends nothing, are closed', async () => {
  await withServer({ limits: { headersTimeoutMs: 300, requestTimeoutMs: 600, idleTimeoutMs: 400, checkIntervalMs: 100 } }, async (_server, port) => {
    const slow = await open(port);
    slow.on('error', () => undefined);
    slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const silent = await open(port);
    silent.on('error', () => undefined);
    const [slowMs, silentMs] = await Promise.all([closed(slow, 5000), closed(silent, 5000)]);
    process.stderr.write(`observed: stalled-header client closed after ${slowMs} ms, silent client after ${silentMs} ms\n`);
    assert.equal(await healthz(port), 200);
  });
});

test('metrics server: an idle keep-alive connection is closed after its timeout', async () => {
  await withServer({ limits: { keepAliveTimeoutMs: 300, checkIntervalMs: 100 } }, async (_server, port) => {
    const s = await open(port);
    s.on('error', () => undefined);
    let reply = '';
    s.on('data', (d: Buffer) => { reply += d.toString(); });
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await closed(s, 5000);
    process.stderr.write(`observed: keep-alive connection closed ${ms} ms after the request; reply began ${JSON.stringify(reply.slice(0, 15))}\n`);
    assert.match(reply, /^HTTP\/1\.1 200 OK/);
  });
});
