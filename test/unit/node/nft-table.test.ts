/**
 * The agent's nftables table as owned state (src/node/nft-table.ts): a check lists the table (an
 * nft process) only when the ruleset's generation moved since the last listing that matched, and
 * repairs what differs. nft is a script here that serves a listing from a file and logs its
 * calls, so the test sees every process the table would have started; the generation is a number
 * the test moves. The last test reads the real generation inside a namespace of its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OwnedNftTable } from '../../../src/node/nft-table.js';
import { getGenerationRequest, parseGeneration } from '../../../src/node/netlink/nftables.js';
import { messages } from '../../../src/node/netlink/wire.js';
import { tempDir } from '../../support/tmp.js';

const SPEC = { podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16', device: 'vxnet0' };
const LISTING = 'table inet vxnet {\n\tchain postrouting {\n\t}\n}\n';

/** A fake nft: `list` prints the state file, `-f -` (an install) writes LISTING into it. */
function fakeNft(): { command: string[]; calls: () => string[]; set: (text: string) => void } {
  const dir = tempDir('vxnet-nft-');
  const state = join(dir, 'state');
  const log = join(dir, 'calls');
  const script = join(dir, 'nft');
  const canon = join(dir, 'canon');
  writeFileSync(canon, LISTING);
  writeFileSync(state, LISTING);
  writeFileSync(log, '');
  writeFileSync(script, [
    '#!/bin/sh',
    `echo "$*" >> '${log}'`,
    `if [ "$1" = list ]; then cat '${state}'; exit 0; fi`,
    `cat > /dev/null; cp '${canon}' '${state}'`,
    '',
  ].join('\n'));
  chmodSync(script, 0o755);
  return {
    command: [script],
    calls: () => readFileSync(log, 'utf8').split('\n').filter((l) => l !== ''),
    set: (text) => writeFileSync(state, text),
  };
}

test('an unmoved generation costs no nft process; a moved one lists; a changed table is replaced', async () => {
  const nft = fakeNft();
  let gen = 7;
  const t = new OwnedNftTable(SPEC, { command: nft.command, generation: () => gen });
  await t.adopt();
  assert.equal(t.listed, 1);
  for (let i = 0; i < 5; i++) assert.equal(await t.check(), undefined);
  assert.equal(t.listed, 1, 'five checks at the same generation started no nft');

  gen = 8; // another table changed: ours lists the same
  assert.equal(await t.check(), undefined);
  assert.equal(t.listed, 2);
  assert.equal(await t.check(), undefined);
  assert.equal(t.listed, 2, 'the new generation is vouched for by that listing');

  gen = 9; // someone added a rule to ours
  nft.set(LISTING.replace('\t}', '\t\tmeta mark 1 accept\n\t}'));
  assert.match(String(await t.check()), /differed from what the agent installed; replaced whole/);
  assert.deepEqual(nft.calls().slice(-3), ['list table inet vxnet', '-f -', 'list table inet vxnet']);
  assert.equal(readFileSync(join(dirname(nft.command[0]!), 'state'), 'utf8'), LISTING);
  assert.equal(await t.check(), undefined);
  assert.equal(t.listed, 4, 'after the repair, the same generation lists no more');
});

test('without a generation every check lists, as before', async () => {
  const nft = fakeNft();
  const t = new OwnedNftTable(SPEC, { command: nft.command, generation: () => undefined });
  await t.adopt();
  for (let i = 0; i < 3; i++) assert.equal(await t.check(), undefined);
  assert.equal(t.listed, 4);
});

test('the generation request and answer, byte for byte', () => {
  const req = getGenerationRequest(0x01020304);
  // nlmsghdr: len 20, type NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN (0x0a10), flags NLM_F_REQUEST, seq, pid 0; nfgenmsg zero.
  const le = new DataView(req.buffer, req.byteOffset, req.byteLength);
  assert.equal(req.length, 20);
  assert.deepEqual([le.getUint32(0, true), le.getUint16(4, true), le.getUint16(6, true), le.getUint32(8, true)], [20, 0x0a10, 1, 0x01020304]);
  assert.deepEqual([...req.subarray(16)], [0, 0, 0, 0]);
  // NFT_MSG_NEWGEN with NFTA_GEN_ID 0x00000102 (network order), NFTA_GEN_PROC_PID after it.
  const answer = Uint8Array.from([36, 0, 0, 0, 0x0f, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1, 0, 0, 0, 1, 2, 8, 0, 2, 0, 0, 0, 9, 9]);
  const [m] = [...messages(answer)];
  assert.equal(parseGeneration(m!), 0x102);
  const other = Uint8Array.from([20, 0, 0, 0, 0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(parseGeneration([...messages(other)][0]!), undefined, 'a NEWTABLE message is not a generation');
});

const root = process.getuid?.() === 0;
const skip = !root || !existsSync('/usr/sbin/nft') ? 'needs root and nft' : false;

test('the real generation, read in a namespace of its own, moves with every nftables transaction', { skip, timeout: 30_000 }, () => {
  const ns = `vxnet-gen-${process.pid}`;
  const modUrl = new URL('../../../src/node/nft-table.js', import.meta.url).href;
  const read = (): number => {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e',
      `const m = await import(${JSON.stringify(modUrl)}); console.log(String(m.readRulesetGeneration()));`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return Number(r.stdout.trim());
  };
  const nft = (...args: string[]): void => {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
  try {
    const g0 = read();
    assert.ok(Number.isInteger(g0), `a generation: ${g0}`);
    assert.equal(read(), g0, 'reading does not move it');
    nft('add', 'table', 'ip', 'elsewhere');
    const g1 = read();
    assert.ok(g1 > g0, `${g1} > ${g0}`);
    nft('add', 'chain', 'ip', 'elsewhere', 'c');
    assert.ok(read() > g1);
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
});
