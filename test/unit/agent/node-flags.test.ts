/**
 * The agent's Node flags (src/agent/node-flags.ts): every copy says the same, and this Node
 * accepts each of them (a flag a newer Node dropped would stop the agent before it logs a line).
 * The Dockerfile's and the DaemonSet's copies are checked in test/kube/manifests.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_NODE_FLAGS } from '../../../src/agent/node-flags.js';
import { defaultAgentCommand, defaultAgentEntry } from '../../../src/lab/lab.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../../..');

test('the vxnet bin’s shebang and the lab’s agent command carry AGENT_NODE_FLAGS', () => {
  const built = readFileSync(defaultAgentEntry(), 'utf8').split('\n')[0];
  const source = readFileSync(join(ROOT, 'src/cli/main.ts'), 'utf8').split('\n')[0];
  const want = `#!/usr/bin/env -S node ${AGENT_NODE_FLAGS.join(' ')}`;
  assert.equal(source, want);
  assert.equal(built, want);
  assert.deepEqual(defaultAgentCommand(), [process.execPath, ...AGENT_NODE_FLAGS, defaultAgentEntry(), 'agent']);
});

test('this Node accepts every flag in AGENT_NODE_FLAGS, and rejects a made-up one', () => {
  const ok = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, '-e', 'process.exit(0)'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stderr, '');
  const bad = spawnSync(process.execPath, ['--no-such-vxnet-flag', '-e', 'process.exit(0)'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0, 'a bad flag is refused, so the check above can fail');
});
