#!/usr/bin/env -S node --v8-pool-size=1 --max-semi-space-size=1 --no-maglev
/**
 * The `vxnet` command. Subcommands:
 *
 *   vxnet agent --config FILE [--node N] [--kubeconfig P] [--iface IF] [--underlay-ip IP]
 *   vxnet cleanup [--config FILE] [--device D] [--cni-conf-dir DIR] [--run-dir DIR]
 *                 [--kubernetes | --kubeconfig P] [--node N]      (uninstall: what the agent left)
 *   vxnet status [--metrics HOST:PORT] [--json]
 *   vxnet probe [--metrics HOST:PORT] [--run-dir DIR] [--path P]   (the DaemonSet's startup probe)
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
import { Agent, handoverShape } from '../agent/agent.js';
import { acquireNodeLock, DEFAULT_RUN_DIR, lockHolder, NodeLock, NodeLockedError, RunDir, waitForNodeLock, type LockTaker } from '../node/lock.js';
import { HandoverError, requestHandover, type PendingHandover } from '../node/handover.js';
import { cleanupNode } from '../node/cleanup.js';
import { FilePeerSource } from '../peers/file.js';
import type { AgentStatus } from '../agent/metrics.js';
import type { PeerSource } from '../peers/source.js';
import type { AgentConfig } from '../agent/config-types.js';

const USAGE = `usage:
  vxnet agent --config FILE [--node NAME] [--kubeconfig PATH] [--iface IFACE] [--underlay-ip IP]
  vxnet cleanup [--config FILE] [--device NAME] [--cni-conf-dir DIR] [--run-dir DIR] [--kubernetes | --kubeconfig PATH] [--node NAME]
  vxnet status [--metrics HOST:PORT] [--json]
  vxnet probe [--metrics HOST:PORT] [--run-dir DIR] [--path /healthz]
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
    case 'probe': return probeCmd(rest);
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
      iface: { type: 'string' }, 'underlay-ip': { type: 'string' }, takeover: { type: 'boolean' },
    },
  });
  // --takeover (VXNET_TAKEOVER=1 in the DaemonSet): a live agent on the node is asked to hand its
  // fds over instead of being a reason to exit.
  const takeover = values.takeover === true || process.env['VXNET_TAKEOVER'] === '1';
  const pod = process.env['POD_UID'] || undefined;
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
  const runDir = new RunDir(cfg.runDir);
  const me = { role: 'agent' as const, node: cfg.node, device: cfg.device, ...(pod ? { pod } : {}) };
  let lock: NodeLock;
  let handed: PendingHandover | undefined;
  try {
    lock = acquireNodeLock(runDir, me);
  } catch (err) {
    if (!(err instanceof NodeLockedError)) throw err;
    if (!takeover) {
      log('error', 'another agent holds this node', { error: err.message, lock: err.lockPath, holder: err.holder });
      return 2;
    }
    log('info', 'another agent holds this node: asking it to hand over', { holder: err.holder, socket: runDir.handoverSocket });
    try {
      handed = await requestHandover(runDir, { pid: process.pid, ...(pod ? { pod } : {}) }, handoverShape(cfg), HANDOVER_OFFER_TIMEOUT_MS);
      lock = NodeLock.handedOver(runDir, handed.got.lockFd, me);
      log('info', 'hand-over offered: preparing on the handed-over fds while the old agent still forwards', { predecessorPid: handed.got.from.pid, predecessorPod: handed.got.from.pod });
    } catch (herr) {
      if (!(herr instanceof HandoverError)) throw herr;
      lock = await waitForLock(runDir, me, log, `hand-over not possible: ${herr.message}`);
    }
  }
  let running: Agent | undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log('info', 'stopping', { signal });
    (running ? running.stop() : Promise.resolve()).then(() => {
      lock.release();
      process.exit(0);
    }, (err: Error) => {
      log('error', 'stop failed', { error: (err as Error).message });
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
  const onHandedOver = (to: { pid: number; pod?: string | undefined }): void => {
    stopping = true;
    log('info', 'handed the node over: exiting, the kernel state stays with the successor', { successorPid: to.pid, ...(to.pod ? { successorPod: to.pod } : {}) });
    (running ? running.stop() : Promise.resolve()).finally(() => {
      lock.release();
      process.exit(0);
    });
  };
  // A start on handed-over fds that fails once the old agent has stopped falls back to a normal
  // start, as does one whose hand-over failed before: the node is never left without an agent.
  for (;;) {
    let source: PeerSource;
    let onForwarding: (() => Promise<void>) | undefined;
    let started = cfg;
    try {
      if (cfg.peerSource === 'kubernetes') {
        const kube = await import('../agent/kube-start.js');
        const prepared = await kube.prepareKubernetes(cfg, log);
        started = prepared.config;
        // The underlay address came from the cluster: check it as a static config's is checked.
        checkNodeFacts(started);
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
    } catch (err) {
      if (handed) {
        handed.abort((err as Error).message);
        handed.closeFds();
      }
      throw err;
    }
    const agentNow = new Agent(started, source, log, {
      ...(onForwarding ? { onForwarding } : {}),
      handover: { runDir, lock, pod, onHandedOver },
    });
    running = agentNow;
    agent = agentNow;
    try {
      await agentNow.start(handed);
      return new Promise<number>(() => { /* runs until a signal */ });
    } catch (err) {
      const failedHandover = err instanceof HandoverError;
      log('error', failedHandover ? 'hand-over failed after the old agent was asked to stop' : 'agent failed to start', { error: (err as Error).message });
      await agentNow.stop().catch(() => undefined);
      lock.release();
      if (!failedHandover || stopping) return 1;
      handed = undefined;
      lock = await waitForLock(runDir, me, log, 'the old agent did not confirm it stopped; it may have gone');
    }
  }
}

