/**
 * An independent packet encoder for data-path tests: plain loops and DataView, sharing no code
 * with src/wire, so the data path is never checked against itself (STYLE.md, pg-protocol).
 */

export function naiveChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) + (i + 1 < b.length ? b[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function addr(s: string): number[] {
  return s.split('.').map(Number);
}

export interface Ipv4Spec {
  src: string; dst: string; payload?: number; protocol?: number; df?: boolean; ttl?: number; id?: number;
  srcPort?: number; dstPort?: number;
}

/** An IPv4 packet (20-byte header) with a UDP-like payload of `payload` bytes (ports first). */
export function ipv4Packet(s: Ipv4Spec): Uint8Array {
  const plen = s.payload ?? 16;
  const b = new Uint8Array(20 + plen);
  const v = new DataView(b.buffer);
  b[0] = 0x45;
  v.setUint16(2, b.length);
  v.setUint16(4, s.id ?? 0x1234);
  v.setUint16(6, s.df ? 0x4000 : 0);
  b[8] = s.ttl ?? 64;
  b[9] = s.protocol ?? 17;
  b.set(addr(s.src), 12);
  b.set(addr(s.dst), 16);
  v.setUint16(10, naiveChecksum(b.subarray(0, 20)));
  if (plen >= 4) {
    v.setUint16(20, s.srcPort ?? 40000);
    v.setUint16(22, s.dstPort ?? 5201);
  }
  for (let i = 24; i < b.length; i++) b[i] = i & 0xff;
  return b;
}

function mac(s: string): number[] {
  return s.split(':').map((x) => parseInt(x, 16));
}

/** VXLAN header + inner Ethernet + `inner`. */
export function vxlanDatagram(s: { vni: number; dstMAC: string; srcMAC: string; inner: Uint8Array; etherType?: number }): Uint8Array {
  const b = new Uint8Array(22 + s.inner.length);
  b[0] = 0x08;
  b[4] = (s.vni >>> 16) & 0xff; b[5] = (s.vni >>> 8) & 0xff; b[6] = s.vni & 0xff;
  b.set(mac(s.dstMAC), 8);
  b.set(mac(s.srcMAC), 14);
  const et = s.etherType ?? 0x0800;
  b[20] = et >> 8; b[21] = et & 0xff;
  b.set(s.inner, 22);
  return b;
}

/** IPv6 text to 16 bytes, "::" expanded by hand. */
export function ip6(s: string): Uint8Array {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`bad test address ${s}`);
  const b = new Uint8Array(16);
  groups.forEach((g, i) => { const v = parseInt(g, 16); b[2 * i] = v >> 8; b[2 * i + 1] = v & 0xff; });
  return b;
}

export interface Ipv6Spec {
  src: string; dst: string; payload?: number; next?: number; hopLimit?: number; flowLabel?: number;
  srcPort?: number; dstPort?: number;
}

/** An IPv6 packet (40-byte fixed header) with a UDP-like payload of `payload` bytes (ports first). */
export function ipv6Packet(s: Ipv6Spec): Uint8Array {
  const plen = s.payload ?? 16;
  const b = new Uint8Array(40 + plen);
  const v = new DataView(b.buffer);
  v.setUint32(0, (0x6 << 28) | ((s.flowLabel ?? 0x12345) & 0xfffff));
  v.setUint16(4, plen);
  b[6] = s.next ?? 17;
  b[7] = s.hopLimit ?? 64;
  b.set(ip6(s.src), 8);
  b.set(ip6(s.dst), 24);
  if (plen >= 4) {
    v.setUint16(40, s.srcPort ?? 40000);
    v.setUint16(42, s.dstPort ?? 5201);
  }
  for (let i = 44; i < b.length; i++) b[i] = (i * 3) & 0xff;
  return b;
}
