/**
 * Hostile and broken VXLAN input against a live agent, while real traffic flows.
 *
 * Target: node2's agent. Senders: an 'attacker' namespace on its own subnet behind the router
 * (not a peer), and a second socket inside node1's namespace bound to node1's underlay address
 * on another source port, so its datagrams come from a known peer (the agent keys peers by
 * source address). Every datagram is built here by hand (VXLAN, Ethernet, IPv4, UDP written
 * field by field, with an independent header checksum), so the agent is never checked against
 * its own encoder.
 *
 * Each case carries an inner UDP packet to its own port on pod p2a, where a listener records
 * whatever arrives. For each case the test asserts that the agent's
 * `vxnet_dropped_total{reason=...}` grew by exactly the number of datagrams sent and that the pod
 * received none of them. A positive control (a valid datagram from the peer address) must
 * arrive, which shows the listener and the sender work, so silence in the other cases means
 * something. A ping between p1a and p2a runs throughout and must lose nothing; iperf3 must still
 * work afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iperf, parsePing, podEndpoint, formatBps } from '../../src/lab/checks.js';
import { sampleValue } from '../../src/lab/http.js';
import type { Lab } from '../../src/lab/lab.js';
import { sleep } from '../../src/lab/exec.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip();

// ---- an independent encoder ------------------------------------------------------------------

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** RFC 1071 one's-complement sum over 16-bit words, the slow obvious way. */
function internetChecksum(bytes: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

interface Datagram {
  flags?: number;
  reserved1?: [number, number, number];
  reserved2?: number;
  vni: number;
  dstMAC: string;
  srcMAC: string;
  etherType?: number;
  innerSrc: string;
  innerDst: string;
  dstPort: number;
  payload: string;
  /** Replace the inner IPv4 header with these bytes. */
  garbageIP?: number[];
  /** Cut the datagram to this many bytes. */
  truncate?: number;
}

function build(d: Datagram): Buffer {
  const payload = [...Buffer.from(d.payload)];
  const udp = [
    0x9c, 0x40, // source port 40000
    d.dstPort >> 8, d.dstPort & 0xff,
    (8 + payload.length) >> 8, (8 + payload.length) & 0xff,
    0x00, 0x00, // checksum 0: none (allowed for UDP over IPv4, RFC 768)
    ...payload,
  ];
  const total = 20 + udp.length;
  const ip = [
    0x45, 0x00, total >> 8, total & 0xff, // version 4, IHL 5, TOS, total length
    0x12, 0x34, 0x40, 0x00, // id, DF
    64, 17, 0x00, 0x00, // TTL, protocol UDP, checksum (filled below)
    ...ipBytes(d.innerSrc),
    ...ipBytes(d.innerDst),
  ];
  const csum = internetChecksum(ip);
  ip[10] = csum >> 8;
  ip[11] = csum & 0xff;
  const et = d.etherType ?? 0x0800;
  const eth = [...macBytes(d.dstMAC), ...macBytes(d.srcMAC), et >> 8, et & 0xff];
  const r1 = d.reserved1 ?? [0, 0, 0];
  const vxlan = [d.flags ?? 0x08, ...r1, (d.vni >> 16) & 0xff, (d.vni >> 8) & 0xff, d.vni & 0xff, d.reserved2 ?? 0];
  const bytes = [...vxlan, ...eth, ...(d.garbageIP ?? ip), ...udp];
  return Buffer.from(d.truncate !== undefined ? bytes.slice(0, d.truncate) : bytes);
}

// ---- helpers run inside namespaces ----------------------------------------------------------

const SENDER = `
const dgram = require('node:dgram');
const [bindIp, dst, dstPort, count, ...hex] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.bind(0, bindIp, async () => {
  for (let i = 0; i < Number(count); i++) {
    for (const h of hex) {
      await new Promise((res, rej) => s.send(Buffer.from(h, 'hex'), Number(dstPort), dst, (e) => (e ? rej(e) : res())));
    }
  }
  console.log('SENT from ' + s.address().address + ':' + s.address().port);
  s.close();
});`;

const LISTENER = `
const dgram = require('node:dgram');
const ports = process.argv.slice(1).map(Number);
let bound = 0;
for (const p of ports) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => console.log('GOT ' + p + ' ' + r.address + ' ' + m.toString()));
  s.bind(p, () => { if (++bound === ports.length) console.log('BOUND'); });
}
setTimeout(() => process.exit(0), 90000);`;

async function send(lab: Lab, ns: string, bindIp: string, to: string, port: number, count: number, d: Buffer): Promise<string> {
  const r = await lab.execOk(ns, [process.execPath, '-e', SENDER, bindIp, to, String(port), String(count), d.toString('hex')], {
    timeoutMs: 10_000,
  });
  return r.stdout.trim();
}

// ---- the test --------------------------------------------------------------------------------

interface Case {
  name: string;
  reason: string | null;
  from: 'peer' | 'attacker';
  datagram: Partial<Datagram>;
}

const COUNT = 5;
const BASE_PORT = 41000;

test('bad VXLAN input is counted by reason, never reaches a pod, and traffic keeps flowing', { skip, timeout: 240_000 }, async () => {
  await withLab({ nodes: 3, attacker: true, podsPerNode: 1 }, async (lab) => {
    const n1 = lab.node(1);
    const n2 = lab.node(2);
    const p1 = lab.pod('p1a');
    const p2 = lab.pod('p2a');
    const attacker = lab.attacker as string;
    const valid: Datagram = {
      vni: lab.vni,
      dstMAC: n2.vtepMAC,
      srcMAC: n1.vtepMAC,
      innerSrc: '10.244.1.99', // inside node1's pod CIDR: node1 may speak for it
      innerDst: p2.ip,
      dstPort: 0,
      payload: '',
    };
    const cases: Case[] = [
      { name: 'valid datagram from a peer address (positive control)', reason: null, from: 'peer', datagram: {} },
      { name: 'truncated: 20 bytes, no room for Ethernet + IPv4', reason: 'truncated', from: 'peer', datagram: { truncate: 20 } },
      { name: 'I flag clear', reason: 'bad_flags', from: 'peer', datagram: { flags: 0x00 } },
      { name: 'reserved bits set (flags word and last byte)', reason: 'reserved_bits', from: 'peer', datagram: { reserved1: [0x12, 0x34, 0x56], reserved2: 0x78 } },
      { name: 'wrong VNI', reason: 'wrong_vni', from: 'peer', datagram: { vni: (lab.vni + 1000) & 0xffffff } },
      { name: 'sender is not a peer', reason: 'unknown_peer', from: 'attacker', datagram: {} },
      { name: 'inner destination MAC is not our VTEP', reason: 'bad_inner_mac', from: 'peer', datagram: { dstMAC: '02:00:00:00:00:99' } },
      { name: 'inner EtherType is not IPv4', reason: 'bad_ethertype', from: 'peer', datagram: { etherType: 0x88b5 } },
      {
        name: 'inner IPv4 header is garbage',
        reason: 'bad_inner_ip',
        from: 'peer',
        datagram: { garbageIP: [0x4f, 0xff, 0x27, 0x0f, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x11, 0xba, 0xad, 10, 244, 1, 99, 10, 244, 2, 2, 0, 0, 0, 0] },
      },
      { name: "spoofed inner source (node3's pod CIDR, sent from node1)", reason: 'spoofed_source', from: 'peer', datagram: { innerSrc: '10.244.3.77' } },
      { name: 'inner destination not on this node (node3 pod)', reason: 'not_local', from: 'peer', datagram: { innerDst: '10.244.3.5' } },
    ];

    // A UDP listener in the target pod, one port per case.
    const ports = cases.map((_, i) => BASE_PORT + i);
    const listener = lab.spawn(p2.ns, [process.execPath, '-e', LISTENER, ...ports.map(String)], 120_000);
    for (let i = 0; i < 100 && !listener.stdout.includes('BOUND'); i++) await sleep(50);
    assert.ok(listener.stdout.includes('BOUND'), `listener in ${p2.name} bound: ${listener.stderr}`);

    // Real traffic throughout: p1a pings p2a every 50 ms.
    const pinger = lab.spawn(p1.ns, ['ping', '-n', '-i', '0.05', '-c', '400', '-W', '2', p2.ip], 60_000);

    try {
      for (const [i, c] of cases.entries()) {
        const port = BASE_PORT + i;
        const d = build({ ...valid, ...c.datagram, dstPort: port, payload: `vxnet-badinput-${i}` });
        const before = await lab.metrics(2);
        const sent =
          c.from === 'peer'
            ? await send(lab, n1.ns, n1.underlayIP, n2.underlayIP, lab.port, COUNT, d)
            : await send(lab, attacker, `192.168.250.2`, n2.underlayIP, lab.port, COUNT, d);
        await sleep(400);
        const after = await lab.metrics(2);
        const got = listener.stdout.split('\n').filter((l) => l.startsWith(`GOT ${port} `));
        if (c.reason === null) {
          process.stderr.write(`observed: ${c.name}: ${sent}; pod received ${got.length}/${COUNT}: ${got[0] ?? ''}\n`);
          assert.equal(got.length, COUNT, `${c.name}: pod ${p2.name} should receive all ${COUNT}`);
          assert.ok(got.every((l) => l.includes(' 10.244.1.99 ')), 'the pod sees the inner source address');
          continue;
        }
        const m = { reason: c.reason };
        const delta = sampleValue(after, 'vxnet_dropped_total', m) - sampleValue(before, 'vxnet_dropped_total', m);
        process.stderr.write(`observed: ${c.name}: ${sent}; vxnet_dropped_total{reason="${c.reason}"} +${delta}; pod received ${got.length}\n`);
        assert.equal(delta, COUNT, `${c.name}: dropped_total{reason="${c.reason}"} grew by ${delta}, want ${COUNT}`);
        assert.equal(got.length, 0, `${c.name}: the pod must not receive it (got ${got.join(' | ')})`);
      }
    } finally {
      const pr = await pinger.stop('SIGINT', 3000);
      const ping = parsePing(pr.stdout);
      process.stderr.write(`observed: ping ${p1.name} -> ${p2.name} during the attack: ${ping.received}/${ping.sent}\n`);
      assert.ok(ping.sent >= 20, `ping ran during the attack (${ping.sent} sent)`);
      // SIGINT may land between a request and its reply: that one is in flight, not lost.
      assert.ok(ping.sent - ping.received <= 1, `no ping lost while bad input arrived (${ping.received}/${ping.sent})`);
    }
    assert.ok(lab.agentRunning(2), 'the target agent is still running');
    const r = await iperf(lab, podEndpoint(p2), podEndpoint(p1), { seconds: 2 });
    process.stderr.write(`observed: iperf3 ${p1.name} -> ${p2.name} afterwards: ${formatBps(r.bitsPerSecond)}\n`);
    assert.ok(r.bitsPerSecond > 0, 'iperf3 works after the attack');
  });
});
