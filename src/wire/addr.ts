/**
 * Address parsing and formatting for the control plane: config files, Kubernetes Node objects,
 * the status output. These run when peers change, not per packet, so they may allocate; they
 * throw an `AddressError` whose message names the bad input and the expected form, which the
 * agent logs once. The data path only ever sees the numbers and byte arrays made here.
 *
 * IPv4 addresses are uint32 numbers in host order (10.244.1.5 is 0x0af40105), matching
 * `Ipv4View.sourceAddress`. Dotted quads are parsed strictly: four decimal octets, no leading
 * zeros (which inet_aton would read as octal), no shorthand forms.
 */

import ipaddr from 'ipaddr.js';

/** A control-plane input that is not a valid address, CIDR or MAC. */
export class AddressError extends Error {
  override name = 'AddressError';
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Parses `a.b.c.d` into a uint32. */
export function ipv4ToNumber(s: string): number {
  const parts = s.split('.');
  if (parts.length === 4 && parts.every((p) => OCTET.test(p) && Number(p) <= 255)) {
    return parts.reduce((n, p) => n * 256 + Number(p), 0);
  }
  throw new AddressError(`invalid IPv4 address ${JSON.stringify(s)}: expected four decimal octets 0-255, like 10.244.1.0`);
}

/** Formats a uint32 as `a.b.c.d`. */
export function numberToIpv4(n: number): string {
  return `${(n >>> 24) & 0xff}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** The netmask of a prefix length as a uint32: 24 → 0xffffff00, 0 → 0. */
export function prefixMask(prefix: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new AddressError(`invalid IPv4 prefix length ${prefix}: expected an integer 0-32`);
  }
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Cidr4 {
  /** Network address, host bits cleared. */
  net: number;
  prefix: number;
}

export interface ParsedCidr4 extends Cidr4 {
  /** True when the text had host bits set (`10.244.1.7/24`); `net` has them cleared anyway. */
  hostBitsSet: boolean;
}

/** Parses `a.b.c.d/len`. */
export function parseCidr4(s: string): ParsedCidr4 {
  const slash = s.indexOf('/');
  const lenText = slash < 0 ? '' : s.slice(slash + 1);
  if (slash < 0 || !/^(0|[1-9][0-9]?)$/.test(lenText) || Number(lenText) > 32) {
    throw new AddressError(`invalid IPv4 CIDR ${JSON.stringify(s)}: expected address/prefix-length, like 10.244.0.0/16`);
  }
  const prefix = Number(lenText);
  let addr: number;
  try {
    addr = ipv4ToNumber(s.slice(0, slash));
  } catch (err) {
    throw new AddressError(`invalid IPv4 CIDR ${JSON.stringify(s)}: ${(err as Error).message}`);
  }
  const net = (addr & prefixMask(prefix)) >>> 0;
  return { net, prefix, hostBitsSet: net !== addr };
}

/** Formats a CIDR as `a.b.c.d/len`. */
export function formatCidr4(cidr: Cidr4): string {
  return `${numberToIpv4(cidr.net)}/${cidr.prefix}`;
}

/** True when every address of `inner` lies in `outer` (equal CIDRs included). */
export function cidrContains(outer: Cidr4, inner: Cidr4): boolean {
  return inner.prefix >= outer.prefix && ((inner.net & prefixMask(outer.prefix)) >>> 0) === outer.net >>> 0;
}

/** True when the uint32 address lies in `cidr`. */
export function cidrContainsAddress(cidr: Cidr4, addr: number): boolean {
  return ((addr & prefixMask(cidr.prefix)) >>> 0) === cidr.net >>> 0;
}

/** True when the two CIDRs share any address. */
export function cidrOverlaps(a: Cidr4, b: Cidr4): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Parses `aa:bb:cc:dd:ee:ff` (or with `-`) into 6 bytes. */
export function parseMac(s: string): Uint8Array {
  if (!MAC.test(s)) {
    throw new AddressError(`invalid MAC address ${JSON.stringify(s)}: expected six hex pairs separated by colons, like 0a:58:0a:f4:01:01`);
  }
  const mac = new Uint8Array(6);
  for (let i = 0; i < 6; i++) mac[i] = parseInt(s.slice(i * 3, i * 3 + 2), 16);
  return mac;
}

/** Formats the 6 bytes at `bytes[off]` as lower-case `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) {
    if (i > 0) s += ':';
    s += bytes[off + i]!.toString(16).padStart(2, '0');
  }
  return s;
}

/** Parses an IPv6 address (any RFC 4291 text form, no zone) into 16 bytes. */
export function ipv6ToBytes(s: string): Uint8Array {
  if (!ipaddr.IPv6.isValid(s) || s.includes('%')) {
    throw new AddressError(`invalid IPv6 address ${JSON.stringify(s)}: expected a form like fd00::1`);
  }
  return Uint8Array.from(ipaddr.IPv6.parse(s).toByteArray());
}

/** Formats the 16 bytes at `bytes[off]` in RFC 5952 canonical form. */
export function bytesToIpv6(bytes: Uint8Array, off = 0): string {
  return new ipaddr.IPv6(Array.from({ length: 8 }, (_, i) => (bytes[off + 2 * i]! << 8) | bytes[off + 2 * i + 1]!)).toRFC5952String();
}