/** How long a successor waits for the running agent's offer. */
const HANDOVER_OFFER_TIMEOUT_MS = 10_000;

/** Waits for the node lock (the old agent to stop), saying so now and then. */
function waitForLock(runDir: RunDir, me: LockTaker, log: ReturnType<typeof makeLogger>, why: string): Promise<NodeLock> {
  log('warn', `${why}; waiting for the node lock, then starting the normal way`, { lock: runDir.lock });
  return waitForNodeLock(runDir, me, {
    onWait: (err, waitedMs) => { if (waitedMs > 0) log('info', 'still waiting for the node lock', { holder: err.holder, waitedSeconds: Math.round(waitedMs / 1000) }); },
  }).then((lock) => {
    log('info', 'node lock taken: starting', {});
    return lock;
  });
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

/**
 * A probe that cannot be answered by another pod's agent. With hostNetwork, the old and the new
 * pod of a rolling update share the metrics port, so an HTTP probe of the new pod would reach the
 * old agent while the new one is still starting (or waiting). This one first reads who holds the
 * node lock: unless it is an agent of this pod (POD_UID), the probe fails, saying whose it is.
 */
async function probeCmd(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { metrics: { type: 'string', default: '127.0.0.1:9469' }, 'run-dir': { type: 'string', default: DEFAULT_RUN_DIR }, path: { type: 'string', default: '/healthz' } } });
  const pod = process.env['POD_UID'];
  const holder = lockHolder(new RunDir(values['run-dir']));
  if (pod && holder?.pod !== pod) {
    const who = holder ? `pid ${holder.pid}${holder.pod ? ` of pod ${holder.pod}` : ''}` : 'nobody';
    process.stderr.write(`vxnet probe: the node's agent is not this pod's (${pod}): the lock is held by ${who}\n`);
    return 1;
  }
  try {
    const res = await fetch(`http://${values.metrics}${values.path}`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    process.stdout.write(text);
    return res.status === 200 ? 0 : 1;
  } catch (err) {
    process.stderr.write(`vxnet probe: cannot reach the agent at http://${values.metrics}${values.path}: ${(err as Error).message}\n`);
    return 1;
  }
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
  const h = i.handover as { fromPid?: number; fromPod?: string; pausedAt?: string; pausedMs?: number } | undefined;
  if (h) out.push(`  took over from pid ${String(h.fromPid)}${h.fromPod ? ` (pod ${h.fromPod})` : ''} at ${String(h.pausedAt)}; forwarding paused ${String(h.pausedMs)} ms`);
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
