/**
 * The deploy/ manifests and the Dockerfile against the code they describe:
 *   - every document is a kind/apiVersion pair the API server knows;
 *   - the ClusterRole grants exactly the (verb, resource) pairs the agent's Kubernetes path uses,
 *     as recorded by the API stand-in while the real code runs (start-up, watch, a forced
 *     re-list, publish, NetworkUnavailable) — no more, no less;
 *   - the ConfigMap passes the agent's own config checker, the DaemonSet's env is what the agent
 *     reads, its args and mounts match the Dockerfile's CMD, the ConfigMap key and cniConfDir;
 *   - the probes reach metricsAddr and the start-up budget outlasts the agent's pod CIDR wait;
 *     the update strategy surges, and no declared port (a hostPort, with hostNetwork) blocks it;
 *   - the init container's command line runs as given (paths remapped to temporary directories),
 *     and the hostPaths each container sees are the ones its flags and the config name;
 *   - the uninstall DaemonSet (deploy/uninstall/) runs `vxnet cleanup` with the agent's image,
 *     config, host paths, nodes and privileges, and the ClusterRole covers its API calls;
 *   - the image is named once; the Dockerfile builds on Node 24 with the image's own node,
 *     installs every package whose programs the agent runs, keeps exactly the CNI plugins
 *     install-cni copies, ships no dev dependency, runs only npm scripts that exist and copies
 *     only files a build produces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  loadAllYaml,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1ConfigMap,
  type V1DaemonSet,
  type V1Deployment,
  type V1Job,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { AGENT_ENV, checkConfig } from '../../src/agent/config.js';
import { DEFAULT_RUN_DIR } from '../../src/node/lock.js';
import { DEBIAN_CNI_DIR, requiredPlugins } from '../../src/agent/cni-install.js';
import { POD_CIDR_WAIT_MS, prepareKubernetes } from '../../src/agent/kube-start.js';
import { ApiStandIn, makeNode } from '../support/kube-apiserver.js';
import { DEFAULT_IPERF3_IMAGE, IPERF3_PORT } from '../../bench/kube-cluster.js';
import { KUBE_ENV } from '../../src/peers/kube-client.js';
import { annotationKeys } from '../../src/peers/kube-node.js';
import { peerNode, Recorder, waitFor } from './helpers.js';
import { flagValue, hostMount, loadDaemonSet, type ContainerView, type DaemonSetView } from '../support/deploy.js';
import { tempDir } from '../support/tmp.js';
import { AGENT_NODE_FLAGS } from '../../src/agent/node-flags.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');

/** Kinds the manifests may use, by apiVersion: all served by any Kubernetes >= 1.22. */
const KNOWN: Readonly<Record<string, readonly string[]>> = {
  v1: ['Namespace', 'ServiceAccount', 'ConfigMap', 'Pod', 'Service'],
  'rbac.authorization.k8s.io/v1': ['ClusterRole', 'ClusterRoleBinding'],
  'apps/v1': ['DaemonSet', 'Deployment'],
  'batch/v1': ['Job'],
};
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

interface Doc {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') || e.name.endsWith('.yml') ? [join(dir, e.name)] : [],
  );
}

function load(file: string): Doc[] {
  return loadAllYaml(readFileSync(file, 'utf8')) as Doc[];
}

function all(): Doc[] {
  return yamlFiles(DEPLOY).flatMap(load);
}

function one<T>(kind: string, dir = DEPLOY): T {
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => load(join(dir, f)))
    .filter((d) => d.kind === kind);
  assert.equal(docs.length, 1, `want exactly one ${kind} in ${dir}`);
  return docs[0] as T;
}

test('every manifest document is a known kind/apiVersion with a name (and a namespace when namespaced)', () => {
  const files = yamlFiles(DEPLOY);
  assert.ok(files.length >= 5, `found ${files.length} manifest files`);
  for (const file of files) {
    const docs = load(file);
    assert.ok(docs.length > 0, `${file} is empty`);
    for (const d of docs) {
      const where = `${file}: ${d.apiVersion}/${d.kind} ${d.metadata?.name}`;
      assert.ok(KNOWN[d.apiVersion ?? '']?.includes(d.kind ?? ''), `${where}: unknown kind/apiVersion`);
      assert.ok(d.metadata?.name, `${where}: no metadata.name`);
      if (CLUSTER_SCOPED.has(d.kind!)) assert.equal(d.metadata?.namespace, undefined, `${where}: cluster-scoped with a namespace`);
      else assert.ok(d.metadata?.namespace, `${where}: namespaced kind without metadata.namespace`);
    }
  }
});

