/**
 * The agent: one per node. It wires the pieces together and owns the control plane.
 *
 *   peer source (file | Kubernetes) --snapshot--> applyPeers --buildTable--> DataPath.publish
 *                                                                              |
 *   TUN  --read--> [worker, out: lookup, encap] --sendmmsg--> UDP peers        |  (new table per
 *   TUN <--write-- [worker, in: check, decap]   <--recvmmsg-- UDP peers        |   generation)
 *   (one worker per queue serves both directions)
 *
 * Start order matters for the node. The caller holds the node lock (src/node/lock.ts) before
 * anything here runs. Everything that can fail on bad input or a busy port comes before the
 * kernel is touched. Then the device: created persistent, or adopted from an earlier agent, and
 * brought to its spec (src/node/device.ts); from then on the kernel guard keeps it so. The data
 * path starts on the peers known at that moment; only then are the CNI conflist written and (in
 * Kubernetes) the node marked NetworkUnavailable=False, so the kubelet never schedules pods onto
 * a node that cannot forward yet. Stopping leaves the device, its addresses and routes in place:
 * they are the node's, until `vxnet cleanup`.
 *
 * Every peer change is a full snapshot. It is checked and turned into a new table off the hot
 * path; if it fails (overlapping pod CIDRs, a bad address), the error is logged once and the
 * table in force stays: bad control-plane input never loses forwarding state.
 */
import type { Server } from 'node:http';
import type { AgentConfig } from './config-types.js';
import { parseHostPort, DEFAULTS } from './config.js';
import { interfaceGro, underlayInterface } from './underlay.js';
import { KernelSetupError } from '../node/errors.js';
import { ipv6ForwardingEnabled } from '../node/sysctl.js';
import { NodeDevice } from '../node/device.js';
import { describeFix, deviceSpec } from '../node/device-spec.js';
import { KernelGuard } from '../node/guard.js';
import { OwnedNftTable } from '../node/nft-table.js';
import { NetlinkSocket } from '../node/netlink/socket.js';
import { writeConflist } from './cni-conflist.js';
import { setUpNetfilter } from '../netfilter/setup.js';
import { metricsListenerFd, metricsServerStats, startMetricsServer, stopMetricsServer, type PeerStatus, type StatusSource, type Traffic } from './metrics.js';
import { HandoverServer, type HandoverShape, type Party, type PendingHandover } from '../node/handover.js';
import type { NodeLock, RunDir } from '../node/lock.js';
import { newCounters, readCounters, type CounterSnapshot } from '../datapath/counters.js';
import type { LogFn } from './log.js';
import type { TunHandle } from '../device/native-tun.js';
import { openUdp, closeUdp, type UdpHandles } from '../device/native-udp.js';
import { nativeIo } from '../device/native.js';
import type { SetAside } from '../table/snapshot.js';
import { makeTables, type Tables as PeerTables } from '../table/update.js';
import { DataPath, type Tables } from '../datapath/engine.js';
import { VXLAN_IPV4_OVERHEAD } from '../datapath/path-mtu.js';
import { PeerFlags } from '../datapath/encap.js';
import { ipv4ToNumber, parseCidr4, numberToIpv4, parseCidr6, bigIntToIpv6, bigIntToIpv6Bytes, parseMac } from '../wire/addr.js';
import { samePeerList, type Peer, type PeerSource } from '../peers/source.js';

/** Node names a log line lists before it gives a count instead. */
const LOG_NAMES = 20;

export interface AgentHooks {
  /** Called once the data path forwards (Kubernetes: mark the node's network available). */
  onForwarding?: () => Promise<void>;
  /** The node lock and its run directory: the agent listens there for a successor, and passes
   * the lock on with its other fds (src/node/handover.ts). */
  handover?: { runDir: RunDir; lock: NodeLock; pod?: string | undefined; onHandedOver: (to: Party) => void };
}

/** How long the successor waits for the old agent to confirm it stopped its workers. */
const STOPPED_TIMEOUT_MS = 10_000;
/** How long an offer waits for the successor's start (a Kubernetes pod CIDR wait included). */
const READY_TIMEOUT_MS = 120_000;

