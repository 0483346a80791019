/**
 * Addresses as text: the one parser and formatter for IPv4, IPv6, CIDRs and MAC addresses that
 * the control plane uses (config files, Kubernetes Node objects, the status output). These run
 * when peers change, not per packet, so they may allocate; they throw an `AddressError` whose
 * message names the bad input and the expected form. The data path only ever sees the numbers
 * and byte arrays made here.
 *
 * The rules are the strictest that real inputs still pass, because a lenient parser is how two
 * programs come to read one string as two different addresses:
 *
 * - IPv4 is four decimal octets 0-255 and nothing else: no leading zeros (inet_aton reads
 *   `010` as octal 8), no shorthand (`10.1`), no hex, no surrounding spaces. A number is a uint32
 *   in host order (10.244.1.5 is 0x0af40105), matching `Ipv4View.sourceAddress`.
 * - IPv6 is any RFC 4291 §2.2 text form (hex groups of 1-4 digits, one `::`, a dotted quad in the
 *   last 32 bits under the IPv4 rules), without a zone (`%eth0`), formatted per RFC 5952. A
 *   128-bit address is a `bigint` on the control plane: exact, and shifts and compares just work.
 * - A CIDR is `address/length` with a decimal length without leading zeros. Host bits are
 *   reported (`hostBitsSet`), not refused: the caller decides, because a config file should say
 *   "did you mean …" while a Kubernetes Node's spec is taken as the API server stored it.
 * - A MAC is six pairs of hex digits, all separated by `:` or all by `-` (never mixed), any case;
 *   formatted lower-case with colons. `parseUnicastMac` also refuses multicast and all-zero ones,
 *   which cannot be a VTEP.
 *
 * The special-purpose ranges that must never be pod address space (RFC 6890 and the IANA
 * registries) are listed here too, next to the parsers, as data.
 */

/** A control-plane input that is not a valid address, CIDR or MAC. */
export class AddressError extends Error {
  override name = 'AddressError';
}

// ---- IPv4 ------------------------------------------------------------------------------------

/** The uint32 of the dotted quad in `s[from, to)`, or -1. A scanner, not a regex: config files
 * hold tens of thousands of addresses, and this runs for each. */
function scanIpv4(s: string, from: number, to: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      continue;
    }
    // A digit after a leading 0 is a leading zero.
    if (c < 0x30 || c > 0x39 || (digits > 0 && octet === 0)) return -1;
    octet = octet * 10 + (c - 0x30);
    digits++;
    if (octet > 255) return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/** Parses `a.b.c.d` into a uint32. */
