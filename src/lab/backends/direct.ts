/**
 * No overlay: the router routes each pod CIDR to its node, as a host-gw network or a cloud's
 * route table would. It is the physical baseline the bench measures every overlay against, and
 * the check that the lab itself forwards before any tunnel is involved.
 */
import { runOk } from '../exec.js';
import type { Backend, BackendHost, BackendNode } from './backend.js';

export const direct: Backend = {
  kind: 'direct',
  summary: 'no overlay: the router routes each pod CIDR to its node',
  dualStack: false,
  vtep: false,
  relay: false,
  writesConflist: false,
  masquerades: false,
  device: () => null,
  podMTU: (underlayMTU) => underlayMTU,

  async start(host: BackendHost, node: BackendNode): Promise<void> {
    await runOk(['ip', '-n', host.router, 'route', 'add', node.podCIDR, 'via', node.underlayIP]);
  },
};
