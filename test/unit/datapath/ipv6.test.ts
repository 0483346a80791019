/**
 * IPv6 pods (dual stack) through the data path, in-process over the fakes. Outbound: golden bytes
 * of an encapsulated IPv6 packet (inner EtherType 0x86DD, headroom poisoned first), the flow
 * hash, ICMPv6 errors (no route, Packet Too Big) checked field by field with an independent
 * checksum, drops by reason, and a TSO6 super-packet cut into segments routed by the IPv6 table.
 * Inbound: a valid IPv6 datagram byte for byte, every drop reason, a GRO batch of IPv6 TCP
 * segments coalesced, and the decap fuzz with IPv6 datagrams mixed in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, FakeUdp } from '../../../src/device/fake.js';
import { Encapsulator } from '../../../src/datapath/encap.js';
import { Decapsulator } from '../../../src/datapath/decap.js';
import { newCounters, Counter, Drop, RX_DROP_REASONS, TX_DROP_REASONS } from '../../../src/datapath/counters.js';
import { newPeerState, peerField, tableSet, totals, withVirtio } from '../../support/datapath.js';
import { PeerField } from '../../../src/datapath/peer-state.js';
import { buildTable, ForwardingTable } from '../../../src/table/table.js';
import { buildTable6, ForwardingTable6 } from '../../../src/table/table6.js';
import { ipv4ToNumber, parseCidr4, parseCidr6, parseMac as macBytes } from '../../../src/wire/addr.js';
import { segment } from '../../support/segment-copy.js';
import { VirtioNetHdrView, VirtioGsoType } from '../../support/wire/virtio.js';
import { buildTcp, asPartial, naiveValid, naiveChecksum as sumOf, pseudoHeader6, pattern, u16, u32 } from '../wire/helpers.js';
import { ip6, ipv4Packet, ipv6Packet, naiveChecksum, vxlanDatagram } from './packets.js';
import { Rng } from '../../rng.js';

const LOCAL_MAC = '02:aa:bb:cc:dd:01';
const PEER_MAC = '02:aa:bb:cc:dd:02';
const PEER = ipv4ToNumber('192.168.102.2');
const PEER3 = ipv4ToNumber('192.168.103.2');
const STRANGER = ipv4ToNumber('192.168.199.9');
const TUN6 = 'fd00:10:244:1::';

function tables(): { t4: ForwardingTable; t6: ForwardingTable6 } {
  const t4 = new ForwardingTable(buildTable({
    clusterNet: ipv4ToNumber('10.244.0.0'), clusterPrefix: 16,
    localPodCIDRs: [parseCidr4('10.244.1.0/24')],
    peers: [
      { node: 'n2', underlay: PEER, port: 4789, vni: 0x123456, mac: macBytes(PEER_MAC), podCIDRs: [parseCidr4('10.244.2.0/24')] },
      { node: 'n3', underlay: PEER3, port: 8472, vni: 1, mac: macBytes('02:aa:bb:cc:dd:03'), podCIDRs: [parseCidr4('10.244.3.0/24')] },
    ],
  }));
  const c = parseCidr6('fd00:10:244::/56');
  const t6 = new ForwardingTable6(buildTable6({
    clusterNet: c.net, clusterPrefix: c.prefix,
    localPodCIDRs: [parseCidr6('fd00:10:244:1::/64')],
    peers: [{ node: 'n2', podCIDRs: [parseCidr6('fd00:10:244:2::/64')] }, { node: 'n3', podCIDRs: [parseCidr6('fd00:10:244:3::/64')] }],
  }));
  return { t4, t6 };
}

function encapSetup(o: { mtu?: number; v6?: boolean; vnet?: boolean; udpGso?: boolean } = {}) {
  const tun = new FakeTun(o.vnet ?? false);
  const udp = new FakeUdp(8);
  const counters = newCounters();
  const { t4, t6 } = tables();
  const peerState = newPeerState();
  const e = new Encapsulator({
    tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), localAddress: ipv4ToNumber('10.244.1.0'), localAddress6: ip6(TUN6),
    mtu: o.mtu ?? 1450, batch: 16, udpGso: o.udpGso ?? false,
  }, tableSet(t4, (o.v6 ?? true) ? t6 : undefined));
  return { tun, udp, counters, peerState, e };
}

function txDrops(c: Float64Array): string[] {
  return TX_DROP_REASONS.filter((r) => c[Drop[r]]! > 0).map((r) => `${r}=${c[Drop[r]]}`);
}

// ---- outbound ------------------------------------------------------------------------------

test('golden: an IPv6 packet leaves with VXLAN + inner Ethernet, EtherType 0x86DD, to the owning peer', () => {
  const { tun, udp, counters, peerState, e } = encapSetup();
  e.slab.fill(0xa5);
  const inner = ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', payload: 12 });
  tun.inject(inner);
  assert.equal(e.runOnce(0), 1);
  assert.equal(udp.sent.length, 1, `sent ${udp.sent.length}, drops ${txDrops(counters)}`);
  const d = udp.sent[0]!;
  const want = Uint8Array.from([
    0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x00, // VXLAN: I flag, n2's VNI 0x123456, reserved zero
    0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02, // inner dst: n2's VTEP MAC
    0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, // inner src: ours
    0x86, 0xdd, // IPv6
    ...inner,
  ]);
  assert.deepEqual(d.data, want);
  assert.equal(d.addr, PEER);
  assert.equal(d.port, 4789);
  assert.equal(totals(peerState).txPackets, 1);
  assert.equal(totals(peerState).txBytes, inner.length);
  assert.equal(peerField(peerState, 0, PeerField.TxPackets), 1, 'counted on n2');
});

test('IPv4 and IPv6 packets in one batch each get their own EtherType and peer', () => {
  const { tun, udp, e } = encapSetup();
  tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.3.9' }));
  tun.inject(ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:3::9' }));
  tun.inject(ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9' }));
  e.runOnce(0);
  assert.deepEqual(udp.sent.map((d) => [(d.data[20]! << 8) | d.data[21]!, d.addr]), [[0x0800, PEER3], [0x86dd, PEER3], [0x86dd, PEER]]);
});

test('IPv6 flow hash: one flow keeps one sender; 200 flows use all 8', () => {
  const { tun, udp, e } = encapSetup();
  for (let i = 0; i < 4; i++) tun.inject(ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', srcPort: 40000 }));
  e.runOnce(0);
  assert.equal(new Set(udp.sent.map((d) => d.sock)).size, 1);
  udp.sent.length = 0;
  for (let p = 0; p < 200; p++) {
    tun.inject(ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', srcPort: 30000 + p }));
    if (p % 16 === 15) e.runOnce(0);
  }
  e.runOnce(0);
  assert.equal(new Set(udp.sent.map((d) => d.sock)).size, 8);
});

/** Checks the IPv6 + ICMPv6 header of an error we wrote, with an independent checksum. */
function checkIcmp6(icmp: Uint8Array, to: string, type: number, code: number, rest: number): void {
  assert.equal(icmp[0]! >> 4, 6, 'version 6');
  assert.equal(u16(icmp, 4), icmp.length - 40, 'payload length');
  assert.equal(icmp[6], 58, 'next header ICMPv6');
  assert.equal(icmp[7], 64, 'hop limit');
  assert.deepEqual(icmp.subarray(8, 24), ip6(TUN6), 'from our IPv6 TUN address');
  assert.deepEqual(icmp.subarray(24, 40), ip6(to), 'to the sender');
  assert.equal(icmp[40], type, 'ICMPv6 type');
  assert.equal(icmp[41], code, 'ICMPv6 code');
  assert.equal(u32(icmp, 44), rest, 'rest of header');
  const pseudo = pseudoHeader6(icmp.subarray(8, 24), icmp.subarray(24, 40), 58, icmp.length - 40);
  assert.equal(sumOf(pseudo, icmp.subarray(40)), 0, 'ICMPv6 checksum (RFC 4443 §2.3)');
  assert.ok(icmp.length <= 1280, `error of ${icmp.length} bytes exceeds the IPv6 minimum MTU`);
}

