/**
 * The outbound path in-process: golden bytes of an encapsulated packet (the headroom is poisoned
 * first, so a header byte the code forgets to write shows up), ICMP errors for unowned
 * destinations and oversized DF packets, drops by reason, and the flow hash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, FakeUdp } from '../../../src/device/fake.js';
import { Encapsulator } from '../../../src/datapath/encap.js';
import { newCounters, Counter, Drop } from '../../../src/datapath/counters.js';
import { newPeerState, peerField, tableSet, totals } from '../../support/datapath.js';
import { PeerField } from '../../../src/datapath/peer-state.js';
import { buildTable, ForwardingTable } from '../../../src/table/table.js';
import { ipv4ToNumber, parseCidr4, parseMac as macBytes } from '../../../src/wire/addr.js';
import { ipv4Packet, naiveChecksum } from './packets.js';

const PEER = ipv4ToNumber('192.168.102.2');

function setup(mtu = 1450, opts: { udpGso?: boolean; batch?: number } = {}) {
  const tun = new FakeTun();
  const udp = new FakeUdp(8);
  const counters = newCounters();
  const table = new ForwardingTable(buildTable({
    clusterNet: ipv4ToNumber('10.244.0.0'), clusterPrefix: 16,
    localPodCIDRs: [parseCidr4('10.244.1.0/24')],
    peers: [{ node: 'n2', underlay: PEER, port: 4789, vni: 0x123456, mac: macBytes('02:aa:bb:cc:dd:02'), podCIDRs: [parseCidr4('10.244.2.0/24')] }],
  }));
  const peerState = newPeerState();
  const e = new Encapsulator({
    tun, udp, counters, peerState, localMAC: macBytes('02:aa:bb:cc:dd:01'), localAddress: ipv4ToNumber('10.244.1.0'), mtu,
    batch: opts.batch ?? 16, udpGso: opts.udpGso ?? false,
  }, tableSet(table));
  return { tun, udp, counters, peerState, e };
}

test('golden: VXLAN + inner Ethernet written in the headroom, sent to the peer underlay and port', () => {
  const { tun, udp, counters, peerState, e } = setup();
  e.slab.fill(0xa5);
  const inner = ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', payload: 12 });
  tun.inject(inner);
  assert.equal(e.runOnce(0), 1);
  assert.equal(udp.sent.length, 1);
  const d = udp.sent[0]!;
  const want = Uint8Array.from([
    0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x00, // VXLAN: I flag, VNI 0x123456, reserved zero
    0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02, // inner dst: the peer's VTEP MAC
    0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, // inner src: ours
    0x08, 0x00, // IPv4
    ...inner,
  ]);
  assert.deepEqual(d.data, want);
  assert.equal(d.addr, PEER);
  assert.equal(d.port, 4789);
  assert.equal(d.gso, 0);
  assert.equal(totals(peerState).txPackets, 1);
  assert.equal(totals(peerState).txBytes, inner.length);
});

test('flow hash: one flow always uses one sender; many flows spread over the senders', () => {
  const { tun, udp, e } = setup();
  for (let i = 0; i < 4; i++) tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', srcPort: 40000, dstPort: 5201 }));
  e.runOnce(0);
  assert.equal(new Set(udp.sent.map((d) => d.sock)).size, 1);
  udp.sent.length = 0;
  for (let p = 0; p < 200; p++) {
    tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', srcPort: 30000 + p, dstPort: 5201 }));
    if (p % 16 === 15) e.runOnce(0);
  }
  e.runOnce(0);
  const used = new Set(udp.sent.map((d) => d.sock));
  assert.equal(used.size, 8, `200 flows used senders ${[...used].join(',')}`);
});

test('a destination in the cluster CIDR that no peer owns: ICMP net unreachable back through TUN', () => {
  const { tun, udp, counters, peerState, e } = setup();
  const pkt = ipv4Packet({ src: '10.244.1.5', dst: '10.244.77.1', payload: 40 });
  tun.inject(pkt);
  e.runOnce(0);
  assert.equal(udp.sent.length, 0);
  assert.equal(counters[Drop.no_route], 1);
  assert.equal(tun.written.length, 1);
  const icmp = tun.written[0]!;
  assert.equal(naiveChecksum(icmp.subarray(0, 20)), 0, 'IP header checksum');
  assert.equal(icmp[9], 1, 'protocol ICMP');
  assert.deepEqual([...icmp.subarray(12, 16)], [10, 244, 1, 0], 'from our TUN address');
  assert.deepEqual([...icmp.subarray(16, 20)], [10, 244, 1, 5], 'to the sender');
  assert.equal(icmp[20], 3, 'destination unreachable');
  assert.equal(icmp[21], 0, 'net unreachable');
  assert.equal(naiveChecksum(icmp.subarray(20)), 0, 'ICMP checksum');
  assert.deepEqual(icmp.subarray(28, 28 + 28), pkt.subarray(0, 28), 'quotes the offending header and data');
});

test('a DF packet larger than the MTU: ICMP fragmentation needed carrying the MTU (RFC 1191)', () => {
  const { tun, udp, counters, peerState, e } = setup(1000);
  tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', payload: 1100, df: true }));
  e.runOnce(0);
  assert.equal(udp.sent.length, 0);
  assert.equal(counters[Drop.too_big], 1);
  const icmp = tun.written[0]!;
  assert.equal(icmp[20], 3);
  assert.equal(icmp[21], 4);
  assert.equal((icmp[26]! << 8) | icmp[27]!, 1000, 'next-hop MTU');
});

test('ICMP errors are rate limited', () => {
  const { tun, counters, peerState, e } = setup();
  for (let i = 0; i < 300; i++) {
    tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.77.1' }));
    if (i % 16 === 15) e.runOnce(0);
  }
  e.runOnce(0);
  assert.equal(counters[Drop.no_route], 300);
  assert.equal(counters[Counter.IcmpSent], 100);
  assert.equal(counters[Counter.IcmpSuppressed], 200);
});

const drops: Array<{ name: string; pkt: () => Uint8Array; reason: keyof typeof Drop }> = [
  { name: 'not IP', pkt: () => new Uint8Array(30), reason: 'bad_ip' },
  { name: 'shorter than an IPv4 header', pkt: () => ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9' }).subarray(0, 12), reason: 'bad_ip' },
  { name: 'total length beyond the read', pkt: () => { const p = ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9' }); p[2] = 0xff; return p; }, reason: 'bad_ip' },
  { name: 'to our own pod CIDR', pkt: () => ipv4Packet({ src: '10.244.1.5', dst: '10.244.1.9' }), reason: 'local_loop' },
];
for (const c of drops) {
  test(`drop: ${c.name} -> ${c.reason}`, () => {
    const { tun, udp, counters, peerState, e } = setup();
    tun.inject(c.pkt());
    e.runOnce(0);
    assert.equal(udp.sent.length, 0);
    assert.equal(counters[Drop[c.reason]], 1);
  });
}

/** VXLAN (8) + inner Ethernet (14) in front of each inner packet. */
const ENCAP = 22;