export function ipv4ToNumber(s: string): number {
  const n = scanIpv4(s, 0, s.length);
  if (n < 0) {
    throw new AddressError(`invalid IPv4 address ${JSON.stringify(s)}: expected four decimal octets 0-255 without leading zeros, like 10.244.1.0`);
  }
  return n;
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

/** The decimal prefix length after the slash of `s` (no leading zeros), or -1 when it is not in 0..max. */
function prefixOf(s: string, slash: number, max: number): number {
  if (slash < 0 || slash + 1 >= s.length || s.length - slash - 1 > 3) return -1;
  let n = 0;
  for (let i = slash + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39 || (i > slash + 1 && n === 0)) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n <= max ? n : -1;
}

/** Parses `a.b.c.d/len`. */
export function parseCidr4(s: string): ParsedCidr4 {
  const slash = s.indexOf('/');
  const prefix = prefixOf(s, slash, 32);
  const addr = prefix < 0 ? -1 : scanIpv4(s, 0, slash);
  if (prefix < 0 || addr < 0) {
    throw new AddressError(`invalid IPv4 CIDR ${JSON.stringify(s)}: expected address/prefix-length with a dotted quad as for an address, like 10.244.0.0/16`);
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

// ---- MAC -------------------------------------------------------------------------------------

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/**
 * Parses `aa:bb:cc:dd:ee:ff` (or all `-`) into one 48-bit number, exact in a double: the MAC as
 * the control plane compares and sorts it, as an IPv4 address is a uint32.
 */
export function macToNumber(s: string): number {
  const sep = s.charCodeAt(2);
  let ok = s.length === 17 && (sep === 0x3a || sep === 0x2d);
  let n = 0;
  for (let i = 0; ok && i < 6; i++) {
    const hi = hexValue(s.charCodeAt(3 * i));
    const lo = hexValue(s.charCodeAt(3 * i + 1));
    ok = hi >= 0 && lo >= 0 && (i === 5 || s.charCodeAt(3 * i + 2) === sep);
    n = n * 256 + hi * 16 + lo;
  }
  if (!ok) {
    throw new AddressError(`invalid MAC address ${JSON.stringify(s)}: expected six hex pairs separated by colons (or all by dashes), like 0a:58:0a:f4:01:01`);
  }
  return n;
}

const HEX = '0123456789abcdef';

/** Formats a 48-bit MAC number as lower-case `aa:bb:cc:dd:ee:ff`. */
export function numberToMac(n: number): string {
  const codes = new Array<number>(17);
  for (let i = 5; i >= 0; i--) {
    const b = n % 256;
    n = (n - b) / 256;
    codes[3 * i] = HEX.charCodeAt(b >>> 4);
    codes[3 * i + 1] = HEX.charCodeAt(b & 15);
    if (i < 5) codes[3 * i + 2] = 0x3a;
  }
  return String.fromCharCode(...codes);
}

/** A 48-bit MAC number as 6 bytes. */
export function numberToMacBytes(n: number): Uint8Array {
  const mac = new Uint8Array(6);
  for (let i = 5; i >= 0; i--) {
    mac[i] = n % 256;
    n = Math.floor(n / 256);
  }
  return mac;
}

/** Parses `aa:bb:cc:dd:ee:ff` (or all `-`) into 6 bytes. */
export function parseMac(s: string): Uint8Array {
  return numberToMacBytes(macToNumber(s));
}

/** Formats the 6 bytes at `bytes[off]` as lower-case `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: Uint8Array, off = 0): string {
  let n = 0;
  for (let i = 0; i < 6; i++) n = n * 256 + bytes[off + i]!;
  return numberToMac(n);
}

/**
 * Parses a MAC that can be a VTEP's own address, as a 48-bit number. Refuses group addresses
 * (bit 0 of the first octet, IEEE 802: multicast and broadcast) and all zeros.
 */
export function parseUnicastMac(s: string): number {
  const n = macToNumber(s);
  if (Math.floor(n / 2 ** 40) % 2 === 1) {
    throw new AddressError(`MAC address ${JSON.stringify(s)} is a multicast or broadcast address (first octet odd); a VTEP needs a unicast one, like 02:00:00:00:00:01`);
  }
  if (n === 0) throw new AddressError(`MAC address ${JSON.stringify(s)} is all zeros; a VTEP needs a unicast one, like 02:00:00:00:00:01`);
  return n;
}

// ---- IPv6 ------------------------------------------------------------------------------------

/**
 * IPv6 CIDRs on the control plane. A 128-bit network address is a `bigint` here; the data path
 * never sees one: the IPv6 forwarding table turns them into four uint32 words per row when it is
 * built.
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
const GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Groups of one side of `::` as 16-bit numbers, or null; `last` allows a trailing dotted quad. */
function groupsOf(text: string, last: boolean): number[] | null {
  if (text === '') return [];
  const parts = text.split(':');
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (GROUP.test(p)) {
      out.push(parseInt(p, 16));
    } else if (last && i === parts.length - 1 && p.includes('.')) {
      let v4: number;
      try {
        v4 = ipv4ToNumber(p);
      } catch {
        return null;
      }
      out.push(v4 >>> 16, v4 & 0xffff);
    } else {
      return null;
    }
  }
  return out;
}

/** Parses an IPv6 address (any RFC 4291 text form, no zone) into a 128-bit bigint. */
export function ipv6ToBigInt(s: string): bigint {
  const fail = (): never => {
    throw new AddressError(`invalid IPv6 address ${JSON.stringify(s)}: expected a form like fd00:10:244::1 (no zone)`);
  };
  const gap = s.indexOf('::');
  let groups: number[] | null;
  if (gap < 0) {
    groups = groupsOf(s, true);
    if (groups === null || groups.length !== 8) fail();
  } else {
    if (s.indexOf('::', gap + 1) >= 0) fail();
    const head = groupsOf(s.slice(0, gap), false);
    const tail = groupsOf(s.slice(gap + 2), true);
    // `::` stands for one or more zero groups (RFC 4291 §2.2 item 2).
    if (head === null || tail === null || head.length + tail.length > 7) fail();
    groups = [...head!, ...new Array<number>(8 - head!.length - tail!.length).fill(0), ...tail!];
  }
  let n = 0n;
  for (const g of groups!) n = (n << 16n) | BigInt(g);
  return n;
}

/** Formats a 128-bit bigint in RFC 5952 canonical form (lower case, longest zero run as `::`). */
export function bigIntToIpv6(n: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(16 * i)) & 0xffffn));
  // RFC 5952 §4.2: the longest run of two or more zero groups, the first one on a tie.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

