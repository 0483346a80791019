/**
 * The flow hash that picks an outbound packet's sending socket, and so its outer UDP source port.
 *
 * RFC 7348 §5 asks that the outer source port be a hash of the inner flow, so that ECMP in the
 * underlay spreads flows over paths while each flow keeps one path (and its packet order). The
 * hash covers the addresses, the protocol and, for unfragmented TCP and UDP, the ports. Any
 * well-mixed 32-bit hash will do; this one is a few multiplies and shifts over the header words,
 * with no allocation. A segment of a TSO super-packet hashes exactly like the super-packet, so a
 * flow's segments and its plain packets share a socket.
 */
import { readU16 } from '../wire/bytes.js';
import { Ipv4Field, Ipv4Fragment, IpProtocol } from '../wire/ipv4.js';
import { Ipv6Field, IPV6_HEADER_LENGTH } from '../wire/ipv6.js';

const GOLDEN = 0x9e3779b1;
const PORTS = 0x85ebca6b;

function word(s: Uint8Array, i: number): number {
  return (s[i]! << 24) | (s[i + 1]! << 16) | (s[i + 2]! << 8) | s[i + 3]!;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h;
}

/** Hash of the IPv4 packet at s[off..] whose header is `headerLength` bytes and total `totalLength`. */
export function flowHash4(s: Uint8Array, off: number, headerLength: number, totalLength: number): number {
  const proto = s[off + Ipv4Field.Protocol]!;
  let h = (word(s, off + Ipv4Field.SourceAddress) ^ Math.imul(word(s, off + Ipv4Field.DestinationAddress), GOLDEN)) ^ proto;
  const fragment = (readU16(s, off + Ipv4Field.FlagsAndFragmentOffset) & (Ipv4Fragment.MoreFragments | Ipv4Fragment.OffsetMask)) !== 0;
  if ((proto === IpProtocol.TCP || proto === IpProtocol.UDP) && !fragment && totalLength >= headerLength + 4) {
    h ^= Math.imul(word(s, off + headerLength), PORTS);
  }
  return finish(h);
}

/** Hash of the IPv6 packet at s[off, off+len): both addresses, the next header and (TCP or UDP
 * right after the fixed header) the ports. */
export function flowHash6(s: Uint8Array, off: number, len: number): number {
  const next = s[off + Ipv6Field.NextHeader]!;
  let h = next;
  for (let i = off + Ipv6Field.SourceAddress; i < off + IPV6_HEADER_LENGTH; i += 4) {
    h = Math.imul(h ^ word(s, i), GOLDEN);
    h ^= h >>> 15;
  }
  if ((next === IpProtocol.TCP || next === IpProtocol.UDP) && len >= IPV6_HEADER_LENGTH + 4) {
    h ^= Math.imul(word(s, off + IPV6_HEADER_LENGTH), PORTS);
  }
  return finish(h);
}
