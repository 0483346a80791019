/**
 * Test helpers for the wire formats: golden bytes written as commented hex, poisoned buffers,
 * and an independent encoder. Nothing here imports src/wire, so the code under test is never
 * checked against itself: the reference checksum is a deliberately naive byte loop and the
 * packet builders below write every field by hand.
 */
import { Rng } from '../../rng.js';

/** Parses hex with whitespace and `#` comments: `45 00 00 56  # version, IHL, TOS, length`. */
export function hex(text: string): Uint8Array {
  const digits = text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (digits.length % 2 !== 0 || /[^0-9a-fA-F]/.test(digits)) throw new Error(`bad hex: ${digits}`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export const POISON = 0xa5;

/** A buffer of `len` bytes, every one 0xa5, so a byte the code forgot to write shows up. */
export function poisoned(len: number): Uint8Array {
  return new Uint8Array(len).fill(POISON);
}

/** `bytes` copied into a poisoned buffer at `off`, with `after` poisoned bytes following. */
export function placed(bytes: Uint8Array, off: number, after = 0): Uint8Array {
  const buf = poisoned(off + bytes.length + after);
  buf.set(bytes, off);
  return buf;
}

/** Deliberately naive RFC 1071 sum: one byte at a time, even offsets high. Folded, not complemented. */
export function naiveSum(buf: Uint8Array, off = 0, len = buf.length - off, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < len; i++) sum += i % 2 === 0 ? buf[off + i]! * 256 : buf[off + i]!;
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** Naive checksum over the concatenation of `parts` (each part is summed from its own start, so keep them even-length except the last). */
export function naiveChecksum(...parts: Uint8Array[]): number {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return ~naiveSum(all) & 0xffff;
}

export function u16(buf: Uint8Array, off: number): number {
  return buf[off]! * 256 + buf[off + 1]!;
}

export function u32(buf: Uint8Array, off: number): number {
  return ((buf[off]! * 256 + buf[off + 1]!) * 256 + buf[off + 2]!) * 256 + buf[off + 3]!;
}

export function put16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = Math.floor(v / 256) % 256;
  buf[off + 1] = v % 256;
}

export function put32(buf: Uint8Array, off: number, v: number): void {
  put16(buf, off, Math.floor(v / 65536) % 65536);
  put16(buf, off + 2, v % 65536);
}

/** Floats in [0, 1) from the project's one seeded PRNG (test/rng.ts), so a failing random case can be replayed. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.float();
}

export function randomBytes(next: () => number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = Math.floor(next() * 256);
  return b;
}

export function ip4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.').map(Number));
}

export function ip4Number(s: string): number {
  return u32(ip4(s), 0);
}

/** Pseudo-header bytes, for the naive checksum (RFC 793 §3.1 / RFC 8200 §8.1). */
export function pseudoHeader4(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): Uint8Array {
  const p = new Uint8Array(12);
  p.set(src, 0);
  p.set(dst, 4);
  p[9] = protocol;
  put16(p, 10, length);
  return p;
}

export function pseudoHeader6(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): Uint8Array {
  const p = new Uint8Array(40);
  p.set(src, 0);
  p.set(dst, 16);
  put32(p, 32, length);
  p[39] = protocol;
  return p;
}

export interface TcpSpec {
  v6?: boolean;
  src?: Uint8Array;
  dst?: Uint8Array;
  sport?: number;
  dport?: number;
  seq: number;
  ack?: number;
  flags?: number;
  window?: number;
  options?: Uint8Array;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
  tos?: number;
  df?: boolean;
  flowLabel?: number;
  /** IPv4 options (a multiple of 4 bytes). */
  ipOptions?: Uint8Array;
  fragment?: number;
}

export const V4_SRC = ip4('10.244.1.5');
export const V4_DST = ip4('10.244.2.7');
export const V6_SRC = hex('fd00 0010 0244 0001 0000 0000 0000 0005');
export const V6_DST = hex('fd00 0010 0244 0002 0000 0000 0000 0007');

/** Independent encoder for an IPv4 or IPv6 TCP segment, checksums by the naive reference. */
export function buildTcp(spec: TcpSpec): Uint8Array {
  const v6 = spec.v6 ?? false;
  const options = spec.options ?? new Uint8Array(0);
  const ipOptions = spec.ipOptions ?? new Uint8Array(0);
  const ipLen = v6 ? 40 : 20 + ipOptions.length;
  const tcpLen = 20 + options.length + spec.payload.length;
  const p = new Uint8Array(ipLen + tcpLen);
  const src = spec.src ?? (v6 ? V6_SRC : V4_SRC);
  const dst = spec.dst ?? (v6 ? V6_DST : V4_DST);
  if (v6) {
    const tc = spec.tos ?? 0;
    const fl = spec.flowLabel ?? 0;
    p[0] = 0x60 | (tc >> 4);
    p[1] = ((tc & 0xf) << 4) | ((fl >> 16) & 0xf);
    put16(p, 2, fl & 0xffff);
    put16(p, 4, tcpLen);
    p[6] = 6;
    p[7] = spec.ttl ?? 64;
    p.set(src, 8);
    p.set(dst, 24);
  } else {
    p[0] = 0x40 | (ipLen / 4);
    p[1] = spec.tos ?? 0;
    put16(p, 2, ipLen + tcpLen);
    put16(p, 4, spec.id ?? 0x1000);
    put16(p, 6, (spec.df ?? true ? 0x4000 : 0) | (spec.fragment ?? 0));
    p[8] = spec.ttl ?? 64;
    p[9] = 6;
    p.set(src, 12);
    p.set(dst, 16);
    p.set(ipOptions, 20);
    put16(p, 10, naiveChecksum(p.subarray(0, ipLen)));
  }
  const t = ipLen;
  put16(p, t, spec.sport ?? 43210);
  put16(p, t + 2, spec.dport ?? 80);
  put32(p, t + 4, spec.seq);
  put32(p, t + 8, spec.ack ?? 0x01020304);
  p[t + 12] = ((20 + options.length) / 4) << 4;
  p[t + 13] = spec.flags ?? 0x10;
  put16(p, t + 14, spec.window ?? 502);
  p.set(options, t + 20);
  p.set(spec.payload, t + 20 + options.length);
  const pseudo = v6 ? pseudoHeader6(src, dst, 6, tcpLen) : pseudoHeader4(src, dst, 6, tcpLen);
  put16(p, t + 16, naiveChecksum(pseudo, p.subarray(t)));
  return p;
}

/** Payload bytes that differ by position and by `seed`, so a misplaced byte is caught. */
export function pattern(len: number, seed = 0): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed * 13 + (i >> 8)) & 0xff;
  return b;
}

