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

/**
 * IPv6 CIDRs on the control plane. A 128-bit network address is a `bigint` here (exact, and
 * comparisons and shifts just work); the data path never sees one: the IPv6 forwarding table
 * turns them into four uint32 words per row when it is built.
 */
export interface Cidr6 {
  /** Network address, host bits cleared, 0 <= net < 2^128. */
  net: bigint;
  prefix: number;
}

export interface ParsedCidr6 extends Cidr6 {
  /** True when the text had host bits set (`fd00::7/64`); `net` has them cleared anyway. */
  hostBitsSet: boolean;
}

const ALL_ONES_128 = (1n << 128n) - 1n;

/** The 128-bit netmask of a prefix length 0..128. */
export function prefixMask6(prefix: number): bigint {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128) {
    throw new AddressError(`invalid IPv6 prefix length ${prefix}: expected an integer 0-128`);
  }
  return (ALL_ONES_128 << BigInt(128 - prefix)) & ALL_ONES_128;
}

/** 16 bytes (at `bytes[off]`) as a 128-bit bigint. */
export function ipv6BytesToBigInt(bytes: Uint8Array, off = 0): bigint {
  let n = 0n;
  for (let i = 0; i < 16; i++) n = (n << 8n) | BigInt(bytes[off + i]!);
  return n;
}

/** A 128-bit bigint as 16 bytes. */
export function bigIntToIpv6Bytes(n: bigint): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** Parses an IPv6 address into a 128-bit bigint. */
export function ipv6ToBigInt(s: string): bigint {
  return ipv6BytesToBigInt(ipv6ToBytes(s));
}

/** Formats a 128-bit bigint in RFC 5952 canonical form. */
export function bigIntToIpv6(n: bigint): string {
  return bytesToIpv6(bigIntToIpv6Bytes(n));
}

/** Parses `addr/len` (any RFC 4291 address form, no zone, len 0-128). */
export function parseCidr6(s: string): ParsedCidr6 {
  const slash = s.indexOf('/');
  const lenText = slash < 0 ? '' : s.slice(slash + 1);
  if (slash < 0 || !/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > 128) {
    throw new AddressError(`invalid IPv6 CIDR ${JSON.stringify(s)}: expected address/prefix-length, like fd00:10:244::/56`);
  }
  const prefix = Number(lenText);
  let addr: bigint;
  try {
    addr = ipv6ToBigInt(s.slice(0, slash));
  } catch (err) {
    throw new AddressError(`invalid IPv6 CIDR ${JSON.stringify(s)}: ${(err as Error).message}`);
  }
  const net = addr & prefixMask6(prefix);
  return { net, prefix, hostBitsSet: net !== addr };
}

/** Formats an IPv6 CIDR as `addr/len`, the address in RFC 5952 form. */
export function formatCidr6(cidr: Cidr6): string {
  return `${bigIntToIpv6(cidr.net)}/${cidr.prefix}`;
}

/** True when every address of `inner` lies in `outer` (equal CIDRs included). */
export function cidr6Contains(outer: Cidr6, inner: Cidr6): boolean {
  return inner.prefix >= outer.prefix && (inner.net & prefixMask6(outer.prefix)) === outer.net;
}

/** True when the two IPv6 CIDRs share any address. */
export function cidr6Overlaps(a: Cidr6, b: Cidr6): boolean {
  return cidr6Contains(a, b) || cidr6Contains(b, a);
}

/** True for text that is meant as an IPv6 address or CIDR (it has a colon); IPv4 never does. */
export function looksLikeIpv6(s: string): boolean {
  return s.includes(':');
}
