/**
 * The data path with TUN and UDP offloads on, in-process over the fakes: a TSO super-packet read
 * from TUN leaves as VXLAN datagrams (grouped for UDP GSO, or one per segment without it), every
 * segment checked against the independent encoder; a GRO batch of segments from a peer reaches
 * TUN as one super-packet that re-segments into the original bytes; and the decap fuzz again,
 * with the coalescer in the path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, FakeUdp } from '../../../src/device/fake.js';
import { Encapsulator } from '../../../src/datapath/encap.js';
import { Decapsulator } from '../../../src/datapath/decap.js';
import { newCounters, Counter, Drop, RX_DROP_REASONS } from '../../../src/datapath/counters.js';
import { newPeerState, onWire, peerField, tableSet, totals, withVirtio } from '../../support/datapath.js';
import { PeerField } from '../../../src/datapath/peer-state.js';
import { buildTable, ForwardingTable } from '../../../src/table/table.js';
import { ipv4ToNumber, parseCidr4, parseMac as macBytes } from '../../../src/wire/addr.js';
import { segment } from '../../support/segment-copy.js';
import { VirtioNetHdrView, VirtioGsoType } from '../../support/wire/virtio.js';
import { buildTcp, asPartial, naiveValid, pattern, ip4, u16, u32 } from '../wire/helpers.js';
import { vxlanDatagram } from './packets.js';
import { Rng } from '../../rng.js';

const PEER = ipv4ToNumber('192.168.102.2');
const LOCAL_MAC = '02:00:00:00:00:01';
const PEER_MAC = '02:00:00:00:00:02';

function table(): ForwardingTable {
  return new ForwardingTable(buildTable({
    clusterNet: ipv4ToNumber('10.244.0.0'), clusterPrefix: 16,
    localPodCIDRs: [parseCidr4('10.244.1.0/24')],
    peers: [{ node: 'n2', underlay: PEER, port: 8472, vni: 1, mac: macBytes(PEER_MAC), podCIDRs: [parseCidr4('10.244.2.0/24')] }],
  }));
}


function encapSetup(udpGso: boolean) {
  const tun = new FakeTun(true);
  const udp = new FakeUdp(8);
  const counters = newCounters();
  const peerState = newPeerState();
  const e = new Encapsulator({
    tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), localAddress: ipv4ToNumber('10.244.1.0'), mtu: 1450, batch: 8, udpGso,
  }, tableSet(table()));
  return { tun, udp, counters, peerState, e };
}

const MSS = 1398;

function superPacket(payloadLength: number): { original: Uint8Array; read: Uint8Array; payload: Uint8Array } {
  const payload = pattern(payloadLength, 3);
  const original = buildTcp({ src: ip4('10.244.1.5'), dst: ip4('10.244.2.7'), seq: 0xfffff000, id: 0x7000, flags: 0x18, payload });
  return { original, payload, read: withVirtio(asPartial(original, 6), VirtioGsoType.TcpV4, MSS, 20, 16) };
}


function checkSegments(dgs: Uint8Array[], payload: Uint8Array): void {
  const want = Math.ceil(payload.length / MSS);
  assert.equal(dgs.length, want, 'one datagram per MSS of payload');
  const rebuilt: number[] = [];
  dgs.forEach((d, j) => {
    assert.deepEqual([...d.subarray(0, 8)], [0x08, 0, 0, 0, 0, 0, 1, 0], `segment ${j}: VXLAN header`);
    assert.deepEqual([...d.subarray(8, 14)], [2, 0, 0, 0, 0, 2], `segment ${j}: inner destination MAC`);
    const seg = d.subarray(22);
    assert.ok(naiveValid(seg, 6), `segment ${j}: IPv4 header and TCP checksums verify`);
    assert.equal(u16(seg, 2), seg.length, `segment ${j}: total length`);
    assert.equal(u16(seg, 4), (0x7000 + j) & 0xffff, `segment ${j}: IPv4 identification`);
    assert.equal(u32(seg, 24), (0xfffff000 + j * MSS) >>> 0, `segment ${j}: TCP sequence`);
    const flags = seg[33]!;
    assert.equal(flags & 0x08, j === dgs.length - 1 ? 0x08 : 0, `segment ${j}: PSH only on the last`);
    assert.ok(seg.length - 40 <= MSS);
    rebuilt.push(...seg.subarray(40));
  });
  assert.deepEqual(Uint8Array.from(rebuilt), payload, 'payload reassembles exactly');
}

test('TSO super-packet from TUN -> segments sent with UDP GSO, every segment verified', () => {
  const { tun, udp, counters, peerState, e } = encapSetup(true);
  const sp = superPacket(20_000);
  tun.inject(sp.read);
  e.runOnce(0);
  assert.equal(udp.sent.length, 1, 'one GSO send');
  assert.equal(udp.sent[0]!.gso, 22 + 40 + MSS, 'gso size = VXLAN + inner Ethernet + headers + MSS');
  checkSegments(onWire(udp), sp.payload);
  assert.equal(totals(peerState).txPackets, 15);
  assert.equal(counters[Counter.TxSegments], 15);
});

test('a 64 KB super-packet is split into GSO sends under the 65507-byte UDP limit', () => {
  const { tun, udp, e } = encapSetup(true);
  const sp = superPacket(65_000);
  tun.inject(sp.read);
  e.runOnce(0);
  for (const d of udp.sent) assert.ok(d.data.length <= 65507, `send of ${d.data.length} bytes`);
  assert.equal(udp.sent.length, 2);
  checkSegments(onWire(udp), sp.payload);
});

test('without UDP GSO every segment is its own datagram', () => {
  const { tun, udp, e } = encapSetup(false);
  const sp = superPacket(9_000);
  tun.inject(sp.read);
  e.runOnce(0);
  assert.ok(udp.sent.every((d) => d.gso === 0));
  checkSegments(onWire(udp), sp.payload);
});

test('a plain packet with NEEDS_CSUM gets its checksum completed before it leaves', () => {
  const { tun, udp, e } = encapSetup(true);
  const pkt = buildTcp({ src: ip4('10.244.1.5'), dst: ip4('10.244.2.7'), seq: 7, payload: pattern(300) });
  tun.inject(withVirtio(asPartial(pkt, 6), VirtioGsoType.None, 0, 20, 16));
  e.runOnce(0);
  assert.deepEqual(udp.sent[0]!.data.subarray(22), pkt);
});

test('a malformed super-packet is dropped as bad_ip and nothing is sent', () => {
  const { tun, udp, counters, peerState, e } = encapSetup(true);
  const sp = superPacket(5_000);
  sp.read[10 + 20 + 12] = 0xf0; // TCP data offset 60 > what is there
  sp.read[6] = 0xff; // csum_start beyond the packet
  tun.inject(sp.read);
  e.runOnce(0);
  assert.equal(udp.sent.length, 0);
  assert.equal(counters[Drop.bad_ip], 1);
});

function decapSetup() {
  const tun = new FakeTun(true);
  const udp = new FakeUdp(8, true);
  const counters = newCounters();
  const peerState = newPeerState();
  const d = new Decapsulator({ tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), vni: 1, mtu: 1450, batch: 16 }, tableSet(table()));
  return { tun, udp, counters, peerState, d };
}

test('a GRO batch of in-order segments reaches TUN as one super-packet that re-segments exactly', () => {
  const { tun, udp, counters, peerState, d } = decapSetup();
  const segs: Uint8Array[] = [];
  for (let j = 0; j < 10; j++) {
    segs.push(buildTcp({ src: ip4('10.244.2.5'), dst: ip4('10.244.1.7'), seq: 1000 + j * MSS, id: 0x2000 + j, payload: pattern(MSS, j) }));
  }
  const dgs = segs.map((s) => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: s }));
  const gso = dgs[0]!.length;
  const all = new Uint8Array(gso * dgs.length);
  dgs.forEach((x, j) => all.set(x, j * gso));
  udp.inject(all, PEER, gso);
  d.runOnce(0);
  assert.equal(tun.written.length, 1, 'one TUN write');
  assert.equal(totals(peerState).rxPackets, 10);
  assert.equal(counters[Counter.RxCoalesced], 10);
  const w = tun.written[0]!;
  const hdr = new VirtioNetHdrView(w, 0);
  assert.equal(hdr.gsoType, VirtioGsoType.TcpV4);
  assert.equal(hdr.gsoSize, MSS);
  const offs = Int32Array.from({ length: 16 }, (_, j) => j * 2048);
  const lens = new Int32Array(16);
  const out = new Uint8Array(16 * 2048);
  const n = segment(w, 10, w.length - 10, hdr, out, offs, lens, 16);
  assert.equal(n, 10);
  for (let j = 0; j < n; j++) assert.deepEqual(out.subarray(offs[j]!, offs[j]! + lens[j]!), segs[j], `segment ${j} round trip`);
});

test('fuzz with offloads: 200,000 datagrams through decap + coalescer never throw; each is forwarded or counted', () => {
  const { tun, udp, counters, peerState, d } = decapSetup();
  const rng = new Rng(0xc0ffee);
  const rand = (): number => rng.u32();
  const base = vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC,
    inner: buildTcp({ src: ip4('10.244.2.5'), dst: ip4('10.244.1.7'), seq: 1, payload: pattern(200) }) });
  const total = 200_000;
  for (let sent = 0; sent < total; sent += 16) {
    for (let i = 0; i < 16; i++) {
      const dg = base.slice(0, (rand() & 1) ? base.length : rand() % (base.length + 1));
      const flips = rand() % 3;
      for (let f = 0; f < flips && dg.length > 0; f++) dg[rand() % dg.length] = rand() & 0xff;
      udp.inject(dg, PEER);
    }
    d.runOnce(0);
    tun.written.length = 0;
  }
  const dropped = RX_DROP_REASONS.reduce((s, r) => s + counters[Drop[r]]!, 0);
  assert.equal(totals(peerState).rxPackets! + dropped, total);
});
