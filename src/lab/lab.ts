/**
 * A whole vxnet cluster in network namespaces: one router, N nodes each on its own routed
 * subnet, M pods per node attached by the real CNI plugins.
 *
 *                      +------------------ router (ip_forward=1) -----------------+
 *                      |  n1 192.168.101.1     n2 192.168.102.1    n3 ...         |
 *                      +------|---------------------|-----------------------------+
 *                       eth0 .101.2           eth0 .102.2
 *                      +------|------+        +------|------+
 *                      | node1       |        | node2       |   data plane per node:
 *                      | vxnet0/TUN  |        | vxnet.1     |   vxnet agent (TUN), kernel
 *                      | cni0 .1.1   |        | cni0 .2.1   |   vxlan, direct routes, socat
 *                      +--|-------|--+        +--|-------|--+   or openvpn
 *                        p1a     p1b            p2a     p2b      (pods: 10.244.i.x/24)
 *
 * Names derive from a short random id (`vxl<id>-r`, `vxl<id>-n1`, `vxl<id>-p1a`), so labs can
 * run side by side. Every device is created inside a lab namespace (veth pairs are born with
 * both ends in place), nothing is configured in the root namespace, and teardown deletes the
 * namespaces, which takes every device with them. The lab registers itself in a state file
 * before it creates anything (see state.ts) and, unless it is meant to outlive this process
 * (`persist`, for `vxnet lab up`), removes itself on exit and on SIGINT/SIGTERM too.
 *
 * Data planes:
 * - vxnet:   the agent under test, with a static peer list written by the lab. VTEP MACs are
 *            set explicitly (topology.vtepMAC) so the lab does not depend on how the agent
 *            would derive them, and kernel nodes can be peers.
 * - kernel:  Linux's vxlan device wired the way flannel's vxlan backend does it: no learning,
 *            and per peer one permanent ARP entry, one FDB entry and one onlink route.
 * - direct:  no overlay; the router routes each pod CIDR to its node (the physical baseline).
 * - socat:   a naive userspace relay (TUN <-> UDP), two nodes only, for the bench.
 * - openvpn: OpenVPN point-to-point without crypto, two nodes only, for the bench.
 *
 * Dual stack (`ipv6: true`, vxnet and kernel nodes only): every node also gets an IPv6 pod CIDR
 * (topology.ts), every pod an IPv6 address from a second host-local range, and node namespaces
 * forward IPv6. The underlay stays IPv4, so IPv6 pod traffic crosses it inside VXLAN with inner
 * EtherType 0x86DD. A kernel VXLAN node carries both families on its one vxlan device (an IPv6
 * /128, and per peer a permanent IPv6 neighbour entry and an onlink route). flannel would use a
 * second device, flannel-v6.<VNI>, but that one runs over an IPv6 underlay (its peers publish
 * public-ipv6); over an IPv4 underlay the single device is what the kernel can do.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeConflist } from '../agent/cni-conflist.js';
import { cniAdd, cniDel, resultIPv4, resultIPv6, type CniResult } from './cni-runtime.js';
import { Background, background, inNs, run, runOk, waitFor, type RunResult } from './exec.js';
import { httpGetInNs, parsePrometheus, type HttpResult, type Sample } from './http.js';
import {
  destroyLab,
  destroyLabSync,
  labDir,
  nsPrefix,
  randomLabId,
  isValidLabId,
  readState,
  writeState,
  type LabState,
} from './state.js';
import {
  ATTACKER_SUBNET,
  CLUSTER_CIDR,
  CLUSTER_CIDR6,
  MAX_NODES,
  METRICS_ADDR,
  podCIDR,
  podCIDR6,
  podGateway,
  podLetter,
  podMTU,
  routerIP,
  tunnelAddress,
  tunnelAddress6,
  underlayIP,
  vtepMAC,
  type NodeKind,
} from './topology.js';

export type { NodeKind } from './topology.js';

export interface LabOptions {
  /** Default: a random 5-character id. All names derive from it. */
  id?: string;
  /** Default 3. */
  nodes?: number;
  /** Data plane of node i (1-based). Default: all 'vxnet'. */
  kind?: (i: number) => NodeKind;
  /** VXLAN network identifier and UDP port; default 1 and 8472 (flannel's). */
  vni?: number;
  port?: number;
  /** Default 2. */
  podsPerNode?: number;
  /** Default: [node, <repo>/dist/src/cli/main.js, 'agent']; `--config FILE` is appended. */
  agentCommand?: string[];
  /** Merged into every agent's JSON config (e.g. `offloads`). */
  agentConfigExtra?: Record<string, unknown>;
  /** How agents learn peers. 'kubernetes' needs `apiServer`; the lab then writes no peers. */
  peerSource?: 'static' | 'kubernetes';
  apiServer?: { kubeconfig: string; annotationPrefix?: string };
  /** Dual stack: IPv6 pod CIDRs and pod addresses too (vxnet and kernel nodes only). */
  ipv6?: boolean;
  /** Add an 'attacker' namespace behind the router on 192.168.250.0/24. */
  attacker?: boolean;
  /** Keep running after this process exits (for `vxnet lab up`); remove with `vxnet lab down`. */
  persist?: boolean;
  /** How long to wait for each agent to start forwarding. Default 20 s. */
  agentReadyTimeoutMs?: number;
  /** Runs once the underlay is up, before any data plane starts (e.g. API relays into nodes). */
  beforeDataPlanes?: (lab: Lab) => Promise<void>;
  /**
   * Kernel VXLAN nodes: program their peers at build time from the lab's own address plan
   * (default true). False leaves the device without peers, for a test that programs it the way
   * flannel would, from what the other nodes published (`programKernelPeers`).
   */
  programKernelPeers?: boolean;
  log?: (msg: string) => void;
}

