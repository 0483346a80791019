/**
 * The agent's HTTP endpoints: `/metrics` (Prometheus text format 0.0.4), `/healthz` (the data
 * path runs), `/readyz` (and the peer source is fresh), `/status` (JSON for `vxnet status`).
 * Counters are read out of the data path's shared typed arrays at scrape time; nothing on the hot
 * path knows that metrics exist. Every family is always exported (a zero is an answer, an absent
 * series is not), except the per-peer ones: they grow with the cluster on every node, so the
 * config switches them on.
 */
import { createServer, type Server } from 'node:http';
import { IO_ERRNOS, IO_OPS, RX_DROP_REASONS, TX_DROP_REASONS, type CounterSnapshot, type Totals } from '../datapath/counters.js';
import type { AgentConfig } from './config-types.js';
import { VERSION } from './version.js';
import { GUARDED_KINDS } from '../node/guard.js';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { LogFn } from './log.js';

export interface PeerStatus {
  readonly node: string;
  readonly underlayIP: string;
  readonly podCIDRs: readonly string[];
  readonly vtepMAC: string;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** The path MTU to the peer: learned from the kernel, else the local underlay MTU. */
  readonly pathMTU: number;
}

export interface Traffic {
  readonly counters: CounterSnapshot;
  readonly peers: PeerStatus[];
  readonly removed: Totals;
}

export interface StatusSource {
  readonly node: string;
  /** What /metrics exports depends on the config (per-peer series are opt-in). */
  readonly cfg: Pick<AgentConfig, 'perPeerMetrics'>;
  /**
   * Every data-path counter, each peer with its counters, and the traffic of peers no longer in
   * the table, all from one reading: per-peer counters plus `removed` are the packet and byte
   * totals exactly, at every scrape.
   */
  traffic(): Traffic;
  /** Repairs of the node's kernel state so far, by what was repaired (src/node/guard.ts). */
  kernelRepairs?(): Readonly<Record<string, number>>;
  /** Hand-overs (src/node/handover.ts): taken (0 or 1: this agent took the node over), given,
   * refused, failed; and the forwarding pause of the one this agent took, in seconds. */
  handovers?(): { counts: Readonly<Record<string, number>>; pauseSeconds: number | undefined };
  healthy(): boolean;
  /** Why the data path is (not) healthy, for /healthz. */
  health?(): { healthy: boolean; reason: string };
  ready(): { ready: boolean; reason: string; staleSeconds: number };
  info(): Record<string, unknown>;
}

export interface AgentStatus {
  node: string;
  info: Record<string, unknown>;
  ready: { ready: boolean; reason: string; staleSeconds: number };
  peers: PeerStatus[];
  counters: CounterSnapshot;
}

export function statusOf(s: StatusSource): AgentStatus {
  const t = s.traffic();
  return { node: s.node, info: s.info(), ready: s.ready(), peers: t.peers, counters: t.counters };
}

/** Prometheus text format 0.0.4: a label value escapes backslash, double quote and newline. */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

type Labels = Readonly<Record<string, string>>;

