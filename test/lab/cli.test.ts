/**
 * The README's first command as a new user runs it: `vxnet lab test`, with no options, builds
 * the 3-node lab with the host outside the cluster and one Service, runs every check and tears
 * the lab down. The other lab tests call the lab's functions; this one holds the command itself
 * (its defaults, its output, its exit code), so the README cannot promise checks it does not run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/lab/exec.js';
import { defaultAgentEntry, labDown } from '../../src/lab/lab.js';
import { agentSkip } from './helpers.js';

const skip = agentSkip();

test('vxnet lab test (the README command): every check passes, the outside host and the Service among them', { skip, timeout: 330_000 }, async () => {
  const r = await run([process.execPath, defaultAgentEntry(), 'lab', 'test'], { timeoutMs: 300_000 });
  const id = /^lab ([a-z0-9]+):/m.exec(r.stdout + r.stderr)?.[1];
  try {
    const checks = [...r.stdout.matchAll(/^(PASS|FAIL) {2}(.+)$/gm)].map((m) => ({ ok: m[1] === 'PASS', name: m[2]! }));
    process.stderr.write(`observed: exit ${String(r.code)} after ${r.ms} ms; ${checks.length} checks; ${checks.filter((c) => !c.ok).map((c) => `FAIL ${c.name}`).join(', ') || 'all passed'}\n`);
    // The two checks the README promises beside the pods (names as src/lab/checks.ts prints them).
    for (const [what, re] of [['the outside host', /^outside: TCP /], ['the Service', /^Service: TCP .* -> ClusterIP /]] as const) {
      assert.ok(checks.some((c) => re.test(c.name)), `a check of ${what} is among them (got: ${checks.map((c) => c.name).join('; ')})`);
    }
    assert.deepEqual(checks.filter((c) => !c.ok).map((c) => c.name), [], `every check passes:\n${r.stdout.slice(-3000)}`);
    assert.equal(r.code, 0, `exit code (stderr tail: ${r.stderr.slice(-1500)})`);
    assert.match(r.stdout, new RegExp(`^${checks.length} passed, 0 failed$`, 'm'));
  } finally {
    // The command removes its lab; if it was killed on its deadline, remove what it left.
    if (id !== undefined) await labDown(id).catch(() => undefined);
  }
});
