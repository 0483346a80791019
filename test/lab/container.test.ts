/**
 * The agent in its own container, as deploy/ ships it (issue 8): every vxnet node of the lab runs
 * the DaemonSet's agent container without a container engine (test/support/container.ts): its
 * own mount namespace, a read-only root, /proc/sys read-only, the manifest's hostPath and
 * ConfigMap mounts where the manifest puts them, its args, its uid, only the capabilities it
 * grants, and no_new_privs. The config is the lab's static one with the ConfigMap's container
 * paths (cniConfDir) and the default run directory, which the manifest mounts.
 *
 * It must forward pod to pod, answer a pod with ICMP "net unreachable" from the device's own
 * address (which needs accept_local on the device, set over netlink since /proc/sys cannot be
 * written), and the test reads from /proc what the process really ran with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { defaultAgentEntry } from '../../src/lab/lab.js';
import { DEFAULT_RUN_DIR } from '../../src/node/lock.js';
import { DEPLOY_DIR, flagValue, hostMount, loadDaemonSet } from '../support/deploy.js';
import { containerArgv } from '../support/container.js';
import { agentSkip, assertAllPodsPing, withLab } from './helpers.js';
import { logLines } from './node-support.js';

const skip = agentSkip(['ip', 'bridge', 'ping', 'ethtool', 'unshare', 'setpriv', 'chroot']);

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

/** The agent's config file as the ConfigMap in deploy/ holds it. */
function configMapConfig(name: string, key: string): Record<string, unknown> {
  const docs = loadAllYaml(readFileSync(join(DEPLOY_DIR, '02-configmap.yaml'), 'utf8')) as Array<{ kind?: string; metadata?: { name?: string }; data?: Record<string, string> }>;
  const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata?.name === name);
  const text = cm?.data?.[key];
  if (text === undefined) throw new Error(`deploy/02-configmap.yaml has no ConfigMap ${name} with key ${key}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** A field of /proc/<pid>/status. */
function status(pid: number, field: string): string {
  return new RegExp(`^${field}:\\s*(.+)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim() ?? '';
}

/** The mount options of the mount at `path` in /proc/<pid>/mountinfo (the last one there wins). */
function mountOptions(pid: number, path: string): string[] {
  const lines = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter((l) => l.split(' ')[4] === path);
  return lines.at(-1)?.split(' ')[5]?.split(',') ?? [];
}

const CAP_NET_ADMIN = 12;