function formatLabels(l: Labels): string {
  const pairs = Object.entries(l);
  return pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}`;
}

/** Both directions of one per-peer counter pair. */
function perPeer(peers: readonly PeerStatus[], tx: (p: PeerStatus) => number, rx: (p: PeerStatus) => number): Array<[Labels, number]> {
  return peers.flatMap((p): Array<[Labels, number]> => [[{ peer: p.node, direction: 'tx' }, tx(p)], [{ peer: p.node, direction: 'rx' }, rx(p)]]);
}

/** Wall-clock start of this process: the main thread's performance.timeOrigin. */
const PROCESS_START_SECONDS = performance.timeOrigin / 1000;

export function renderMetrics(s: StatusSource): string {
  const { counters: c, peers, removed } = s.traffic();
  const ready = s.ready();
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: ReadonlyArray<readonly [Labels, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${formatLabels(labels)} ${v}`);
  };
  const tx = { direction: 'tx' };
  const rx = { direction: 'rx' };
  metric('vxnet_build_info', 'gauge', 'Always 1; the labels say which vxnet version runs on which node, on which Node.js.',
    [[{ version: VERSION, node: s.node, nodejs: process.versions.node }, 1]]);
  metric('vxnet_packets_total', 'counter', 'Packets encapsulated (tx) and decapsulated (rx).', [[tx, c.txPackets], [rx, c.rxPackets]]);
  metric('vxnet_bytes_total', 'counter', 'Inner IP bytes encapsulated (tx) and decapsulated (rx).', [[tx, c.txBytes], [rx, c.rxBytes]]);
  metric('vxnet_dropped_total', 'counter', 'Packets dropped, by reason.',
    [...RX_DROP_REASONS, ...TX_DROP_REASONS].map((r) => [{ reason: r }, c.dropped[r]] as const));
  metric('vxnet_icmp_errors_total', 'counter', 'ICMP errors sent back through TUN (sent) or held back by the rate limit (suppressed).',
    [[{ result: 'sent' }, c.icmpSent], [{ result: 'suppressed' }, c.icmpSuppressed]]);
  metric('vxnet_batches_total', 'counter', 'Batch system calls that moved at least one packet.', [[tx, c.txBatches], [rx, c.rxBatches]]);
  metric('vxnet_offload_packets_total', 'counter', 'Segments cut from TSO/USO super-packets (tx), and TCP segments and UDP datagrams merged into super-packets for TUN (rx).',
    [[tx, c.txSegments], [rx, c.rxCoalesced]]);
  metric('vxnet_io_errors_total', 'counter', 'Failed system calls of the data path, by operation and errno.',
    IO_OPS.flatMap((op) => IO_ERRNOS.map((e) => [{ op, errno: e }, c.ioErrors[op][e]] as const)));
  metric('vxnet_tx_fragmented_total', 'counter', 'Inner IPv4 packets without DF fragmented to fit a smaller path to their peer.', [[{}, c.txFragmented]]);
  metric('vxnet_gso_fallbacks_total', 'counter', 'UDP GSO sends the kernel refused, retried as single datagrams.', [[{}, c.gsoFallbacks]]);
  metric('vxnet_path_mtu_updates_total', 'counter', 'Changes of a peer\'s path MTU, learned from the kernel or aged out.', [[{}, c.pathMtuUpdates]]);
  metric('vxnet_removed_peers_packets_total', 'counter', 'Packets to and from peers no longer in the table: the per-peer packets plus these are the totals.',
    [[tx, removed.txPackets], [rx, removed.rxPackets]]);
  metric('vxnet_peers', 'gauge', 'Peers in the forwarding table.', [[{}, peers.length]]);
  const repairs = s.kernelRepairs?.() ?? {};
  metric('vxnet_kernel_repairs_total', 'counter', 'Changes to the agent\'s device, addresses, routes or nftables table that the agent found and put back, by what was repaired.',
    GUARDED_KINDS.map((k) => [{ what: k }, repairs[k] ?? 0] as const));
  const handovers = s.handovers?.();
  if (handovers) {
    metric('vxnet_handovers_total', 'counter', 'Hand-overs of the node\'s fds between agents (upgrades without a gap), by result: taken (this agent took over from a predecessor), given, refused, failed.',
      (['taken', 'given', 'refused', 'failed'] as const).map((k) => [{ result: k }, handovers.counts[k] ?? 0] as const));
    if (handovers.pauseSeconds !== undefined) {
      metric('vxnet_handover_pause_seconds', 'gauge', 'How long forwarding paused during the hand-over that started this agent: from the predecessor stopping its workers to this agent starting its own.',
        [[{}, handovers.pauseSeconds]]);
    }
  }
  // Two series per peer and direction on every node: N nodes export 4N(N-1) in all, so they are
  // opt-in (perPeerMetrics); `vxnet status` shows the same counters without Prometheus.
  if (s.cfg.perPeerMetrics) {
    metric('vxnet_peer_packets_total', 'counter', 'Packets per peer node.', perPeer(peers, (p) => p.txPackets, (p) => p.rxPackets));
    metric('vxnet_peer_bytes_total', 'counter', 'Inner IP bytes per peer node.', perPeer(peers, (p) => p.txBytes, (p) => p.rxBytes));
  }
  metric('vxnet_ready', 'gauge', '1 when the peer source is fresh.', [[{}, ready.ready ? 1 : 0]]);
  metric('vxnet_peer_source_stale_seconds', 'gauge', 'Seconds since the peer source last synced successfully (0 when fresh).', [[{}, ready.staleSeconds]]);
  const info = s.info();
  if (typeof info.tableGeneration === 'number') metric('vxnet_table_generation', 'gauge', 'Forwarding table generation in force.', [[{}, info.tableGeneration]]);
  // The standard process metrics, with the meaning every Prometheus client library gives them.
  const cpu = process.cpuUsage();
  metric('process_cpu_seconds_total', 'counter', 'User and system CPU time of the agent process (all threads), in seconds.',
    [[{}, (cpu.user + cpu.system) / 1e6]]);
  metric('process_resident_memory_bytes', 'gauge', 'Resident set size of the agent process, in bytes.', [[{}, process.memoryUsage.rss()]]);
  metric('process_start_time_seconds', 'gauge', 'Start time of the agent process, in seconds since the Unix epoch.', [[{}, PROCESS_START_SECONDS]]);
  return `${lines.join('\n')}\n`;
}

