/**
 * Test support for src/wire/ipv4.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { inBounds, readU16, readU32, writeU16, writeU32 } from '../../../src/wire/bytes.js';
import { foldChecksum, onesComplementSum } from '../../../src/wire/checksum.js';
import { IPV4_MIN_HEADER_LENGTH, IPV4_VERSION, Ipv4Field, Ipv4View, tryIpv4 } from '../../../src/wire/ipv4.js';

export * from '../../../src/wire/ipv4.js';

const FLAG_DONT_FRAGMENT = 0x4000;

export interface Ipv4Repr {
  sourceAddress: number;
  destinationAddress: number;
  protocol: number;
  /** Bytes after the header. */
  payloadLength: number;
  ttl: number;
  dscp: number;
  ecn: number;
  identification: number;
  dontFragment: boolean;
}

/**
 * Reads the header of a packet that passed `tryIpv4`. Null when the checksum is wrong or the
 * packet is a fragment (a repr describes a whole datagram; vxnet does not reassemble).
 */
export function parseIpv4(view: Ipv4View): Ipv4Repr | null {
  if (!view.isValidChecksum() || view.isFragment) return null;
  return {
    sourceAddress: view.sourceAddress,
    destinationAddress: view.destinationAddress,
    protocol: view.protocol,
    payloadLength: view.payloadLength,
    ttl: view.ttl,
    dscp: view.dscp,
    ecn: view.ecn,
    identification: view.identification,
    dontFragment: view.dontFragment,
  };
}

/** Writes a 20-byte header (no options) with a valid checksum. */
export function emitIpv4(repr: Ipv4Repr, view: Ipv4View): void {
  const buf = view.buf;
  const at = view.off;
  buf[at + Ipv4Field.VersionAndHeaderLength] = (IPV4_VERSION << 4) | (IPV4_MIN_HEADER_LENGTH >>> 2);
  buf[at + Ipv4Field.TypeOfService] = (repr.dscp << 2) | (repr.ecn & 0x03);
  view.totalLength = IPV4_MIN_HEADER_LENGTH + repr.payloadLength;
  view.identification = repr.identification;
  view.flagsAndFragmentOffset = repr.dontFragment ? FLAG_DONT_FRAGMENT : 0;
  view.ttl = repr.ttl;
  view.protocol = repr.protocol;
  view.sourceAddress = repr.sourceAddress;
  view.destinationAddress = repr.destinationAddress;
  view.fillChecksum();
}

export function ipv4Len(_repr: Ipv4Repr): number {
  return IPV4_MIN_HEADER_LENGTH;
}
