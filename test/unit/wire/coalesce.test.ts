import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoalescedBatch, MAX_RUN, MAX_UDP_RUN, Coalescer } from '../../../src/wire/coalesce.js';
import { segment } from '../../support/segment-copy.js';
import { VirtioNetHdrView } from '../../support/wire/virtio.js';
import {
  V4_DST,
  V4_SRC,
  V6_DST,
  V6_SRC,
  buildTcp,
  buildUdp,
  hex,
  ip4,
  naiveSum,
  pattern,
  pseudoHeader4,
  pseudoHeader6,
  put16,
  rng,
  u16,
  type TcpSpec,
} from './helpers.js';

const ACK = 0x10;
const PSH = 0x08;
const HEADROOM = 64;
const SLOT = 2048;
const ARENA = 4 * 65536;

/** A batch laid out as the decap path would: one slab, one slot per packet, headroom in front, arena at the end. */
function batch(packets: Uint8Array[], arenaLen = ARENA) {
  const slot = Math.max(SLOT, HEADROOM + Math.max(0, ...packets.map((p) => p.length)));
  const slab = new Uint8Array(packets.length * slot + arenaLen).fill(0xa5);
  const offsets = new Int32Array(packets.length);
  const lengths = new Int32Array(packets.length);
  packets.forEach((p, i) => {
    offsets[i] = i * slot + HEADROOM;
    lengths[i] = p.length;
    slab.set(p, offsets[i]!);
  });
  return { slab, offsets, lengths, arenaOff: packets.length * slot, arenaLen };
}

interface Output {
  vnet: { flags: number; gsoType: number; headerLength: number; gsoSize: number; csumStart: number; csumOffset: number };
  packet: Uint8Array;
}

/** Output packet j of a coalesced batch, its pieces gathered as one writev would. */
function gathered(out: CoalescedBatch, j: number): Uint8Array {
  const parts: number[] = [];
  for (let p = out.first[j]!; p < out.first[j]! + out.pieces[j]!; p++) {
    parts.push(...out.slab.subarray(out.iovOffsets[p]!, out.iovOffsets[p]! + out.iovLengths[p]!));
  }
  return Uint8Array.from(parts);
}

function run(packets: Uint8Array[], options: { verifyChecksums?: boolean; maxBatch?: number; udp?: boolean; mtu?: number } = {}) {
  const b = batch(packets, 0);
  const max = options.maxBatch ?? 64;
  const c = new Coalescer({ maxBatch: max, verifyChecksums: options.verifyChecksums ?? true, udp: options.udp ?? false, ...(options.mtu !== undefined ? { mtu: options.mtu } : {}) });
  const out = new CoalescedBatch(b.slab, max);
  const n = c.coalesce(b.slab, b.offsets, b.lengths, packets.length, out);
  const outputs: Output[] = [];
  for (let j = 0; j < n; j++) {
    const bytes = gathered(out, j);
    const v = new VirtioNetHdrView(bytes, 0);
    outputs.push({
      vnet: { flags: v.flags, gsoType: v.gsoType, headerLength: v.headerLength, gsoSize: v.gsoSize, csumStart: v.csumStart, csumOffset: v.csumOffset },
      packet: bytes.slice(10),
    });
  }
  return { outputs, coalescer: c, ...b, out, n };
}

/** Splits each output back into packets with segment(): what the kernel would see on the wire. */
function resegment(outputs: Output[]): Uint8Array[] {
  const packets: Uint8Array[] = [];
  for (const o of outputs) {
    const out = new Uint8Array(64 * 1600);
    const outOffsets = Int32Array.from({ length: 64 }, (_, i) => i * 1600);
    const outLengths = new Int32Array(64);
    const n = segment(o.packet, 0, o.packet.length, o.vnet, out, outOffsets, outLengths, 64);
    assert.ok(n > 0, `segment returned ${n}`);
    for (let i = 0; i < n; i++) packets.push(out.slice(outOffsets[i]!, outOffsets[i]! + outLengths[i]!));
  }
  return packets;
}

/** Packets grouped by flow (IP version, protocol, source port; the tests vary nothing else), each group in order. */
function byFlow(list: Uint8Array[]): Map<string, Uint8Array[]> {
  const m = new Map<string, Uint8Array[]>();
  for (const p of list) {
    const v6 = p[0]! >> 4 === 6;
    const key = `${v6 ? 6 : 4}:${p[v6 ? 6 : 9]}:${u16(p, v6 ? 40 : 20)}`;
    m.set(key, [...(m.get(key) ?? []), p]);
  }
  return m;
}

