/**
 * Test support for src/wire/icmp.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { copyBytes, inBounds, readU16, readU32, writeU16, writeU32 } from '../../../src/wire/bytes.js';
import { foldChecksum, onesComplementSum, pseudoHeaderSumV6 } from '../../../src/wire/checksum.js';
import { IPV4_MIN_HEADER_LENGTH, IpProtocol, Ipv4Field, Ipv4View } from '../../../src/wire/ipv4.js';
import { IPV6_ADDRESS_LENGTH, IPV6_HEADER_LENGTH, IPV6_MIN_MTU } from '../../../src/wire/ipv6.js';
import { ICMP_HEADER_LENGTH, ICMPv6, Icmpv4View, Icmpv6View } from '../../../src/wire/icmp.js';

export * from '../../../src/wire/icmp.js';

export function tryIcmp(buf: Uint8Array, off: number, len: number): boolean {
  return inBounds(buf, off, len) && len >= ICMP_HEADER_LENGTH;
}

/** One ICMP header as a value; the same shape serves both versions. */
export interface IcmpRepr {
  type: number;
  code: number;
  /** The 32 bits after the checksum (echo id/sequence, next-hop MTU, ICMPv6 MTU, or zero). */
  restOfHeader: number;
}

export function parseIcmpv4(view: Icmpv4View): IcmpRepr {
  return { type: view.type, code: view.code, restOfHeader: view.restOfHeader };
}

/** Writes the 8-byte header with a zero checksum; `fillChecksum` runs once the data is in place. */
export function emitIcmpv4(repr: IcmpRepr, view: Icmpv4View): void {
  view.type = repr.type;
  view.code = repr.code;
  view.checksum = 0;
  view.restOfHeader = repr.restOfHeader;
}

export function parseIcmpv6(view: Icmpv6View): IcmpRepr {
  return { type: view.type, code: view.code, restOfHeader: view.restOfHeader };
}

/** Writes the 8-byte header with a zero checksum; `fillChecksum` runs once the data is in place. */
export function emitIcmpv6(repr: IcmpRepr, view: Icmpv6View): void {
  view.type = repr.type;
  view.code = repr.code;
  view.checksum = 0;
  view.restOfHeader = repr.restOfHeader;
}

export function icmpLen(_repr: IcmpRepr): number {
  return ICMP_HEADER_LENGTH;
}

