/**
 * VXLAN remote checksum offload (draft-herbert-vxlan-rco, Linux remcsumtx/remcsumrx), both ways:
 * to a peer that takes it the inner checksum leaves unfinished (the field holds the pseudo-header
 * sum) with the RCO flag and byte in the VXLAN header, as Linux writes them; to one that does not,
 * finished; received, it is accepted only when enabled, its start is checked, and it reaches TUN
 * unfinished behind NEEDS_CSUM (merged or alone) or finished when TUN has no virtio header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, FakeUdp } from '../../../src/device/fake.js';
import { Encapsulator, PeerFlags } from '../../../src/datapath/encap.js';
import { Decapsulator } from '../../../src/datapath/decap.js';
import { Drop, newCounters } from '../../../src/datapath/counters.js';
import { newPeerState, onWire, tableSet, totals, withVirtio } from '../../support/datapath.js';
import { buildTable, ForwardingTable } from '../../../src/table/table.js';
import { ipv4ToNumber, parseCidr4, parseMac as macBytes } from '../../../src/wire/addr.js';
import { VirtioGsoType } from '../../../src/wire/virtio.js';
import { buildTcp, asPartial, naiveValid, pattern, ip4, naiveSum, pseudoHeader4, put16 } from '../wire/helpers.js';
import { vxlanDatagram } from './packets.js';

const PEER = ipv4ToNumber('192.168.102.2');
const LOCAL_MAC = '02:00:00:00:00:01';
const PEER_MAC = '02:00:00:00:00:02';

function table(): ForwardingTable {
  return new ForwardingTable(buildTable({
    clusterNet: ipv4ToNumber('10.244.0.0'), clusterPrefix: 16, localPodCIDRs: [parseCidr4('10.244.1.0/24')],
    peers: [{ node: 'n2', underlay: PEER, port: 8472, vni: 1, mac: macBytes(PEER_MAC), podCIDRs: [parseCidr4('10.244.2.0/24')] }],
  }));
}

const le16 = (b: Uint8Array, off: number): number => b[off]! | (b[off + 1]! << 8);

/** The packet with its IPv4 TCP checksum computed from scratch (the independent reference). */
function finished(packet: Uint8Array): Uint8Array {
  const p = packet.slice();
  const l4 = (p[0]! & 0xf) * 4;
  put16(p, l4 + 16, 0);
  const sum = naiveSum(p, l4, p.length - l4, naiveSum(pseudoHeader4(p.subarray(12, 16), p.subarray(16, 20), 6, p.length - l4)));
  put16(p, l4 + 16, ~sum & 0xffff);
  return p;
}

function encap(peerTakesRco: boolean, enabled = true) {
  const tun = new FakeTun(true);
  const udp = new FakeUdp(8);
  const counters = newCounters();
  const peerState = newPeerState();
  const e = new Encapsulator({
    tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), localAddress: ipv4ToNumber('10.244.1.0'),
    mtu: 1450, underlayMtu: 1500, batch: 8, udpGso: true, remoteChecksum: enabled,
  }, tableSet(table(), undefined, [peerTakesRco ? PeerFlags.RemoteChecksum : 0]));
  return { tun, udp, counters, peerState, e };
}

const payload = pattern(6000, 9);
const superPacket = (): Uint8Array =>
  withVirtio(asPartial(buildTcp({ src: ip4('10.244.1.5'), dst: ip4('10.244.2.7'), seq: 77, id: 0x100, flags: 0x10, payload }), 6), VirtioGsoType.TcpV4, 1398);

test('to a peer that takes RCO: segments leave with the checksum unfinished and the RCO flag and byte Linux expects', () => {
  const { tun, udp, e } = encap(true);
  tun.inject(superPacket());
  e.runOnce(0);
  const dgs = onWire(udp);
  assert.equal(dgs.length, 5);
  for (const [j, d] of dgs.entries()) {
    assert.deepEqual([...d.subarray(0, 8)], [0x08, 0x20, 0, 0, 0, 0, 1, 34 >> 1], `segment ${j}: I flag, RCO flag, VNI 1, start 34/2 (TCP)`);
    const seg = d.subarray(22);
    assert.equal(naiveSum(seg, 0, 20), 0xffff, `segment ${j}: the IPv4 header checksum is still finished`);
    assert.deepEqual(seg, asPartial(finished(seg), 6), `segment ${j}: the TCP checksum field holds the pseudo-header sum`);
    assert.ok(naiveValid(finished(seg), 6));
  }
});