/** A stream of `n` in-order segments of one flow. */
function stream(n: number, base: Partial<TcpSpec> = {}, size = 1448, lastPsh = true): Uint8Array[] {
  const seq0 = base.seq ?? 1_000_000;
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      buildTcp({
        ...base,
        seq: (seq0 + i * size) % 2 ** 32,
        id: ((base.id ?? 0x100) + i) % 65536,
        flags: lastPsh && i === n - 1 ? ACK | PSH : ACK,
        payload: pattern(size, i),
      }),
    );
  }
  return out;
}

test('coalesce: four in-order IPv4 segments become one super-packet', () => {
  const packets = stream(4);
  const { outputs, coalescer } = run(packets);
  assert.equal(outputs.length, 1);
  const { vnet, packet } = outputs[0]!;
  assert.deepEqual(vnet, { flags: 1, gsoType: 1, headerLength: 40, gsoSize: 1448, csumStart: 20, csumOffset: 16 });
  assert.equal(packet.length, 40 + 4 * 1448);
  assert.equal(u16(packet, 2), 40 + 4 * 1448, 'IPv4 total length');
  assert.equal(naiveSum(packet, 0, 20), 0xffff, 'IPv4 header checksum');
  assert.equal(u16(packet, 4), 0x100, 'identification of the first segment');
  assert.equal(packet[33], ACK | PSH, 'flags: PSH from the last segment');
  const partial = naiveSum(pseudoHeader4(V4_SRC, ip4('10.244.2.7'), 6, 20 + 4 * 1448));
  assert.equal(u16(packet, 36), partial, 'TCP checksum field = pseudo-header sum (CHECKSUM_PARTIAL)');
  for (let i = 0; i < 4; i++) assert.deepEqual(packet.subarray(40 + i * 1448, 40 + (i + 1) * 1448), pattern(1448, i), `payload ${i}`);
  assert.equal(coalescer.superPackets, 1);
  assert.equal(coalescer.mergedSegments, 4);
});

test('coalesce: IPv6 with timestamps merges; the checksum field is the IPv6 pseudo-header sum', () => {
  const options = hex('01 01 08 0a 00 01 e2 40 00 0a 0b 0c');
  const packets = stream(3, { v6: true, options, flowLabel: 0xabcde, tos: 0x28 }, 1000);
  const { outputs } = run(packets);
  assert.equal(outputs.length, 1);
  const { vnet, packet } = outputs[0]!;
  assert.deepEqual(vnet, { flags: 1, gsoType: 4, headerLength: 72, gsoSize: 1000, csumStart: 40, csumOffset: 16 });
  assert.equal(u16(packet, 4), 32 + 3000, 'payload length');
  assert.equal(u16(packet, 40 + 16), naiveSum(pseudoHeader6(V6_SRC, V6_DST, 6, 32 + 3000)));
});

test('coalesce → segment round trip yields the original bytes', () => {
  const options = hex('01 01 08 0a 00 01 e2 40 00 0a 0b 0c');
  const cases: { name: string; packets: Uint8Array[] }[] = [
    { name: 'IPv4, 5 full segments', packets: stream(5) },
    { name: 'IPv4, short last segment', packets: [...stream(3, {}, 1448, false), buildTcp({ seq: 1_000_000 + 3 * 1448, id: 0x103, flags: ACK | PSH, payload: pattern(100, 9) })] },
    { name: 'IPv4 without DF, ids counting up', packets: stream(4, { df: false, id: 0xfffe }) },
    { name: 'IPv4, sequence number wraps', packets: stream(4, { seq: 2 ** 32 - 2000 }) },
    { name: 'IPv6 with timestamps', packets: stream(6, { v6: true, options }, 1208) },
    { name: 'IPv4 up to the 65535-byte limit and past it', packets: stream(50, {}, 1448) },
  ];
  for (const c of cases) {
    const { outputs } = run(c.packets);
    assert.ok(outputs.length < c.packets.length, `${c.name}: something merged`);
    assert.deepEqual(resegment(outputs), c.packets, c.name);
  }
});