/** Asserts every byte of `buf` outside `[off, off+len)` is still 0xa5. */
export function assertPoisonOutside(buf: Uint8Array, off: number, len: number): void {
  for (let i = 0; i < buf.length; i++) {
    if (i >= off && i < off + len) continue;
    if (buf[i] !== POISON) throw new Error(`byte ${i} outside [${off}, ${off + len}) was written: 0x${buf[i]!.toString(16)}`);
  }
}

/** `n` random byte strings of random length up to `max`, for the must-never-throw tests. */
export function randomPackets(seed: number, n: number, max: number): Uint8Array[] {
  const next = rng(seed);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(randomBytes(next, Math.floor(next() * max)));
  return out;
}

/**
 * Turns a TCP or UDP packet from the independent encoder into what a TUN read hands over for a
 * super-packet: the transport checksum field replaced by the folded pseudo-header sum
 * (CHECKSUM_PARTIAL), as the kernel leaves it.
 */
export function asPartial(packet: Uint8Array, protocol: number): Uint8Array {
  const p = packet.slice();
  const v6 = p[0]! >> 4 === 6;
  const l4 = v6 ? 40 : (p[0]! & 0xf) * 4;
  const l4Length = p.length - l4;
  const pseudo = v6 ? pseudoHeader6(p.subarray(8, 24), p.subarray(24, 40), protocol, l4Length) : pseudoHeader4(p.subarray(12, 16), p.subarray(16, 20), protocol, l4Length);
  put16(p, l4 + (protocol === 6 ? 16 : 6), naiveSum(pseudo));
  return p;
}

/** True when the IPv4 header (if any) and the TCP/UDP checksum of `packet` verify by the naive reference. */
export function naiveValid(packet: Uint8Array, protocol: number): boolean {
  const v6 = packet[0]! >> 4 === 6;
  const l4 = v6 ? 40 : (packet[0]! & 0xf) * 4;
  if (!v6 && naiveSum(packet, 0, l4) !== 0xffff) return false;
  const l4Length = packet.length - l4;
  const pseudo = v6
    ? pseudoHeader6(packet.subarray(8, 24), packet.subarray(24, 40), protocol, l4Length)
    : pseudoHeader4(packet.subarray(12, 16), packet.subarray(16, 20), protocol, l4Length);
  return naiveSum(packet, l4, l4Length, naiveSum(pseudo)) === 0xffff;
}

export interface UdpSpec {
  v6?: boolean;
  sport?: number;
  dport?: number;
  payload: Uint8Array;
  id?: number;
}

/** Independent encoder for an IPv4 or IPv6 UDP datagram, checksums by the naive reference. */
export function buildUdp(spec: UdpSpec): Uint8Array {
  const v6 = spec.v6 ?? false;
  const ipLen = v6 ? 40 : 20;
  const udpLen = 8 + spec.payload.length;
  const p = new Uint8Array(ipLen + udpLen);
  const src = v6 ? V6_SRC : V4_SRC;
  const dst = v6 ? V6_DST : V4_DST;
  if (v6) {
    p[0] = 0x60;
    put16(p, 4, udpLen);
    p[6] = 17;
    p[7] = 64;
    p.set(src, 8);
    p.set(dst, 24);
  } else {
    p[0] = 0x45;
    put16(p, 2, ipLen + udpLen);
    put16(p, 4, spec.id ?? 0x3000);
    p[8] = 64;
    p[9] = 17;
    p.set(src, 12);
    p.set(dst, 16);
    put16(p, 10, naiveChecksum(p.subarray(0, 20)));
  }
  put16(p, ipLen, spec.sport ?? 5000);
  put16(p, ipLen + 2, spec.dport ?? 6000);
  put16(p, ipLen + 4, udpLen);
  p.set(spec.payload, ipLen + 8);
  const pseudo = v6 ? pseudoHeader6(src, dst, 17, udpLen) : pseudoHeader4(src, dst, 17, udpLen);
  const c = naiveChecksum(pseudo, p.subarray(ipLen));
  put16(p, ipLen + 6, c === 0 ? 0xffff : c);
  return p;
}
