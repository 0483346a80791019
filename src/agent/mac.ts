/**
 * VTEP MAC addresses. A node's MAC must be stable across agent restarts, because peers (and the
 * kernel VXLAN nodes among them) hold it in permanent neighbour and FDB entries. When the operator
 * gives none, it is derived from the node name: a locally administered unicast address (RFC 7042
 * §2.1: bit 1 of the first octet set, bit 0 clear) whose other 46 bits come from SHA-256 of the
 * name. Collisions need 2^23 nodes for an even chance; clusters are far smaller.
 */
import { createHash } from 'node:crypto';

export function deriveVtepMAC(node: string): string {
  const h = createHash('sha256').update(`vxnet-vtep:${node}`).digest();
  const b = [((h[0]! & 0xfc) | 0x02), h[1]!, h[2]!, h[3]!, h[4]!, h[5]!];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Returns the normalised (lower-case) MAC, or null when `s` is not a unicast MAC. */
export function normaliseMAC(s: string): string | null {
  const m = s.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC_RE.test(m)) return null;
  const first = parseInt(m.slice(0, 2), 16);
  if (first & 1) return null; // multicast/broadcast cannot be a VTEP
  if (m === '00:00:00:00:00:00') return null;
  return m;
}

export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((x) => parseInt(x, 16)));
}