/** The ConfigMap's config.json, as the agent will read it. */
function configMapJSON(): Record<string, unknown> {
  const cm = one<V1ConfigMap>('ConfigMap');
  const text = cm.data?.['config.json'];
  assert.ok(text, 'ConfigMap has no config.json');
  return JSON.parse(text) as Record<string, unknown>;
}

test('RBAC grants exactly the calls the agent makes (recorded by the stand-in)', async (t) => {
  const standIn = new ApiStandIn();
  standIn.addNode(makeNode({ name: 'node-1', podCIDR: '10.244.1.0/24', internalIP: '192.168.101.2' }));
  standIn.addNode(peerNode(2));
  await standIn.start();
  t.after(() => standIn.stop());
  const kubeconfig = standIn.writeKubeconfig(join(tempDir('vxnet-rbac-'), 'kubeconfig'));

  // The agent's own Kubernetes path, from the shipped ConfigMap: load facts, publish, watch, forward.
  const cfg = checkConfig(configMapJSON(), { env: { NODE_NAME: 'node-1' }, overrides: { kubeconfig } });
  const prepared = await prepareKubernetes(cfg, () => {});
  const rec = new Recorder();
  await prepared.source.start(rec);
  await waitFor(() => standIn.openWatches > 0, 2000, 'the watch');
  standIn.expireWatches(); // 410 -> re-list
  await waitFor(() => standIn.requests.filter((r) => r.verb === 'list').length >= 2 && standIn.openWatches > 0, 3000, 'the re-list');
  await prepared.onForwarding();
  await prepared.source.stop();
  assert.equal(rec.errors.length, 0, rec.errors.map((e) => e.message).join('; '));
  assert.equal(standIn.getNode('node-1')!.status!.conditions!.find((c) => c['type'] === 'NetworkUnavailable')?.['status'], 'False');

  const used = new Set(standIn.requests.map((r) => `${r.verb} ${r.resource}`));
  for (const r of standIn.requests) assert.ok(r.path.startsWith('/api/v1/'), `${r.path} is not in the core API group`);

  const role = one<V1ClusterRole>('ClusterRole');
  const granted = new Set<string>();
  for (const rule of role.rules ?? []) {
    assert.deepEqual(rule.apiGroups, [''], 'rules are for the core API group only');
    assert.equal(rule.resourceNames, undefined);
    for (const res of rule.resources ?? []) for (const verb of rule.verbs) granted.add(`${verb} ${res}`);
  }
  assert.deepEqual([...granted].sort(), [...used].sort(), 'ClusterRole rules vs the calls the agent made');
});

test('RBAC objects bind the DaemonSet’s service account', () => {
  const sa = one<V1ServiceAccount>('ServiceAccount');
  const crb = one<V1ClusterRoleBinding>('ClusterRoleBinding');
  const role = one<V1ClusterRole>('ClusterRole');
  const ds = one<V1DaemonSet>('DaemonSet');
  assert.equal(crb.roleRef.kind, 'ClusterRole');
  assert.equal(crb.roleRef.name, role.metadata!.name);
  assert.deepEqual(crb.subjects?.map((s) => `${s.kind} ${s.namespace}/${s.name}`), [`ServiceAccount ${sa.metadata!.namespace}/${sa.metadata!.name}`]);
  assert.equal(ds.spec!.template.spec!.serviceAccountName, sa.metadata!.name);
  assert.equal(ds.metadata!.namespace, sa.metadata!.namespace);
});

test('the ConfigMap passes the agent’s own config checks in kubernetes mode', () => {
  const raw = configMapJSON();
  const cfg = checkConfig(raw, { env: { NODE_NAME: 'some-node' } });
  assert.equal(cfg.peerSource, 'kubernetes');
  assert.equal(cfg.node, 'some-node', 'node comes from NODE_NAME');
  assert.equal(cfg.podCIDR, '', 'podCIDR is left to the Node object');
  assert.equal(cfg.mtuFrom, 'interface', 'no mtu or underlayMTU in the ConfigMap: every node derives its MTU from its own underlay interface');
  assert.doesNotThrow(() => annotationKeys(cfg.kubernetes.annotationPrefix));
});