/** The shape a hand-over must agree on (src/node/handover.ts). */
export function handoverShape(cfg: AgentConfig): HandoverShape {
  return {
    device: cfg.device, port: cfg.port, vni: cfg.vni, queues: Math.max(1, cfg.tuning.queues), senders: cfg.tuning.senders,
    vnetHeader: cfg.offloads.tun, gro: cfg.offloads.udpGro, metricsAddr: cfg.metricsAddr, underlayIP: cfg.underlayIP || undefined,
  };
}

export class Agent implements StatusSource {
  readonly node: string;
  /** The configuration in force: `cfg` with the MTU derived from the underlay where it was not given. */
  private effective: AgentConfig;
  /** The underlay interface and where the MTU came from, for logs and /status. */
  private underlay: { name: string; mtu: number } | undefined;
  /** GRO on the underlay interface, when it could be read (checkUnderlayGro). */
  private underlayGro: boolean | undefined;
  private tun: TunHandle | undefined;
  private netlink: NetlinkSocket | undefined;
  private device: NodeDevice | undefined;
  private guard: KernelGuard | undefined;
  private udp: UdpHandles | undefined;
  private datapath: DataPath | undefined;
  private server: Server | undefined;
  private peerList: readonly Peer[] = [];
  /** The last snapshot as the source gave it, before peers were set aside. */
  private lastSnapshot: readonly Peer[] = [];
  /** The tables in force, for patching. */
  private tables: PeerTables | undefined;
  private setAsideSeen = new Set<string>();
  private warnedSeen = new Set<string>();
  private setAsideCount = 0;
  private forwarding = false;
  private lastError = '';
  private handoverServer: HandoverServer | undefined;
  /** The predecessor this agent took over from, when it did, and the pause it cost. */
  private took: { from: Party; at: string; pauseMs: number } | undefined;
  /** A handed-over metrics listener not yet served on (closed by stop if it never is). */
  private metricsFd: number | undefined;
  /** Set once the fds went to a successor: stop then leaves them alone. */
  private handedOver = false;
  private readonly startedAt = Date.now();

  constructor(readonly cfg: AgentConfig, private readonly source: PeerSource, private readonly log: LogFn, private readonly hooks: AgentHooks = {}) {
    this.node = cfg.node;
    this.effective = cfg;
  }

  /**
   * Starts forwarding. With `handed`, on the fds a predecessor passed on: nothing is opened or
   * bound; the predecessor forwards until everything else here is done, and the workers start
   * when it confirms it stopped. A failure before that leaves it forwarding (it is told to go on).
   */
  async start(handed?: PendingHandover): Promise<void> {
    try {
      await this.startOn(handed);
    } catch (err) {
      handed?.abort((err as Error).message);
      throw err;
    }
  }

