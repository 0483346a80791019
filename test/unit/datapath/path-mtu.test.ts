/**
 * The outbound path on networks smaller than the pods believe, and when the kernel refuses sends:
 * a path MTU learned from a refused GSO send (the refused batch retried as single datagrams and
 * counted per datagram), TCP cut to the path, ICMP "fragmentation needed" and "packet too big" to
 * the pod, IPv4 fragmentation of packets without DF, the learned value aging back up, a TSO
 * burst with a tiny MSS, and scripted kernel failures counted exactly, by reason and by errno.
 *
 * The fake UDP socket plays the kernel: `failWhen` refuses what is larger than its path MTU,
 * with EINVAL for a GSO send and EMSGSIZE for a single datagram, as Linux does with
 * IP_PMTUDISC_DO sockets; `pathMtus` is what IP_MTU would answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTun, FakeUdp, type FakeDatagram } from '../../../src/device/fake.js';
import { Errno } from '../../../src/device/types.js';
import { Encapsulator } from '../../../src/datapath/encap.js';
import { Decapsulator } from '../../../src/datapath/decap.js';
import { Counter, Drop, IoOp, ioErrorSlot, newCounters } from '../../../src/datapath/counters.js';
import { PeerField } from '../../../src/datapath/peer-state.js';
import { newPeerState, onWire, peerField, tableSet, totals, withVirtio } from '../../support/datapath.js';
import { buildTable, ForwardingTable } from '../../../src/table/table.js';
import { buildTable6, ForwardingTable6 } from '../../../src/table/table6.js';
import { ipv4ToNumber, parseCidr4, parseCidr6, parseMac as macBytes } from '../../../src/wire/addr.js';
import { VirtioGsoType } from '../../support/wire/virtio.js';
import { buildTcp, asPartial, naiveValid, pattern, ip4, u16, u32 } from '../wire/helpers.js';
import { ipv4Packet, naiveChecksum, vxlanDatagram } from './packets.js';

const PEER = ipv4ToNumber('192.168.102.2');
const LOCAL_MAC = '02:00:00:00:00:01';
const PEER_MAC = '02:00:00:00:00:02';

function tables() {
  const t4 = new ForwardingTable(buildTable({
    clusterNet: ipv4ToNumber('10.244.0.0'), clusterPrefix: 16,
    localPodCIDRs: [parseCidr4('10.244.1.0/24')],
    peers: [{ node: 'n2', underlay: PEER, port: 8472, vni: 1, mac: macBytes(PEER_MAC), podCIDRs: [parseCidr4('10.244.2.0/24')] }],
  }));
  const t6 = new ForwardingTable6(buildTable6({
    clusterNet: parseCidr6('fd00:10:244::/56').net, clusterPrefix: 56, localPodCIDRs: [parseCidr6('fd00:10:244:1::/64')],
    peers: [{ node: 'n2', podCIDRs: [parseCidr6('fd00:10:244:2::/64')] }],
  }));
  return tableSet(t4, t6);
}

/** The kernel's refusal of a message to a path of `pathMtu` bytes (outer IPv4 + UDP = 28). */
function kernelRefusal(pathMtu: number) {
  return (d: FakeDatagram): number => {
    const datagram = d.gso > 0 ? d.gso : d.data.length;
    if (datagram + 28 <= pathMtu) return 0;
    return d.gso > 0 ? Errno.EINVAL : Errno.EMSGSIZE;
  };
}