test('an unowned IPv6 destination in the cluster: ICMPv6 destination unreachable, no route (RFC 4443 §3.1)', () => {
  const { tun, udp, counters, peerState, e } = encapSetup();
  const pkt = ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:77::1', payload: 40 });
  tun.inject(pkt);
  e.runOnce(0);
  assert.equal(udp.sent.length, 0);
  assert.deepEqual(txDrops(counters), ['no_route=1']);
  assert.equal(tun.written.length, 1);
  const icmp = tun.written[0]!;
  checkIcmp6(icmp, 'fd00:10:244:1::5', 1, 0, 0);
  assert.deepEqual(icmp.subarray(48), pkt, 'quotes the whole offending packet');
  assert.equal(counters[Counter.IcmpSent], 1);
});

test('an IPv6 destination outside clusterCIDR6 is no_route with an ICMPv6 error too', () => {
  const { tun, counters, peerState, e } = encapSetup();
  tun.inject(ipv6Packet({ src: 'fd00:10:244:1::5', dst: '2001:db8::1' }));
  e.runOnce(0);
  assert.deepEqual(txDrops(counters), ['no_route=1']);
  checkIcmp6(tun.written[0]!, 'fd00:10:244:1::5', 1, 0, 0);
});

test('an IPv6 packet larger than the MTU: ICMPv6 Packet Too Big carrying the MTU (RFC 8200 §5, RFC 4443 §3.2)', () => {
  const { tun, udp, counters, peerState, e } = encapSetup({ mtu: 1300 });
  const pkt = ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', payload: 1400 - 40 });
  tun.inject(pkt);
  tun.inject(ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9', payload: 1300 - 40 }));
  e.runOnce(0);
  assert.equal(udp.sent.length, 1, 'a packet of exactly the MTU goes out');
  assert.equal(udp.sent[0]!.data.length, 22 + 1300);
  assert.deepEqual(txDrops(counters), ['too_big=1']);
  const icmp = tun.written[0]!;
  checkIcmp6(icmp, 'fd00:10:244:1::5', 2, 0, 1300);
  assert.equal(icmp.length, 1280, 'the quote is cut to keep the error within 1280 bytes');
  assert.deepEqual(icmp.subarray(48), pkt.subarray(0, 1280 - 48));
});

test('no ICMPv6 error about an ICMPv6 error (RFC 4443 §2.4(e)); errors share the v4 rate limit', () => {
  const { tun, counters, peerState, e } = encapSetup();
  const err = ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:77::1', next: 58, payload: 8 });
  err[40] = 1; // an ICMPv6 destination unreachable
  tun.inject(err);
  e.runOnce(0);
  assert.deepEqual(txDrops(counters), ['no_route=1']);
  assert.equal(tun.written.length, 0);

  const { tun: tun2, counters: c2, e: e2 } = encapSetup();
  for (let i = 0; i < 150; i++) {
    tun2.inject(i % 2 === 0 ? ipv4Packet({ src: '10.244.1.5', dst: '10.244.77.1' }) : ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:77::1' }));
    if (i % 16 === 15) e2.runOnce(0);
  }
  e2.runOnce(0);
  assert.equal(c2[Drop.no_route], 150);
  assert.equal(c2[Counter.IcmpSent], 100);
  assert.equal(c2[Counter.IcmpSuppressed], 50);
});

const txCases: Array<{ name: string; v6?: boolean; pkt: () => Uint8Array; reason: (typeof TX_DROP_REASONS)[number]; icmp: boolean }> = [
  { name: 'shorter than the IPv6 header', pkt: () => ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9' }).subarray(0, 39), reason: 'bad_ip', icmp: false },
  { name: 'payload length beyond the read', pkt: () => { const p = ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9' }); p[5] = 0xff; return p; }, reason: 'bad_ip', icmp: false },
  { name: 'to our own podCIDR6', pkt: () => ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:1::9' }), reason: 'local_loop', icmp: false },
  { name: 'no IPv6 table (single-stack node)', v6: false, pkt: () => ipv6Packet({ src: 'fd00:10:244:1::5', dst: 'fd00:10:244:2::9' }), reason: 'no_route', icmp: false },
  { name: 'from the unspecified address to nobody', pkt: () => ipv6Packet({ src: '::', dst: 'fd00:10:244:77::1' }), reason: 'no_route', icmp: false },
];
for (const c of txCases) {
  test(`IPv6 drop: ${c.name} -> ${c.reason}`, () => {
    const { tun, udp, counters, peerState, e } = encapSetup({ v6: c.v6 ?? true });
    tun.inject(c.pkt());
    e.runOnce(0);
    assert.equal(udp.sent.length, 0);
    assert.deepEqual(txDrops(counters), [`${c.reason}=1`]);
    assert.equal(tun.written.length, c.icmp ? 1 : 0, 'ICMPv6 errors written');
  });
}


const MSS6 = 1378;

test('TSO6 super-packet from TUN -> segments routed by the IPv6 table, EtherType 0x86DD, each verified', () => {
  const { tun, udp, counters, peerState, e } = encapSetup({ vnet: true, udpGso: true });
  const payload = pattern(20_000, 5);
  const original = buildTcp({ v6: true, src: ip6('fd00:10:244:1::5'), dst: ip6('fd00:10:244:3::7'), seq: 0xfffff000, flags: 0x18, payload });
  tun.inject(withVirtio(asPartial(original, 6), VirtioGsoType.TcpV6, MSS6, 40, 16));
  e.runOnce(0);
  assert.deepEqual(txDrops(counters), []);
  assert.equal(udp.sent.length, 1, 'one GSO send');
  assert.equal(udp.sent[0]!.addr, PEER3, 'to n3, the owner of fd00:10:244:3::/64');
  const stride = udp.sent[0]!.gso;
  assert.equal(stride, 22 + 60 + MSS6);
  const all = udp.sent[0]!.data;
  const rebuilt: number[] = [];
  let j = 0;
  for (let p = 0; p < all.length; p += stride, j++) {
    const d = all.subarray(p, Math.min(p + stride, all.length));
    assert.deepEqual([...d.subarray(0, 8)], [0x08, 0, 0, 0, 0, 0, 1, 0], `segment ${j}: VXLAN, n3's VNI 1`);
    assert.equal((d[20]! << 8) | d[21]!, 0x86dd, `segment ${j}: EtherType IPv6`);
    const seg = d.subarray(22);
    assert.equal(u16(seg, 4), seg.length - 40, `segment ${j}: payload length`);
    assert.ok(naiveValid(seg, 6), `segment ${j}: TCP checksum over the IPv6 pseudo-header`);
    assert.equal(u32(seg, 44), (0xfffff000 + j * MSS6) >>> 0, `segment ${j}: sequence`);
    rebuilt.push(...seg.subarray(60));
  }
  assert.equal(j, Math.ceil(payload.length / MSS6));
  assert.deepEqual(Uint8Array.from(rebuilt), payload);
  assert.equal(counters[Counter.TxSegments], j);
});

test('a TSO6 super-packet to an unowned IPv6 destination is no_route, with one ICMPv6 error', () => {
  const { tun, udp, counters, peerState, e } = encapSetup({ vnet: true, udpGso: true });
  const original = buildTcp({ v6: true, src: ip6('fd00:10:244:1::5'), dst: ip6('fd00:10:244:99::7'), seq: 1, payload: pattern(5000) });
  tun.inject(withVirtio(asPartial(original, 6), VirtioGsoType.TcpV6, MSS6, 40, 16));
  e.runOnce(0);
  assert.equal(udp.sent.length, 0);
  assert.deepEqual(txDrops(counters), ['no_route=1']);
  assert.equal(tun.written.length, 1);
  const w = tun.written[0]!;
  checkIcmp6(w.subarray(10), 'fd00:10:244:1::5', 1, 0, 0);
});

// ---- inbound -------------------------------------------------------------------------------

function decapSetup(o: { v6?: boolean; batch?: number; vnet?: boolean } = {}) {
  const tun = new FakeTun(o.vnet ?? false);
  const udp = new FakeUdp(8, o.vnet ?? false);
  const counters = newCounters();
  const { t4, t6 } = tables();
  const peerState = newPeerState();
  const d = new Decapsulator({ tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), vni: 1, mtu: 1450, batch: o.batch ?? 16 },
    tableSet(t4, (o.v6 ?? true) ? t6 : undefined));
  return { tun, udp, counters, peerState, d };
}

const inner6 = (src = 'fd00:10:244:2::5', dst = 'fd00:10:244:1::7', payload = 32): Uint8Array => ipv6Packet({ src, dst, payload });
const dg6 = (inner = inner6()): Uint8Array => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner, etherType: 0x86dd });

test('a valid IPv6 datagram from a peer is written to TUN as its inner packet, byte for byte', () => {
  const { tun, udp, counters, peerState, d } = decapSetup();
  const dg = dg6();
  const padded = new Uint8Array(dg.length + 6);
  padded.set(dg);
  udp.inject(dg, PEER);
  udp.inject(padded, PEER);
  d.runOnce(0);
  assert.equal(tun.written.length, 2);
  assert.deepEqual(tun.written[0], dg.subarray(22));
  assert.deepEqual(tun.written[1], dg.subarray(22), 'trailing padding after the payload length is not written');
  assert.equal(totals(peerState).rxPackets, 2);
  assert.equal(totals(peerState).rxBytes, 2 * (dg.length - 22));
  assert.equal(peerField(peerState, 0, PeerField.RxPackets), 2);
});

const rxCases: Array<{ name: string; reason: (typeof RX_DROP_REASONS)[number]; v6?: boolean; from?: number; make: () => Uint8Array }> = [
  { name: 'EtherType IPv6 on a node without IPv6 pods', reason: 'bad_ethertype', v6: false, make: () => dg6() },
  { name: 'EtherType IPv6 carrying an IPv4 packet', reason: 'bad_inner_ip',
    make: () => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.2.5', dst: '10.244.1.7' }), etherType: 0x86dd }) },
  { name: 'EtherType IPv4 carrying an IPv6 packet', reason: 'bad_inner_ip',
    make: () => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: inner6() }) },
  { name: 'inner version 5', reason: 'bad_inner_ip', make: () => { const b = dg6(); b[22] = 0x50; return b; } },
  { name: 'payload length beyond the datagram', reason: 'bad_inner_ip', make: () => { const b = dg6(); b[22 + 5] = b[22 + 5]! + 1; return b; } },
  { name: 'shorter than an IPv6 header', reason: 'bad_inner_ip', make: () => dg6().subarray(0, 22 + 39) },
  { name: 'inner source in another peer\'s IPv6 pod CIDR (spoofed)', reason: 'spoofed_source', make: () => dg6(inner6('fd00:10:244:3::5')) },
  { name: 'inner source is one of our own pods (spoofed)', reason: 'spoofed_source', make: () => dg6(inner6('fd00:10:244:1::9')) },
  { name: 'inner source outside clusterCIDR6 (spoofed)', reason: 'spoofed_source', make: () => dg6(inner6('2001:db8::5')) },
  { name: 'inner source is the peer\'s IPv4-mapped address (spoofed)', reason: 'spoofed_source', make: () => dg6(inner6('::ffff:a0f4:205')) },
  { name: 'inner destination on another node', reason: 'not_local', make: () => dg6(inner6('fd00:10:244:2::5', 'fd00:10:244:3::7')) },
  { name: 'inner destination outside clusterCIDR6', reason: 'not_local', make: () => dg6(inner6('fd00:10:244:2::5', '2001:db8::7')) },
  { name: 'inner destination multicast', reason: 'not_local', make: () => dg6(inner6('fd00:10:244:2::5', 'ff02::1')) },
  { name: 'sender is not a peer', reason: 'unknown_peer', from: STRANGER, make: () => dg6() },
];
for (const c of rxCases) {
  test(`IPv6 drop: ${c.name} -> ${c.reason}`, () => {
    const { tun, udp, counters, peerState, d } = decapSetup({ v6: c.v6 ?? true });
    udp.inject(c.make(), c.from ?? PEER);
    d.runOnce(0);
    assert.equal(tun.written.length, 0, 'nothing reaches TUN');
    const got = RX_DROP_REASONS.filter((r) => counters[Drop[r]]! > 0);
    assert.deepEqual(got, [c.reason], `counted as ${JSON.stringify(got)}, want ${c.reason}`);
  });
}

test('a GRO batch of in-order IPv6 TCP segments reaches TUN as one TCPV6 super-packet that re-segments exactly', () => {
  const { tun, udp, counters, peerState, d } = decapSetup({ vnet: true });
  const segs: Uint8Array[] = [];
  for (let j = 0; j < 8; j++) {
    segs.push(buildTcp({ v6: true, src: ip6('fd00:10:244:2::5'), dst: ip6('fd00:10:244:1::7'), seq: 1000 + j * MSS6, payload: pattern(MSS6, j) }));
  }
  const dgs = segs.map((s) => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: s, etherType: 0x86dd }));
  const gso = dgs[0]!.length;
  const all = new Uint8Array(gso * dgs.length);
  dgs.forEach((x, j) => all.set(x, j * gso));
  udp.inject(all, PEER, gso);
  d.runOnce(0);
  assert.equal(tun.written.length, 1, 'one TUN write');
  assert.equal(totals(peerState).rxPackets, 8);
  const w = tun.written[0]!;
  const hdr = new VirtioNetHdrView(w, 0);
  assert.equal(hdr.gsoType, VirtioGsoType.TcpV6);
  assert.equal(hdr.gsoSize, MSS6);
  const offs = Int32Array.from({ length: 16 }, (_, j) => j * 2048);
  const lens = new Int32Array(16);
  const out = new Uint8Array(16 * 2048);
  const n = segment(w, 10, w.length - 10, hdr, out, offs, lens, 16);
  assert.equal(n, 8);
  for (let j = 0; j < n; j++) assert.deepEqual(out.subarray(offs[j]!, offs[j]! + lens[j]!), segs[j], `segment ${j} round trip`);
});