  private async startOn(handed: PendingHandover | undefined): Promise<void> {
    let cfg = this.cfg;
    if (handed) {
      this.udp = handed.got.udp;
      this.metricsFd = handed.got.metricsFd;
    }
    const pod = parseCidr4(cfg.podCIDR);
    const localAddress = pod.net;
    // Dual stack: the podCIDR6 network address is our IPv6 TUN address, as the IPv4 one is.
    const pod6 = cfg.clusterCIDR6 && cfg.podCIDR6 ? parseCidr6(cfg.podCIDR6) : undefined;
    // Everything that can fail on bad input or a busy port comes before the kernel is touched.
    const initial = this.tableFor(cfg.peers);
    // The metrics port too (busy, or an address this host does not have): /healthz answers 503
    // until the data path forwards.
    const { host, port } = parseHostPort(cfg.metricsAddr, 'metricsAddr');
    if (handed) {
      const differs = handed.got.shape.underlayIP !== cfg.underlayIP ? `underlayIP ${String(handed.got.shape.underlayIP)} there, ${cfg.underlayIP} here` : '';
      if (differs) throw new KernelSetupError('take over the UDP sockets', `they are bound elsewhere (${differs})`);
    } else {
      this.server = await startMetricsServer(this, host, port, { log: this.log });
      this.udp = openUdp({
        address: ipv4ToNumber(cfg.underlayIP), port: cfg.port, senders: cfg.tuning.senders,
        gro: cfg.offloads.udpGro, socketBuffer: cfg.tuning.socketBuffer, queues: cfg.tuning.queues,
      });
    }
    const udp = this.udp!;
    this.log('info', handed ? 'udp sockets handed over' : 'udp sockets open', { address: cfg.underlayIP, port: udp.port, senders: udp.txFds.length, gro: udp.gro, gso: udp.gso });
    cfg = await this.deriveMtu(cfg);
    this.effective = cfg;
    if (udp.gro) await this.checkUnderlayGro(cfg);
    // The device: created persistent or adopted, then brought to its spec. The TUN offload path
    // (IFF_VNET_HDR) is negotiated as it opens; the data path adapts to it.
    this.netlink = NetlinkSocket.open();
    this.device = new NodeDevice(deviceSpec({
      device: cfg.device, address: numberToIpv4(localAddress), mtu: cfg.mtu, clusterCIDR: cfg.clusterCIDR, queueLength: cfg.tuning.tunQueueLength,
      ...(pod6 ? { address6: bigIntToIpv6(pod6.net), clusterCIDR6: cfg.clusterCIDR6 } : {}),
    }), this.netlink);
    const opened = handed ? this.device.adoptQueues(handed.got.tun) : this.device.open(cfg.offloads.tun, cfg.tuning.queues);
    this.tun = opened.tun;
    this.log('info', 'tun device open', {
      device: this.tun.name, ifindex: opened.ifindex, persistent: true, adopted: opened.adopted !== undefined, handedOver: handed !== undefined,
      vnetHeader: this.tun.vnetHeader, offloads: this.tun.offloads,
      // An adopted device takes our vnet-header flag; say when that changed it.
      ...(opened.adopted?.tun && opened.adopted.tun.vnetHeader !== this.tun.vnetHeader ? { vnetHeaderWas: opened.adopted.tun.vnetHeader } : {}),
    });
    const configured = this.device.converge();
    this.log('info', opened.adopted ? 'adopted the existing device' : 'device configured', {
      device: this.tun.name, changed: configured.fixes.map((f) => describeFix(f, cfg.device)),
    });
    const masquerade = { podCIDR: cfg.podCIDR, clusterCIDR: cfg.clusterCIDR, device: this.tun.name,
      ...(pod6 && cfg.podCIDR6 && cfg.clusterCIDR6 ? { podCIDR6: cfg.podCIDR6, clusterCIDR6: cfg.clusterCIDR6 } : {}) };
    const netfilter = await setUpNetfilter({ ipMasq: cfg.ipMasq, ...masquerade }, this.log);
    let nftables: OwnedNftTable | undefined;
    if (netfilter.masquerade === 'installed') {
      nftables = new OwnedNftTable(masquerade);
      await nftables.adopt();
    }
    this.guard = new KernelGuard({ device: this.device, nftables, log: this.log });
    this.guard.start();
    if (pod6 && !ipv6ForwardingEnabled()) {
      this.log('warn', 'IPv6 forwarding is off on this node; IPv6 pods cannot reach other nodes until net.ipv6.conf.all.forwarding=1', { podCIDR6: cfg.podCIDR6 });
    }

    this.datapath = new DataPath({
      tun: this.tun, udp, localMAC: parseMac(cfg.vtepMAC), localAddress, vni: cfg.vni, mtu: cfg.mtu,
      underlayMtu: cfg.underlayMTU,
      batch: cfg.tuning.batch ?? DEFAULTS.batch,
      udpGso: cfg.offloads.udpGso && udp.gso,
      remoteChecksum: cfg.offloads.remoteChecksum,
      queues: cfg.tuning.queues,
      ...(pod6 ? { localAddress6: bigIntToIpv6Bytes(pod6.net) } : {}),
    });
    this.peerList = this.tables?.peers ?? [];
    this.lastSnapshot = cfg.peers;
    if (handed) {
      // Everything that can fail is done, and our workers are up, held before their first batch:
      // the predecessor stops its workers, then ours run.
      this.datapath.start(initial, true);
      const dp = this.datapath;
      const upBy = Date.now() + STOPPED_TIMEOUT_MS;
      while (!dp.workersUp() && Date.now() < upBy) await new Promise((resolve) => setTimeout(resolve, 2));
      if (!dp.workersUp()) throw new KernelSetupError('start the data path workers', `not all were up after ${STOPPED_TIMEOUT_MS} ms`);
      const t = await handed.release(STOPPED_TIMEOUT_MS);
      dp.release();
      const pauseMs = Date.now() - t.stoppedAt;
      this.took = { from: handed.got.from, at: new Date(t.stoppedAt).toISOString(), pauseMs };
      this.server = await startMetricsServer(this, host, port, { log: this.log, ...(this.metricsFd === undefined ? {} : { fd: this.metricsFd }) });
      this.metricsFd = undefined;
      this.log('info', 'took the node over from the previous agent', {
        predecessorPid: handed.got.from.pid, ...(handed.got.from.pod ? { predecessorPod: handed.got.from.pod } : {}),
        pausedAt: this.took.at, pausedMs: pauseMs, waitedForStopMs: t.stoppedAt - t.askedAt,
      });
    } else {
      this.datapath.start(initial);
    }

    await this.source.start({
      snapshot: (peers) => {
        this.lastError = '';
        this.applyPeers(peers);
      },
      error: (err) => {
        if (err.message !== this.lastError) this.log('warn', 'peer source problem', { source: this.source.name, error: err.message });
        this.lastError = err.message;
      },
    });

    if (cfg.cniConfDir) {
      const path = writeConflist(cfg.cniConfDir, { podCIDR: cfg.podCIDR, podCIDR6: pod6 ? cfg.podCIDR6 : undefined, mtu: cfg.mtu });
      this.log('info', 'cni conflist written', { path });
    }
    this.forwarding = true;
    this.listenForSuccessor();
    if (this.hooks.onForwarding) await this.hooks.onForwarding();
    this.log('info', 'forwarding', {
      node: cfg.node, device: this.tun.name, underlayIP: cfg.underlayIP, port: udp.port, vni: cfg.vni,
      podCIDR: cfg.podCIDR, clusterCIDR: cfg.clusterCIDR, vtepMAC: cfg.vtepMAC, mtu: cfg.mtu, peers: this.peerList.length,
      metrics: cfg.metricsAddr, peerSource: this.source.name,
      ...(pod6 ? { podCIDR6: cfg.podCIDR6, clusterCIDR6: cfg.clusterCIDR6 } : {}),
    });
  }

