/**
 * IPv6 fixed header (RFC 8200 §3): its field table, constants and the boundary check.
 *
 * Addresses are 128 bits, too wide for one number, so the data path reads them where they lie
 * (the IPv6 table looks them up by offset). Extension headers are not walked here; the code that
 * needs them (the ICMPv6 error rules) does it itself. `Ipv6Field` is the one layout, checked by
 * the tests against golden bytes.
 */

import { inBounds, readU16 } from './bytes.js';

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Version| Traffic Class |           Flow Label                  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Payload Length        |  Next Header  |   Hop Limit   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  +                                                               +
 *  |                         Source Address                        |
 *  +                                                               +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  +                                                               +
 *  |                      Destination Address                      |
 *  +                                                               +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const Ipv6Field = {
  VersionClassLabel: 0,
  PayloadLength: 4,
  NextHeader: 6,
  HopLimit: 7,
  SourceAddress: 8,
  DestinationAddress: 24,
} as const;

export const IPV6_ADDRESS_LENGTH = 16;
export const IPV6_HEADER_LENGTH = Ipv6Field.DestinationAddress + IPV6_ADDRESS_LENGTH;
export const IPV6_VERSION = 6;
/** RFC 8200 §5: every link carries at least this; ICMPv6 errors never exceed it. */
export const IPV6_MIN_MTU = 1280;

/**
 * The boundary check: `buf[off, off+len)` is in bounds, holds a whole fixed header with
 * version 6, and 40 + Payload Length <= len. (Jumbograms, RFC 2675, are not supported.)
 */
export function tryIpv6(buf: Uint8Array, off: number, len: number): boolean {
  if (!inBounds(buf, off, len) || len < IPV6_HEADER_LENGTH) return false;
  if (buf[off]! >>> 4 !== IPV6_VERSION) return false;
  return IPV6_HEADER_LENGTH + readU16(buf, off + Ipv6Field.PayloadLength) <= len;
}