test('to a peer that does not take RCO, or with RCO off here: every checksum finished, no RCO bits', () => {
  for (const [name, peer, enabled] of [['peer without RCO', false, true], ['RCO off here', true, false]] as const) {
    const { tun, udp, e } = encap(peer, enabled);
    tun.inject(superPacket());
    e.runOnce(0);
    for (const d of onWire(udp)) {
      assert.deepEqual([d[1], d[7]], [0, 0], `${name}: reserved bytes zero`);
      assert.ok(naiveValid(d.subarray(22), 6), `${name}: finished checksum`);
    }
  }
});

test('a plain NEEDS_CSUM packet: left unfinished for an RCO peer, finished for the others', () => {
  const pkt = asPartial(buildTcp({ src: ip4('10.244.1.5'), dst: ip4('10.244.2.7'), seq: 1, flags: 0x18, payload: pattern(100, 1) }), 6);
  for (const rco of [true, false]) {
    const { tun, udp, e } = encap(rco);
    tun.inject(withVirtio(pkt, VirtioGsoType.None, 0));
    e.runOnce(0);
    const d = onWire(udp)[0]!;
    if (rco) {
      assert.deepEqual([d[1], d[7]], [0x20, 17]);
      assert.deepEqual(d.subarray(22), pkt);
    } else {
      assert.deepEqual([d[1], d[7]], [0, 0]);
      assert.ok(naiveValid(d.subarray(22), 6));
    }
  }
});

function decap(vnet: boolean, enabled = true) {
  const tun = new FakeTun(vnet);
  const udp = new FakeUdp(8, vnet);
  const counters = newCounters();
  const peerState = newPeerState();
  const d = new Decapsulator({ tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), vni: 1, mtu: 1450, batch: 16, remoteChecksum: enabled }, tableSet(table()));
  return { tun, udp, counters, peerState, d };
}

/** A VXLAN datagram from the peer carrying `inner` with the given RCO byte (0: none). */
function rcoDatagram(inner: Uint8Array, rco: number): Uint8Array {
  const dg = vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner });
  if (rco !== 0) {
    dg[1] = 0x20;
    dg[7] = rco;
  }
  return dg;
}

const segmentFromPeer = (i: number, flags = 0x10): Uint8Array =>
  asPartial(buildTcp({ src: ip4('10.244.2.5'), dst: ip4('10.244.1.7'), seq: 1000 + i * 1000, id: 0x50 + i, flags, payload: pattern(1000, i) }), 6);

test('received RCO, TUN with a virtio header: segments merge; a lone packet goes with NEEDS_CSUM at the RCO start', () => {
  const { tun, udp, counters, peerState, d } = decap(true);
  for (let i = 0; i < 4; i++) udp.inject(rcoDatagram(segmentFromPeer(i), 17), PEER);
  d.runOnce(0);
  assert.equal(tun.written.length, 1, 'one super-packet');
  const w = tun.written[0]!;
  assert.deepEqual([w[0], w[1], le16(w, 4)], [1, 1, 1000], 'NEEDS_CSUM, TCPV4, gso_size 1000 (little-endian)');
  assert.equal(totals(peerState).rxPackets, 4);
  assert.equal(counters[Drop.reserved_bits], 0);

  const lone = decap(true);
  lone.udp.inject(rcoDatagram(segmentFromPeer(0, 0x18 | 0x01), 17), PEER); // FIN: never merged
  lone.d.runOnce(0);
  const v = lone.tun.written[0]!;
  assert.equal(v[0], 1, 'NEEDS_CSUM');
  assert.deepEqual([le16(v, 6), le16(v, 8)], [20, 16], 'csum_start at the TCP header, offset 16');
});

test('received RCO, TUN without a virtio header: the checksum is finished before the write', () => {
  const { tun, udp, d } = decap(false);
  udp.inject(rcoDatagram(segmentFromPeer(2), 17), PEER);
  d.runOnce(0);
  assert.equal(tun.written.length, 1);
  assert.ok(naiveValid(tun.written[0]!, 6));
});

test('received RCO is refused when it is off here, or when its start lies inside the IP header', () => {
  const off = decap(true, false);
  off.udp.inject(rcoDatagram(segmentFromPeer(0), 17), PEER);
  off.d.runOnce(0);
  assert.equal(off.counters[Drop.reserved_bits], 1, 'RCO off: a reserved bit');
  const bad = decap(true);
  bad.udp.inject(rcoDatagram(segmentFromPeer(0), 14 >> 1), PEER); // start 14: the IP header itself
  bad.d.runOnce(0);
  assert.equal(bad.counters[Drop.bad_inner_ip], 1);
  assert.equal(bad.tun.written.length, 0);
  const noFlag = decap(true);
  const dg = rcoDatagram(segmentFromPeer(0), 0);
  dg[7] = 17; // the RCO byte without the flag
  noFlag.udp.inject(dg, PEER);
  noFlag.d.runOnce(0);
  assert.equal(noFlag.counters[Drop.reserved_bits], 1);
});