  /** Listens for a successor asking for the fds (src/node/handover.ts). */
  private listenForSuccessor(): void {
    const h = this.hooks.handover;
    if (!h) return;
    const me: Party = { pid: process.pid, ...(h.pod ? { pod: h.pod } : {}) };
    this.handoverServer = new HandoverServer(h.runDir, me, {
      shape: () => handoverShape(this.effective),
      offer: () => {
        const lockFd = h.lock.descriptor;
        if (!this.forwarding || !this.tun || !this.udp || lockFd === undefined) return 'this agent is not forwarding (starting or stopping)';
        return { tun: this.tun, udp: this.udp, lockFd, metricsFd: this.server ? metricsListenerFd(this.server) : undefined };
      },
      pause: async () => {
        // Stop accepting metrics connections first: the successor serves the same socket.
        this.server?.close();
        this.forwarding = false;
        this.guard?.stop();
        await this.datapath?.halt();
      },
      handedOver: (to) => {
        this.handedOver = true;
        h.onHandedOver(to);
      },
    }, this.log, { predecessor: this.took?.from, readyTimeoutMs: READY_TIMEOUT_MS, replyTimeoutMs: 5000 });
    this.handoverServer.start();
  }

  handovers(): { counts: Readonly<Record<string, number>>; pauseSeconds: number | undefined } {
    const counts = this.handoverServer?.counts ?? { taken: this.took ? 1 : 0, given: 0, refused: 0, failed: 0 };
    return { counts: { ...counts }, pauseSeconds: this.took ? this.took.pauseMs / 1000 : undefined };
  }

