/**
 * What a node's data plane is to the lab: one small interface, one module per implementation
 * (vxnet, kernel VXLAN, direct routes, socat, OpenVPN), and a registry in index.ts. The lab
 * builds the underlay and the pods the same way for every data plane; everything that differs
 * between them (the overlay device, the pod MTU, how the node is brought up, what the lab may
 * measure or print about it) is answered here, so a new data plane is one new file.
 *
 * A backend sees a node through `BackendNode` (its addresses, names and directory) and the lab
 * through `BackendHost` (the router, the other nodes, and the lab's way to start and track a
 * process). It never reaches into the lab's own state.
 */
import type { Background } from '../exec.js';
import type { HttpResult } from '../http.js';

/** What a backend knows about the node it builds. */
export interface BackendNode {
  /** 1-based. */
  readonly index: number;
  /** Node name as the agent and Kubernetes see it: node1, node2, ... */
  readonly name: string;
  readonly ns: string;
  readonly underlayIP: string;
  /** MTU of the node's uplink (and of its router port). */
  readonly underlayMTU: number;
  /** Node-side interface of the node's link to the router. */
  readonly uplink: string;
  readonly podCIDR: string;
  /** Network address of the pod CIDR, the overlay device's own /32. */
  readonly tunnelAddress: string;
  /** Dual-stack labs: the IPv6 pod CIDR and its network address (the overlay device's /128). */
  readonly podCIDR6?: string;
  readonly tunnelAddress6?: string;
  readonly vtepMAC: string;
  /** The node finishes inner checksums a sender leaves unfinished (VXLAN remote checksum
   * offload): every vxnet node, and a kernel VXLAN node built with `remcsumrx`. */
  readonly remoteChecksum: boolean;
  /** Overlay device: the agent's TUN, the kernel vxlan device, socat's or openvpn's TUN. */
  readonly device: string | null;
  /** Pod MTU. */
  readonly mtu: number;
  readonly dir: string;
  configPath?: string;
  agentPid?: number;
}

/** The lab options a backend reads. */
export interface BackendOptions {
  /** Default: [node, <repo>/dist/src/cli/main.js, 'agent']; `--config FILE` is appended. */
  agentCommand?: string[];
  /** Merged into every agent's JSON config (e.g. `offloads`). */
  agentConfigExtra?: Record<string, unknown>;
  /**
   * The MTU lines of every agent config: 'lab' (default) writes `mtu` = the node's underlay MTU
   * - 50, as an operator would by hand; 'auto' writes neither `mtu` nor `underlayMTU`, so the
   * agent finds them itself.
   */
  agentMTU?: 'lab' | 'auto';
  /** How agents learn peers. 'kubernetes' needs `apiServer`; the lab then writes no peers. */
  peerSource?: 'static' | 'kubernetes';
  apiServer?: { kubeconfig: string; annotationPrefix?: string };
  /** Dual stack: IPv6 pod CIDRs and pod addresses too. */
  ipv6?: boolean;
  /** Keep running after this process exits (for `vxnet lab up`). */
  persist?: boolean;
  /** How long to wait for each agent to start forwarding. Default 60 s. */
  agentReadyTimeoutMs?: number;
  /** Kernel VXLAN nodes: program their peers at build time (default true). */
  programKernelPeers?: boolean;
  /**
   * Kernel VXLAN nodes: remote checksum offload (`remcsumrx`, `remcsumtx`, or both; with
   * `udpcsum`, which RCO needs). Default: none, as flannel configures them.
   */
  kernelRemoteChecksum?: 'rx' | 'tx' | 'both';
}

/** What the lab offers a backend while it builds a node. */
export interface BackendHost {
  readonly router: string;
  readonly vni: number;
  readonly port: number;
  readonly options: BackendOptions;
  /** Every other node of the lab, in index order. */
  peersOf(node: BackendNode): readonly BackendNode[];
  /**
   * Start the node's data-plane process in its namespace, output to `<node dir>/<logName>`.
   * The lab stops it at teardown (and leaves it running with `persist`).
   */
  startProcess(node: BackendNode, argv: readonly string[], logName: string): Background;
  /** Wait until `dev` exists in the node, failing early with the log's tail if `proc` dies. */
  waitDevice(node: BackendNode, dev: string, proc: Background, logName: string): Promise<void>;
  /** GET from the agent's metrics address inside node i. */
  agentHttp(i: number, path: string, timeoutMs?: number): Promise<HttpResult>;
  log(msg: string): void;
}

export interface Backend {
  /** The name in `--kind`. */
  readonly kind: string;
  /** One line for `vxnet lab` usage and docs. */
  readonly summary: string;
  /** The exact node count this data plane supports (point-to-point tunnels), if any. */
  readonly nodeCount?: number;
  /** Carries IPv6 pods (dual-stack labs). */
  readonly dualStack: boolean;
  /** Speaks VXLAN with a VTEP MAC per node (the lab prints MACs and the configured peers). */
  readonly vtep: boolean;
  /** Packets cross a userspace process on each node (the bench samples its CPU and memory). */
  readonly relay: boolean;
  /** The data plane writes the node's CNI conflist itself (else the lab writes the agent's). */
  readonly writesConflist: boolean;
  /** Pods reach addresses outside the cluster as the node (outbound NAT), as flannel's --ip-masq. */
  readonly masquerades: boolean;
  /** The overlay device in the node, or null without one. */
  device(vni: number): string | null;
  /** Pod MTU on a node whose uplink has MTU `underlayMTU`. */
  podMTU(underlayMTU: number): number;
  /** Bring the node's data plane up; returns once it forwards. */
  start(host: BackendHost, node: BackendNode): Promise<void>;
}

/** What the two point-to-point userspace tunnels (socat, OpenVPN) have in common. */
export const POINT_TO_POINT_RELAY = {
  nodeCount: 2,
  dualStack: false,
  vtep: false,
  relay: true,
  writesConflist: false,
  masquerades: false,
} as const;
