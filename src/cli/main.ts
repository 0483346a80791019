#!/usr/bin/env node
/**
 * The `vxnet` command. Subcommands:
 *
 *   vxnet agent --config FILE [--node N] [--kubeconfig P] [--iface IF] [--underlay-ip IP]
 *   vxnet cleanup [--config FILE] [--device D] [--cni-conf-dir DIR] [--run-dir DIR]
 *                 [--kubernetes | --kubeconfig P] [--node N]      (uninstall: what the agent left)
 *   vxnet status [--metrics HOST:PORT] [--json]
 *   vxnet install-cni [--from DIR] [--to DIR] [--conf-dir DIR]   (the DaemonSet's init container)
 *   vxnet lab up|down|test|bench [options]     (root; everything inside network namespaces)
 *
 * The cluster bench (iperf3 between two pods of a real cluster) is not part of the agent: it is
 * `npm run bench:cluster` in a checkout (bench/kube-cluster.ts); `vxnet bench` says so.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error, or another agent
 * holds the node (agent), or a live agent holds it (cleanup): retrying does not help until an
 * operator acts.
 */
import { parseArgs } from 'node:util';
import { loadConfigFile, ConfigError, checkNodeFacts, checkPeers, readPeersFile, DEFAULTS } from '../agent/config.js';
import { makeLogger } from '../agent/log.js';
import { fingerprint, readBoundedBytes } from '../agent/config-text.js';
import { CONFLIST_NAME } from '../agent/cni-conflist.js';
import { CniInstallError, DEBIAN_CNI_DIR, DEFAULT_CNI_BIN_DIR, installCniPlugins, precedingNetworkConfigs } from '../agent/cni-install.js';
import { Agent } from '../agent/agent.js';
import { acquireNodeLock, DEFAULT_RUN_DIR, NodeLockedError, RunDir, type NodeLock } from '../node/lock.js';
import { cleanupNode } from '../node/cleanup.js';
import { FilePeerSource } from '../peers/file.js';
import type { AgentStatus } from '../agent/metrics.js';
import type { PeerSource } from '../peers/source.js';
import type { AgentConfig } from '../agent/config-types.js';

const USAGE = `usage:
  vxnet agent --config FILE [--node NAME] [--kubeconfig PATH] [--iface IFACE] [--underlay-ip IP]
  vxnet cleanup [--config FILE] [--device NAME] [--cni-conf-dir DIR] [--run-dir DIR] [--kubernetes | --kubeconfig PATH] [--node NAME]
  vxnet status [--metrics HOST:PORT] [--json]
  vxnet install-cni [--from DIR] [--to DIR] [--conf-dir DIR]
  vxnet lab up|down|test|bench [--nodes N] [--id ID] [--keep]   (run "vxnet lab help" for more)
`;

class UsageError extends Error {}

/** SIGHUPs that arrive within this many ms of the first are one reload. */
const SIGHUP_COALESCE_MS = 100;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'agent': return agentCmd(rest);
    case 'cleanup': return cleanupCmd(rest);
    case 'status': return statusCmd(rest);
    case 'install-cni': return installCniCmd(rest);
    case 'lab': {
      const lab = await import('../lab/cli.js');
      return lab.labMain(rest);
    }
    case 'bench': return benchCmd();
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

