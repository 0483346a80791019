/**
 * The inbound path in-process, over the in-memory Tun/UdpBind fakes: named cases for every drop
 * reason, and a fuzz run of a million random and mutated datagrams in which nothing may throw and
 * every datagram must be either forwarded or counted as dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, FakeUdp } from '../../../src/device/fake.js';
import { Decapsulator } from '../../../src/datapath/decap.js';
import { newCounters, Counter, Drop, RX_DROP_REASONS } from '../../../src/datapath/counters.js';
import { newPeerState, peerField, tableSet, totals } from '../../support/datapath.js';
import { PeerField } from '../../../src/datapath/peer-state.js';
import { buildTable, ForwardingTable } from '../../../src/table/table.js';
import { ipv4ToNumber, parseCidr4, parseMac as macBytes } from '../../../src/wire/addr.js';
import { naiveChecksum, vxlanDatagram, ipv4Packet } from './packets.js';
import { Rng } from '../../rng.js';

const LOCAL_MAC = '02:00:00:00:00:01';
const PEER_MAC = '02:00:00:00:00:02';
const PEER = ipv4ToNumber('192.168.102.2');
const STRANGER = ipv4ToNumber('192.168.199.9');

function setup(batch = 16) {
  const tun = new FakeTun();
  const udp = new FakeUdp();
  const counters = newCounters();
  const table = new ForwardingTable(buildTable({
    clusterNet: ipv4ToNumber('10.244.0.0'), clusterPrefix: 16,
    localPodCIDRs: [parseCidr4('10.244.1.0/24')],
    peers: [{ node: 'n2', underlay: PEER, port: 8472, vni: 1, mac: macBytes(PEER_MAC), podCIDRs: [parseCidr4('10.244.2.0/24')] }],
  }));
  const peerState = newPeerState();
  const d = new Decapsulator({ tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), vni: 1, mtu: 1450, batch }, tableSet(table));
  return { tun, udp, counters, peerState, d };
}

const good = () => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.2.5', dst: '10.244.1.7', payload: 32 }) });

test('a valid datagram from a peer is written to TUN as its inner packet, byte for byte', () => {
  const { tun, udp, counters, peerState, d } = setup();
  const dg = good();
  udp.inject(dg, PEER);
  assert.equal(d.runOnce(0), 1);
  assert.equal(tun.written.length, 1);
  assert.deepEqual(tun.written[0], dg.subarray(22));
  assert.equal(totals(peerState).rxPackets, 1);
  assert.equal(totals(peerState).rxBytes, dg.length - 22);
});

test('trailing padding after the inner IPv4 total length is not written to TUN', () => {
  const { tun, udp, d } = setup();
  const dg = good();
  const padded = new Uint8Array(dg.length + 6);
  padded.set(dg);
  udp.inject(padded, PEER);
  d.runOnce(0);
  assert.deepEqual(tun.written[0], dg.subarray(22));
});

type Mutate = (b: Uint8Array) => Uint8Array;
const cases: Array<{ name: string; reason: (typeof RX_DROP_REASONS)[number]; from?: number; make: Mutate }> = [
  { name: 'shorter than VXLAN + Ethernet + IPv4', reason: 'truncated', make: (b) => b.subarray(0, 41) },
  { name: 'empty datagram', reason: 'truncated', make: () => new Uint8Array(0) },
  { name: 'I flag clear', reason: 'bad_flags', make: (b) => { b[0] = 0x00; return b; } },
  { name: 'reserved flag bit set', reason: 'reserved_bits', make: (b) => { b[0] = 0x0c; return b; } },
  { name: 'reserved 24 bits after flags set', reason: 'reserved_bits', make: (b) => { b[2] = 0x01; return b; } },
  { name: 'reserved byte after VNI set', reason: 'reserved_bits', make: (b) => { b[7] = 0x80; return b; } },
  { name: 'wrong VNI', reason: 'wrong_vni', make: (b) => { b[6] = 2; return b; } },
  { name: 'sender is not a peer', reason: 'unknown_peer', from: STRANGER, make: (b) => b },
  { name: 'inner destination MAC is not ours', reason: 'bad_inner_mac', make: (b) => { b[13] = b[13]! ^ 0x01; return b; } },
  { name: 'broadcast inner destination MAC', reason: 'bad_inner_mac', make: (b) => { b.fill(0xff, 8, 14); return b; } },
  { name: 'ARP EtherType', reason: 'bad_ethertype', make: (b) => { b[20] = 0x08; b[21] = 0x06; return b; } },
  { name: 'inner version 5', reason: 'bad_inner_ip', make: (b) => { b[22] = 0x55; return b; } },
  { name: 'inner IHL 3', reason: 'bad_inner_ip', make: (b) => { b[22] = 0x43; return b; } },
  { name: 'inner total length beyond datagram', reason: 'bad_inner_ip', make: (b) => { b[24] = 0xff; return b; } },
  { name: 'inner header checksum wrong', reason: 'bad_inner_ip', make: (b) => { b[32] = b[32]! ^ 0xff; return b; } },
  { name: 'inner source outside the peer pod CIDR (spoofed)', reason: 'spoofed_source',
    make: () => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.3.5', dst: '10.244.1.7', payload: 8 }) }) },
  { name: 'inner source is our own pod (spoofed)', reason: 'spoofed_source',
    make: () => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.1.9', dst: '10.244.1.7', payload: 8 }) }) },
  { name: 'inner destination not on this node', reason: 'not_local',
    make: () => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.2.5', dst: '10.244.2.7', payload: 8 }) }) },
  { name: 'inner destination outside the cluster', reason: 'not_local',
    make: () => vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.2.5', dst: '8.8.8.8', payload: 8 }) }) },
];

for (const c of cases) {
  test(`drop: ${c.name} -> ${c.reason}`, () => {
    const { tun, udp, counters, peerState, d } = setup();
    udp.inject(c.make(good()), c.from ?? PEER);
    d.runOnce(0);
    assert.equal(tun.written.length, 0, 'nothing reaches TUN');
    const got = RX_DROP_REASONS.filter((r) => counters[Drop[r]]! > 0);
    assert.deepEqual(got, [c.reason], `counted as ${JSON.stringify(got)}, want ${c.reason}`);
  });
}

test('a datagram the kernel truncated (MSG_TRUNC) is counted as truncated', () => {
  const { udp, counters, peerState, d } = setup();
  udp.inject(new Uint8Array(70000), PEER);
  d.runOnce(0);
  assert.equal(counters[Drop.truncated], 1);
});

test('a GRO super-datagram is split at the segment size and each part is checked alone', () => {
  const { tun, udp, counters, peerState, d } = setup();
  const a = good();
  const bad = good();
  bad[6] = 9; // wrong VNI in the middle segment
  const all = new Uint8Array(a.length * 3);
  all.set(a, 0); all.set(bad, a.length); all.set(a, 2 * a.length);
  udp.inject(all, PEER, a.length);
  d.runOnce(0);
  assert.equal(tun.written.length, 2);
  assert.equal(counters[Drop.wrong_vni], 1);
});

test('fuzz: 1,000,000 random and mutated datagrams never throw; each is forwarded or counted', () => {
  const batch = 64;
  const { tun, udp, counters, peerState, d } = setup(batch);
  const rng = new Rng(Number(process.env.VXNET_FUZZ_SEED ?? 0x5eed1234));
  const rand = (): number => rng.u32();
  const base = good();
  const total = 1_000_000;
  let sent = 0;
  let written = 0;
  let bogus = 0;
  try {
    while (sent < total) {
      const n = Math.min(batch, total - sent);
      for (let i = 0; i < n; i++) {
        const r = rand();
        let dg: Uint8Array;
        if ((r & 3) === 0) {
          dg = new Uint8Array(rand() % 200);
          for (let j = 0; j < dg.length; j++) dg[j] = rand() & 0xff;
        } else {
          dg = base.slice(0, (r & 4) ? base.length : rand() % (base.length + 1));
          const flips = 1 + (rand() % 4);
          for (let f = 0; f < flips && dg.length > 0; f++) dg[rand() % dg.length] = rand() & 0xff;
        }
        udp.inject(dg, (r & 0x100) ? STRANGER : PEER);
      }
      d.runOnce(0);
      for (const p of tun.written) {
        // Whatever got through must be an IPv4 packet from the peer's pods to ours, intact header.
        if (p[0]! >> 4 !== 4 || naiveChecksum(p.subarray(0, (p[0]! & 15) * 4)) !== 0
          || p[12] !== 10 || p[13] !== 244 || p[14] !== 2 || p[16] !== 10 || p[17] !== 244 || p[18] !== 1) {
          bogus++;
        }
      }
      written += tun.written.length;
      tun.written.length = 0;
      sent += n;
    }
  } catch (err) {
    assert.fail(`threw after ${sent} datagrams (seed ${process.env.VXNET_FUZZ_SEED ?? 0x5eed1234}): ${(err as Error).stack}`);
  }
  const dropped = RX_DROP_REASONS.reduce((s, r) => s + counters[Drop[r]]!, 0);
  assert.equal(totals(peerState).rxPackets, written, 'every accepted datagram was written');
  assert.equal(written + dropped, total, `forwarded ${written} + dropped ${dropped} != sent ${total}`);
  assert.ok(dropped > total / 2, 'most random datagrams must be dropped');
  assert.equal(bogus, 0, 'forwarded packets that should have been dropped');
});
