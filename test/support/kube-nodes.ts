/**
 * Nodes the size and shape of real ones, for the start-up tests and benches at scale.
 *
 * A Node that a kubelet on a cloud VM keeps up to date carries much more than vxnet reads: labels,
 * a dozen annotations, managedFields for every writer, capacity and allocatable, five conditions
 * with messages and timestamps, nodeInfo, and the images on the node (the kubelet reports up to
 * 50). Decoding all of it is most of the cost of a list, so a bench over bare Nodes measures the
 * wrong thing. These carry 20 images and come to about 7 KB of JSON each (`nodeBytes` reports the
 * exact figure); clusters with many images per node have larger Nodes still.
 *
 * Layout for node i (1-based, up to 65,535): pod CIDR 10.(i>>8).(i&255).0/24 in the cluster CIDR
 * 10.0.0.0/8, InternalIP 172.16.(i>>8).(i&255), VTEP MAC 02:00:00:00:(i>>8):(i&255).
 */
import { annotationKeys, publishAnnotations, VXNET_PREFIX } from '../../src/peers/kube-node.js';
import type { Peer } from '../../src/peers/source.js';
import type { TableInput } from '../../src/table/table.js';
import { ipv4ToNumber, parseCidr4, parseMac } from '../../src/wire/addr.js';
import type { NodeObject } from './kube-apiserver.js';

export const SCALE_CLUSTER_CIDR = '10.0.0.0/8';
/** Nodes a fixture can name without two sharing a pod CIDR or an address. */
export const SCALE_MAX_NODES = 65_535;

const IMAGES = 20;
const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

export function scaleNodeName(i: number): string {
  return `node-${String(i).padStart(5, '0')}`;
}

export function scalePodCIDR(i: number): string {
  return `10.${i >> 8}.${i & 0xff}.0/24`;
}

export function scaleInternalIP(i: number): string {
  return `172.16.${i >> 8}.${i & 0xff}`;
}

export function scaleVtepMAC(i: number): string {
  return `02:00:00:00:${hex(i >> 8, 2)}:${hex(i & 0xff, 2)}`;
}