test('the agent runs as the DaemonSet runs it (read-only root and /proc/sys, only NET_ADMIN, no_new_privs, the manifest\'s mounts) and forwards pod to pod', { skip, timeout: 240_000 }, async () => {
  const ds = loadDaemonSet();
  const agent = ds.containers.find((c) => c.name === 'vxnet');
  assert.ok(agent, 'the DaemonSet has the vxnet container');
  const configFile = flagValue(agent.args, '--config');
  assert.ok(configFile, 'the agent container is started with --config');
  const configVolume = agent.mounts.find((m) => m.configMap !== undefined && configFile.startsWith(`${m.mountPath}/`));
  assert.ok(configVolume?.configMap, `a ConfigMap is mounted where ${configFile} is`);
  const cm = configMapConfig(configVolume.configMap, basename(configFile));
  const cniConfDir = String(cm['cniConfDir']);
  assert.equal(hostMount(agent, '/run/vxnet')?.mountPath, DEFAULT_RUN_DIR, 'the run directory is mounted where the agent looks by default');
  assert.equal(hostMount(agent, '/etc/cni/net.d')?.mountPath, cniConfDir, 'the CNI directory is mounted at the ConfigMap\'s cniConfDir');

  const argv = containerArgv({
    container: agent,
    hostPaths: { '/dev/net/tun': '/dev/net/tun', '/etc/cni/net.d': '$NODE_DIR/net.d', '/run/vxnet': '$NODE_DIR/run' },
    configMaps: { [configVolume.configMap]: { [basename(configFile)]: '$NODE_DIR/agent.json' } },
    entrypoint: [process.execPath, defaultAgentEntry()],
  });
  await withLab({
    nodes: 2,
    podsPerNode: 1,
    agentCommand: argv,
    // The lab's static facts, with the container's paths: the ConfigMap's cniConfDir, and the
    // default run directory (no runDir, as in the ConfigMap).
    agentConfigExtra: { cniConfDir, runDir: undefined },
  }, async (lab) => {
    await assertAllPodsPing(lab);
    const p1 = lab.pod('p1a');
    const u = await lab.exec(p1.ns, ['ping', '-n', '-c', '1', '-W', '2', '10.244.77.1'], { timeoutMs: 10_000 });
    const unreachable = u.stdout.split('\n').find((l) => /Unreachable/.test(l)) ?? u.stdout.trim();
    say(`ping from p1a to an address no node owns: ${unreachable}`);
    assert.match(u.stdout, /From 10\.244\.1\.0 icmp_seq=1 Destination Net Unreachable/, 'the agent\'s ICMP error (source: the device\'s own address) reaches the pod: accept_local is set');

    for (const n of lab.nodes) {
      const pid = lab.agentPid(n.index)!;
      const capEff = BigInt(`0x${status(pid, 'CapEff')}`);
      const got: Record<string, string | undefined> = {
        uid: status(pid, 'Uid').split(/\s+/)[0],
        capEff: status(pid, 'CapEff'), capPrm: status(pid, 'CapPrm'), capBnd: status(pid, 'CapBnd'), capInh: status(pid, 'CapInh'), capAmb: status(pid, 'CapAmb'),
        noNewPrivs: status(pid, 'NoNewPrivs'),
        root: mountOptions(pid, '/')[0], procSys: mountOptions(pid, '/proc/sys')[0],
        config: mountOptions(pid, configVolume.mountPath)[0], cni: mountOptions(pid, cniConfDir)[0], run: mountOptions(pid, DEFAULT_RUN_DIR)[0],
      };
      say(`${n.name} agent pid ${pid}: ${JSON.stringify(got)}`);
      const want: Record<string, string> = {
        uid: String(agent.runAsUser),
        capEff: (1n << BigInt(CAP_NET_ADMIN)).toString(16).padStart(16, '0'),
        noNewPrivs: agent.noNewPrivileges ? '1' : '0',
        root: agent.readOnlyRootFilesystem ? 'ro' : 'rw',
        procSys: 'ro',
        config: configVolume.readOnly ? 'ro' : 'rw',
        cni: 'rw',
        run: 'rw',
      };
      assert.deepEqual(agent.capabilities, ['NET_ADMIN'], 'this test reads CapEff for NET_ADMIN alone');
      for (const [k, v] of Object.entries(want)) assert.equal(got[k], v, `${n.name}: ${k}: got ${got[k]}, want ${v}`);
      assert.equal(got['capPrm'], got['capEff']);
      assert.equal(got['capBnd'], got['capEff']);
      assert.equal(BigInt(`0x${got['capInh']}`) | BigInt(`0x${got['capAmb']}`), 0n);
      assert.equal(capEff, 1n << BigInt(CAP_NET_ADMIN));

      const lock = join(n.dir, 'run', 'agent.lock');
      assert.ok(existsSync(lock), `${n.name}: the lock is in the run directory the manifest mounts (${lock})`);
      assert.equal((JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }).pid, pid);
      assert.ok(existsSync(join(n.dir, 'net.d', '10-vxnet.conflist')), `${n.name}: the conflist went through the cni-net-d mount`);
      const errors = logLines(lab, n.index).filter((l) => l['level'] === 'error' || l['level'] === 'warn');
      assert.deepEqual(errors, [], `${n.name}: the agent logged no warning or error`);
    }
  });
});
