/**
 * The deploy/ manifests and the Dockerfile against the code they describe:
 *   - every document is a kind/apiVersion pair the API server knows;
 *   - the ClusterRole grants exactly the (verb, resource) pairs the agent's Kubernetes path uses,
 *     as recorded by the API stand-in while the real code runs (start-up, watch, a forced
 *     re-list, publish, NetworkUnavailable) — no more, no less;
 *   - the ConfigMap passes the agent's own config checker, the DaemonSet's env is what the agent
 *     reads, its args and mounts match the Dockerfile's CMD and the ConfigMap key;
 *   - the Dockerfile runs only npm scripts that exist and copies only files a build produces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
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
import { prepareKubernetes } from '../../src/peers/kube-agent.js';
import { ApiStandIn, makeNode } from '../../src/kube/apiserver.js';
import { DEFAULT_IPERF3_IMAGE, IPERF3_PORT } from '../../src/kube/bench.js';
import { annotationKeys, KUBE_ENV } from '../../src/peers/kube.js';
import { peerNode, Recorder, waitFor } from './helpers.js';

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
  const kubeconfig = standIn.writeKubeconfig(join(mkdtempSync(join(tmpdir(), 'vxnet-rbac-')), 'kubeconfig'));

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
  assert.equal(cfg.mtu + 50, 1500, 'mtu leaves room for 50 bytes of VXLAN on a 1500-byte underlay');
  assert.doesNotThrow(() => annotationKeys(cfg.kubernetes.annotationPrefix));
});

test('the DaemonSet: env the agent reads, args/mounts matching the Dockerfile and ConfigMap, node-level settings', () => {
  const ds = one<V1DaemonSet>('DaemonSet');
  const pod = ds.spec!.template.spec!;
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0]!;

  for (const e of KUBE_ENV) assert.ok((AGENT_ENV as readonly string[]).includes(e), `KUBE_ENV ${e} is not in the agent's AGENT_ENV`);
  for (const e of c.env ?? []) assert.ok((AGENT_ENV as readonly string[]).includes(e.name), `DaemonSet sets ${e.name}, which the agent does not read`);
  const nodeName = c.env?.find((e) => e.name === 'NODE_NAME');
  assert.equal(nodeName?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');

  // args == Dockerfile CMD, and --config points into the ConfigMap's mount.
  const cmd = dockerfile().cmd;
  assert.deepEqual(c.args, cmd);
  const configPath = cmd[cmd.indexOf('--config') + 1]!;
  const mount = c.volumeMounts?.find((m) => configPath.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `no volume mounted over ${configPath}`);
  const vol = pod.volumes?.find((v) => v.name === mount.name);
  assert.equal(vol?.configMap?.name, one<V1ConfigMap>('ConfigMap').metadata!.name);
  assert.ok(one<V1ConfigMap>('ConfigMap').data?.[configPath.slice(mount.mountPath!.length + 1)], `ConfigMap has no key for ${configPath}`);

  // Probes hit the agent's metrics listener.
  const metricsAddr = String(configMapJSON()['metricsAddr']);
  const [host, port] = metricsAddr.split(':');
  const metricsPort = c.ports?.find((p) => p.name === 'metrics');
  assert.equal(String(metricsPort?.containerPort), port);
  assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
  assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
  for (const p of [c.livenessProbe, c.readinessProbe]) {
    assert.equal(String(p?.httpGet?.port), 'metrics');
    if (host === '127.0.0.1') assert.equal(p?.httpGet?.host, '127.0.0.1', 'a loopback-only listener needs the probe host set');
  }

  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.priorityClassName, 'system-node-critical');
  assert.deepEqual(pod.tolerations?.map((t) => t.operator), ['Exists']);
  assert.equal(ds.spec!.updateStrategy?.type, 'RollingUpdate');
  assert.equal(String(ds.spec!.updateStrategy?.rollingUpdate?.maxUnavailable), '1');
  assert.deepEqual(c.securityContext?.capabilities?.add, ['NET_ADMIN']);
  assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
  const tun = pod.volumes?.find((v) => v.hostPath?.path === '/dev/net/tun');
  assert.equal(tun?.hostPath?.type, 'CharDevice');
  assert.ok(c.volumeMounts?.some((m) => m.name === tun?.name && m.mountPath === '/dev/net/tun'));
  const cni = pod.volumes?.find((v) => v.hostPath?.path === '/etc/cni/net.d');
  assert.equal(c.volumeMounts?.find((m) => m.name === cni?.name)?.mountPath, configMapJSON()['cniConfDir']);
  assert.ok(c.resources?.requests?.['cpu'] && c.resources?.requests?.['memory'] && c.resources?.limits?.['memory']);
});

interface Dockerfile {
  runs: string[];
  copies: Array<{ from: string | undefined; sources: string[] }>;
  entrypoint: string[];
  cmd: string[];
}

function dockerfile(): Dockerfile {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const out: Dockerfile = { runs: [], copies: [], entrypoint: [], cmd: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [instr, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    switch (instr!.toUpperCase()) {
      case 'RUN':
        out.runs.push(args);
        break;
      case 'COPY': {
        const parts = rest.filter((p) => !p.startsWith('--') || p.startsWith('--from='));
        const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
        const paths = parts.filter((p) => !p.startsWith('--from='));
        out.copies.push({ from, sources: paths.slice(0, -1) });
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

test('Dockerfile: npm scripts exist, copied files exist after a build, the entry point is built', () => {
  const df = dockerfile();
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const npmCalls = df.runs.flatMap((r) => [...r.matchAll(/\bnpm\s+(\S+)(?:\s+(\S+))?/g)].map((m): [string, string | undefined] => [m[1]!, m[2]]));
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
  assert.deepEqual(df.entrypoint.slice(0, 1), ['node']);
  assert.ok(existsSync(join(ROOT, df.entrypoint[1]!)), `entry point ${df.entrypoint[1]} is not built`);
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
