/**
 * The static peer source (peers/file.ts) with a real directory watch and a counting `read`:
 * unrelated writes in the directory cost no read, a change costs one, a storm of reload requests
 * on unchanged bytes costs none, a bad file is reported and keeps the previous peers, the peers
 * read at start-up are not read again unless the bytes changed since, and slow reads space the
 * next ones. Every wait is bounded; the assertions are on counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FilePeerSource } from '../../../src/peers/file.js';
import { fingerprint, readBoundedBytes } from '../../../src/agent/config-text.js';
import type { Peer, PeerSourceEvents } from '../../../src/peers/source.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const printOf = (path: string): string => fingerprint(readBoundedBytes(path));

async function until(what: string, f: () => boolean, withinMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > withinMs) assert.fail(`${what}: not within ${withinMs} ms`);
    await sleep(20);
  }
}

const peer = (n: number): Peer => ({ node: `n${n}`, underlayIP: `192.0.2.${n}`, podCIDRs: [`10.244.${n}.0/24`], vtepMAC: `02:00:00:00:00:0${n}` });

/** A peers file whose content is the number of peers; `read` counts calls and can be made to fail. */
function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-file-'));
  const path = join(dir, 'peers.json');
  const state = { reads: 0, fail: false };
  const write = (n: number): void => writeFileSync(path, String(n));
  const read = (): readonly Peer[] => {
    state.reads++;
    if (state.fail) throw new Error('field "peers[0].node": missing');
    const n = Number(readFileSync(path, 'utf8'));
    return Array.from({ length: n }, (_, i) => peer(i + 2));
  };
  const got = { snapshots: [] as number[], errors: [] as string[] };
  const events: PeerSourceEvents = {
    snapshot: (peers) => got.snapshots.push(peers.length),
    error: (err) => got.errors.push(err.message),
  };
  return { dir, path, state, write, read, got, events, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('file source: unrelated writes in the directory cost no read; a change costs one', async () => {
  const f = fixture();
  try {
    f.write(1);
    const src = new FilePeerSource([f.path], f.read, { minIntervalMs: 50, fingerprint: printOf });
    await src.start(f.events);
    assert.deepEqual(f.got.snapshots, [1], 'first snapshot at start');
    const readsAtStart = f.state.reads;
    for (let i = 0; i < 50; i++) writeFileSync(join(f.dir, 'agent.log'), `line ${i}\n`, { flag: 'a' });
    await sleep(400);
    assert.equal(f.state.reads, readsAtStart, `50 writes to agent.log next to the file: ${f.state.reads - readsAtStart} reads, want 0`);
    f.write(3);
    await until('the change is applied', () => f.got.snapshots.at(-1) === 3);
    process.stderr.write(`observed: 50 unrelated writes -> 0 reads; one change -> ${f.state.reads - readsAtStart} read(s), snapshots ${JSON.stringify(f.got.snapshots)}\n`);
    assert.ok(f.state.reads - readsAtStart <= 2, `one change cost ${f.state.reads - readsAtStart} reads`);
    await src.stop();
  } finally {
    f.cleanup();
  }
});

test('file source: 1,000 reload requests on unchanged bytes read nothing; after a change, one read', async () => {
  const f = fixture();
  try {
    f.write(2);
    const src = new FilePeerSource([f.path], f.read, { minIntervalMs: 20, fingerprint: printOf });
    try {
      await src.start(f.events);
      const before = f.state.reads;
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 200; i++) src.reload();
        await sleep(60);
      }
      await sleep(100);
      const st = src.stats();
      process.stderr.write(`observed: 1000 reload() calls on unchanged bytes: ${f.state.reads - before} reads; stats ${JSON.stringify(st)}\n`);
      assert.equal(f.state.reads - before, 0);
      assert.ok(st.skipped >= 1, `skipped ${st.skipped}`);
      f.write(2); // the same bytes written again: a new mtime, no new content
      src.reload();
      await sleep(100);
      assert.equal(f.state.reads - before, 0, 'rewriting the same bytes is no change');
      f.write(4);
      src.reload();
      await until('the change is applied', () => f.got.snapshots.at(-1) === 4);
      assert.equal(f.state.reads - before, 1);
      assert.deepEqual(f.got.snapshots, [2, 4]);
    } finally {
      await src.stop();
    }
  } finally {
    f.cleanup();
  }
});