function setup(o: { vnet?: boolean; udpGso?: boolean; mtu?: number; agingMs?: number } = {}) {
  const tun = new FakeTun(o.vnet ?? true);
  const udp = new FakeUdp(8);
  const counters = newCounters();
  const peerState = newPeerState();
  const e = new Encapsulator({
    tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), localAddress: ipv4ToNumber('10.244.1.0'),
    localAddress6: new Uint8Array([0xfd, 0, 0, 0x10, 0x2, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    mtu: o.mtu ?? 1450, underlayMtu: 1500, batch: 8, udpGso: o.udpGso ?? true, pathMtuAgingMs: o.agingMs ?? 600_000,
  }, tables());
  return { tun, udp, counters, peerState, e };
}


function superPacket(payloadLength: number, mss: number): { read: Uint8Array; payload: Uint8Array } {
  const payload = pattern(payloadLength, 5);
  const original = buildTcp({ src: ip4('10.244.1.5'), dst: ip4('10.244.2.7'), seq: 1000, id: 0x4000, flags: 0x18, payload });
  return { payload, read: withVirtio(asPartial(original, 6), VirtioGsoType.TcpV4, mss) };
}


/** Checks that the TCP segments carry `payload` in order, every checksum valid, none over `maxInner`. */
function checkTcp(dgs: Uint8Array[], payload: Uint8Array, maxInner: number): void {
  const rebuilt: number[] = [];
  let seq = 1000;
  dgs.forEach((d, j) => {
    const seg = d.subarray(22);
    assert.ok(seg.length <= maxInner, `segment ${j}: ${seg.length} bytes, path allows ${maxInner}`);
    assert.ok(naiveValid(seg, 6), `segment ${j}: checksums verify`);
    assert.equal(u32(seg, 24), seq >>> 0, `segment ${j}: sequence`);
    seq += seg.length - 40;
    rebuilt.push(...seg.subarray(40));
  });
  assert.deepEqual(Uint8Array.from(rebuilt), payload, 'the payload arrives whole and in order');
}

test('a refused GSO send teaches the path MTU; the batch is retried as single datagrams, the next super-packet is cut to fit', () => {
  const { tun, udp, counters, peerState, e } = setup();
  udp.script.failWhen(kernelRefusal(1400));
  udp.pathMtus.set(PEER, 1400);
  const first = superPacket(20_000, 1398);
  tun.inject(first.read);
  e.runOnce(0);
  // 15 segments: 14 of 1398 + 40 + 22 = 1460-byte datagrams (1488 bytes on the wire, over
  // 1400) and a last one of 428 payload bytes, which fits.
  assert.equal(udp.refused.length, 1 + 14, 'the GSO send, then each of its 14 full datagrams alone');
  assert.equal(udp.refused[0]!.errno, Errno.EINVAL);
  assert.ok(udp.refused.slice(1).every((r) => r.errno === Errno.EMSGSIZE && r.gso === 0));
  assert.equal(counters[Counter.GsoFallbacks], 1);
  assert.equal(counters[Drop.too_big], 14, 'every refused datagram is counted, once');
  assert.equal(counters[ioErrorSlot(IoOp.UdpSend, Errno.EINVAL)], 1);
  assert.equal(counters[ioErrorSlot(IoOp.UdpSend, Errno.EMSGSIZE)], 14);
  assert.equal(totals(peerState).txPackets, 1, 'the one that fit went, and is counted');
  assert.equal(peerField(peerState, 0, PeerField.PathMtu), 1400, 'the path MTU, per peer');
  assert.equal(udp.pathMtuQueries, 1, 'asked once for the whole batch');
  assert.ok(tun.written.length >= 1, 'ICMP fragmentation needed went back to the pod');
  const icmp = tun.written[0]!.subarray(10);
  assert.equal(icmp[9], 1, 'ICMP');
  assert.deepEqual([icmp[20], icmp[21]], [3, 4], 'destination unreachable, fragmentation needed');
  assert.equal(u16(icmp, 26), 1350, 'next-hop MTU: the path MTU minus 50');

  const second = superPacket(20_000, 1398);
  tun.inject(second.read);
  e.runOnce(0);
  const sent = onWire(udp);
  checkTcp(sent.slice(1), second.payload, 1350);
  assert.equal(totals(peerState).txPackets, sent.length, 'every segment counted as sent');
  assert.equal(counters[Drop.too_big], 14, 'no new drops');
});

test('a path MTU known before the send: TCP is cut to it at once, nothing is refused', () => {
  const { tun, udp, counters, peerState, e } = setup();
  peerState[0 * PeerField.Stride + PeerField.PathMtu] = 1280;
  peerState[0 * PeerField.Stride + PeerField.PathMtuExpires] = Date.now() + 60_000;
  udp.script.failWhen(kernelRefusal(1280));
  const sp = superPacket(30_000, 1398);
  tun.inject(sp.read);
  e.runOnce(0);
  assert.equal(udp.refused.length, 0);
  checkTcp(onWire(udp), sp.payload, 1230);
  assert.equal(counters[Drop.too_big], 0);
});

test('the learned path MTU ages: after its time the kernel is asked again, and the default comes back when it forgot', () => {
  const { tun, udp, peerState, e } = setup({ agingMs: 50 });
  peerState[0 * PeerField.Stride + PeerField.PathMtu] = 1400;
  peerState[0 * PeerField.Stride + PeerField.PathMtuExpires] = Date.now() - 1;
  udp.pathMtus.set(PEER, 1500); // the kernel's exception expired
  const sp = superPacket(10_000, 1398);
  tun.inject(sp.read);
  e.runOnce(0);
  assert.equal(udp.pathMtuQueries, 1);
  assert.equal(peerField(peerState, 0, PeerField.PathMtu), 0, 'back to the local underlay MTU');
  checkTcp(onWire(udp), sp.payload, 1450);
});

test('a TSO burst with an MSS of 500 (132 segments) is cut and sent whole, not dropped', () => {
  const { tun, udp, counters, peerState, e } = setup();
  const sp = superPacket(65_535 - 40, 500);
  tun.inject(sp.read);
  e.runOnce(0);
  const sent = onWire(udp);
  assert.equal(sent.length, Math.ceil((65_535 - 40) / 500));
  checkTcp(sent, sp.payload, 1450);
  assert.equal(counters[Drop.bad_ip], 0);
  assert.equal(totals(peerState).txPackets, sent.length);
});

test('an MSS of 48, the smallest Linux sends, still goes out whole', () => {
  const { tun, udp, counters, e } = setup();
  const sp = superPacket(20_000, 48);
  tun.inject(sp.read);
  e.runOnce(0);
  assert.equal(onWire(udp).length, Math.ceil(20_000 / 48));
  assert.equal(counters[Drop.bad_ip], 0);
});

test('an IPv4 packet without DF larger than the path is fragmented; the fragments reassemble', () => {
  const { tun, udp, counters, peerState, e } = setup({ vnet: false });
  peerState[0 * PeerField.Stride + PeerField.PathMtu] = 1000;
  peerState[0 * PeerField.Stride + PeerField.PathMtuExpires] = Date.now() + 60_000;
  const pkt = ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', payload: 1400, df: false, id: 0x7777 });
  tun.inject(pkt);
  e.runOnce(0);
  const frags = onWire(udp).map((d) => d.subarray(22));
  assert.equal(frags.length, 2);
  assert.equal(counters[Counter.TxFragmented], 1);
  const data: number[] = [];
  frags.forEach((f, i) => {
    assert.ok(f.length <= 950, `fragment ${i}: ${f.length} bytes`);
    assert.equal(naiveChecksum(f.subarray(0, 20)), 0, `fragment ${i}: header checksum`);
    assert.equal(u16(f, 4), 0x7777, 'same identification');
    const flags = u16(f, 6);
    assert.equal((flags & 0x1fff) * 8, data.length, `fragment ${i}: offset`);
    assert.equal((flags & 0x2000) !== 0, i === 0, `fragment ${i}: MF`);
    assert.equal(u16(f, 2), f.length);
    data.push(...f.subarray(20));
  });
  assert.deepEqual(Uint8Array.from(data), pkt.subarray(20), 'the data reassembles');
  assert.equal(totals(peerState).txPackets, 2);
});

test('an IPv4 packet with DF larger than the path gets ICMP fragmentation needed, an IPv6 one packet too big', () => {
  const { tun, udp, counters, peerState, e } = setup({ vnet: false });
  peerState[0 * PeerField.Stride + PeerField.PathMtu] = 1400;
  peerState[0 * PeerField.Stride + PeerField.PathMtuExpires] = Date.now() + 60_000;
  tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', payload: 1400, df: true }));
  e.runOnce(0);
  assert.equal(udp.sent.length, 0);
  assert.equal(counters[Drop.too_big], 1);
  const icmp = tun.written[0]!;
  assert.deepEqual([icmp[20], icmp[21], u16(icmp, 26)], [3, 4, 1350]);

  const v6 = new Uint8Array(40 + 1380);
  v6[0] = 0x60; v6[4] = 1380 >> 8; v6[5] = 1380 & 0xff; v6[6] = 17; v6[7] = 64;
  v6.set([0xfd, 0, 0, 0x10, 0x2, 0x44, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5], 8);
  v6.set([0xfd, 0, 0, 0x10, 0x2, 0x44, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7], 24);
  tun.inject(v6);
  e.runOnce(0);
  assert.equal(counters[Drop.too_big], 2);
  const ptb = tun.written[1]!;
  assert.equal(ptb[40], 2, 'ICMPv6 packet too big');
  assert.equal(u32(ptb, 44), 1350, 'with the path MTU minus 50');
});

test('scripted kernel refusals are counted exactly: by reason, by errno, and never as sent', () => {
  const cases: Array<{ name: string; errno: number; reason: 'udp_send' | 'too_big' }> = [
    { name: 'EAGAIN after the addon gave up waiting', errno: Errno.EAGAIN, reason: 'udp_send' },
    { name: 'ENOBUFS', errno: Errno.ENOBUFS, reason: 'udp_send' },
    { name: 'EIO', errno: Errno.EIO, reason: 'udp_send' },
    { name: 'ENETUNREACH', errno: Errno.ENETUNREACH, reason: 'udp_send' },
    { name: 'EMSGSIZE', errno: Errno.EMSGSIZE, reason: 'too_big' },
  ];
  for (const c of cases) {
    const { tun, udp, counters, peerState, e } = setup({ vnet: false });
    // Lengths that grow: no two can share a UDP GSO run, so each is a message of its own.
    for (let i = 0; i < 5; i++) tun.inject(ipv4Packet({ src: '10.244.1.5', dst: '10.244.2.9', payload: 100 + i, srcPort: 40000 + i }));
    udp.script.failNext(c.errno, 2); // a partial batch: two refused, three sent
    e.runOnce(0);
    assert.equal(udp.sent.length, 3, c.name);
    assert.equal(totals(peerState).txPackets, 3, `${c.name}: sent`);
    assert.equal(counters[Drop[c.reason]], 2, `${c.name}: dropped as ${c.reason}`);
    assert.equal(counters[ioErrorSlot(IoOp.UdpSend, c.errno)], 2, `${c.name}: by errno`);
  }
});

test('a refused TUN write is a tun_write drop, and the packet is not counted as received', () => {
  const tun = new FakeTun();
  const udp = new FakeUdp(8);
  const counters = newCounters();
  const peerState = newPeerState();
  const d = new Decapsulator({ tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), vni: 1, mtu: 1450, batch: 16 }, tables());
  for (let i = 0; i < 4; i++) {
    udp.inject(vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.2.5', dst: '10.244.1.7', payload: 32 }) }), PEER);
  }
  tun.script.failNext(Errno.EIO, 1);
  d.runOnce(0);
  assert.equal(tun.written.length, 3);
  assert.equal(counters[Drop.tun_write], 1);
  assert.equal(counters[ioErrorSlot(IoOp.TunWrite, Errno.EIO)], 1);
  assert.equal(totals(peerState).rxPackets, 3);
});

test('read errors are returned as a negative errno and counted; the worker decides what to do', () => {
  const { tun, counters, e } = setup();
  tun.readError = Errno.EBADFD;
  assert.equal(e.runOnce(0), -Errno.EBADFD);
  assert.equal(counters[ioErrorSlot(IoOp.TunRead, Errno.EBADFD)], 1);
  const udp = new FakeUdp(8, true);
  const d = new Decapsulator({ tun: new FakeTun(true), udp, counters, peerState: newPeerState(), localMAC: macBytes(LOCAL_MAC), vni: 1, mtu: 1450, batch: 16 }, tables());
  udp.recvError = Errno.EBADF;
  assert.equal(d.runOnce(0), -Errno.EBADF);
  assert.equal(counters[ioErrorSlot(IoOp.UdpRecv, Errno.EBADF)], 1);
});

test('a GRO slot packed with more datagrams than one TUN write takes is delivered in several, none lost', () => {
  const tun = new FakeTun(true);
  const udp = new FakeUdp(8, true);
  const counters = newCounters();
  const peerState = newPeerState();
  const d = new Decapsulator({ tun, udp, counters, peerState, localMAC: macBytes(LOCAL_MAC), vni: 1, mtu: 1450, batch: 16 }, tables());
  // 1,400 minimal datagrams of 42 bytes in one 58,800-byte GRO super-datagram.
  const one = vxlanDatagram({ vni: 1, dstMAC: LOCAL_MAC, srcMAC: PEER_MAC, inner: ipv4Packet({ src: '10.244.2.5', dst: '10.244.1.7', payload: 0 }) });
  const n = 1400;
  const slot = new Uint8Array(one.length * n);
  for (let i = 0; i < n; i++) slot.set(one, i * one.length);
  udp.inject(slot, PEER, one.length);
  d.runOnce(0);
  assert.equal(tun.written.length, n);
  assert.equal(totals(peerState).rxPackets, n);
});