/**
 * Limits of the metrics server. Its clients are few and local (the kubelet's probes, Prometheus,
 * `vxnet status`), and every request is answered from memory in well under a millisecond, so
 * anything slower or idler than these is not a client the agent needs. Without them Node keeps an
 * idle connection open forever, and a flood of them once took the agent to its open-file limit:
 * /healthz failed, and so did the next peer reload (EMFILE).
 */
export interface MetricsLimits {
  /** Open connections at most. A new one beyond it closes the oldest idle one. */
  readonly maxConnections: number;
  /**
   * Listen backlog. One turn of the event loop accepts at most about this many connections, and
   * a new connection's request is read one turn after it is accepted, so at most about two
   * backlogs of newer connections arrive before a real client's request marks it busy. With the
   * cap at four backlogs, eviction (oldest first) does not reach it.
   */
  readonly backlog: number;
  /** From connect to the end of the request headers, ms (slow clients). */
  readonly headersTimeoutMs: number;
  /** From connect to the end of the request, ms. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this, ms. */
  readonly keepAliveTimeoutMs: number;
  /** A connection that sends nothing at all is closed after this, ms. */
  readonly idleTimeoutMs: number;
  /** How often the timeouts above are checked, ms (Node's default is 30 s). */
  readonly checkIntervalMs: number;
  /** Request headers larger than this are refused (431), bytes. */
  readonly maxHeaderBytes: number;
}

/**
 * The limits in force. The cap on connections follows the process's open-file limit: the metrics
 * port must never take the descriptors a reload or the data path needs, and no node has more
 * than a handful of real clients. The values are documented in docs/operations.md.
 */
export function metricsLimits(fdLimit = openFileLimit()): MetricsLimits {
  const maxConnections = Math.max(64, Math.min(512, Math.floor(fdLimit / 8)));
  return {
    maxConnections,
    backlog: maxConnections / 4,
    headersTimeoutMs: 5_000,
    requestTimeoutMs: 10_000,
    keepAliveTimeoutMs: 5_000,
    idleTimeoutMs: 10_000,
    checkIntervalMs: 1_000,
    maxHeaderBytes: 8 * 1024,
  };
}

/** The soft limit on open files (RLIMIT_NOFILE) from /proc/self/limits; 1024 when unknown. */
export function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : 1024;
  } catch {
    return 1024;
  }
}

export interface MetricsServerStats {
  /** The cap on open connections. */
  max: number;
  /** Connections open now. */
  open: number;
  /** Idle connections closed to make room for new ones, since start. */
  evicted: number;
}

export interface MetricsServerOptions {
  readonly limits?: Partial<MetricsLimits>;
  /** Where to say that connections are being evicted (at most once per 10 s). */
  readonly log?: LogFn;
  /** A listening socket a predecessor agent handed over (src/node/handover.ts): serve on it
   * instead of binding host:port, so the port never closes across a hand-over. */
  readonly fd?: number | undefined;
}

const serverStats = new WeakMap<Server, MetricsServerStats>();