  /** Applies a full peer snapshot; on any error keeps the table in force. */
  applyPeers(snapshot: readonly Peer[]): void {
    if (!this.datapath) return;
    if (samePeerList(snapshot, this.lastSnapshot)) return;
    this.lastSnapshot = snapshot;
    const started = Date.now();
    try {
      const previous = this.peerList;
      const next = this.tableFor(snapshot);
      const made = this.tables!.made;
      // Only the set of peers set aside changed: the table in force is the right one.
      if (samePeerList(this.tables!.peers, previous)) return;
      const generation = this.datapath.publish(next);
      // A patch keeps every name in its slot; only a full build can add or remove peers.
      const before = new Set(made === 'full' ? previous.map((p) => p.node) : []);
      const after = new Set(made === 'full' ? next.nodes : []);
      const added = [...after].filter((n) => !before.has(n));
      const removed = [...before].filter((n) => !after.has(n));
      this.peerList = this.tables!.peers;
      this.log('info', 'peers updated', {
        generation, peers: next.nodes.length, ms: Date.now() - started,
        added: added.slice(0, LOG_NAMES), removed: removed.slice(0, LOG_NAMES),
        ...(added.length > LOG_NAMES || removed.length > LOG_NAMES ? { addedCount: added.length, removedCount: removed.length } : {}),
        ...(made === 'full' ? {} : { patched: made.patched.length }),
      });
    } catch (err) {
      this.log('error', 'peer update rejected, keeping the previous table', { error: (err as Error).message });
    }
  }

  /**
   * The tables for a snapshot (table/update.ts: a patch of the tables in force when only a few
   * peers' facts changed, else a full build that sets aside what the table cannot hold), in the
   * form the data path takes. With IPv6 pods the IPv6 table comes from the same peers, so its
   * slots are the IPv4 table's. What the data path keeps per peer across tables (counters, path
   * MTU) is keyed by node name.
   */
  private tableFor(snapshot: readonly Peer[]): Tables {
    const next = makeTables(snapshot, this.cfg, this.tables);
    this.noteSetAside(next.setAside, next.warnings);
    this.tables = next;
    const flags = Uint8Array.from(next.peers, (p) => (p.remoteChecksum ? PeerFlags.RemoteChecksum : 0));
    return { table: next.sab, table6: next.sab6, nodes: next.peers.map((p) => p.node), flags };
  }

  /** Logs peers newly set aside or warned about (a few by name, then a count), once each. */
  private noteSetAside(setAside: readonly SetAside[], warnings: readonly SetAside[]): void {
    const report = (list: readonly SetAside[], seen: Set<string>, msg: string): Set<string> => {
      const now = new Set(list.map((s) => `${s.node}\n${s.reason}`));
      const fresh = list.filter((s) => !seen.has(`${s.node}\n${s.reason}`));
      for (const s of fresh.slice(0, LOG_NAMES)) this.log('warn', msg, { node: s.node, reason: s.reason });
      if (fresh.length > LOG_NAMES) this.log('warn', `${msg} (more)`, { count: fresh.length - LOG_NAMES });
      return now;
    };
    this.setAsideSeen = report(setAside, this.setAsideSeen, 'peer set aside: the table cannot hold it');
    this.warnedSeen = report(warnings, this.warnedSeen, 'peer conflict');
    this.setAsideCount = setAside.length;
  }