/** The 128-bit netmask of a prefix length 0..128. */
export function prefixMask6(prefix: number): bigint {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128) {
    throw new AddressError(`invalid IPv6 prefix length ${prefix}: expected an integer 0-128`);
  }
  return (ALL_ONES_128 << BigInt(128 - prefix)) & ALL_ONES_128;
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

/** An IPv4 (dotted quad) or IPv6 address as its 4 or 16 network-order bytes. */
export function addressToBytes(s: string): Uint8Array {
  if (looksLikeIpv6(s)) return bigIntToIpv6Bytes(ipv6ToBigInt(s));
  const n = ipv4ToNumber(s);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** 4 or 16 network-order bytes as an address (IPv6 in RFC 5952 form); undefined for other lengths. */
export function bytesToAddress(b: Uint8Array): string | undefined {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return undefined;
  let n = 0n;
  for (let i = 0; i < 16; i++) n = (n << 8n) | BigInt(b[i]!);
  return bigIntToIpv6(n);
}

/** Parses `addr/len` (any RFC 4291 address form, no zone, len 0-128). */
export function parseCidr6(s: string): ParsedCidr6 {
  const slash = s.indexOf('/');
  const prefix = prefixOf(s, slash, 128);
  if (prefix < 0) {
    throw new AddressError(`invalid IPv6 CIDR ${JSON.stringify(s)}: expected address/prefix-length, like fd00:10:244::/56`);
  }
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

// ---- special-purpose ranges ------------------------------------------------------------------

export interface SpecialRange<C> {
  readonly cidr: C;
  /** What the range is, in the words of its registry, and where it is defined. */
  readonly what: string;
  /** True when an address in it can still be one host's own unicast address (loopback, link-local). */
  readonly hostAddress: boolean;
}

/**
 * IPv4 ranges that can never be pod addresses: a route for any part of them into the TUN device
 * would capture the node's own traffic (loopback), break link-local services such as cloud
 * metadata, or route group and broadcast traffic into the overlay.
 */
export const SPECIAL_IPV4: ReadonlyArray<SpecialRange<Cidr4>> = [
  { cidr: { net: 0x00000000, prefix: 8 }, what: '"this network" (RFC 791, RFC 1122 §3.2.1.3)', hostAddress: false },
  { cidr: { net: 0x7f000000, prefix: 8 }, what: 'loopback (RFC 1122 §3.2.1.3)', hostAddress: true },
  { cidr: { net: 0xa9fe0000, prefix: 16 }, what: 'link-local (RFC 3927)', hostAddress: true },
  { cidr: { net: 0xe0000000, prefix: 4 }, what: 'multicast (RFC 5771)', hostAddress: false },
  { cidr: { net: 0xf0000000, prefix: 4 }, what: 'reserved and limited broadcast (RFC 1112 §4, RFC 919)', hostAddress: false },
];

/** The same for IPv6. */
export const SPECIAL_IPV6: ReadonlyArray<SpecialRange<Cidr6>> = [
  { cidr: { net: 0n, prefix: 8 }, what: 'reserved ::/8: unspecified, loopback, IPv4-mapped and -compatible (RFC 4291 §2.5)', hostAddress: false },
  { cidr: { net: 0xfe80n << 112n, prefix: 10 }, what: 'link-local (RFC 4291 §2.5.6)', hostAddress: true },
  { cidr: { net: 0xff00n << 112n, prefix: 8 }, what: 'multicast (RFC 4291 §2.7)', hostAddress: false },
];

/** The first special-purpose IPv4 range that shares an address with `c`, or undefined. */
export function specialRange4(c: Cidr4): SpecialRange<Cidr4> | undefined {
  return SPECIAL_IPV4.find((r) => cidrOverlaps(r.cidr, c));
}

/** The first special-purpose IPv6 range that shares an address with `c`, or undefined. */
export function specialRange6(c: Cidr6): SpecialRange<Cidr6> | undefined {
  return SPECIAL_IPV6.find((r) => cidr6Overlaps(r.cidr, c));
}
