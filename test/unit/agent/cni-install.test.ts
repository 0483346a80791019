/**
 * `vxnet install-cni` against temporary directories: missing plugins are copied (complete,
 * executable, nothing temporary left behind), the node's own are kept byte for byte, a second run
 * changes nothing, and every failure is a clear error before anything is copied. The read-only
 * case runs the real CLI in a private mount namespace with the target bind-mounted read-only,
 * as a hostPath mounted `readOnly` would be.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CniInstallError, installCniPlugins, precedingNetworkConfigs, requiredPlugins } from '../../../src/agent/cni-install.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');
const PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback'];

function scratch(t: { after: (f: () => void) => void }): { root: string; from: string; to: string } {
  const root = mkdtempSync(join(tmpdir(), 'vxnet-cni-install-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const from = join(root, 'image-cni');
  mkdirSync(from);
  for (const p of PLUGINS) {
    writeFileSync(join(from, p), `#!/bin/sh\necho image-${p}\n`);
    chmodSync(join(from, p), 0o755);
  }
  return { root, from, to: join(root, 'host-opt-cni-bin') };
}

function nodeOwn(dir: string, name: string, mode = 0o755): string {
  mkdirSync(dir, { recursive: true });
  const body = `#!/bin/sh\necho node-own-${name}\n`;
  writeFileSync(join(dir, name), body);
  chmodSync(join(dir, name), mode);
  return body;
}

function cli(args: string[], wrap: string[] = []): { code: number | null; stderr: string; logs: Array<Record<string, unknown>> } {
  const argv = [...wrap, process.execPath, CLI, 'install-cni', ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
  const logs = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code: r.status, stderr: r.stderr, logs };
}

test('the plugins are the conflist’s types plus loopback', () => {
  assert.deepEqual(requiredPlugins(), PLUGINS);
});

test('an empty directory gets every plugin: complete, mode 0755, no temporary files left', (t) => {
  const { from, to } = scratch(t);
  const r = installCniPlugins({ from, to });
  assert.deepEqual(r, { installed: PLUGINS, kept: [], suspicious: [] });
  for (const p of PLUGINS) {
    assert.equal(readFileSync(join(to, p), 'utf8'), readFileSync(join(from, p), 'utf8'), `${p}: content`);
    const st = statSync(join(to, p));
    assert.equal(st.mode & 0o777, 0o755, `${p}: got mode ${(st.mode & 0o777).toString(8)}, want 755`);
    assert.equal(st.nlink, 1, `${p}: the temporary name is gone (one link left)`);
  }
  assert.deepEqual(readdirSync(to).sort(), [...PLUGINS].sort(), 'nothing else in the directory');
});

test('the node’s own plugins are kept byte for byte; only the missing ones are copied', (t) => {
  const { from, to } = scratch(t);
  const bridge = nodeOwn(to, 'bridge');
  const portmap = nodeOwn(to, 'portmap');
  const r = installCniPlugins({ from, to });
  assert.deepEqual(r.installed, ['host-local', 'loopback']);
  assert.deepEqual(r.kept, ['bridge', 'portmap']);
  assert.equal(readFileSync(join(to, 'bridge'), 'utf8'), bridge);
  assert.equal(readFileSync(join(to, 'portmap'), 'utf8'), portmap);
});

test('idempotent: a second run installs nothing and touches no file', (t) => {
  const { from, to } = scratch(t);
  installCniPlugins({ from, to });
  const before = PLUGINS.map((p) => statSync(join(to, p))).map((s) => [s.ino, s.mtimeMs]);
  const r = installCniPlugins({ from, to });
  assert.deepEqual(r, { installed: [], kept: PLUGINS, suspicious: [] });
  assert.deepEqual(PLUGINS.map((p) => statSync(join(to, p))).map((s) => [s.ino, s.mtimeMs]), before, 'inodes and mtimes');
});

test('errors: each names what is wrong and what to do, and nothing is copied', async (t) => {
  const cases: Array<{ name: string; setup: (d: { root: string; from: string; to: string }) => { from: string; to: string }; want: RegExp }> = [
    {
      name: 'a needed plugin is missing from the image',
      setup: (d) => { rmSync(join(d.from, 'portmap')); return d; },
      want: /plugin "portmap" is missing from .* and there is no .*\/portmap to copy: the image must carry Debian's containernetworking-plugins/,
    },
    {
      name: 'the source directory does not exist',
      setup: (d) => ({ from: join(d.root, 'nowhere'), to: d.to }),
      want: /plugin "bridge" is missing .*--from DIR/,
    },
    {
      name: 'a source plugin is not executable',
      setup: (d) => { chmodSync(join(d.from, 'loopback'), 0o644); return d; },
      want: /loopback is not an executable file; rebuild the image/,
    },
    {
      name: 'the target is a file, not a directory',
      setup: (d) => { writeFileSync(d.to, ''); return d; },
      want: /cannot create the plugin directory .*: EEXIST: .* exists and is not a directory$/,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, (tt) => {
      const d = c.setup(scratch(tt));
      assert.throws(() => installCniPlugins(d), (err: Error) => {
        assert.ok(err instanceof CniInstallError, `${c.name}: got ${err.name}, want CniInstallError`);
        assert.match(err.message, c.want);
        return true;
      });
      if (existsSync(d.to) && statSync(d.to).isDirectory()) assert.deepEqual(readdirSync(d.to), [], `${c.name}: nothing copied`);
    });
  }
});

test('a missing source does not matter when the node already has every plugin', (t) => {
  const { root, to } = scratch(t);
  for (const p of PLUGINS) nodeOwn(to, p);
  assert.deepEqual(installCniPlugins({ from: join(root, 'nowhere'), to }).kept, PLUGINS);
});

test('kept plugins that cannot run are reported; a temporary file from a killed run is removed', (t) => {
  const { root, from, to } = scratch(t);
  nodeOwn(to, 'bridge', 0o644);
  symlinkSync(join(root, 'gone'), join(to, 'portmap'));
  writeFileSync(join(to, `.host-local.vxnet-tmp-1`), 'half a bin');
  const r = installCniPlugins({ from, to });
  assert.deepEqual(r.installed, ['host-local', 'loopback']);
  assert.deepEqual(r.kept, ['bridge', 'portmap'], 'a dangling link still holds the name: it is the node’s, not ours to replace');
  assert.equal(r.suspicious.length, 2, r.suspicious.join('; '));
  assert.match(r.suspicious[0]!, /^bridge: not executable \(mode 644\)$/);
  assert.match(r.suspicious[1]!, /^portmap: ENOENT/);
  assert.ok(!readdirSync(to).some((n) => n.includes('vxnet-tmp')), 'stale temporary file removed');
});

test('network configs that sort before ours are found', (t) => {
  const { root } = scratch(t);
  const dir = join(root, 'net.d');
  mkdirSync(dir);
  for (const n of ['05-cilium.conflist', '10-flannel.conflist', '10-vxnet.conflist', '99-loopback.conf', 'README', '00-old.json.bak']) writeFileSync(join(dir, n), '{}');
  assert.deepEqual(precedingNetworkConfigs(dir), ['05-cilium.conflist', '10-flannel.conflist']);
  assert.deepEqual(precedingNetworkConfigs(join(root, 'absent')), []);
});

test('CLI: installs, logs what it installed and kept, warns about a config ahead of ours, exit 0', (t) => {
  const { root, from, to } = scratch(t);
  nodeOwn(to, 'loopback');
  const confDir = join(root, 'net.d');
  mkdirSync(confDir);
  writeFileSync(join(confDir, '05-other.conflist'), '{}');
  const r = cli(['--from', from, '--to', to, '--conf-dir', confDir]);
  assert.equal(r.code, 0, r.stderr);
  const done = r.logs.find((l) => l['msg'] === 'cni plugins in place');
  assert.deepEqual([done?.['installed'], done?.['kept']], [['bridge', 'host-local', 'portmap'], ['loopback']], r.stderr);
  const warn = r.logs.find((l) => l['level'] === 'warn');
  assert.deepEqual(warn?.['files'], ['05-other.conflist'], r.stderr);
  assert.match(String(warn?.['msg']), /sorts before 10-vxnet\.conflist/);
});

test('CLI: a read-only target is exit 1 with the fix in the message', (t) => {
  const { from, to } = scratch(t);
  mkdirSync(to);
  let wrap: string[];
  if (process.getuid?.() === 0 && existsSync('/usr/bin/unshare')) {
    // A private mount namespace: the read-only bind mount is gone when the process exits.
    wrap = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount --bind -o ro "$0" "$0" && exec "$@"', to];
  } else {
    chmodSync(to, 0o555);
    wrap = [];
  }
  const r = cli(['--from', from, '--to', to], wrap);
  assert.equal(r.code, 1, r.stderr);
  const err = r.logs.find((l) => l['level'] === 'error');
  assert.match(String(err?.['error']), wrap.length > 0 ? /EROFS.*read-only: mount the node's CNI plugin directory read-write/ : /EACCES.*run as root/, r.stderr);
  assert.deepEqual(readdirSync(to), [], 'nothing was written');
});