test('coalesce: 50 segments stop at 65535 bytes and continue in a second super-packet', () => {
  const { outputs } = run(stream(50));
  assert.deepEqual(outputs.map((o) => o.packet.length), [40 + 45 * 1448, 40 + 5 * 1448]);
  for (const o of outputs) assert.ok(o.packet.length <= 65535);
});

test('coalesce: packets that stay alone get a virtio header in place; DATA_VALID only when verified', () => {
  const syn = buildTcp({ seq: 1, flags: 0x02, payload: new Uint8Array(0) });
  const udpish = hex('45 00 00 1c 00 00 40 00 40 11 00 00 0a f4 01 05 0a f4 02 07 00 01 00 02 00 08 00 00');
  const { outputs, out, offsets } = run([syn, udpish]);
  assert.equal(outputs.length, 2);
  assert.equal(out.iovOffsets[out.first[0]!], offsets[0]! - 10, 'in place: the header sits in the headroom');
  assert.deepEqual(outputs[0]!.vnet, { flags: 2, gsoType: 0, headerLength: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
  assert.deepEqual(outputs[0]!.packet, syn);
  assert.deepEqual(outputs[1]!.vnet, { flags: 0, gsoType: 0, headerLength: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
  assert.deepEqual(outputs[1]!.packet, udpish);
  const unverified = run([syn], { verifyChecksums: false });
  assert.equal(unverified.outputs[0]!.vnet.flags, 0);
});

test('coalesce: link-layer padding after a TCP packet is dropped', () => {
  const ack = buildTcp({ seq: 1, payload: new Uint8Array(0) });
  const padded = new Uint8Array(46);
  padded.set(ack);
  const { outputs } = run([padded]);
  assert.deepEqual(outputs[0]!.packet, ack);
});

/** Rewrites the IPv4 header checksum after an edit made to a built packet. */
function refixIp(p: Uint8Array): Uint8Array {
  put16(p, 10, 0);
  put16(p, 10, ~naiveSum(p, 0, 20) & 0xffff);
  return p;
}

interface Refusal {
  name: string;
  second: (first: Partial<TcpSpec>) => Uint8Array;
}

const FIRST: TcpSpec = { seq: 5000, id: 0x200, flags: ACK, payload: pattern(1000, 1) };
const follow = (over: Partial<TcpSpec>): Uint8Array => buildTcp({ ...FIRST, seq: 6000, id: 0x201, payload: pattern(1000, 2), ...over });

const REFUSALS: Refusal[] = [
  { name: 'different source port', second: () => follow({ sport: 43211 }) },
  { name: 'different destination port', second: () => follow({ dport: 81 }) },
  { name: 'different source address', second: () => follow({ src: ip4('10.244.1.6') }) },
  { name: 'different destination address', second: () => follow({ dst: ip4('10.244.2.8') }) },
  { name: 'different TCP options', second: () => follow({ options: hex('01 01 01 01') }) },
  { name: 'IP options', second: () => follow({ ipOptions: hex('01 01 01 00') }) },
  { name: 'SYN', second: () => follow({ flags: ACK | 0x02 }) },
  { name: 'FIN', second: () => follow({ flags: ACK | 0x01 }) },
  { name: 'RST', second: () => follow({ flags: ACK | 0x04 }) },
  { name: 'URG', second: () => follow({ flags: ACK | 0x20 }) },
  { name: 'ECE', second: () => follow({ flags: ACK | 0x40 }) },
  { name: 'CWR', second: () => follow({ flags: ACK | 0x80 }) },
  { name: 'no ACK', second: () => follow({ flags: PSH }) },
  { name: 'out of order (sequence behind)', second: () => follow({ seq: 4000 }) },
  { name: 'gap (sequence ahead)', second: () => follow({ seq: 6001 }) },
  { name: 'larger than the first segment', second: () => follow({ payload: pattern(1001, 2) }) },
  { name: 'different acknowledgment number', second: () => follow({ ack: 0x01020305 }) },
  { name: 'different window', second: () => follow({ window: 503 }) },
  { name: 'different TOS', second: () => follow({ tos: 0x02 }) },
  { name: 'different TTL', second: () => follow({ ttl: 63 }) },
  { name: 'different DF', second: () => follow({ df: false }) },
  { name: 'pure ACK (no payload)', second: () => follow({ payload: new Uint8Array(0) }) },
  { name: 'IP fragment (MF)', second: () => setFragment(follow({}), 0x6000) },
  { name: 'IP fragment (offset)', second: () => setFragment(follow({}), 0x4010) },
  {
    name: 'bad TCP checksum',
    second: () => {
      const p = follow({});
      p[100] = p[100]! ^ 0xff;
      return p;
    },
  },
  {
    name: 'bad IPv4 header checksum',
    second: () => {
      const p = follow({});
      p[10] = p[10]! ^ 0xff;
      return p;
    },
  },
];

function setFragment(p: Uint8Array, word: number): Uint8Array {
  put16(p, 6, word);
  return refixIp(p);
}

for (const r of REFUSALS) {
  test(`coalesce refuses to merge: ${r.name}`, () => {
    const first = buildTcp(FIRST);
    const second = r.second(FIRST);
    const { outputs } = run([first, second]);
    assert.equal(outputs.length, 2, `${r.name}: got ${outputs.length} outputs, want 2`);
    for (const o of outputs) assert.equal(o.vnet.gsoType, 0, `${r.name}: nothing merged`);
    assert.deepEqual(outputs[0]!.packet, first);
    assert.deepEqual(outputs[1]!.packet, second.subarray(0, outputs[1]!.packet.length));
  });
}

test('coalesce refuses to merge: total past 65535 bytes', () => {
  const big = (i: number) => buildTcp({ seq: 10 + i * 30000, id: i, flags: ACK, payload: pattern(30000, i) });
  // 30000-byte segments only exist with jumbo frames, but they make the limit easy to reach.
  const { outputs } = run([big(0), big(1), big(2)]);
  assert.deepEqual(outputs.map((o) => o.packet.length), [40 + 60000, 40 + 30000]);
});

test('coalesce: the identification must count up when DF is clear, and may not when DF is set', () => {
  const a = buildTcp({ ...FIRST, df: false });
  const b = buildTcp({ ...FIRST, df: false, seq: 6000, id: 0x205, payload: pattern(1000, 2) });
  assert.equal(run([a, b]).outputs.length, 2, 'DF clear, id jumps: refused');
  const c = buildTcp({ ...FIRST, seq: 6000, id: 0x999, payload: pattern(1000, 2) });
  assert.equal(run([buildTcp(FIRST), c]).outputs.length, 1, 'DF set: any id');
});

test('coalesce: a short segment ends the run; the next full one starts a new run', () => {
  const a = buildTcp({ ...FIRST });
  const short = buildTcp({ ...FIRST, seq: 6000, id: 0x201, payload: pattern(500, 2) });
  const c = buildTcp({ ...FIRST, seq: 6500, id: 0x202, payload: pattern(1000, 3) });
  const d = buildTcp({ ...FIRST, seq: 7500, id: 0x203, payload: pattern(1000, 4) });
  const { outputs } = run([a, short, c, d]);
  assert.deepEqual(outputs.map((o) => o.vnet.gsoType), [1, 1]);
  assert.deepEqual(resegment(outputs), [a, short, c, d]);
});

test('coalesce: PSH ends the run', () => {
  const a = buildTcp({ ...FIRST, flags: ACK | PSH });
  const b = buildTcp({ ...FIRST, seq: 6000, id: 0x201, payload: pattern(1000, 2) });
  const { outputs } = run([a, b]);
  assert.equal(outputs.length, 2);
});

test('coalesce: interleaved flows each merge, order within each flow kept', () => {
  const a = stream(3, { sport: 1000 }, 1000);
  const b = stream(3, { sport: 2000, seq: 77 }, 1200);
  const { outputs } = run([a[0]!, b[0]!, a[1]!, b[1]!, a[2]!, b[2]!]);
  assert.equal(outputs.length, 2);
  assert.deepEqual(resegment(outputs), [...a, ...b]);
});

test('coalesce: a FIN in the middle of a flow closes the run; later data does not jump ahead of it', () => {
  const a = stream(2, {}, 1000, false);
  const fin = buildTcp({ seq: 1_000_000 + 2000, id: 0x102, flags: ACK | 0x01, payload: pattern(1000, 5) });
  const after = buildTcp({ seq: 1_000_000 + 3000, id: 0x103, flags: ACK, payload: pattern(1000, 6) });
  const { outputs } = run([a[0]!, a[1]!, fin, after]);
  assert.deepEqual(outputs.map((o) => o.vnet.gsoType), [1, 0, 0]);
  assert.deepEqual(resegment(outputs), [a[0], a[1], fin, after]);
});

test('coalesce: a run stops at MAX_RUN segments, so one writev never takes more than UIO_MAXIOV pieces', () => {
  const packets = stream(MAX_RUN + 5, {}, 8, false);
  const { outputs, out } = run(packets, { maxBatch: MAX_RUN + 5 });
  assert.equal(outputs.length, 2, 'two super-packets');
  assert.deepEqual([...out.members.subarray(0, 2)], [MAX_RUN, 5]);
  assert.deepEqual([...out.pieces.subarray(0, 2)], [MAX_RUN, 5], 'one piece per segment');
  assert.equal(outputs[0]!.packet.length, 40 + MAX_RUN * 8);
});

test('coalesce: merging copies nothing: every piece of a merged packet points into the input slots', () => {
  const packets = stream(4);
  const { out, offsets } = run(packets);
  assert.equal(out.count, 1);
  assert.equal(out.pieces[0], 4);
  assert.equal(out.iovOffsets[0], offsets[0]! - 10, 'the head, behind its virtio header, in its own slot');
  for (let i = 1; i < 4; i++) assert.equal(out.iovOffsets[i], offsets[i]! + 40, `segment ${i}'s payload, where it lies`);
});

test('coalesce: programmer errors throw', () => {
  const c = new Coalescer({ maxBatch: 2 });
  const { slab, offsets, lengths } = batch(stream(3), 0);
  assert.throws(() => c.coalesce(slab, offsets, lengths, 3, new CoalescedBatch(slab, 3)), RangeError);
  const c3 = new Coalescer({ maxBatch: 3 });
  assert.throws(() => c3.coalesce(slab, offsets, lengths, 3, new CoalescedBatch(new Uint8Array(10), 3)), RangeError, 'output over another buffer');
  assert.throws(() => c3.coalesce(slab, offsets, lengths, 3, new CoalescedBatch(slab, 2)), RangeError, 'output too small');
  offsets[0] = 5;
  assert.throws(() => c3.coalesce(slab, offsets, lengths, 3, new CoalescedBatch(slab, 3)), RangeError);
  assert.throws(() => new Coalescer({ maxBatch: 0 }), RangeError);
});

test('coalesce: random batches of several flows, perturbed, always re-segment to the input per flow', () => {
  const next = rng(2024);
  for (let round = 0; round < 150; round++) {
    const flows = 1 + Math.floor(next() * 4);
    const state = Array.from({ length: flows }, (_, f) => ({ seq: Math.floor(next() * 2 ** 32), id: Math.floor(next() * 65536), v6: next() < 0.3, sport: 1000 + f }));
    const packets: Uint8Array[] = [];
    const count = 1 + Math.floor(next() * 40);
    for (let i = 0; i < count; i++) {
      const f = state[Math.floor(next() * flows)]!;
      const r = next();
      const size = r < 0.1 ? Math.floor(next() * 1448) : 1448;
      let flags = ACK;
      if (r > 0.9) flags |= PSH;
      if (r > 0.97) flags |= 0x01;
      let seq = f.seq;
      if (next() < 0.05) seq = (seq + 1448) % 2 ** 32; // a gap
      const p = buildTcp({ v6: f.v6, sport: f.sport, seq, id: f.id, flags, payload: pattern(size, i) });
      if (next() < 0.03) p[p.length - 1] = p[p.length - 1]! ^ 0x5a; // a corrupted segment
      packets.push(p);
      f.seq = (seq + size) % 2 ** 32;
      f.id = (f.id + 1) % 65536;
    }
    const { outputs } = run(packets);
    const back = resegment(outputs);
    const want = byFlow(packets);
    const got = byFlow(back);
    assert.equal(back.length, packets.length, `round ${round}: packet count`);
    for (const [key, list] of want) assert.deepEqual(got.get(key), list, `round ${round}: flow ${key}`);
  }
});

/** `sizes.length` datagrams of one UDP flow, IPv4 identifications counting up (DF clear), as a sender's kernel makes them. */
function datagrams(sizes: number[], o: { v6?: boolean; sport?: number; id?: number } = {}): Uint8Array[] {
  return sizes.map((size, i) => buildUdp({ v6: o.v6 ?? false, sport: o.sport ?? 5000, id: ((o.id ?? 0x3000) + i) % 65536, payload: pattern(size, i) }));
}

test('coalesce, UDP: a run of one flow becomes one USO super-packet that re-segments to the same datagrams', () => {
  for (const v6 of [false, true]) {
    const packets = datagrams(Array(10).fill(100), { v6 });
    const { outputs, coalescer, out } = run(packets, { udp: true });
    assert.equal(outputs.length, 1, v6 ? 'IPv6' : 'IPv4');
    const l4 = v6 ? 40 : 20;
    assert.deepEqual(outputs[0]!.vnet, { flags: 1, gsoType: 5, headerLength: l4 + 8, gsoSize: 100, csumStart: l4, csumOffset: 6 });
    assert.equal(out.members[0], 10);
    const p = outputs[0]!.packet;
    assert.equal(p.length, l4 + 8 + 1000);
    assert.equal(u16(p, l4 + 4), 1008, 'the UDP length covers the run');
    assert.equal(u16(p, v6 ? 4 : 2), v6 ? 1008 : 1028, 'so does the IP length');
    const pseudo = v6 ? pseudoHeader6(V6_SRC, V6_DST, 17, 1008) : pseudoHeader4(V4_SRC, V4_DST, 17, 1008);
    assert.equal(u16(p, l4 + 6), naiveSum(pseudo), 'the checksum field holds the pseudo-header sum of the whole run, for the kernel to finish per datagram');
    assert.deepEqual(resegment(outputs), packets);
    assert.equal(coalescer.mergedSegments, 10);
  }
});

test('coalesce, UDP: without udp: true every datagram goes alone, untouched', () => {
  const packets = datagrams(Array(5).fill(100));
  const { outputs } = run(packets);
  assert.equal(outputs.length, 5);
  for (const [i, o] of outputs.entries()) {
    assert.equal(o.vnet.gsoType, 0);
    assert.equal(o.vnet.flags, 0, 'not even DATA_VALID: it was not looked at');
    assert.deepEqual(o.packet, packets[i]);
  }
});

test('coalesce, UDP: a shorter datagram ends the run; a longer one starts a new one', () => {
  const packets = datagrams([100, 100, 60, 100, 100, 120, 120]);
  const { outputs, out } = run(packets, { udp: true });
  assert.deepEqual([...out.members.subarray(0, out.count)], [3, 2, 2]);
  assert.deepEqual(outputs.map((o) => o.vnet.gsoSize), [100, 100, 120]);
  assert.deepEqual(resegment(outputs), packets);
});

test('coalesce, UDP: a run stops at MAX_UDP_RUN datagrams', () => {
  const packets = datagrams(Array(MAX_UDP_RUN + 10).fill(18));
  const { out } = run(packets, { udp: true, maxBatch: MAX_UDP_RUN + 10 });
  assert.deepEqual([...out.members.subarray(0, out.count)], [MAX_UDP_RUN, 10]);
});

test('coalesce, UDP: what stays alone (no checksum, a bad checksum, empty, IP identification out of step)', () => {
  const noChecksum = datagrams([100, 100, 100]);
  put16(noChecksum[1]!, 26, 0);
  let r = run(noChecksum, { udp: true });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [1, 1, 1], 'a datagram without checksum closes the run and stays alone');
  assert.equal(r.outputs[1]!.vnet.flags, 0);
  assert.equal(r.coalescer.badChecksums, 0, 'no checksum is not a bad checksum');

  const bad = datagrams([100, 100, 100]);
  bad[1]![40] = bad[1]![40]! ^ 0xff;
  r = run(bad, { udp: true });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [1, 1, 1]);
  assert.equal(r.coalescer.badChecksums, 1);
  assert.deepEqual(r.outputs[1]!.packet, bad[1], 'the bad one goes as it came, for the kernel to drop');

  r = run(datagrams([0, 0, 0]), { udp: true });
  assert.equal(r.out.count, 3, 'empty datagrams never merge');

  const gap = [...datagrams([100, 100]), ...datagrams([100, 100], { id: 0x4000 })];
  r = run(gap, { udp: true });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [2, 2], 'DF clear: the identification must count up');
  assert.deepEqual(resegment(r.outputs), gap);
});

test('coalesce, UDP: flows are kept apart: other ports, and TCP on the same ports', () => {
  const a = datagrams([100, 100, 100], { sport: 5000 });
  const b = datagrams([100, 100, 100], { sport: 5001, id: 0x5000 });
  const mixed = [a[0]!, b[0]!, a[1]!, b[1]!, a[2]!, b[2]!];
  const { outputs, out } = run(mixed, { udp: true });
  assert.deepEqual([...out.members.subarray(0, out.count)], [3, 3]);
  const back = resegment(outputs);
  assert.deepEqual(back.filter((p) => u16(p, 20) === 5000), a, 'each flow in its order');
  assert.deepEqual(back.filter((p) => u16(p, 20) === 5001), b);

  const tcp = buildTcp({ sport: 5000, dport: 6000, seq: 1, id: 0x3001, df: false, payload: pattern(100) });
  const withTcp = [a[0]!, tcp, a[1]!];
  const r = run(withTcp, { udp: true });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [2, 1], 'a TCP segment with the same addresses and ports is another flow');
  assert.equal(r.outputs[0]!.vnet.gsoType, 5);
  assert.deepEqual(r.outputs[1]!.packet, tcp, 'the TCP segment stays whole and is not merged into the UDP run');
  assert.deepEqual(resegment([r.outputs[0]!]), [a[0], a[1]]);
});

