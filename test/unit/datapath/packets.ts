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
