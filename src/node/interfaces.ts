/**
 * Reading the node's own interfaces over netlink: which address an interface holds, for
 * `--iface` / `kubernetes.iface`. Read-only; one short-lived request socket per question.
 */
import { KernelSetupError } from './errors.js';
import { encodeDumpAddrs, encodeGetLink, parseAddr, parseLink } from './netlink/rtnetlink.js';
import { NetlinkSocket } from './netlink/socket.js';

/** The first IPv4 address of interface `iface` (the kernel's order: the primary address first). */
export function interfaceIPv4(iface: string): string {
  const nl = NetlinkSocket.open();
  try {
    const msg = nl.get(`read interface ${iface}`, encodeGetLink(nl.nextSeq(), { name: iface }));
    const link = msg && parseLink(msg);
    if (!link) throw new KernelSetupError(`read the address of interface ${iface}`, `this node has no interface ${iface}`, 'check --iface / kubernetes.iface');
    const addr = nl.dump(`read the addresses of ${iface}`, (seq) => encodeDumpAddrs(seq, 4, link.index))
      .map(parseAddr)
      .find((a) => a !== undefined && a.index === link.index);
    if (!addr) throw new KernelSetupError(`read the address of interface ${iface}`, `${iface} has no IPv4 address`, 'check --iface / kubernetes.iface');
    return addr.address;
  } finally {
    nl.close();
  }
}
