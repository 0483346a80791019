/**
 * The agent's configuration as the rest of the program sees it: every field present, every
 * default applied, every address checked. `config.ts` turns a file (JSON or YAML) into this; the
 * Kubernetes peer source fills `peers` at run time instead of the file.
 */
import type { Peer } from '../peers/source.js';

export interface OffloadConfig {
  /** TUN IFF_VNET_HDR with TSO/GSO super-packets (segmented/coalesced in TypeScript). */
  readonly tun: boolean;
  /** UDP_SEGMENT on send. */
  readonly udpGso: boolean;
  /** UDP_GRO on receive. */
  readonly udpGro: boolean;
  /** VXLAN remote checksum offload: leave inner checksums unfinished for peers that take it (and
   * say so in their peer entry or Node annotation), and take it from any peer. */
  readonly remoteChecksum: boolean;
}

export interface KubernetesConfig {
  /** Annotation prefix: "vxnet.io" (ours) or "flannel.alpha.coreos.com" (flannel-compatible). */
  readonly annotationPrefix: string;
  /** Path to a kubeconfig; undefined: KUBECONFIG env, then in-cluster. */
  readonly kubeconfig?: string;
  /** Explicit underlay IP (overrides the interface and InternalIP). */
  readonly underlayIP?: string;
  /** Interface whose first IPv4 address is the underlay IP (overrides InternalIP). */
  readonly iface?: string;
}

export interface AgentConfig {
  readonly node: string;
  readonly device: string;
  readonly vni: number;
  readonly port: number;
  readonly underlayIP: string;
  readonly clusterCIDR: string;
  readonly podCIDR: string;
  /** All IPv6 pod addresses (dual stack); undefined: IPv4 pods only. */
  readonly clusterCIDR6?: string;
  /** This node's IPv6 pods, inside clusterCIDR6. Set whenever clusterCIDR6 is, once the agent
   * runs (Kubernetes mode fills it from the Node's spec.podCIDRs). */
  readonly podCIDR6?: string;
  readonly vtepMAC: string;
  /** Overlay MTU set on the TUN device (underlay MTU - 50 unless given). */
  readonly mtu: number;
  /** MTU of the node network: given, or (mtuFrom "interface") read from the interface that
   * holds underlayIP when the agent starts. */
  readonly underlayMTU: number;
  /** Where the MTU comes from: the config's `mtu`, its `underlayMTU`, or the underlay interface
   * (neither was given; `mtu` and `underlayMTU` are replaced at start). */
  readonly mtuFrom: 'mtu' | 'underlayMTU' | 'interface';
  readonly metricsAddr: string;
  /** Export per-peer series on /metrics (4 per peer); off by default, see docs/operations.md. */
  readonly perPeerMetrics: boolean;
  readonly cniConfDir?: string;
  /** The agents' run directory: the node lock and the hand-over socket (src/node/lock.ts). */
  readonly runDir: string;
  /** "static": `peers` below (and the file is watched); "kubernetes": learn from the API. */
  readonly peerSource: 'static' | 'kubernetes';
  readonly peers: readonly Peer[];
  readonly offloads: OffloadConfig;
  /** Masquerade pod traffic to destinations outside the cluster CIDR (src/netfilter/). */
  readonly ipMasq: boolean;
  readonly kubernetes: KubernetesConfig;
  /** Data-path tuning; defaults are the measured choices recorded in docs/performance.md. */
  readonly tuning: TuningConfig;
  /** Separate peers file (static mode), watched and re-read live; undefined: peers are inline. */
  readonly peersFile?: string;
  /** Path the config came from, for live reloads; undefined when built in memory. */
  readonly path?: string;
}

export interface TuningConfig {
  /** Packets per batch call (TUN read loop, recvmmsg, sendmmsg); with offloads a call also
   * stops near 1 MB (a TUN read's byte budget, 16 GRO slots of 64 KB). Undefined: 64. */
  readonly batch?: number;
  /** SO_RCVBUF / SO_SNDBUF for the UDP sockets, bytes. */
  readonly socketBuffer: number;
  /** Sending sockets, i.e. distinct outer source ports (power of two). */
  readonly senders: number;
  /** txqueuelen of the TUN device: how many packets the kernel holds for our reader before it drops. */
  readonly tunQueueLength: number;
  /** Queues: TUN queues and receiving sockets, one worker thread each; default one per two cores, 1 to 8. */
  readonly queues: number;
}