async function agentCmd(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args, options: {
      config: { type: 'string', short: 'c' }, node: { type: 'string' }, kubeconfig: { type: 'string' },
      iface: { type: 'string' }, 'underlay-ip': { type: 'string' },
    },
  });
  if (!values.config) throw new UsageError('agent needs --config FILE');
  const overrides = {
    ...(values.node ? { node: values.node } : {}),
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.iface ? { iface: values.iface } : {}),
    ...(values['underlay-ip'] ? { underlayIP: values['underlay-ip'] } : {}),
  };
  const log = makeLogger();
  // SIGHUP's default action kills the process: take it over before the (possibly long) config
  // check. A burst of SIGHUPs is one reload and one log line; the peer source spaces reloads
  // further. Before the agent runs, a reload has nothing to do: the config is being read now.
  let agent: Agent | undefined;
  let hups = 0;
  process.on('SIGHUP', () => {
    if (hups++ > 0) return;
    setTimeout(() => {
      log('info', 'SIGHUP: reloading peers', hups > 1 ? { signals: hups } : {});
      hups = 0;
      agent?.reloadPeers();
    }, SIGHUP_COALESCE_MS);
  });
  // The fingerprints of the bytes the config check read, so the peer source can tell at start
  // whether the files still hold them.
  const fingerprints = new Map<string, string>();
  let cfg: AgentConfig = loadConfigFile(values.config, overrides, { log, onRead: (path, bytes) => fingerprints.set(path, fingerprint(bytes)) });
  // One agent per node, decided before anything on the node or in the cluster is touched.
  let lock: NodeLock;
  try {
    lock = acquireNodeLock(new RunDir(cfg.runDir), { role: 'agent', node: cfg.node, device: cfg.device });
  } catch (err) {
    if (!(err instanceof NodeLockedError)) throw err;
    log('error', 'another agent holds this node', { error: err.message, lock: err.lockPath, holder: err.holder });
    return 2;
  }
  let source: PeerSource;
  let onForwarding: (() => Promise<void>) | undefined;
  if (cfg.peerSource === 'kubernetes') {
    const kube = await import('../agent/kube-start.js');
    const prepared = await kube.prepareKubernetes(cfg, log);
    cfg = prepared.config;
    // The underlay address came from the cluster: check it as a static config's is checked.
    checkNodeFacts(cfg);
    source = prepared.source;
    onForwarding = prepared.onForwarding;
  } else {
    const configPath = values.config;
    const watched = cfg.peersFile ? [cfg.peersFile] : [configPath];
    const self = cfg;
    source = new FilePeerSource(watched, () => (self.peersFile
      ? checkPeers(readPeersFile(self.peersFile), self, { log, source: self.peersFile })
      : loadConfigFile(configPath, overrides, { log }).peers), {
      initial: { peers: cfg.peers, fingerprints }, fingerprint: (path) => fingerprint(readBoundedBytes(path)),
    });
  }
  const running = new Agent(cfg, source, log, onForwarding ? { onForwarding } : {});
  agent = running;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log('info', 'stopping', { signal });
    running.stop().then(() => {
      lock.release();
      process.exit(0);
    }, (err: Error) => {
      log('error', 'stop failed', { error: err.message });
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (err) => {
    // A control-plane bug must not take the node's network down with it: log and keep the data
    // path (which runs in its own threads) going.
    log('error', 'uncaught exception in the control plane', { error: err.message, stack: err.stack });
  });
  process.on('unhandledRejection', (err) => {
    log('error', 'unhandled rejection in the control plane', { error: String(err) });
  });
  try {
    await running.start();
  } catch (err) {
    log('error', 'agent failed to start', { error: (err as Error).message });
    await running.stop().catch(() => undefined);
    lock.release();
    return 1;
  }
  return new Promise<number>(() => { /* runs until a signal */ });
}

/**
 * Removes what the agent created on this node (src/node/cleanup.ts) and, with --kubernetes or
 * --kubeconfig, what it published on its Node. Settings come from --config (the agent's own
 * file), and each flag overrides its field.
 */
async function cleanupCmd(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args, options: {
      config: { type: 'string', short: 'c' }, device: { type: 'string' }, 'cni-conf-dir': { type: 'string' }, 'run-dir': { type: 'string' },
      kubernetes: { type: 'boolean' }, kubeconfig: { type: 'string' }, node: { type: 'string' },
    },
  });
  const file = values.config ? loadConfigFile(values.config, { ...(values.node ? { node: values.node } : {}), ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}) }) : undefined;
  const device = values.device ?? file?.device ?? DEFAULTS.device;
  const runDir = values['run-dir'] ?? file?.runDir ?? DEFAULT_RUN_DIR;
  const cniConfDir = values['cni-conf-dir'] ?? file?.cniConfDir;
  const log = makeLogger();
  let report;
  try {
    report = await cleanupNode({ device, runDir, cniConfDir });
  } catch (err) {
    if (!(err instanceof NodeLockedError)) throw err;
    log('error', 'cleanup refused', { error: err.message, lock: err.lockPath, holder: err.holder });
    return 2;
  }
  if (values.kubernetes || values.kubeconfig) {
    const node = values.node ?? file?.node ?? process.env['NODE_NAME'];
    if (!node) throw new UsageError('cleanup --kubernetes needs the node name: --node NAME, NODE_NAME, or "node" in --config');
    const { loadKubeConfig } = await import('../peers/kube-client.js');
    const { unpublish } = await import('../peers/kube-publish.js');
    const prefix = file?.kubernetes.annotationPrefix ?? DEFAULTS.annotationPrefix;
    const r = await unpublish(loadKubeConfig(values.kubeconfig ?? file?.kubernetes.kubeconfig), node, prefix);
    if (!r.nodeFound) {
      report.absent.push(`Node ${node} (not in the cluster)`);
    } else {
      if (r.removedAnnotations.length > 0) report.removed.push(`Node ${node} annotations ${r.removedAnnotations.join(', ')}`);
      else report.absent.push(`Node ${node} annotations under ${prefix}`);
      if (r.removedCondition) report.removed.push(`Node ${node} condition NetworkUnavailable set by vxnet`);
      else report.absent.push(`Node ${node} condition NetworkUnavailable set by vxnet`);
      if (r.foreignConditionReason !== undefined) report.kept.push(`Node ${node} condition NetworkUnavailable (reason ${r.foreignConditionReason}: not vxnet's)`);
    }
  }
  for (const what of report.removed) log('info', 'removed', { what });
  for (const what of report.kept) log('warn', 'left in place', { what });
  log('info', report.removed.length === 0 ? 'cleanup: nothing of vxnet was left on this node' : 'cleanup done', {
    removed: report.removed.length, alreadyAbsent: report.absent, kept: report.kept.length,
  });
  return 0;
}