/** The DaemonSet through the view a container-constraints test uses, plus its two containers. */
function daemonSet(): DaemonSetView & { agent: ContainerView; init: ContainerView } {
  const v = loadDaemonSet(DEPLOY);
  assert.deepEqual(v.containers.map((c) => c.name), ['vxnet'], 'one container, the agent');
  assert.deepEqual(v.initContainers.map((c) => c.name), ['install-cni'], 'one init container, the CNI plugin install');
  return { ...v, agent: v.containers[0]!, init: v.initContainers[0]! };
}

test('the DaemonSet’s agent: env the agent reads, args matching the Dockerfile’s CMD and the ConfigMap', () => {
  const { agent } = daemonSet();
  const c = agent.raw;
  for (const e of KUBE_ENV) assert.ok((AGENT_ENV as readonly string[]).includes(e), `KUBE_ENV ${e} is not in the agent's AGENT_ENV`);
  for (const e of c.env ?? []) assert.ok((AGENT_ENV as readonly string[]).includes(e.name), `DaemonSet sets ${e.name}, which the agent does not read`);
  const nodeName = c.env?.find((e) => e.name === 'NODE_NAME');
  assert.equal(nodeName?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
  // A rolling update hands the node over (maxSurge): the new agent asks the old one, and knows its pod.
  assert.equal(c.env?.find((e) => e.name === 'VXNET_TAKEOVER')?.value, '1');
  assert.equal(c.env?.find((e) => e.name === 'POD_UID')?.valueFrom?.fieldRef?.fieldPath, 'metadata.uid');

  // args == Dockerfile CMD, and --config points into the ConfigMap's mount.
  const cmd = dockerfile().cmd;
  assert.deepEqual(c.args, cmd);
  const configPath = flagValue(cmd, '--config')!;
  const mount = agent.mounts.find((m) => configPath.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `no volume mounted over ${configPath}`);
  assert.equal(mount.configMap, one<V1ConfigMap>('ConfigMap').metadata!.name);
  assert.equal(mount.readOnly, true, 'the config is mounted read-only');
  assert.ok(one<V1ConfigMap>('ConfigMap').data?.[configPath.slice(mount.mountPath.length + 1)], `ConfigMap has no key for ${configPath}`);
  assert.ok(c.resources?.requests?.['cpu'] && c.resources?.requests?.['memory'] && c.resources?.limits?.['memory']);
});

/** Where the agent's container mounts the run-vxnet hostPath: the ConfigMap's runDir, or the default. */
function agentRunDir(c: { volumeMounts?: { name: string; mountPath: string }[] }): string {
  const mount = c.volumeMounts?.find((m) => m.name === 'run-vxnet')?.mountPath;
  assert.ok(mount, 'the agent mounts run-vxnet');
  assert.equal(String(configMapJSON()['runDir'] ?? DEFAULT_RUN_DIR), mount, 'runDir is where the hostPath is mounted');
  return mount;
}

test('the DaemonSet’s probes: metricsAddr’s host and port; the start-up budget covers the wait for a pod CIDR', () => {
  const c = daemonSet().agent.raw;
  const [host, port] = String(configMapJSON()['metricsAddr']).split(':');
  // The startup probe runs `vxnet probe` (the image's entrypoint), which checks that the agent
  // holding the node lock is this pod's before it asks metricsAddr's /healthz: during an update
  // the old pod's agent answers on the same port.
  const run = agentRunDir(c);
  assert.deepEqual(c.startupProbe?.exec?.command, [...dockerfile().entrypoint, 'probe', '--metrics', `${host}:${port}`, '--run-dir', run]);
  assert.equal(c.startupProbe?.httpGet, undefined);
  const probes = [
    { name: 'livenessProbe', probe: c.livenessProbe, path: '/healthz' },
    { name: 'readinessProbe', probe: c.readinessProbe, path: '/readyz' },
  ];
  for (const p of probes) {
    assert.equal(p.probe?.httpGet?.path, p.path, `${p.name} path`);
    assert.equal(String(p.probe?.httpGet?.port), port, `${p.name} port: got ${p.probe?.httpGet?.port}, want metricsAddr's ${port}`);
    if (host === '127.0.0.1') assert.equal(p.probe?.httpGet?.host, '127.0.0.1', `${p.name}: a loopback-only listener needs the probe host set`);
  }
  // The agent serves nothing until it has its pod CIDR; the startup probe must outlast that wait
  // (plus the start itself), or the kubelet kills an agent that is only waiting for IPAM.
  const s = c.startupProbe!;
  const budget = (s.initialDelaySeconds ?? 0) + (s.periodSeconds ?? 10) * (s.failureThreshold ?? 3);
  const wait = POD_CIDR_WAIT_MS / 1000;
  assert.ok(budget >= wait + 30, `startupProbe allows ${budget} s; want at least the ${wait} s pod CIDR wait + 30 s`);
  // The startup probe gates the others, so they need no initial delay of their own.
  assert.equal(c.livenessProbe?.initialDelaySeconds, undefined);
});

test('the DaemonSet’s update strategy: the new pod starts before the old one stops, and nothing blocks it', () => {
  const { ds, pod } = daemonSet();
  assert.equal(ds.spec!.updateStrategy?.type, 'RollingUpdate');
  assert.equal(String(ds.spec!.updateStrategy?.rollingUpdate?.maxSurge), '1');
  assert.equal(String(ds.spec!.updateStrategy?.rollingUpdate?.maxUnavailable), '0');
  // With hostNetwork every declared container port becomes a hostPort, and the scheduler refuses
  // a second pod with the same hostPort on the node: the surge pod would stay Pending.
  assert.equal(pod.hostNetwork, true);
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    assert.deepEqual(c.ports ?? [], [], `${c.name} declares ports; with hostNetwork and maxSurge the new pod could not be scheduled`);
  }
});