/** Connection counts of a server made by `startMetricsServer`. */
export function metricsServerStats(server: Server): MetricsServerStats {
  return { ...(serverStats.get(server) ?? { max: 0, open: 0, evicted: 0 }) };
}

/**
 * Starts the HTTP server. When the connection cap is reached, a new connection closes the
 * oldest one that has no request in progress, rather than being refused: a flood of idle or
 * slow connections then churns through the cap, while a real client, which sends its request as
 * soon as it connects, is answered before the flood can push it out. Refusing new connections
 * instead would let the flood hold every place and starve the kubelet's probes.
 */
export function startMetricsServer(s: StatusSource, host: string, port: number, opts: MetricsServerOptions = {}): Promise<Server> {
  const limits = { ...metricsLimits(), ...opts.limits };
  // Open connections in the order they came (a Set keeps insertion order), and the ones with a
  // request in progress.
  const open = new Set<Socket>();
  const busy = new Set<Socket>();
  const stats: MetricsServerStats = { max: limits.maxConnections, open: 0, evicted: 0 };
  // Connections that have not sent a request yet, by connect time. Node's header timeout counts
  // only from the first byte, so a connection that sends nothing at all is closed here.
  const fresh = new Map<Socket, number>();
  const reaper = setInterval(() => {
    const deadline = Date.now() - limits.idleTimeoutMs;
    for (const [socket, since] of fresh) {
      if (since > deadline) break;
      fresh.delete(socket);
      socket.destroy();
    }
  }, limits.checkIntervalMs);
  reaper.unref();
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
    maxHeaderSize: limits.maxHeaderBytes,
  }, (req, res) => {
    const socket = req.socket;
    fresh.delete(socket);
    busy.add(socket);
    res.once('close', () => busy.delete(socket));
    const url = (req.url ?? '/').split('?')[0];
    try {
      if (url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(renderMetrics(s));
      } else if (url === '/healthz') {
        const h = s.health ? s.health() : { healthy: s.healthy(), reason: 'data path not running' };
        res.writeHead(h.healthy ? 200 : 503, { 'content-type': 'text/plain' }).end(h.healthy ? 'ok\n' : `unhealthy: ${h.reason}\n`);
      } else if (url === '/readyz') {
        const r = s.ready();
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${r.ready ? 'ok' : 'not ready'}: ${r.reason}\n`);
      } else if (url === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(statusOf(s)));
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics /healthz /readyz /status\n');
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
    }
  });

  serverStats.set(server, stats);
  let lastWarn = 0;
  server.on('connection', (socket: Socket) => {
    if (open.size >= limits.maxConnections) {
      let evicted = false;
      for (const old of open) {
        if (busy.has(old)) continue;
        old.destroy();
        open.delete(old);
        stats.evicted++;
        evicted = true;
        break;
      }
      // Every place holds a request in progress (each ends by the idle timeout at the latest):
      // past twice the cap, refuse, so that file descriptors stay bounded.
      if (!evicted && open.size >= 2 * limits.maxConnections) {
        socket.destroy();
        return;
      }
      if (opts.log && Date.now() - lastWarn > 10_000) {
        lastWarn = Date.now();
        opts.log('warn', 'metrics server: too many connections, closing the oldest idle ones', { open: open.size, max: limits.maxConnections, evicted: stats.evicted });
      }
    }
    fresh.set(socket, Date.now());
    open.add(socket);
    stats.open = open.size;
    socket.once('close', () => {
      open.delete(socket);
      busy.delete(socket);
      fresh.delete(socket);
      stats.open = open.size;
    });
  });
  server.once('close', () => clearInterval(reaper));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const where = opts.fd === undefined ? { port, host, backlog: limits.backlog } : { fd: opts.fd, backlog: limits.backlog };
    server.listen(where, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * The listening socket's fd, to hand over. Node keeps it on the server's internal handle (a
 * libuv TCP handle, `fd` on Unix); undefined when that is not there, and the successor then binds
 * the port itself once this agent has closed it.
 */
export function metricsListenerFd(server: Server): number | undefined {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Closes the server and every connection it holds, so that a stop never waits on slow clients. */
export function stopMetricsServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