/** Copies the CNI plugins the conflist needs into the node's plugin directory, keeping any already there. */
function installCniCmd(args: string[]): number {
  const { values } = parseArgs({
    args, options: { from: { type: 'string', default: DEBIAN_CNI_DIR }, to: { type: 'string', default: DEFAULT_CNI_BIN_DIR }, 'conf-dir': { type: 'string' } },
  });
  const log = makeLogger();
  try {
    const r = installCniPlugins({ from: values.from, to: values.to });
    log('info', 'cni plugins in place', { dir: values.to, installed: r.installed, kept: r.kept });
    for (const why of r.suspicious) log('warn', 'kept a cni plugin that does not look runnable; pods on this node may fail to start', { dir: values.to, plugin: why });
  } catch (err) {
    if (!(err instanceof CniInstallError)) throw err;
    log('error', 'cni plugin install failed', { error: err.message });
    return 1;
  }
  const confDir = values['conf-dir'];
  const ahead = confDir ? precedingNetworkConfigs(confDir) : [];
  if (ahead.length > 0) {
    log('warn', `another network configuration sorts before ${CONFLIST_NAME}: the container runtime uses the first one, so pods will not get the vxnet network until it is removed`, { dir: confDir, files: ahead });
  }
  return 0;
}

async function statusCmd(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { metrics: { type: 'string', default: '127.0.0.1:9469' }, json: { type: 'boolean' } } });
  let st: AgentStatus;
  try {
    const res = await fetch(`http://${values.metrics}/status`, { signal: AbortSignal.timeout(3000) });
    st = (await res.json()) as AgentStatus;
  } catch (err) {
    process.stderr.write(`vxnet status: cannot reach the agent at http://${values.metrics}/status: ${(err as Error).message}\n`);
    return 1;
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(formatStatus(st));
  return 0;
}

export function formatStatus(st: AgentStatus): string {
  const i = st.info;
  const out: string[] = [];
  out.push(`node ${st.node}: ${st.ready.ready ? 'ready' : 'NOT READY'} (${st.ready.reason})`);
  out.push(`  device ${String(i.device)}  podCIDR ${String(i.podCIDR)}  cluster ${String(i.clusterCIDR)}  vtep ${String(i.vtepMAC)}  ${String(i.underlayIP)}:${String(i.port)} vni ${String(i.vni)}`);
  out.push(`  mtu ${String(i.mtu)} (underlay ${String(i.underlayMTU)}, from ${String(i.mtuFrom)})`);
  const k = i.kernel as { ifindex?: number; repairs?: Record<string, number>; health?: string } | undefined;
  if (k) {
    const repairs = Object.entries(k.repairs ?? {}).filter(([, n]) => n > 0).map(([what, n]) => `${what}=${n}`);
    out.push(`  kernel: ${String(i.device)} ifindex ${String(k.ifindex)}, persistent; ${k.health ?? '?'}; repairs ${repairs.length === 0 ? 'none' : repairs.join(' ')}`);
  }
  out.push('');
  const rows = [['PEER', 'UNDERLAY', 'POD CIDRS', 'VTEP MAC', 'PATH MTU', 'TX PKTS', 'TX BYTES', 'RX PKTS', 'RX BYTES'],
    ...st.peers.map((p) => [p.node, p.underlayIP, p.podCIDRs.join(','), p.vtepMAC, String(p.pathMTU ?? '-'), String(p.txPackets), String(p.txBytes), String(p.rxPackets), String(p.rxBytes)])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) out.push(r.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd());
  const c = st.counters;
  out.push('');
  out.push(`packets tx ${c.txPackets} rx ${c.rxPackets}   bytes tx ${c.txBytes} rx ${c.rxBytes}   icmp sent ${c.icmpSent}`);
  const drops = Object.entries(c.dropped).filter(([, v]) => v > 0);
  out.push(`dropped: ${drops.length === 0 ? 'none' : drops.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return `${out.join('\n')}\n`;
}

/** The benches left the agent's command; say where each one went. */
function benchCmd(): number {
  process.stderr.write(
    'vxnet: the benches are not part of the agent. In a checkout of vxnet run:\n' +
      '  npm run bench:cluster -- [--kubeconfig PATH] ...   iperf3 between two pods of a real cluster (docs/kubernetes.md)\n' +
      '  npm run bench                                      the data-path comparison in network namespaces (root)\n' +
      '  vxnet lab bench                                    the quick lab bench\n',
  );
  return 2;
}

main(process.argv.slice(2)).then((code) => {
  if (code !== undefined) process.exitCode = code;
}, (err: unknown) => {
  if (err instanceof ConfigError || err instanceof UsageError || (err as Error).name === 'KubeConfigError') {
    process.stderr.write(`vxnet: ${(err as Error).message}\n`);
    if (err instanceof UsageError) process.stderr.write(USAGE);
    process.exitCode = 2;
    return;
  }
  const e = err as Error & { code?: string };
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    process.stderr.write(`vxnet: ${e.message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`vxnet: ${e.message}\n`);
  process.exitCode = 1;
});