test('fuzz: 600,000 random and mutated IPv4 and IPv6 datagrams never throw; each is forwarded or counted', () => {
  const batch = 64;
  const { tun, udp, counters, peerState, d } = decapSetup({ batch });
  const rng = new Rng(Number(process.env.VXNET_FUZZ_SEED ?? 0x6eed1234));
  const rand = (): number => rng.u32();
  const base4 = vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.2.5', dst: '10.244.1.7', payload: 32 }) });
  const base6 = dg6();
  const total = 600_000;
  let sent = 0;
  let written = 0;
  let bogus = 0;
  let v6Written = 0;
  const prefix = (p: Uint8Array, at: number, want: Uint8Array): boolean => {
    for (let i = 0; i < 8; i++) if (p[at + i] !== want[i]) return false;
    return true;
  };
  const peer6 = ip6('fd00:10:244:2::');
  const local6 = ip6('fd00:10:244:1::');
  try {
    while (sent < total) {
      const n = Math.min(batch, total - sent);
      for (let i = 0; i < n; i++) {
        const r = rand();
        let dg: Uint8Array;
        if ((r & 3) === 0) {
          dg = new Uint8Array(rand() % 200);
          for (let j = 0; j < dg.length; j++) dg[j] = rand() & 0xff;
          if (dg.length > 22 && (r & 8)) { dg[0] = 0x08; dg[6] = 1; dg[20] = 0x86; dg[21] = 0xdd; dg.set(macBytes(LOCAL_MAC), 8); }
        } else {
          const base = (r & 0x10) ? base6 : base4;
          dg = base.slice(0, (r & 4) ? base.length : rand() % (base.length + 1));
          const flips = 1 + (rand() % 4);
          for (let f = 0; f < flips && dg.length > 0; f++) dg[rand() % dg.length] = rand() & 0xff;
        }
        udp.inject(dg, (r & 0x100) ? STRANGER : PEER);
      }
      d.runOnce(0);
      for (const p of tun.written) {
        // Whatever got through: IPv4 from n2's pods to ours with an intact header, or IPv6 from
        // n2's IPv6 pods to ours whose length is exactly its header's.
        if (p[0]! >> 4 === 6) {
          v6Written++;
          if (p.length < 40 || 40 + u16(p, 4) !== p.length || !prefix(p, 8, peer6) || !prefix(p, 24, local6)) bogus++;
        } else if (p[0]! >> 4 !== 4 || naiveChecksum(p.subarray(0, (p[0]! & 15) * 4)) !== 0
          || p[12] !== 10 || p[13] !== 244 || p[14] !== 2 || p[16] !== 10 || p[17] !== 244 || p[18] !== 1) {
          bogus++;
        }
      }
      written += tun.written.length;
      tun.written.length = 0;
      sent += n;
    }
  } catch (err) {
    assert.fail(`threw after ${sent} datagrams (seed ${process.env.VXNET_FUZZ_SEED ?? 0x6eed1234}): ${(err as Error).stack}`);
  }
  const dropped = RX_DROP_REASONS.reduce((s, r) => s + counters[Drop[r]]!, 0);
  assert.equal(totals(peerState).rxPackets, written, 'every accepted datagram was written');
  assert.equal(written + dropped, total, `forwarded ${written} + dropped ${dropped} != sent ${total}`);
  assert.ok(v6Written > 1000, `only ${v6Written} IPv6 packets got through; the fuzz does not reach the IPv6 path`);
  assert.ok(dropped > total / 2, 'most random datagrams must be dropped');
  assert.equal(bogus, 0, 'forwarded packets that should have been dropped');
});