test('file source: without fingerprints, each reload request reads (coalesced)', async () => {
  const f = fixture();
  try {
    f.write(2);
    const src = new FilePeerSource([f.path], f.read, { minIntervalMs: 20 });
    try {
      await src.start(f.events);
      const before = f.state.reads;
      for (let i = 0; i < 1000; i++) src.reload();
      await sleep(200);
      assert.equal(f.state.reads - before, 1, 'a burst of requests is one read');
      assert.deepEqual(f.got.snapshots, [2], 'the same peers deliver no second snapshot');
    } finally {
      await src.stop();
    }
  } finally {
    f.cleanup();
  }
});

test('file source: a bad file is reported and keeps the previous peers; a good one clears it', async () => {
  const f = fixture();
  try {
    f.write(2);
    const src = new FilePeerSource([f.path], f.read, { minIntervalMs: 20, fingerprint: printOf });
    try {
      await src.start(f.events);
      f.state.fail = true;
      f.write(9);
      src.reload();
      await until('the error is reported', () => f.got.errors.length > 0);
      assert.equal(src.stale(), true);
      assert.match(f.got.errors[0]!, /peers not reloaded, keeping the previous set: field "peers\[0\]\.node": missing/);
      const reads = f.state.reads;
      src.reload();
      await sleep(100);
      assert.equal(f.state.reads, reads, 'the same bad bytes are not checked again');
      f.state.fail = false;
      f.write(4);
      await until('the good file is applied', () => f.got.snapshots.at(-1) === 4);
      assert.equal(src.stale(), false);
      assert.deepEqual(f.got.snapshots, [2, 4]);
    } finally {
      await src.stop();
    }
  } finally {
    f.cleanup();
  }
});

test('file source: peers read at start-up are not read again, unless the bytes changed since', async () => {
  const f = fixture();
  try {
    f.write(2);
    const fingerprints = new Map([[f.path, printOf(f.path)]]);
    const src = new FilePeerSource([f.path], f.read, { initial: { peers: [peer(2), peer(3)], fingerprints }, fingerprint: printOf });
    await src.start(f.events);
    assert.equal(f.state.reads, 0, 'the same bytes are not read again at start');
    assert.deepEqual(f.got.snapshots, [2], 'the initial peers are delivered');
    await src.stop();

    f.write(5); // changed between the agent's read and the source's start
    f.got.snapshots.length = 0;
    const src2 = new FilePeerSource([f.path], f.read, { initial: { peers: [peer(2)], fingerprints }, fingerprint: printOf });
    await src2.start(f.events);
    assert.equal(f.state.reads, 1, 'changed bytes are read at start');
    assert.deepEqual(f.got.snapshots, [5]);
    await src2.stop();
  } finally {
    f.cleanup();
  }
});

test('file source: after a slow read the next waits at least twice as long', async () => {
  const f = fixture();
  try {
    f.write(2);
    const times: number[] = [];
    const slowRead = (): readonly Peer[] => {
      times.push(Date.now());
      const until_ = Date.now() + 80;
      while (Date.now() < until_) { /* a read that costs 80 ms of CPU */ }
      return f.read();
    };
    const src = new FilePeerSource([f.path], slowRead, { minIntervalMs: 10, fingerprint: printOf });
    try {
      await src.start(f.events);
      // A change and a request as soon as each read is done: the source makes each one wait.
      for (let round = 1; round <= 3; round++) {
        f.write(2 + round);
        src.reload();
        await until(`read ${round + 1}`, () => times.length > round, 5000);
      }
    } finally {
      await src.stop();
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    process.stderr.write(`observed: gaps between the starts of 80 ms reads: ${gaps.join(', ')} ms\n`);
    // Each gap is the 80 ms read plus a wait of at least 160 ms.
    for (const g of gaps) assert.ok(g >= 230, `gap ${g} ms, want >= 240 (80 ms read + 2 x 80 ms wait)`);
  } finally {
    f.cleanup();
  }
});