/** The datagrams a UDP GSO message stands for: its data cut every `gso` bytes. */
function datagramsOf(d: { data: Uint8Array; gso: number }): Uint8Array[] {
  if (d.gso === 0) return [d.data];
  const out: Uint8Array[] = [];
  for (let at = 0; at < d.data.length; at += d.gso) out.push(d.data.subarray(at, Math.min(d.data.length, at + d.gso)));
  return out;
}

test('small packets of one size to one peer leave as one UDP GSO message; the last may be shorter', () => {
  const { tun, udp, counters, peerState, e } = setup(1450, { udpGso: true });
  const flow = { src: '10.244.1.5', dst: '10.244.2.9', srcPort: 40000, dstPort: 5201 };
  const inner = [20, 20, 20, 20, 20, 7].map((payload, i) => ipv4Packet({ ...flow, payload, id: 100 + i }));
  for (const p of inner) tun.inject(p);
  assert.equal(e.runOnce(0), inner.length);
  assert.equal(udp.sent.length, 1, 'one message');
  const d = udp.sent[0]!;
  assert.equal(d.gso, ENCAP + inner[0]!.length);
  const parts = datagramsOf(d);
  assert.equal(parts.length, inner.length);
  parts.forEach((part, i) => {
    assert.equal(part[0], 0x08, `datagram ${i}: VXLAN I flag`);
    assert.deepEqual(part.subarray(ENCAP), inner[i], `datagram ${i}: the inner packet, whole`);
  });
  assert.equal(totals(peerState).txPackets, inner.length, 'every datagram counted');
  assert.equal(totals(peerState).txBytes, inner.reduce((n, p) => n + p.length, 0));
  assert.equal(counters[Counter.GsoFallbacks], 0);
});