/** Node i as the kubelet, the controller manager and a vxnet agent (unless `annotated: false`) left it. */
export function kubeletNode(i: number, opts: { annotated?: boolean; port?: number } = {}): NodeObject {
  if (!Number.isInteger(i) || i < 1 || i > SCALE_MAX_NODES) throw new RangeError(`node index ${i} is not in 1..${SCALE_MAX_NODES}`);
  const name = scaleNodeName(i);
  const ip = scaleInternalIP(i);
  const t = '2025-11-02T07:35:12Z';
  const ours = opts.annotated === false ? {} : publishAnnotations({ underlayIP: ip, vni: 1, vtepMAC: scaleVtepMAC(i), port: opts.port ?? 8472 }, annotationKeys(VXNET_PREFIX));
  const condition = (type: string, status: string, reason: string, message: string): Record<string, unknown> =>
    ({ type, status, lastHeartbeatTime: t, lastTransitionTime: t, reason, message });
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      uid: `6f1c${hex(i, 4)}-2b0e-4d7a-9c51-${hex(i * 2654435761 >>> 0, 12)}`,
      creationTimestamp: t,
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/instance-type': 'n2-standard-8',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'n2-standard-8',
        'topology.kubernetes.io/region': 'europe-west4',
        'topology.kubernetes.io/zone': `europe-west4-${'abc'[i % 3]}`,
        'cloud.google.com/machine-family': 'n2',
        'cloud.google.com/gke-nodepool': `pool-${i % 7}`,
      },
      annotations: {
        'kubeadm.alpha.kubernetes.io/cri-socket': 'unix:///run/containerd/containerd.sock',
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        'csi.volume.kubernetes.io/nodeid': `{"pd.csi.storage.gke.io":"projects/p/zones/europe-west4-a/instances/${name}"}`,
        ...ours,
      },
      managedFields: [
        managedFields('kubelet', t, { 'f:metadata': { 'f:annotations': { '.': {}, 'f:volumes.kubernetes.io/controller-managed-attach-detach': {} }, 'f:labels': { '.': {}, 'f:kubernetes.io/hostname': {} } } }),
        managedFields('kube-controller-manager', t, { 'f:metadata': { 'f:annotations': { 'f:node.alpha.kubernetes.io/ttl': {} } }, 'f:spec': { 'f:podCIDR': {}, 'f:podCIDRs': { '.': {}, [`v:"${scalePodCIDR(i)}"`]: {} } } }),
        managedFields('kubelet', t, { 'f:status': { 'f:conditions': { 'k:{"type":"Ready"}': { 'f:lastHeartbeatTime': {}, 'f:status': {} } }, 'f:images': {} } }, 'status'),
      ],
    },
    spec: { podCIDR: scalePodCIDR(i), podCIDRs: [scalePodCIDR(i)], providerID: `gce://project/europe-west4-a/${name}` },
    status: {
      capacity: { cpu: '8', 'ephemeral-storage': '98831908Ki', 'hugepages-1Gi': '0', 'hugepages-2Mi': '0', memory: '32880668Ki', pods: '110' },
      allocatable: { cpu: '7910m', 'ephemeral-storage': '47060071478', 'hugepages-1Gi': '0', 'hugepages-2Mi': '0', memory: '29094940Ki', pods: '110' },
      conditions: [
        condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
        ...(opts.annotated === false ? [] : [condition('NetworkUnavailable', 'False', 'VxnetIsUp', 'vxnet is running on this node')]),
      ],
      addresses: [
        { type: 'InternalIP', address: ip },
        { type: 'ExternalIP', address: `203.0.${i >> 8}.${i & 0xff}` },
        { type: 'Hostname', address: name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: hex(i * 40503, 32),
        systemUUID: `${hex(i, 8)}-1c2d-4e5f-8a9b-0c1d2e3f4a5b`,
        bootID: `${hex(i * 7, 8)}-aaaa-4bbb-8ccc-dddddddddddd`,
        kernelVersion: '6.1.0-28-cloud-amd64',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        containerRuntimeVersion: 'containerd://1.7.24',
        kubeletVersion: 'v1.31.4',
        kubeProxyVersion: 'v1.31.4',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
      images: Array.from({ length: IMAGES }, (_, k) => ({
        names: [
          `registry.example.com/team-${k}/service-${k}@sha256:${hex((k + 1) * 2246822519, 8).repeat(8)}`,
          `registry.example.com/team-${k}/service-${k}:v1.${k}.${i % 10}`,
        ],
        sizeBytes: 10_000_000 + k * 1_234_567,
      })),
    },
  };
}

function managedFields(manager: string, time: string, fieldsV1: Record<string, unknown>, subresource?: string): Record<string, unknown> {
  return { manager, operation: 'Update', apiVersion: 'v1', time, fieldsType: 'FieldsV1', fieldsV1, ...(subresource ? { subresource } : {}) };
}

/** The JSON size of one fixture Node, to state in reports. */
export function nodeBytes(i = 1): number {
  return Buffer.byteLength(JSON.stringify(kubeletNode(i)));
}

/**
 * The table input for a snapshot of these Nodes, the way Agent.tableFor maps peers (addresses and
 * MACs parsed, the agent's port and VNI where a peer names none), for a local node outside them.
 */
export function scaleTableInput(peers: readonly Peer[]): TableInput {
  const cluster = parseCidr4(SCALE_CLUSTER_CIDR);
  return {
    clusterNet: cluster.net,
    clusterPrefix: cluster.prefix,
    localPodCIDRs: [parseCidr4('10.255.255.0/24')],
    peers: peers.map((p) => ({
      node: p.node,
      underlay: ipv4ToNumber(p.underlayIP),
      port: p.port ?? 8472,
      vni: p.vni ?? 1,
      mac: parseMac(p.vtepMAC),
      podCIDRs: p.podCIDRs.map((c) => parseCidr4(c)),
    })),
  };
}
