/**
 * This node's VTEP MAC when the operator gives none. It must be stable across agent restarts,
 * because peers (and the kernel VXLAN nodes among them) hold it in permanent neighbour and FDB
 * entries. So it is derived from the node name: a locally administered unicast address (RFC 7042
 * §2.1: bit 1 of the first octet set, bit 0 clear) whose other 46 bits come from SHA-256 of the
 * name. Collisions need 2^23 nodes for an even chance; clusters are far smaller. Parsing and
 * formatting MACs is `wire/addr.ts`'s job.
 */
import { createHash } from 'node:crypto';
import { formatMac } from '../wire/addr.js';

export function deriveVtepMAC(node: string): string {
  const h = createHash('sha256').update(`vxnet-vtep:${node}`).digest();
  return formatMac(Uint8Array.of((h[0]! & 0xfc) | 0x02, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!));
}