export interface LabNode {
  /** 1-based. */
  readonly index: number;
  /** Node name as the agent and Kubernetes see it: node1, node2, ... */
  readonly name: string;
  readonly ns: string;
  readonly kind: NodeKind;
  readonly underlayIP: string;
  /** The router's address on this node's subnet (the node's default gateway). */
  readonly routerIP: string;
  /** Router-side interface of this node's link, inside the router namespace. */
  readonly routerIface: string;
  /** Node-side interface of that link. */
  readonly uplink: string;
  readonly podCIDR: string;
  readonly podGateway: string;
  /** Network address of the pod CIDR, the overlay device's own /32. */
  readonly tunnelAddress: string;
  /** Dual-stack labs: the IPv6 pod CIDR and its network address (the overlay device's /128). */
  readonly podCIDR6?: string;
  readonly tunnelAddress6?: string;
  readonly vtepMAC: string;
  /** Overlay device: the agent's TUN, the kernel vxlan device, socat's or openvpn's TUN. */
  readonly device: string | null;
  /** Pod MTU. */
  readonly mtu: number;
  readonly dir: string;
  configPath?: string;
  agentPid?: number;
}

export interface LabPod {
  /** p1a, p1b, p2a, ... */
  readonly name: string;
  readonly ns: string;
  readonly nodeIndex: number;
  readonly ip: string;
  /** Dual-stack labs: the pod's IPv6 address. */
  readonly ip6?: string;
  readonly containerId: string;
  readonly result: CniResult;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
}

const VXNET_DEVICE = 'vxnet0';
const UPLINK = 'eth0';
const SOCAT_DEVICE = 'sx0';
const OPENVPN_DEVICE = 'ovpn0';
const OPENVPN_PORT = 1194;

/** Labs of this process that must not outlive it. */
const liveLabs = new Set<Lab>();
let handlersInstalled = false;