test('a run ends at a longer packet, after a shorter one, at 64 datagrams, and without UDP GSO', () => {
  const flow = { src: '10.244.1.5', dst: '10.244.2.9', srcPort: 40000, dstPort: 5201 };
  {
    const { tun, udp, e } = setup(1450, { udpGso: true });
    // 60 60 | 80 80 60 | 40 40: a longer packet opens a new run; a shorter one joins as the
    // run's last, and the next packet opens a new run.
    for (const payload of [60, 60, 80, 80, 60, 40, 40]) tun.inject(ipv4Packet({ ...flow, payload }));
    e.runOnce(0);
    assert.deepEqual(udp.sent.map((d) => datagramsOf(d).map((x) => x.length - ENCAP - 20)), [[60, 60], [80, 80, 60], [40, 40]]);
  }
  {
    const { tun, udp, peerState, e } = setup(1450, { udpGso: true, batch: 100 });
    for (let i = 0; i < 100; i++) tun.inject(ipv4Packet({ ...flow, payload: 10 }));
    e.runOnce(0);
    assert.deepEqual(udp.sent.map((d) => datagramsOf(d).length), [64, 36]);
    assert.equal(totals(peerState).txPackets, 100);
  }
  {
    const { tun, udp, e } = setup(1450, { udpGso: false });
    for (let i = 0; i < 3; i++) tun.inject(ipv4Packet({ ...flow, payload: 10 }));
    e.runOnce(0);
    assert.deepEqual(udp.sent.map((d) => d.gso), [0, 0, 0]);
  }
});

test('packets to different senders (flows) do not share a run', () => {
  const { tun, udp, e } = setup(1450, { udpGso: true });
  // Alternate two flows; keep only pairs whose flow hash picks different sockets.
  tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', srcPort: 40000, dstPort: 5201, payload: 10 }));
  e.runOnce(0);
  const sockA = udp.sent[0]!.sock;
  let other = -1;
  for (let port = 40001; port < 40100 && other < 0; port++) {
    udp.sent.length = 0;
    tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', srcPort: port, dstPort: 5201, payload: 10 }));
    e.runOnce(0);
    if (udp.sent[0]!.sock !== sockA) other = port;
  }
  assert.ok(other > 0, 'some flow hashes to another socket');
  udp.sent.length = 0;
  for (let i = 0; i < 4; i++) tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', srcPort: i % 2 === 0 ? 40000 : other, dstPort: 5201, payload: 10 }));
  e.runOnce(0);
  assert.equal(udp.sent.length, 4, 'alternating sockets: no run');
  assert.ok(udp.sent.every((d) => d.gso === 0));
});

test('a refused run of small packets is resent as single datagrams and counted once each', () => {
  const { tun, udp, counters, peerState, e } = setup(1450, { udpGso: true });
  udp.script.failWhen((d) => (d.gso > 0 ? 5 /* EIO: no checksum offload on the route */ : 0));
  const flow = { src: '10.244.1.5', dst: '10.244.2.9', srcPort: 40000, dstPort: 5201 };
  const inner = [30, 30, 30, 12].map((payload) => ipv4Packet({ ...flow, payload }));
  for (const p of inner) tun.inject(p);
  e.runOnce(0);
  assert.equal(udp.refused.length, 1);
  assert.equal(udp.sent.length, inner.length);
  udp.sent.forEach((d, i) => {
    assert.equal(d.gso, 0);
    assert.deepEqual(d.data.subarray(ENCAP), inner[i]);
  });
  assert.equal(counters[Counter.GsoFallbacks], 1);
  assert.equal(totals(peerState).txPackets, inner.length);
  assert.equal(totals(peerState).txBytes, inner.reduce((n, p) => n + p.length, 0));
});