  /**
   * The MTU in force. Neither `mtu` nor `underlayMTU` given: both come from the interface that
   * holds underlayIP. `mtu` given alone: it wins, but the data path still needs the real
   * underlay MTU (its default path MTU to every peer), and a mismatch is worth a warning.
   */
  private async deriveMtu(cfg: AgentConfig): Promise<AgentConfig> {
    if (cfg.mtuFrom === 'underlayMTU') {
      this.log('info', 'mtu', { mtu: cfg.mtu, underlayMTU: cfg.underlayMTU, from: 'config underlayMTU' });
      return cfg;
    }
    const iface = await underlayInterface(cfg.underlayIP);
    this.underlay = iface;
    if (cfg.mtuFrom === 'mtu') {
      if (cfg.mtu + VXLAN_IPV4_OVERHEAD > iface.mtu) {
        this.log('warn', 'mtu is larger than the underlay carries; packets will be cut or refused to fit (set mtu to at most underlay MTU - 50, or remove it to derive it)', {
          mtu: cfg.mtu, interface: iface.name, interfaceMTU: iface.mtu, fits: iface.mtu - VXLAN_IPV4_OVERHEAD,
        });
      }
      this.log('info', 'mtu', { mtu: cfg.mtu, underlayMTU: iface.mtu, from: 'config mtu', interface: iface.name });
      return { ...cfg, underlayMTU: iface.mtu };
    }
    const mtu = iface.mtu - VXLAN_IPV4_OVERHEAD;
    if (mtu < 576) {
      throw new KernelSetupError(`derive the MTU from ${iface.name}`, `its MTU ${iface.mtu} leaves ${mtu} for pods, below the IPv4 minimum of 576; set mtu and underlayMTU explicitly`);
    }
    if (cfg.clusterCIDR6 && mtu < 1280) {
      throw new KernelSetupError(`derive the MTU from ${iface.name}`, `its MTU ${iface.mtu} leaves ${mtu} for pods, below the IPv6 minimum of 1280 (RFC 8200 section 5); IPv6 pods need an underlay MTU of at least 1330`);
    }
    this.log('info', 'mtu', { mtu, underlayMTU: iface.mtu, from: `interface ${iface.name}`, interface: iface.name });
    return { ...cfg, mtu, underlayMTU: iface.mtu };
  }

  /**
   * Says so when the underlay interface does no GRO: forwarding is correct either way, but the
   * receiving sockets then get every datagram on its own. A fact of the node, read once.
   */
  private async checkUnderlayGro(cfg: AgentConfig): Promise<void> {
    let name = this.underlay?.name;
    if (name === undefined) {
      try {
        name = (await underlayInterface(cfg.underlayIP)).name;
      } catch {
        return; // underlayMTU was configured and the address is not local: nothing to ask.
      }
    }
    const gro = interfaceGro(name);
    if (typeof gro === 'boolean') this.underlayGro = gro;
    if (gro === false) {
      this.log('warn', `GRO is off on ${name}: every datagram reaches vxnet on its own, which costs throughput (about 40% less single-stream TCP in the lab); turn it on with "ethtool -K ${name} gro on"`, { interface: name });
    } else if (gro !== true) {
      this.log('info', 'could not read GRO of the underlay interface', { interface: name, error: gro });
    }
  }

  reloadPeers(): void {
    const s = this.source as PeerSource & { reload?: () => void };
    if (typeof s.reload === 'function') s.reload();
  }

  // ---- StatusSource ----

