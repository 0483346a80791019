/**
 * A whole vxnet cluster in network namespaces: routers, N nodes each on its own routed subnet,
 * M pods per node attached by the real CNI plugins, and optionally the world around a cluster
 * (a host standing for the internet, an attacker, a Service as kube-proxy would program it).
 *
 *                      +------------------ router (ip_forward=1) -----------------+
 *                      |  n1 192.168.101.1     n2 192.168.102.1    n3 ...   out   |
 *                      +------|---------------------|-----------------------|-----+
 *                       eth0 .101.2           eth0 .102.2             outside host
 *                      +------|------+        +------|------+          203.0.113.10
 *                      | node1       |        | node2       |   data plane per node:
 *                      | vxnet0/TUN  |        | vxnet.1     |   a backend (backends/): the
 *                      | cni0 .1.1   |        | cni0 .2.1   |   vxnet agent, kernel VXLAN,
 *                      +--|-------|--+        +--|-------|--+   direct routes, socat, OpenVPN
 *                        p1a     p1b            p2a     p2b      (pods: 10.244.i.x/24)
 *
 * This file is the orchestrator: it names everything, records the lab before creating anything,
 * has underlay.ts build the network between the nodes, has each node's backend bring up its
 * data plane, attaches the pods and tears it all down. What differs between data planes lives
 * in backends/, what differs between underlays in underlay.ts.
 *
 * Names derive from a short random id (`vxl<id>-r`, `vxl<id>-n1`, `vxl<id>-p1a`), so labs can
 * run side by side. Every device is created inside a lab namespace, nothing is configured in
 * the root namespace, and teardown deletes the namespaces, which takes every device with them.
 * The lab registers itself in a state file before it creates anything (see state.ts) and, unless
 * it is meant to outlive this process (`persist`, for `vxnet lab up`), removes itself on exit
 * and on SIGINT/SIGTERM too.
 *
 * Dual stack (`ipv6: true`, on backends that carry IPv6): every node also gets an IPv6 pod CIDR
 * (topology.ts), every pod an IPv6 address from a second host-local range, and node namespaces
 * forward IPv6. The underlay stays IPv4, so IPv6 pod traffic crosses it inside VXLAN with inner
 * EtherType 0x86DD.
 */
import { mkdirSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeConflist } from '../agent/cni-conflist.js';
import { cniAdd, cniDel, resultIPv4, resultIPv6, type CniResult, type PortMapping } from './cni-runtime.js';
import { Background, background, inNs, readTail, run, runOk, waitFor, type RunResult } from './exec.js';
import { httpGetInNs, parsePrometheus, type HttpResult, type Sample } from './http.js';
import { buildUnderlay } from './underlay.js';
import { demoService, installServices, type ClusterService } from './services.js';
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
  MAX_NODES,
  METRICS_ADDR,
  UNDERLAY_MTU,
  podCIDR,
  podCIDR6,
  podGateway,
  podLetter,
  routerIP,
  tunnelAddress,
  tunnelAddress6,
  underlayIP,
  vtepMAC,
} from './topology.js';
import { backendOf, type NodeKind } from './backends/index.js';
import type { BackendHost, BackendNode, BackendOptions } from './backends/backend.js';
import { agentConfig } from './backends/vxnet.js';
import { programKernelPeers, type KernelPeer } from './backends/kernel.js';

export type { NodeKind } from './backends/index.js';
export type { PortMapping } from './cni-runtime.js';
export { defaultAgentCommand, defaultAgentEntry } from './backends/vxnet.js';

export interface LabOptions extends BackendOptions {
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
  /** MTU of node i's uplink and of its router port. Default 1500 everywhere. */
  underlayMTU?: (i: number) => number;
  /**
   * A narrow hop: these nodes hang off a second router whose link to the first has MTU `mtu`
   * on both ends, so the path to them is narrower than any node's own interface.
   */
  narrowHop?: { nodes: readonly number[]; mtu: number };
  /** Add an outside host (203.0.113.10) behind the router, with no route to any pod CIDR. */
  outside?: boolean;
  /** Add an 'attacker' namespace behind the router on 192.168.250.0/24. */
  attacker?: boolean;
  /**
   * Program one Service in every node, as kube-proxy's nftables mode would (services.ts):
   * a ClusterIP and a NodePort whose endpoints are the first pods of nodes 2 and 3.
   */
  service?: boolean;
  /** hostPorts by pod name, handed to the CNI portmap plugin as a container runtime would. */
  hostPorts?: Readonly<Record<string, readonly PortMapping[]>>;
  /** Runs once the underlay is up, before any data plane starts (e.g. API relays into nodes). */
  beforeDataPlanes?: (lab: Lab) => Promise<void>;
  log?: (msg: string) => void;
}

