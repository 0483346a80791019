/**
 * A naive userspace relay: socat copies between a TUN device and one UDP socket, one packet per
 * system call, no batching and no offloads. Two nodes only (one peer). It is the floor a
 * userspace design must beat, measured by the bench.
 */
import { VXLAN_OVERHEAD } from '../../wire/vxlan.js';
import { runOk } from '../exec.js';
import { POINT_TO_POINT_RELAY, type Backend, type BackendHost, type BackendNode } from './backend.js';

const DEVICE = 'sx0';

export const socat: Backend = {
  kind: 'socat',
  summary: 'socat TUN <-> UDP relay (2 nodes)',
  ...POINT_TO_POINT_RELAY,
  device: () => DEVICE,
  // Not VXLAN, but the lab gives it the same pod MTU so the bench compares like with like.
  podMTU: (underlayMTU) => underlayMTU - VXLAN_OVERHEAD,

  async start(host: BackendHost, node: BackendNode): Promise<void> {
    const peer = host.peersOf(node)[0] as BackendNode;
    const argv = [
      'socat',
      '-b',
      '65536',
      `TUN:${node.tunnelAddress}/16,tun-type=tun,iff-up,iff-no-pi,tun-name=${DEVICE}`,
      `UDP-DATAGRAM:${peer.underlayIP}:${host.port},bind=${node.underlayIP}:${host.port}`,
    ];
    const p = host.startProcess(node, argv, 'socat.log');
    await host.waitDevice(node, DEVICE, p, 'socat.log');
    await runOk(['ip', '-n', node.ns, 'link', 'set', DEVICE, 'mtu', String(node.mtu)]);
  },
};