test('coalesce, UDP: random batches of TCP and UDP flows, perturbed, always re-segment to the input per flow', () => {
  const next = rng(7);
  for (let round = 0; round < 150; round++) {
    const flows = 1 + Math.floor(next() * 4);
    const state = Array.from({ length: flows }, (_, f) => ({
      udp: next() < 0.6, seq: Math.floor(next() * 2 ** 32), id: Math.floor(next() * 65536), v6: next() < 0.3, sport: 1000 + (f >> 1),
    }));
    const packets: Uint8Array[] = [];
    const count = 1 + Math.floor(next() * 80);
    for (let i = 0; i < count; i++) {
      const f = state[Math.floor(next() * flows)]!;
      const r = next();
      let p: Uint8Array;
      if (f.udp) {
        const size = r < 0.1 ? Math.floor(next() * 300) : r > 0.95 ? 300 : 200;
        if (next() < 0.05) f.id = (f.id + 7) % 65536; // an identification out of step
        p = buildUdp({ v6: f.v6, sport: f.sport, id: f.id, payload: pattern(size, i) });
      } else {
        const size = r < 0.1 ? Math.floor(next() * 1448) : 1448;
        p = buildTcp({ v6: f.v6, sport: f.sport, seq: f.seq, id: f.id, flags: r > 0.9 ? ACK | PSH : ACK, payload: pattern(size, i) });
        f.seq = (f.seq + size) % 2 ** 32;
      }
      if (next() < 0.03) p[p.length - 1] = p[p.length - 1]! ^ 0x5a; // corrupted
      packets.push(p);
      f.id = (f.id + 1) % 65536;
    }
    const { outputs } = run(packets, { udp: true, maxBatch: 80 });
    const back = resegment(outputs);
    const want = byFlow(packets);
    const got = byFlow(back);
    assert.equal(back.length, packets.length, `round ${round}: packet count`);
    for (const [key, list] of want) assert.deepEqual(got.get(key), list, `round ${round}: flow ${key}`);
  }
});

test('coalesce: a packet larger than the MTU stays alone, so a run never takes well-sized packets down with it', () => {
  // A jumbo datagram from a peer, then small ones of the same flow: merged, the small ones would
  // become segments of the jumbo's size, which the kernel cannot forward at a 1450-byte MTU.
  const udp = datagrams([3000, 8, 8, 8]);
  let r = run(udp, { udp: true, mtu: 1450, maxBatch: 8 });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [1, 3]);
  assert.equal(r.outputs[0]!.vnet.gsoType, 0, 'the jumbo goes alone');
  assert.deepEqual(r.outputs[0]!.packet, udp[0]);
  r = run(udp, { udp: true, maxBatch: 8 });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [2, 2], 'without an MTU the jumbo would take the first small one into its run');
  const tcp = [buildTcp({ seq: 1, id: 1, flags: ACK, payload: pattern(2000) }), ...stream(3, { seq: 2001, id: 2 }, 1000, false)];
  r = run(tcp, { mtu: 1450 });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [1, 3], 'TCP alike');
  r = run(datagrams([1422, 1422, 100]), { udp: true, mtu: 1450 });
  assert.deepEqual([...r.out.members.subarray(0, r.out.count)], [3], 'packets of exactly the MTU merge');
});