function onExit(): void {
  for (const lab of liveLabs) destroyLabSync(lab.id, lab.namespaces);
  liveLabs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  const labs = [...liveLabs];
  liveLabs.clear();
  void Promise.allSettled(labs.map((l) => destroyLab(l.id, l.namespaces))).then(() => {
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

function track(lab: Lab): void {
  liveLabs.add(lab);
  if (!handlersInstalled) {
    handlersInstalled = true;
    process.on('exit', onExit);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
  }
}

function untrack(lab: Lab): void {
  liveLabs.delete(lab);
  if (liveLabs.size === 0 && handlersInstalled) {
    handlersInstalled = false;
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

/** The agent entry point in this build: dist/src/cli/main.js next to dist/src/lab/. */
export function defaultAgentEntry(): string {
  return fileURLToPath(new URL('../cli/main.js', import.meta.url));
}

export function defaultAgentCommand(): string[] {
  return [process.execPath, defaultAgentEntry(), 'agent'];
}

export class Lab {
  readonly nodes: LabNode[] = [];
  readonly pods: LabPod[] = [];
  /** Every namespace of this lab, in creation order. */
  readonly namespaces: string[] = [];
  readonly router: string;
  readonly attacker: string | null;
  readonly vni: number;
  readonly port: number;
  readonly dir: string;
  private readonly bg = new Set<Background>();
  private readonly agents = new Map<number, Background>();
  private readonly log: (msg: string) => void;
  private down_ = false;

  private constructor(
    readonly id: string,
    private readonly opts: LabOptions,
  ) {
    this.router = `${nsPrefix(id)}r`;
    this.attacker = opts.attacker ? `${nsPrefix(id)}a` : null;
    this.vni = opts.vni ?? 1;
    this.port = opts.port ?? 8472;
    this.dir = labDir(id);
    this.log = opts.log ?? (() => undefined);
  }

  /** Build a lab; on any failure everything built so far is removed and the error rethrown. */
  static async up(opts: LabOptions = {}): Promise<Lab> {
    const id = opts.id ?? randomLabId();
    if (!isValidLabId(id)) throw new Error(`lab id must be 1-8 of [a-z0-9], got ${JSON.stringify(id)}`);
    if (readState(id) !== null) throw new Error(`lab ${id} already exists; run "vxnet lab down ${id}" first`);
    const n = opts.nodes ?? 3;
    if (!Number.isInteger(n) || n < 1 || n > MAX_NODES) throw new Error(`nodes must be 1..${MAX_NODES}`);
    const lab = new Lab(id, opts);
    if (!opts.persist) track(lab);
    try {
      await lab.build(n);
      return lab;
    } catch (err) {
      await lab.down();
      throw err;
    }
  }

  /** Re-open a lab built by another process (`vxnet lab up`), from its state file. */
  static attach(id: string, log?: (msg: string) => void): Lab {
    const st = readState(id);
    const summary = st?.summary as LabSummary | undefined;
    if (!st || !summary) throw new Error(`no lab ${id} in /run/vxnet-lab`);
    const lab = new Lab(id, {
      vni: summary.vni,
      port: summary.port,
      attacker: summary.attacker !== null,
      persist: true,
      ...(log ? { log } : {}),
    });
    lab.nodes.push(...summary.nodes);
    lab.pods.push(...summary.pods);
    lab.namespaces.push(...st.namespaces);
    return lab;
  }

  node(i: number): LabNode {
    const n = this.nodes[i - 1];
    if (!n) throw new Error(`lab ${this.id} has no node ${i}`);
    return n;
  }

  podsOn(i: number): LabPod[] {
    return this.pods.filter((p) => p.nodeIndex === i);
  }

  pod(name: string): LabPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`lab ${this.id} has no pod ${name}`);
    return p;
  }

  /** Run argv inside namespace `ns` (a lab namespace name). Never throws for a non-zero exit. */
  exec(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    this.checkNs(ns);
    return run(inNs(ns, argv), { timeoutMs: opts.timeoutMs ?? 10_000, ...(opts.input ? { input: opts.input } : {}) });
  }

  /** Like exec but throws a CommandError unless the command exits 0. */
  execOk(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    this.checkNs(ns);
    return runOk(inNs(ns, argv), { timeoutMs: opts.timeoutMs ?? 10_000, ...(opts.input ? { input: opts.input } : {}) });
  }

  /** Start argv in `ns` in the background; killed after maxLifetimeMs, and by down() at the latest. */
  spawn(ns: string, argv: readonly string[], maxLifetimeMs = 60_000): Background {
    this.checkNs(ns);
    const b = background(inNs(ns, argv), { maxLifetimeMs });
    this.bg.add(b);
    return b;
  }

  /** GET http://127.0.0.1:9469<path> inside node i (the agent's metrics server). */
  agentHttp(i: number, path: string, timeoutMs = 3000): Promise<HttpResult> {
    return httpGetInNs(this.node(i).ns, `http://${METRICS_ADDR}${path}`, timeoutMs);
  }

  async metrics(i: number): Promise<Sample[]> {
    const r = await this.agentHttp(i, '/metrics');
    if (r.status !== 200) throw new Error(`node${i} /metrics: status ${r.status}: ${r.body.slice(0, 300)}`);
    return parsePrometheus(r.body);
  }

  async status(i: number): Promise<unknown> {
    const r = await this.agentHttp(i, '/status');
    if (r.status !== 200) throw new Error(`node${i} /status: status ${r.status}: ${r.body.slice(0, 300)}`);
    return JSON.parse(r.body) as unknown;
  }

  /** The agent's pid on node i (the process itself: `ip netns exec` execs in place). */
  agentPid(i: number): number | undefined {
    return this.agents.get(i)?.pid ?? this.node(i).agentPid;
  }

  agentRunning(i: number): boolean {
    const a = this.agents.get(i);
    return a !== undefined && a.running;
  }

  /** Last `lines` lines of node i's agent log. */
  agentLog(i: number, lines = 40): string {
    const f = join(this.node(i).dir, 'agent.log');
    if (!existsSync(f)) return '';
    return readFileSync(f, 'utf8').split('\n').slice(-lines - 1).join('\n');
  }

  /** Remove the lab: agents (SIGTERM), pods (CNI DEL), namespaces, files. Idempotent. */
  async down(): Promise<void> {
    if (this.down_) return;
    this.down_ = true;
    untrack(this);
    await Promise.allSettled([...this.agents.values()].map((a) => a.stop('SIGTERM', 3000)));
    await Promise.allSettled([...this.bg].map((b) => b.stop('SIGKILL', 1000)));
    await Promise.allSettled(
      this.nodes.map(async (node) => {
        const conflist = this.readConflist(node);
        if (!conflist) return;
        for (const pod of this.podsOn(node.index)) {
          await cniDel(this.cniInvocation(node, pod.ns, pod.containerId, conflist), pod.result);
        }
      }),
    );
    const removed = await destroyLab(this.id, this.namespaces);
    this.log(`lab ${this.id}: removed ${removed.length} namespaces`);
  }

  /** Human-readable pods and peers (the peer table from each agent's /status when it has one). */
  async describe(): Promise<string> {
    const lines: string[] = [`lab ${this.id}: ${this.nodes.length} nodes, VNI ${this.vni}, UDP port ${this.port}`];
    lines.push('', 'NODE     KIND     NAMESPACE            UNDERLAY         POD CIDR         VTEP MAC');
    for (const n of this.nodes) {
      lines.push(
        `${n.name.padEnd(8)} ${n.kind.padEnd(8)} ${n.ns.padEnd(20)} ${n.underlayIP.padEnd(16)} ${n.podCIDR.padEnd(16)} ${n.kind === 'vxnet' || n.kind === 'kernel' ? n.vtepMAC : '-'}`,
      );
    }
    lines.push('', 'NODE     POD   NAMESPACE            IP');
    for (const p of this.pods) {
      lines.push(`${`node${p.nodeIndex}`.padEnd(8)} ${p.name.padEnd(5)} ${p.ns.padEnd(20)} ${p.ip}${p.ip6 ? ` ${p.ip6}` : ''}`);
    }
    lines.push('', 'PEER TABLE (node -> peer: underlay, pod CIDRs, VTEP MAC)');
    for (const n of this.nodes) {
      if (n.kind === 'vxnet') {
        try {
          const st = (await this.status(n.index)) as {
            peers?: { node: string; underlayIP: string; podCIDRs?: string[]; vtepMAC: string; txPackets?: number; rxPackets?: number }[];
          };
          for (const p of st.peers ?? []) {
            lines.push(
              `${n.name} -> ${p.node}: ${p.underlayIP} ${(p.podCIDRs ?? []).join(',')} ${p.vtepMAC} (agent /status; tx ${p.txPackets ?? '?'} rx ${p.rxPackets ?? '?'})`,
            );
          }
          continue;
        } catch (err) {
          lines.push(`${n.name}: /status unavailable (${(err as Error).message.split('\n')[0]}); from config:`);
        }
      }
      if (n.kind === 'vxnet' || n.kind === 'kernel') {
        for (const p of this.nodes) {
          if (p !== n) lines.push(`${n.name} -> ${p.name}: ${p.underlayIP} ${p.podCIDR}${p.podCIDR6 ? `,${p.podCIDR6}` : ''} ${p.vtepMAC} (configured)`);
        }
      }
    }
    return lines.join('\n');
  }

  // ---------------------------------------------------------------------------------------

  private checkNs(ns: string): void {
    if (!ns.startsWith(nsPrefix(this.id))) throw new Error(`${ns} is not a namespace of lab ${this.id}`);
  }

  private saveState(): void {
    const summary: LabSummary = {
      vni: this.vni,
      port: this.port,
      attacker: this.attacker,
      nodes: this.nodes.map((n) => ({ ...n, agentPid: this.agentPid(n.index) })),
      pods: this.pods,
    };
    const st: LabState = {
      id: this.id,
      dir: this.dir,
      createdAt: new Date().toISOString(),
      namespaces: this.namespaces,
      summary,
    };
    writeState(st);
  }

  private async addNs(name: string): Promise<void> {
    this.namespaces.push(name);
    this.saveState(); // recorded before it exists, so a crash right after still cleans it
    await runOk(['ip', 'netns', 'add', name], { timeoutMs: 5000 });
    await runOk(['ip', '-n', name, 'link', 'set', 'lo', 'up'], { timeoutMs: 5000 });
  }

  private async sysctl(ns: string, ...settings: string[]): Promise<void> {
    await this.execOk(ns, ['sysctl', '-q', '-w', ...settings], { timeoutMs: 5000 });
  }

  private async build(n: number): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const kindOf = this.opts.kind ?? (() => 'vxnet' as const);
    for (let i = 1; i <= n; i++) {
      const kind = kindOf(i);
      if ((kind === 'socat' || kind === 'openvpn') && n !== 2) throw new Error(`${kind} labs have exactly 2 nodes`);
      if (this.opts.ipv6 && kind !== 'vxnet' && kind !== 'kernel') throw new Error(`dual-stack labs have vxnet and kernel nodes only, not ${kind}`);
      const dir = join(this.dir, `node${i}`);
      mkdirSync(dir, { recursive: true });
      this.nodes.push({
        index: i,
        name: `node${i}`,
        ns: `${nsPrefix(this.id)}n${i}`,
        kind,
        underlayIP: underlayIP(i),
        routerIP: routerIP(i),
        routerIface: `n${i}`,
        uplink: UPLINK,
        podCIDR: podCIDR(i),
        podGateway: podGateway(i),
        tunnelAddress: tunnelAddress(i),
        ...(this.opts.ipv6 ? { podCIDR6: podCIDR6(i), tunnelAddress6: tunnelAddress6(i) } : {}),
        vtepMAC: vtepMAC(i),
        device: deviceFor(kind, this.vni),
        mtu: podMTU(kind),
        dir,
      });
    }
    this.log(`lab ${this.id}: underlay (router + ${n} nodes)`);
    await this.buildUnderlay();
    if (this.opts.beforeDataPlanes) await this.opts.beforeDataPlanes(this);
    this.log(`lab ${this.id}: data planes (${[...new Set(this.nodes.map((x) => x.kind))].join(', ')})`);
    await Promise.all(this.nodes.map((node) => this.buildDataPlane(node)));
    this.log(`lab ${this.id}: pods`);
    await Promise.all(this.nodes.map((node) => this.buildPods(node)));
    if (this.opts.ipv6) await this.settleIpv6();
    this.saveState();
  }

  /**
   * New IPv6 addresses (the bridges' gateways, the pods') are "tentative" until duplicate
   * address detection has run, about a second, and cannot be used before. Waits for that in
   * every node and pod namespace, so the first ping of a test does not fail for it.
   */
  private async settleIpv6(): Promise<void> {
    const spaces = [...this.nodes.map((n) => n.ns), ...this.pods.map((p) => p.ns)];
    await Promise.all(spaces.map((ns) => waitFor(
      `IPv6 duplicate address detection in ${ns}`,
      async () => {
        const r = await run(['ip', '-n', ns, '-6', 'addr', 'show', 'tentative'], { timeoutMs: 3000 });
        return r.code === 0 && r.stdout.trim() === '' ? true : undefined;
      },
      10_000,
      100,
    )));
  }

  private async buildUnderlay(): Promise<void> {
    const r = this.router;
    await this.addNs(r);
    await this.sysctl(r, 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
    for (const node of this.nodes) {
      await this.addNs(node.ns);
      await this.sysctl(
        node.ns,
        'net.ipv4.ip_forward=1',
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.default.rp_filter=0',
        // A node of a dual-stack cluster routes IPv6 between its pods' bridge and the overlay.
        ...(this.opts.ipv6 ? ['net.ipv6.conf.all.forwarding=1'] : []),
      );
      // Both ends are created in place: nothing ever exists in the root namespace.
      await runOk(['ip', '-n', r, 'link', 'add', node.routerIface, 'type', 'veth', 'peer', 'name', node.uplink, 'netns', node.ns]);
      await runOk(['ip', '-n', r, 'addr', 'add', `${node.routerIP}/24`, 'dev', node.routerIface]);
      await runOk(['ip', '-n', r, 'link', 'set', node.routerIface, 'up']);
      await this.wireLike(node.routerIface);
      await runOk(['ip', '-n', node.ns, 'addr', 'add', `${node.underlayIP}/24`, 'dev', node.uplink]);
      await runOk(['ip', '-n', node.ns, 'link', 'set', node.uplink, 'up']);
      await runOk(['ip', '-n', node.ns, 'route', 'add', 'default', 'via', node.routerIP]);
    }
    if (this.attacker) {
      const a = this.attacker;
      await this.addNs(a);
      await runOk(['ip', '-n', r, 'link', 'add', 'atk', 'type', 'veth', 'peer', 'name', UPLINK, 'netns', a]);
      await runOk(['ip', '-n', r, 'addr', 'add', `192.168.${ATTACKER_SUBNET}.1/24`, 'dev', 'atk']);
      await runOk(['ip', '-n', r, 'link', 'set', 'atk', 'up']);
      await this.wireLike('atk');
      await runOk(['ip', '-n', a, 'addr', 'add', `192.168.${ATTACKER_SUBNET}.2/24`, 'dev', UPLINK]);
      await runOk(['ip', '-n', a, 'link', 'set', UPLINK, 'up']);
      await runOk(['ip', '-n', a, 'route', 'add', 'default', 'via', `192.168.${ATTACKER_SUBNET}.1`]);
    }
  }

  /**
   * Make a router port behave like a real wire. A veth hands the peer namespace the sender's
   * socket buffer as is, checksum still to be filled in (CHECKSUM_PARTIAL) and segmentation still
   * to be done (GSO). Kernel code on the far side honours that metadata; a userspace receiver
   * reading a UDP socket gets the bytes only, so an inner TCP segment from a kernel VXLAN sender
   * would arrive with an unfinished checksum, which no NIC would ever put on a wire. Turning
   * off TX checksumming (and so TSO/GSO) on the router's egress port makes the kernel finish
   * checksums and segment there, exactly where a NIC would.
   */
  private async wireLike(routerIface: string): Promise<void> {
    const r = await run(inNs(this.router, ['ethtool', '-K', routerIface, 'tx', 'off']), { timeoutMs: 5000 });
    if (r.code !== 0) {
      throw new Error(`ethtool -K ${routerIface} tx off failed (is ethtool installed? apt-get install ethtool): ${r.stderr.trim()}`);
    }
  }

  private async buildDataPlane(node: LabNode): Promise<void> {
    switch (node.kind) {
      case 'direct':
        await runOk(['ip', '-n', this.router, 'route', 'add', node.podCIDR, 'via', node.underlayIP]);
        break;
      case 'kernel':
        await this.buildKernelVxlan(node);
        break;
      case 'vxnet':
        await this.startAgent(node);
        break;
      case 'socat':
        await this.startSocat(node);
        break;
      case 'openvpn':
        await this.startOpenvpn(node);
        break;
    }
    // Nodes without an agent get the conflist the agent would have written.
    if (node.kind !== 'vxnet') writeConflist(join(node.dir, 'net.d'), { podCIDR: node.podCIDR, podCIDR6: node.podCIDR6, mtu: node.mtu });
  }

  private peersOf(node: LabNode): LabNode[] {
    return this.nodes.filter((p) => p !== node);
  }

  /** Linux vxlan, wired as flannel's vxlan backend does: one route, ARP and FDB entry per peer. */
  private async buildKernelVxlan(node: LabNode): Promise<void> {
    const dev = node.device as string;
    const ip = (...a: string[]): Promise<RunResult> => runOk(['ip', '-n', node.ns, ...a]);
    await ip('link', 'add', dev, 'type', 'vxlan', 'id', String(this.vni), 'local', node.underlayIP, 'dev', node.uplink,
      'dstport', String(this.port), 'nolearning');
    await ip('link', 'set', dev, 'address', node.vtepMAC, 'mtu', String(node.mtu));
    await ip('addr', 'add', `${node.tunnelAddress}/32`, 'dev', dev);
    if (node.tunnelAddress6) await ip('-6', 'addr', 'add', `${node.tunnelAddress6}/128`, 'dev', dev, 'nodad');
    await ip('link', 'set', dev, 'up');
    if (this.opts.programKernelPeers ?? true) await this.programKernelPeers(node.index, this.peersOf(node));
  }

  /**
   * Programs kernel VXLAN node i's peers as flannel's vxlan backend does: per peer one permanent
   * neighbour entry (its tunnel address -> its VTEP MAC), one FDB entry (that MAC -> its underlay
   * IP) and one onlink route for its pod CIDR via the tunnel address. In a dual-stack lab the same
   * device also gets the IPv6 pair: a permanent neighbour entry for the peer's IPv6 tunnel address
   * (the same MAC, so the same FDB entry) and an onlink route for its IPv6 pod CIDR.
   */
  async programKernelPeers(
    i: number,
    peers: ReadonlyArray<{ tunnelAddress: string; vtepMAC: string; underlayIP: string; podCIDR: string; tunnelAddress6?: string; podCIDR6?: string }>,
  ): Promise<void> {
    const node = this.node(i);
    if (node.kind !== 'kernel') throw new Error(`${node.name} is not a kernel VXLAN node`);
    const dev = node.device as string;
    const ip = (...a: string[]): Promise<RunResult> => runOk(['ip', '-n', node.ns, ...a]);
    for (const p of peers) {
      await ip('neigh', 'replace', p.tunnelAddress, 'lladdr', p.vtepMAC, 'dev', dev, 'nud', 'permanent');
      await runOk(['bridge', '-n', node.ns, 'fdb', 'append', p.vtepMAC, 'dev', dev, 'dst', p.underlayIP, 'self', 'permanent']);
      await ip('route', 'replace', p.podCIDR, 'via', p.tunnelAddress, 'dev', dev, 'onlink');
      if (node.tunnelAddress6 && p.tunnelAddress6 && p.podCIDR6) {
        await ip('-6', 'neigh', 'replace', p.tunnelAddress6, 'lladdr', p.vtepMAC, 'dev', dev, 'nud', 'permanent');
        await ip('-6', 'route', 'replace', p.podCIDR6, 'via', p.tunnelAddress6, 'dev', dev, 'onlink');
      }
    }
  }

  /** The agent's JSON config for `node` (see src/agent/config-types.ts). */
  agentConfig(node: LabNode): Record<string, unknown> {
    const common = {
      node: node.name,
      device: VXNET_DEVICE,
      vni: this.vni,
      port: this.port,
      clusterCIDR: CLUSTER_CIDR,
      ...(this.opts.ipv6 ? { clusterCIDR6: CLUSTER_CIDR6 } : {}),
      mtu: node.mtu,
      metricsAddr: METRICS_ADDR,
      cniConfDir: join(node.dir, 'net.d'),
    };
    let cfg: Record<string, unknown>;
    if (this.opts.peerSource === 'kubernetes') {
      // Everything else comes from the API, as in a cluster: the pod CIDR from spec.podCIDR, the
      // underlay IP from the InternalIP, the VTEP MAC derived (or read back from our annotation).
      if (!this.opts.apiServer) throw new Error('peerSource kubernetes needs apiServer');
      cfg = {
        ...common,
        peerSource: 'kubernetes',
        kubernetes: {
          kubeconfig: this.opts.apiServer.kubeconfig,
          ...(this.opts.apiServer.annotationPrefix ? { annotationPrefix: this.opts.apiServer.annotationPrefix } : {}),
        },
      };
    } else {
      cfg = {
        ...common,
        peerSource: 'static',
        underlayIP: node.underlayIP,
        podCIDR: node.podCIDR,
        ...(node.podCIDR6 ? { podCIDR6: node.podCIDR6 } : {}),
        vtepMAC: node.vtepMAC,
        peers: this.peersOf(node).map((p) => ({
          node: p.name,
          underlayIP: p.underlayIP,
          podCIDRs: p.podCIDR6 ? [p.podCIDR, p.podCIDR6] : [p.podCIDR],
          vtepMAC: p.vtepMAC,
        })),
      };
    }
    return { ...cfg, ...(this.opts.agentConfigExtra ?? {}) };
  }

  private async startAgent(node: LabNode): Promise<void> {
    const cfgPath = join(node.dir, 'agent.json');
    mkdirSync(join(node.dir, 'net.d'), { recursive: true });
    writeFileSync(cfgPath, JSON.stringify(this.agentConfig(node), null, 2) + '\n');
    node.configPath = cfgPath;
    const argv = [...(this.opts.agentCommand ?? defaultAgentCommand()), '--config', cfgPath];
    const logFile = join(node.dir, 'agent.log');
    const agent = background(inNs(node.ns, argv), { logFile, detached: this.opts.persist ?? false });
    this.agents.set(node.index, agent);
    node.agentPid = agent.pid;
    const timeoutMs = this.opts.agentReadyTimeoutMs ?? 20_000;
    try {
      await waitFor(
        `${node.name}'s agent to forward`,
        async () => {
          if (!agent.running) throw new Error(`agent exited with ${agent.exitCode}`);
          if (!this.hasConflist(node)) return undefined;
          const h = await this.agentHttp(node.index, '/healthz', 1000);
          return h.status === 200 ? true : undefined;
        },
        timeoutMs,
        150,
      );
    } catch (err) {
      throw new Error(
        `${node.name}: agent not ready (${(err as Error).message}); command: ${argv.join(' ')}\n--- ${logFile} (tail) ---\n${this.agentLog(node.index, 25)}`,
      );
    }
    this.log(`${node.name}: agent pid ${agent.pid} forwarding`);
  }

  private async startSocat(node: LabNode): Promise<void> {
    const peer = this.peersOf(node)[0] as LabNode;
    const argv = [
      'socat',
      '-b',
      '65536',
      `TUN:${node.tunnelAddress}/16,tun-type=tun,iff-up,iff-no-pi,tun-name=${SOCAT_DEVICE}`,
      `UDP-DATAGRAM:${peer.underlayIP}:${this.port},bind=${node.underlayIP}:${this.port}`,
    ];
    const p = background(inNs(node.ns, argv), { logFile: join(node.dir, 'socat.log'), detached: this.opts.persist ?? false });
    this.agents.set(node.index, p);
    await this.waitDevice(node, SOCAT_DEVICE, p, 'socat.log');
    await runOk(['ip', '-n', node.ns, 'link', 'set', SOCAT_DEVICE, 'mtu', String(node.mtu)]);
  }

  private async startOpenvpn(node: LabNode): Promise<void> {
    const peer = this.peersOf(node)[0] as LabNode;
    const argv = [
      'openvpn',
      '--dev', OPENVPN_DEVICE, '--dev-type', 'tun', '--proto', 'udp',
      '--local', node.underlayIP, '--lport', String(OPENVPN_PORT),
      '--remote', peer.underlayIP, '--rport', String(OPENVPN_PORT),
      '--ifconfig', node.tunnelAddress, peer.tunnelAddress,
      '--cipher', 'none', '--auth', 'none', '--data-ciphers', 'none',
      '--tun-mtu', String(node.mtu), '--mssfix', '0', '--disable-dco',
      '--ping', '1', '--verb', '3',
    ];
    const p = background(inNs(node.ns, argv), { logFile: join(node.dir, 'openvpn.log'), detached: this.opts.persist ?? false });
    this.agents.set(node.index, p);
    await this.waitDevice(node, OPENVPN_DEVICE, p, 'openvpn.log');
    await waitFor(
      `${OPENVPN_DEVICE} address on ${node.name}`,
      async () => {
        const r = await run(['ip', '-n', node.ns, '-4', '-o', 'addr', 'show', 'dev', OPENVPN_DEVICE]);
        return r.stdout.includes(node.tunnelAddress) ? true : undefined;
      },
      10_000,
    );
    await runOk(['ip', '-n', node.ns, 'route', 'replace', peer.podCIDR, 'dev', OPENVPN_DEVICE]);
  }

  private async waitDevice(node: LabNode, dev: string, proc: Background, log: string): Promise<void> {
    await waitFor(
      `${dev} on ${node.name}`,
      async () => {
        if (!proc.running) throw new Error(`${log} says: ${readTail(join(node.dir, log))}`);
        const r = await run(['ip', '-n', node.ns, 'link', 'show', 'dev', dev], { timeoutMs: 3000 });
        return r.code === 0 ? true : undefined;
      },
      10_000,
    );
  }

  private hasConflist(node: LabNode): boolean {
    const d = join(node.dir, 'net.d');
    return existsSync(d) && readdirSync(d).some((f) => f.endsWith('.conflist'));
  }

  private readConflist(node: LabNode): Record<string, unknown> | null {
    const d = join(node.dir, 'net.d');
    if (!existsSync(d)) return null;
    const f = readdirSync(d)
      .filter((x) => x.endsWith('.conflist'))
      .sort()[0];
    if (f === undefined) return null;
    try {
      return JSON.parse(readFileSync(join(d, f), 'utf8')) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  private cniInvocation(node: LabNode, podNs: string, containerId: string, conflist: Record<string, unknown>) {
    return {
      conflist,
      containerId,
      netnsPath: `/var/run/netns/${podNs}`,
      ifName: 'eth0',
      pluginNs: node.ns,
      ipamDataDir: join(node.dir, 'ipam'),
      timeoutMs: 15_000,
    };
  }

  private async buildPods(node: LabNode): Promise<void> {
    const conflist = this.readConflist(node);
    if (!conflist) throw new Error(`${node.name}: no CNI conflist in ${join(node.dir, 'net.d')}`);
    const count = this.opts.podsPerNode ?? 2;
    for (let j = 0; j < count; j++) {
      const name = `p${node.index}${podLetter(j)}`;
      const ns = `${nsPrefix(this.id)}${name}`;
      await this.addNs(ns);
      const result = await cniAdd(this.cniInvocation(node, ns, ns, conflist));
      const ip = resultIPv4(result);
      if (ip === null) throw new Error(`${name}: CNI result has no IPv4 address: ${JSON.stringify(result)}`);
      const ip6 = this.opts.ipv6 ? resultIPv6(result) : null;
      if (this.opts.ipv6 && ip6 === null) throw new Error(`${name}: CNI result has no IPv6 address: ${JSON.stringify(result)}`);
      this.pods.push({ name, ns, nodeIndex: node.index, ip, ...(ip6 !== null ? { ip6 } : {}), containerId: ns, result });
      this.log(`${node.name}: pod ${name} ${ip}${ip6 !== null ? ` ${ip6}` : ''}`);
    }
  }
}

interface LabSummary {
  vni: number;
  port: number;
  attacker: string | null;
  nodes: LabNode[];
  pods: LabPod[];
}

function deviceFor(kind: NodeKind, vni: number): string | null {
  switch (kind) {
    case 'vxnet':
      return VXNET_DEVICE;
    case 'kernel':
      return `vxnet.${vni}`;
    case 'socat':
      return SOCAT_DEVICE;
    case 'openvpn':
      return OPENVPN_DEVICE;
    case 'direct':
      return null;
  }
}

function readTail(file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Remove a lab by id (from another process: `vxnet lab down ID`). */
export async function labDown(id: string): Promise<string[]> {
  if (!isValidLabId(id)) throw new Error(`not a lab id: ${id}`);
  const st = readState(id);
  return destroyLab(id, st?.namespaces ?? []);
}
