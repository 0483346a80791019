/**
 * OpenVPN point-to-point over UDP with crypto switched off (`--cipher none --auth none`): a
 * mature userspace tunnel, for the bench's reference row. Two nodes only. Its own framing costs
 * more than VXLAN's, so the pod MTU leaves 100 bytes.
 */
import { run, runOk, waitFor } from '../exec.js';
import { POINT_TO_POINT_RELAY, type Backend, type BackendHost, type BackendNode } from './backend.js';

const DEVICE = 'ovpn0';
const PORT = 1194;
const OVERHEAD = 100;

export const openvpn: Backend = {
  kind: 'openvpn',
  summary: 'OpenVPN point-to-point without crypto (2 nodes)',
  ...POINT_TO_POINT_RELAY,
  device: () => DEVICE,
  podMTU: (underlayMTU) => underlayMTU - OVERHEAD,

  async start(host: BackendHost, node: BackendNode): Promise<void> {
    const peer = host.peersOf(node)[0] as BackendNode;
    const argv = [
      'openvpn',
      '--dev', DEVICE, '--dev-type', 'tun', '--proto', 'udp',
      '--local', node.underlayIP, '--lport', String(PORT),
      '--remote', peer.underlayIP, '--rport', String(PORT),
      '--ifconfig', node.tunnelAddress, peer.tunnelAddress,
      '--cipher', 'none', '--auth', 'none', '--data-ciphers', 'none',
      '--tun-mtu', String(node.mtu), '--mssfix', '0', '--disable-dco',
      '--ping', '1', '--verb', '3',
    ];
    const p = host.startProcess(node, argv, 'openvpn.log');
    await host.waitDevice(node, DEVICE, p, 'openvpn.log');
    await waitFor(
      `${DEVICE} address on ${node.name}`,
      async () => {
        const r = await run(['ip', '-n', node.ns, '-4', '-o', 'addr', 'show', 'dev', DEVICE]);
        return r.stdout.includes(node.tunnelAddress) ? true : undefined;
      },
      10_000,
    );
    await runOk(['ip', '-n', node.ns, 'route', 'replace', peer.podCIDR, 'dev', DEVICE]);
  },
};