test('the DaemonSet’s node-level settings: Linux nodes, every node, critical priority, least privilege', () => {
  const { pod, agent, init } = daemonSet();
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
  assert.deepEqual(pod.tolerations?.map((t) => t.operator), ['Exists']);
  assert.equal(pod.priorityClassName, 'system-node-critical');
  const cases = [
    { c: agent, capabilities: ['NET_ADMIN'] },
    { c: init, capabilities: [] },
  ];
  for (const k of cases) {
    const got = { capabilities: k.c.capabilities, runAsUser: k.c.runAsUser, noNewPrivileges: k.c.noNewPrivileges, readOnlyRootFilesystem: k.c.readOnlyRootFilesystem, privileged: k.c.privileged };
    // Root (see the Dockerfile), drop ALL plus only what is listed, no escalation, nothing writable but the mounts.
    assert.deepEqual(got, { capabilities: k.capabilities, runAsUser: 0, noNewPrivileges: true, readOnlyRootFilesystem: true, privileged: false }, k.c.name);
  }
});

test('the DaemonSet’s host mounts: what each container sees where, and every volume used', () => {
  const { pod, agent, init } = daemonSet();
  const cfg = configMapJSON();
  const cases: Array<{ name: string; c: ContainerView; hostPath: string; want: { mountPath: string; readOnly: boolean; type: string } }> = [
    { name: 'agent: the TUN device', c: agent, hostPath: '/dev/net/tun', want: { mountPath: '/dev/net/tun', readOnly: false, type: 'CharDevice' } },
    { name: 'agent: the conflist directory is cniConfDir', c: agent, hostPath: '/etc/cni/net.d', want: { mountPath: String(cfg['cniConfDir']), readOnly: false, type: 'DirectoryOrCreate' } },
    { name: 'agent: the run directory, shared by the old and new pod', c: agent, hostPath: '/run/vxnet', want: { mountPath: '/run/vxnet', readOnly: false, type: 'DirectoryOrCreate' } },
    { name: 'init: the plugin directory is --to', c: init, hostPath: '/opt/cni/bin', want: { mountPath: flagValue(init.args, '--to')!, readOnly: false, type: 'DirectoryOrCreate' } },
    { name: 'init: the conflist directory is --conf-dir, read-only', c: init, hostPath: '/etc/cni/net.d', want: { mountPath: flagValue(init.args, '--conf-dir')!, readOnly: true, type: 'DirectoryOrCreate' } },
  ];
  for (const k of cases) {
    const m = hostMount(k.c, k.hostPath);
    assert.deepEqual(m && { mountPath: m.mountPath, readOnly: m.readOnly, type: m.hostPath?.type }, k.want, k.name);
  }
  assert.equal(hostMount(agent, '/opt/cni/bin'), undefined, 'the agent does not need the plugin directory');
  assert.deepEqual(agent.mounts.filter((m) => m.hostPath).map((m) => m.hostPath!.path).sort(), ['/dev/net/tun', '/etc/cni/net.d', '/run/vxnet'], 'the agent’s host paths, all of them');

  const mounted = new Set([...pod.containers, ...(pod.initContainers ?? [])].flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  const volumes = (pod.volumes ?? []).map((v) => v.name);
  assert.deepEqual([...mounted].sort(), [...volumes].sort(), 'volumes vs mounts: every mount has a volume, every volume is mounted');
});

test('the init container: the install-cni command line works as the manifest gives it', (t) => {
  const args = daemonSet().init.args;
  assert.equal(args[0], 'install-cni');
  assert.equal(flagValue(args, '--from'), DEBIAN_CNI_DIR, 'where Debian’s containernetworking-plugins puts them in the image');
  // Run it, with each path the manifest names standing for a temporary directory.
  const root = mkdtempSync(join(tmpdir(), 'vxnet-initc-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const from = join(root, 'image');
  mkdirSync(from);
  for (const p of requiredPlugins()) {
    writeFileSync(join(from, p), '#!/bin/sh\n');
    chmodSync(join(from, p), 0o755);
  }
  const remap: Record<string, string> = { [DEBIAN_CNI_DIR]: from, [flagValue(args, '--to')!]: join(root, 'opt-cni-bin'), [flagValue(args, '--conf-dir')!]: join(root, 'net.d') };
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args.map((a) => remap[a] ?? a)], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(join(root, 'opt-cni-bin')).sort(), [...requiredPlugins()].sort(), r.stderr);
});

test('the image is named once, in the DaemonSet, for both containers, tagged with package.json’s version', () => {
  const { agent, init } = daemonSet();
  assert.ok(agent.image, 'the agent has an image');
  assert.equal(init.image, agent.image, 'the init container runs the same image');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(agent.image!.split(':').at(-1), pkg.version, `image ${agent.image}: tag vs package.json version`);
  const top = readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml'));
  const mentions = top.flatMap((f) => readFileSync(join(DEPLOY, f), 'utf8').split('\n').filter((l) => l.includes(agent.image!)).map((l) => `${f}: ${l.trim()}`));
  assert.equal(mentions.length, 1, `the image is named in one place, found:\n${mentions.join('\n')}`);
});

test('uninstall: the cleanup DaemonSet runs vxnet cleanup where the agent ran, as the agent runs, and RBAC covers its calls', async (t) => {
  const { agent, pod } = daemonSet();
  const u = loadDaemonSet(join(DEPLOY, 'uninstall'));
  assert.deepEqual(u.initContainers.map((c) => c.name), ['cleanup'], 'the cleanup runs in the init container');
  assert.deepEqual(u.containers.map((c) => c.name), ['done'], 'then one container that waits');
  const c = u.initContainers[0]!;
  const upod = u.pod;
  assert.equal(c.image, agent.image, 'the same image as the agent (keep the two in step)');
  assert.equal(u.containers[0]!.image, agent.image);
  assert.deepEqual(c.args, ['cleanup', '--config', flagValue(agent.args, '--config')!, '--kubernetes'], 'the agent\'s own config, and the Node object too');
  assert.deepEqual(c.raw.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
  const same = { serviceAccountName: pod.serviceAccountName, hostNetwork: pod.hostNetwork, nodeSelector: pod.nodeSelector, tolerations: pod.tolerations };
  assert.deepEqual({ serviceAccountName: upod.serviceAccountName, hostNetwork: upod.hostNetwork, nodeSelector: upod.nodeSelector, tolerations: upod.tolerations }, same, 'every node the agent runs on, as the agent');
  assert.deepEqual({ caps: c.capabilities, uid: c.runAsUser, nnp: c.noNewPrivileges, ro: c.readOnlyRootFilesystem, privileged: c.privileged },
    { caps: ['NET_ADMIN'], uid: 0, nnp: true, ro: true, privileged: false }, 'the agent\'s least privilege');
  for (const path of ['/etc/cni/net.d', '/run/vxnet']) {
    const m = hostMount(c, path);
    assert.deepEqual(m && { mountPath: m.mountPath, readOnly: m.readOnly }, { mountPath: hostMount(agent, path)!.mountPath, readOnly: false }, `host path ${path}`);
  }
  const config = (v: ContainerView): unknown => v.mounts.filter((m) => m.configMap).map((m) => ({ at: m.mountPath, cm: m.configMap }));
  assert.deepEqual(config(c), config(agent), 'the agent\'s ConfigMap at the agent\'s path');
  const waiter = u.containers[0]!;
  assert.deepEqual({ caps: waiter.capabilities, root: waiter.runAsUser === 0 }, { caps: [], root: false }, 'the waiting container holds no privilege');

  // Its calls to the API (unpublish) are within what the ClusterRole grants.
  const standIn = new ApiStandIn();
  standIn.addNode(peerNode(1));
  await standIn.start();
  t.after(() => standIn.stop());
  const { unpublish } = await import('../../src/peers/kube-publish.js');
  await unpublish(standIn.kubeConfig(), 'node-1', String((configMapJSON()['kubernetes'] as { annotationPrefix: string }).annotationPrefix));
  const role = one<V1ClusterRole>('ClusterRole');
  const granted = new Set((role.rules ?? []).flatMap((r) => (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${v} ${res}`))));
  const used = [...new Set(standIn.requests.map((r) => `${r.verb} ${r.resource}`))];
  assert.ok(used.length > 0);
  for (const call of used) assert.ok(granted.has(call), `cleanup calls ${call}, which the ClusterRole does not grant`);
});

interface Dockerfile {
  stages: Array<{ image: string; alias: string | undefined }>;
  runs: Array<{ stage: number; text: string }>;
  copies: Array<{ stage: number; from: string | undefined; sources: string[] }>;
  envs: string[];
  entrypoint: string[];
  cmd: string[];
}

function dockerfile(): Dockerfile {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n(\s*#.*\n)*/g, ' ');
  const out: Dockerfile = { stages: [], runs: [], copies: [], envs: [], entrypoint: [], cmd: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [instr, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    const stage = out.stages.length - 1;
    switch (instr!.toUpperCase()) {
      case 'FROM':
        out.stages.push({ image: rest[0]!, alias: rest[1]?.toUpperCase() === 'AS' ? rest[2] : undefined });
        break;
      case 'RUN':
        out.runs.push({ stage, text: args });
        break;
      case 'ENV':
        out.envs.push(args);
        break;
      case 'COPY': {
        const parts = rest.filter((p) => !p.startsWith('--') || p.startsWith('--from='));
        const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
        const paths = parts.filter((p) => !p.startsWith('--from='));
        out.copies.push({ stage, from, sources: paths.slice(0, -1) });
        break;
      }
      case 'ENTRYPOINT':
        out.entrypoint = JSON.parse(args) as string[];
        break;
      case 'CMD':
        out.cmd = JSON.parse(args) as string[];
        break;
    }
  }
  return out;
}

/** Debian packages of the runtime stage: every `apt-get install` in its RUN steps. */
function runtimePackages(df: Dockerfile): string[] {
  const last = df.stages.length - 1;
  return df.runs.filter((r) => r.stage === last).flatMap((r) =>
    [...r.text.matchAll(/apt-get install((?:\s+[^&;|\s]+)+)/g)].flatMap((m) => m[1]!.trim().split(/\s+/).filter((w) => !w.startsWith('-'))));
}

/** What each program the agent runs comes from, in Debian. */
const PACKAGE_OF: Readonly<Record<string, string>> = { ip: 'iproute2', bridge: 'iproute2', nft: 'nftables', sysctl: 'procps', ethtool: 'ethtool' };

/** Programs the product (src/, without the lab) runs by name: execFile('x', …), spawn('x', …), run('x', …). */
function programsExecuted(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (p !== join(ROOT, 'src/lab')) walk(p);
      } else if (e.name.endsWith('.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/\b(?:execFile|execFileSync|spawn|spawnSync|run|runOk)\(\s*'([A-Za-z0-9_.-]+)'/g)) {
          found.set(m[1]!, [...(found.get(m[1]!) ?? []), p.slice(ROOT.length)]);
        }
      }
    }
  };
  walk(join(ROOT, 'src'));
  return found;
}

test('Dockerfile: Node.js 24 base images, a two-stage build, the runtime packages the agent needs', () => {
  const df = dockerfile();
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const major = /^>=\s*(\d+)/.exec(pkg.engines.node)?.[1];
  assert.equal(major, '24', 'package.json engines');
  assert.deepEqual(df.stages.map((s) => s.image), [`node:${major}-bookworm`, `node:${major}-bookworm-slim`], 'base images: the build on the full image, the runtime on slim');
  assert.equal(df.stages[0]!.alias, 'build');
  assert.ok(df.copies.filter((c) => c.stage === 1).every((c) => c.from === 'build'), 'the runtime stage takes only built files from the build stage');
  assert.ok(!df.runs.some((r) => r.stage === 1 && /(^|&&|;)\s*(npm|npx|node-gyp|make|gcc|g\+\+)\s/.test(r.text)), 'no compiler or npm step in the runtime stage');

  const installed = runtimePackages(df);
  const cases = [
    { name: 'iproute2', why: 'ip: the underlay interface and its MTU (src/agent/underlay.ts)' },
    { name: 'nftables', why: 'nft: the masquerade rules' },
    { name: 'containernetworking-plugins', why: 'the CNI plugins install-cni copies to the node' },
  ];
  for (const c of cases) assert.ok(installed.includes(c.name), `runtime stage lacks ${c.name} (${c.why}); it installs ${installed.join(', ')}`);
  assert.deepEqual([...installed].sort(), cases.map((c) => c.name).sort(), 'the runtime stage installs these and nothing else (keep the image small; add a case with its reason)');
  for (const [program, where] of programsExecuted()) {
    const want = PACKAGE_OF[program];
    assert.ok(want, `${where.join(', ')} run "${program}": say which Debian package has it in PACKAGE_OF, and install that in the Dockerfile`);
    assert.ok(installed.includes(want), `${where.join(', ')} run "${program}", from ${want}, which the runtime stage does not install`);
  }
  // The image keeps exactly the plugins install-cni copies, where install-cni looks for them.
  const prune = df.runs.map((r) => /find (\S+) -type f((?: ! -name \S+)+) -delete/.exec(r.text)).find((m) => m);
  assert.ok(prune, 'the runtime stage removes the CNI plugins the conflist does not use');
  assert.equal(prune[1], DEBIAN_CNI_DIR);
  assert.deepEqual([...prune[2]!.matchAll(/-name (\S+)/g)].map((m) => m[1]).sort(), [...requiredPlugins()].sort(), 'plugins kept in the image vs requiredPlugins()');
});

test('Dockerfile: the image’s own node builds and runs it; the node dev dependency is neither used nor shipped', () => {
  const df = dockerfile();
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string>; dependencies: Record<string, string> };
  assert.ok(pkg.devDependencies['node'], 'node is a dev dependency (else npm prune would keep it)');
  assert.equal(pkg.dependencies['node'], undefined);
  const build = df.runs.filter((r) => r.stage === 0).map((r) => r.text);
  const ci = build.find((r) => /\bnpm ci\b/.test(r));
  assert.match(ci ?? '', /npm ci --ignore-scripts/, 'no lifecycle script runs at install, so the node package fetches no binary');
  assert.match(ci ?? '', /rm -rf node_modules\/node node_modules\/\.bin\/node/, 'and its package is removed before anything runs node');
  assert.ok(build.some((r) => /npm_config_nodedir=\/usr\/local npm run install/.test(r)), 'the addon builds against the image’s node headers');
  const prune = build.findIndex((r) => /npm prune --omit=dev/.test(r));
  assert.equal(prune, build.length - 1, 'npm prune --omit=dev is the build stage’s last step, so node_modules/ leaves it without dev dependencies');
  for (const c of df.copies) {
    for (const src of c.sources) assert.ok(!/node_modules\/(node|node-linux|\.bin)/.test(src), `COPY ${src} would ship the node dev dependency or npm's bin links`);
  }
  assert.ok(!df.envs.some((e) => /PATH=.*node_modules/.test(e)), 'no node_modules/.bin on PATH');
  assert.deepEqual(df.entrypoint.slice(0, 1), ['node'], 'the entry point is the image’s node');
  // The agent's Node flags, as the lab and the bin's shebang use them (src/agent/node-flags.ts).
  assert.deepEqual(df.entrypoint.slice(1, -1), AGENT_NODE_FLAGS, 'the entry point runs node with AGENT_NODE_FLAGS');
});

test('Dockerfile: npm scripts exist, copied files exist after a build, the entry point is built', () => {
  const df = dockerfile();
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // npm as a command (start of the step or after && ; ||, behind any VAR=value), not a path that ends in npm.
  const npmCalls = df.runs.flatMap((r) => [...r.text.matchAll(/(?:^|&&|;|\|\|)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S+\s+)*npm\s+(\S+)(?:\s+(\S+))?/g)].map((m): [string, string | undefined] => [m[1]!, m[2]]));
  assert.ok(npmCalls.length > 0);
  for (const [sub, arg] of npmCalls) {
    assert.ok(['ci', 'run', 'prune'].includes(sub), `npm ${sub} in a RUN step`);
    if (sub === 'run') assert.ok(arg && pkg.scripts[arg], `npm run ${arg}: no such script in package.json`);
  }
  assert.ok(npmCalls.some(([s, a]) => s === 'run' && a === 'build'), 'the image runs the build script');

  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const { from, sources } of df.copies) {
    for (const src of sources) {
      if (from === undefined) {
        // From the build context: must exist in the repo and not be dockerignored.
        const rel = src.replace(/\/$/, '');
        assert.ok(existsSync(join(ROOT, rel)), `COPY ${src}: not in the repository`);
        assert.ok(!ignored.includes(rel.split('/')[0]!), `COPY ${src}: excluded by .dockerignore`);
      } else {
        // From the build stage (WORKDIR /src): must be what a build leaves in the repo root.
        const rel = src.replace(/^\/src\//, '').replace(/\/$/, '');
        if (rel.includes('*')) {
          const dir = rel.slice(0, rel.lastIndexOf('/'));
          const suffix = rel.slice(rel.lastIndexOf('*') + 1);
          const hits = existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).filter((f) => f.endsWith(suffix)) : [];
          assert.ok(hits.length > 0, `COPY --from=${from} ${src}: nothing matches after a build`);
        } else {
          assert.ok(existsSync(join(ROOT, rel)), `COPY --from=${from} ${src}: missing after a build`);
        }
      }
    }
  }
  const entry = df.entrypoint[df.entrypoint.length - 1]!;
  assert.ok(existsSync(join(ROOT, entry)), `entry point ${entry} is not built`);
  assert.deepEqual(df.cmd.slice(0, 2), ['agent', '--config']);
});

test('bench manifests: client kept off the server’s node, same image and port as the cluster bench', () => {
  const dir = join(DEPLOY, 'bench');
  const server = one<V1Deployment>('Deployment', dir);
  const job = one<V1Job>('Job', dir);
  const serverLabels = server.spec!.template.metadata!.labels!;
  assert.deepEqual(server.spec!.selector.matchLabels, serverLabels);
  const anti = job.spec!.template.spec!.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  assert.equal(anti?.length, 1);
  assert.equal(anti![0]!.topologyKey, 'kubernetes.io/hostname');
  assert.deepEqual(anti![0]!.labelSelector?.matchLabels, serverLabels);
  const clientLabels = job.spec!.template.metadata!.labels ?? {};
  const selfMatch = Object.entries(anti![0]!.labelSelector!.matchLabels!).every(([k, v]) => clientLabels[k] === v);
  assert.equal(selfMatch, false, 'the client pod matches its own anti-affinity selector');
  for (const c of [...server.spec!.template.spec!.containers, ...job.spec!.template.spec!.containers]) {
    assert.equal(c.image, DEFAULT_IPERF3_IMAGE);
    assert.ok(c.args?.includes(String(IPERF3_PORT)));
  }
  assert.ok(job.spec!.template.spec!.containers[0]!.args!.includes('-J'));
});