export interface LabNode extends BackendNode {
  readonly kind: NodeKind;
  /** The router's address on this node's subnet (the node's default gateway). */
  readonly routerIP: string;
  /** The router namespace this node's link goes to. */
  readonly routerNs: string;
  /** Router-side interface of this node's link, inside that router namespace. */
  readonly routerIface: string;
  readonly podGateway: string;
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

const UPLINK = 'eth0';

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

export class Lab implements BackendHost {
  readonly nodes: LabNode[] = [];
  readonly pods: LabPod[] = [];
  /** Every namespace of this lab, in creation order. */
  readonly namespaces: string[] = [];
  readonly router: string;
  /** The second router of a narrow-hop lab. */
  readonly router2: string | null;
  readonly attacker: string | null;
  /** The outside host's namespace (the internet stand-in), when the lab has one. */
  readonly outside: string | null;
  readonly vni: number;
  readonly port: number;
  readonly dir: string;
  /** The Service programmed in every node (`service: true`). */
  service: ClusterService | null = null;
  private readonly bg = new Set<Background>();
  private readonly agents = new Map<number, Background>();
  private readonly logFn: (msg: string) => void;
  private down_ = false;

  private constructor(
    readonly id: string,
    private readonly opts: LabOptions,
  ) {
    this.router = `${nsPrefix(id)}r`;
    this.router2 = opts.narrowHop ? `${nsPrefix(id)}r2` : null;
    this.attacker = opts.attacker ? `${nsPrefix(id)}a` : null;
    this.outside = opts.outside ? `${nsPrefix(id)}o` : null;
    this.vni = opts.vni ?? 1;
    this.port = opts.port ?? 8472;
    this.dir = labDir(id);
    this.logFn = opts.log ?? (() => undefined);
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
      outside: (summary.outside ?? null) !== null,
      persist: true,
      ...(log ? { log } : {}),
    });
    lab.nodes.push(...summary.nodes);
    lab.pods.push(...summary.pods);
    lab.namespaces.push(...st.namespaces);
    lab.service = summary.service ?? null;
    return lab;
  }

  /** The options this lab was built with (what its backends read). */
  get options(): LabOptions {
    return this.opts;
  }

  log(msg: string): void {
    this.logFn(msg);
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

  peersOf(node: BackendNode): LabNode[] {
    return this.nodes.filter((p) => p.index !== node.index);
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

  /** A node's data-plane process (BackendHost): logged to its directory, stopped at teardown. */
  startProcess(node: BackendNode, argv: readonly string[], logName: string): Background {
    const p = background(inNs(node.ns, argv), { logFile: join(node.dir, logName), detached: this.opts.persist ?? false });
    this.agents.set(node.index, p);
    node.agentPid = p.pid;
    return p;
  }

  async waitDevice(node: BackendNode, dev: string, proc: Background, logName: string): Promise<void> {
    await waitFor(
      `${dev} on ${node.name}`,
      async () => {
        if (!proc.running) throw new Error(`${logName} says: ${readTail(join(node.dir, logName))}`);
        const r = await run(['ip', '-n', node.ns, 'link', 'show', 'dev', dev], { timeoutMs: 3000 });
        return r.code === 0 ? true : undefined;
      },
      10_000,
    );
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

  /** The agent's JSON config for `node` (see src/agent/config-types.ts). */
  agentConfig(node: LabNode): Record<string, unknown> {
    return agentConfig(this, node);
  }

  /**
   * Programs kernel VXLAN node i's peers as flannel's vxlan backend does (backends/kernel.ts),
   * for a test that builds the node with `programKernelPeers: false` and programs it from what
   * the other nodes published.
   */
  async programKernelPeers(i: number, peers: readonly KernelPeer[]): Promise<void> {
    const node = this.node(i);
    if (node.kind !== 'kernel') throw new Error(`${node.name} is not a kernel VXLAN node`);
    await programKernelPeers(node, peers);
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
          await cniDel(this.cniInvocation(node, pod, conflist), pod.result);
        }
      }),
    );
    const removed = await destroyLab(this.id, this.namespaces);
    this.log(`lab ${this.id}: removed ${removed.length} namespaces`);
  }

  /** Human-readable pods and peers (the peer table from each agent's /status when it has one). */
  async describe(): Promise<string> {
    const lines: string[] = [`lab ${this.id}: ${this.nodes.length} nodes, VNI ${this.vni}, UDP port ${this.port}`];
    lines.push('', 'NODE     KIND     NAMESPACE            UNDERLAY         MTU    POD CIDR         VTEP MAC');
    for (const n of this.nodes) {
      lines.push(
        `${n.name.padEnd(8)} ${n.kind.padEnd(8)} ${n.ns.padEnd(20)} ${n.underlayIP.padEnd(16)} ${String(n.underlayMTU).padEnd(6)} ${n.podCIDR.padEnd(16)} ${backendOf(n.kind).vtep ? n.vtepMAC : '-'}`,
      );
    }
    if (this.router2) lines.push('', `narrow hop: ${this.router2} behind ${this.router}, link MTU ${this.opts.narrowHop?.mtu ?? '?'}`);
    if (this.outside) lines.push('', `outside host: ${this.outside} (no route to any pod CIDR)`);
    if (this.service) {
      const s = this.service;
      lines.push('', `service ${s.namespace}/${s.name}: ClusterIP ${s.clusterIP}:${s.port}${s.nodePort ? `, NodePort ${s.nodePort}` : ''} -> ${s.endpoints.map((e) => `${e.ip}:${e.port}`).join(', ')}`);
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
      if (backendOf(n.kind).vtep) {
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
      outside: this.outside,
      nodes: this.nodes.map((n) => ({ ...n, agentPid: this.agentPid(n.index) })),
      pods: this.pods,
      service: this.service,
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

  private async build(n: number): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const kindOf = this.opts.kind ?? (() => 'vxnet' as const);
    const behindHop = new Set(this.opts.narrowHop?.nodes ?? []);
    for (let i = 1; i <= n; i++) {
      const kind = kindOf(i);
      const backend = backendOf(kind);
      if (backend.nodeCount !== undefined && n !== backend.nodeCount) throw new Error(`${kind} labs have exactly ${backend.nodeCount} nodes`);
      if (this.opts.ipv6 && !backend.dualStack) throw new Error(`dual-stack labs have nodes whose data plane carries IPv6 only, not ${kind}`);
      const dir = join(this.dir, `node${i}`);
      mkdirSync(dir, { recursive: true });
      const mtu = this.opts.underlayMTU?.(i) ?? UNDERLAY_MTU;
      this.nodes.push({
        index: i,
        name: `node${i}`,
        ns: `${nsPrefix(this.id)}n${i}`,
        kind,
        underlayIP: underlayIP(i),
        underlayMTU: mtu,
        routerIP: routerIP(i),
        routerNs: behindHop.has(i) && this.router2 ? this.router2 : this.router,
        routerIface: `n${i}`,
        uplink: UPLINK,
        podCIDR: podCIDR(i),
        podGateway: podGateway(i),
        tunnelAddress: tunnelAddress(i),
        ...(this.opts.ipv6 ? { podCIDR6: podCIDR6(i), tunnelAddress6: tunnelAddress6(i) } : {}),
        vtepMAC: vtepMAC(i),
        remoteChecksum: kind === 'vxnet' || (kind === 'kernel' && (this.opts.kernelRemoteChecksum === 'rx' || this.opts.kernelRemoteChecksum === 'both')),
        device: backend.device(this.vni),
        mtu: backend.podMTU(mtu),
        dir,
      });
    }
    this.log(`lab ${this.id}: underlay (router${this.router2 ? 's' : ''} + ${n} nodes)`);
    await buildUnderlay({
      router: this.router,
      nodes: this.nodes,
      ...(this.router2 && this.opts.narrowHop ? { narrowHop: { router: this.router2, mtu: this.opts.narrowHop.mtu } } : {}),
      ...(this.outside ? { outside: this.outside } : {}),
      ...(this.attacker ? { attacker: this.attacker } : {}),
      ...(this.opts.ipv6 ? { ipv6: true } : {}),
    }, (name) => this.addNs(name));
    if (this.opts.beforeDataPlanes) await this.opts.beforeDataPlanes(this);
    this.log(`lab ${this.id}: data planes (${[...new Set(this.nodes.map((x) => x.kind))].join(', ')})`);
    await Promise.all(this.nodes.map((node) => this.buildDataPlane(node)));
    this.log(`lab ${this.id}: pods`);
    await Promise.all(this.nodes.map((node) => this.buildPods(node)));
    if (this.opts.ipv6) await this.settleIpv6();
    if (this.opts.service) {
      this.service = demoService(this.pods);
      await installServices(this, [this.service]);
      this.log(`lab ${this.id}: service ${this.service.namespace}/${this.service.name} in every node`);
    }
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

  private async buildDataPlane(node: LabNode): Promise<void> {
    const backend = backendOf(node.kind);
    await backend.start(this, node);
    // Nodes without an agent get the conflist the agent would have written.
    if (!backend.writesConflist) writeConflist(join(node.dir, 'net.d'), { podCIDR: node.podCIDR, podCIDR6: node.podCIDR6, mtu: node.mtu });
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

  private cniInvocation(node: LabNode, pod: { name: string; ns: string; containerId: string }, conflist: Record<string, unknown>) {
    const portMappings = this.opts.hostPorts?.[pod.name];
    return {
      conflist,
      containerId: pod.containerId,
      netnsPath: `/var/run/netns/${pod.ns}`,
      ifName: 'eth0',
      pluginNs: node.ns,
      ipamDataDir: join(node.dir, 'ipam'),
      ...(portMappings ? { capabilityArgs: { portMappings } } : {}),
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
      const result = await cniAdd(this.cniInvocation(node, { name, ns, containerId: ns }, conflist));
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
  outside?: string | null;
  nodes: LabNode[];
  pods: LabPod[];
  service?: ClusterService | null;
}

/** Remove a lab by id (from another process: `vxnet lab down ID`). */
export async function labDown(id: string): Promise<string[]> {
  if (!isValidLabId(id)) throw new Error(`not a lab id: ${id}`);
  const st = readState(id);
  return destroyLab(id, st?.namespaces ?? []);
}