  traffic(): Traffic {
    const zero = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };
    const dp = this.datapath;
    const t = dp?.traffic();
    const peers = this.peerList.map((p): PeerStatus => {
      const st = t?.peers.of(p.node) ?? { ...zero, pathMtu: 0 };
      return {
        node: p.node, underlayIP: p.underlayIP, podCIDRs: p.podCIDRs, vtepMAC: p.vtepMAC,
        txPackets: st.txPackets, txBytes: st.txBytes, rxPackets: st.rxPackets, rxBytes: st.rxBytes,
        pathMTU: st.pathMtu || this.effective.underlayMTU,
      };
    });
    return { counters: t?.counters ?? readCounters(newCounters(), zero), peers, removed: t?.peers.removed ?? zero };
  }

  healthy(): boolean { return this.health().healthy; }

  health(): { healthy: boolean; reason: string } {
    if (!this.forwarding || !this.datapath) return { healthy: false, reason: 'data path not running' };
    const kernel = this.guard?.health();
    if (kernel && !kernel.healthy) return kernel;
    return this.datapath.health();
  }

  kernelRepairs(): Readonly<Record<string, number>> {
    return this.guard?.repairs() ?? {};
  }

  ready(): { ready: boolean; reason: string; staleSeconds: number } {
    const h = this.health();
    if (!h.healthy) return { ready: false, reason: h.reason, staleSeconds: 0 };
    const staleSeconds = Math.round(this.source.staleSeconds() * 10) / 10;
    if (this.source.stale()) return { ready: false, reason: `peer source ${this.source.name} stale for ${staleSeconds}s; forwarding on the last known table`, staleSeconds };
    return { ready: true, reason: `forwarding to ${this.peerList.length} peers`, staleSeconds };
  }

  info(): Record<string, unknown> {
    const cfg = this.effective;
    return {
      device: cfg.device, underlayIP: cfg.underlayIP, port: this.udp?.port ?? cfg.port, vni: cfg.vni, podCIDR: cfg.podCIDR,
      clusterCIDR: cfg.clusterCIDR, ...(cfg.podCIDR6 ? { podCIDR6: cfg.podCIDR6, clusterCIDR6: cfg.clusterCIDR6 } : {}), vtepMAC: cfg.vtepMAC,
      mtu: cfg.mtu, underlayMTU: cfg.underlayMTU, mtuFrom: cfg.mtuFrom === 'interface' ? `interface ${this.underlay?.name ?? '?'}` : `config ${cfg.mtuFrom}`,
      peerSource: this.source.name,
      tableGeneration: this.datapath?.tableGeneration ?? 0, peersSetAside: this.setAsideCount, peerSourceStats: this.source.stats?.() ?? {},
      metricsConnections: this.server ? metricsServerStats(this.server) : { max: 0, open: 0, evicted: 0 }, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      queues: cfg.tuning.queues,
      offloads: { tunVnetHeader: this.tun?.vnetHeader ?? false, tunFlags: this.tun?.offloads ?? 0, udpGro: this.udp?.gro ?? false, udpGso: (this.udp?.gso ?? false) && cfg.offloads.udpGso,
        ...(this.underlayGro !== undefined ? { underlayGro: this.underlayGro } : {}) },
      kernel: { ifindex: this.device?.ifindex ?? 0, persistent: true, repairs: this.kernelRepairs(), health: this.guard?.health().reason ?? 'not started' },
      pid: process.pid,
      ...(this.took ? { handover: { fromPid: this.took.from.pid, ...(this.took.from.pod ? { fromPod: this.took.from.pod } : {}), pausedAt: this.took.at, pausedMs: this.took.pauseMs } } : {}),
      memory: process.memoryUsage(),
    };
  }

  /** Stops forwarding. The device, its addresses and routes stay: a persistent device without a
   * reader drops what is routed to it until the next agent attaches. */
  async stop(): Promise<void> {
    this.forwarding = false;
    this.guard?.stop();
    // After a hand-over the socket file may be the successor's already: leave it.
    this.handoverServer?.stop(!this.handedOver);
    await this.source.stop().catch(() => undefined);
    if (this.server) await stopMetricsServer(this.server);
    if (this.datapath) await this.datapath.stop();
    if (this.udp) closeUdp(this.udp);
    if (this.tun) for (const fd of this.tun.fds) nativeIo().close(fd);
    if (this.metricsFd !== undefined) nativeIo().close(this.metricsFd);
    this.metricsFd = undefined;
    this.netlink?.close();
    this.log('info', 'stopped', {
      node: this.node, device: this.cfg.device,
      left: this.handedOver ? 'the fds live on in the successor; nothing on the node was changed' : 'device, addresses and routes stay until vxnet cleanup',
    });
  }
}
