import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TCP_CHECKSUM_OFFSET,
  TCP_MIN_HEADER_LENGTH,
  TcpFlags,
  TcpView,
  emitTcp,
  parseTcp,
  tcpLen,
  tryTcp,
  type TcpRepr,
} from '../../support/wire/tcp.js';
import { TCP_SYN } from './golden.js';
import {
  V6_DST,
  V6_SRC,
  assertPoisonOutside,
  buildTcp,
  hex,
  naiveChecksum,
  pattern,
  placed,
  poisoned,
  pseudoHeader6,
  randomPackets,
  u16,
} from './helpers.js';

const SEGMENT = TCP_SYN.slice(20);
const OPTIONS = hex('02 04 05 b4  04 02  08 0a 00 01 e2 40 00 00 00 00  01  03 03 07');
const SRC = 0x0af40105;
const DST = 0x0af40207;
const REPR: TcpRepr = {
  sourcePort: 43210,
  destinationPort: 80,
  sequenceNumber: 0x2b6e9a41,
  acknowledgmentNumber: 0,
  flags: TcpFlags.SYN,
  window: 64240,
  urgentPointer: 0,
  options: OPTIONS,
};

test('tcp: constants', () => {
  assert.equal(TCP_MIN_HEADER_LENGTH, 20);
  assert.equal(TCP_CHECKSUM_OFFSET, 16);
  assert.deepEqual({ ...TcpFlags }, { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 });
});

test('tcp: deconstruct the golden SYN', () => {
  const v = new TcpView(TCP_SYN, 20);
  assert.equal(v.sourcePort, 43210);
  assert.equal(v.destinationPort, 80);
  assert.equal(v.sequenceNumber, 0x2b6e9a41);
  assert.equal(v.acknowledgmentNumber, 0);
  assert.equal(v.headerLength, 40);
  assert.equal(v.flags, TcpFlags.SYN);
  assert.equal(v.window, 64240);
  assert.equal(v.checksum, 0xe30f);
  assert.equal(v.urgentPointer, 0);
  assert.equal(v.optionsOffset, 40);
  assert.equal(v.optionsLength, 20);
  assert.equal(v.payloadOffset, 60);
  assert.ok(v.isValidChecksumV4(SRC, DST, 40));
  assert.ok(!v.isValidChecksumV4(SRC, DST + 1, 40));
});

test('tcp: sequence numbers above 2^31 come back as positive uint32', () => {
  const v = new TcpView(poisoned(20));
  v.sequenceNumber = 0xfffffffe;
  v.acknowledgmentNumber = 0x80000000;
  assert.equal(v.sequenceNumber, 0xfffffffe);
  assert.equal(v.acknowledgmentNumber, 0x80000000);
});

test('tcp: construct into a poisoned buffer, then fill the checksum', () => {
  const buf = poisoned(40);
  const v = new TcpView(buf);
  v.sourcePort = 43210;
  v.destinationPort = 80;
  v.sequenceNumber = 0x2b6e9a41;
  v.acknowledgmentNumber = 0;
  v.headerLength = 40;
  v.flags = TcpFlags.SYN;
  v.window = 64240;
  v.urgentPointer = 0;
  buf.set(OPTIONS, v.optionsOffset);
  v.fillChecksumV4(SRC, DST, 40);
  assert.deepEqual(buf, SEGMENT);
});

test('tcp: parse', () => {
  assert.ok(tryTcp(SEGMENT, 0, 40));
  assert.deepEqual(parseTcp(new TcpView(SEGMENT)), REPR);
});

test('tcp: emit into a poisoned buffer', () => {
  const buf = poisoned(40);
  const v = new TcpView(buf);
  emitTcp(REPR, v);
  assert.equal(v.checksum, 0);
  v.fillChecksumV4(SRC, DST, 40);
  assert.deepEqual(buf, SEGMENT);
  assert.equal(tcpLen(REPR), 40);
});

test('tcp: emit pads options to a multiple of four with zeros', () => {
  const repr = { ...REPR, options: hex('02 04 05 b4 01') };
  assert.equal(tcpLen(repr), 28);
  const buf = poisoned(28);
  emitTcp(repr, new TcpView(buf));
  assert.deepEqual(buf.subarray(20), hex('02 04 05 b4 01 00 00 00'));
  assert.equal(new TcpView(buf).headerLength, 28);
});

test('tcp: round trip at a non-zero offset', () => {
  const src = placed(SEGMENT, 9);
  const view = new TcpView(src, 9);
  const repr = parseTcp(view);
  assert.ok(repr);
  const out = poisoned(70);
  emitTcp(repr, view.bind(out, 23));
  view.fillChecksumV4(SRC, DST, 40);
  assert.deepEqual(out.subarray(23, 63), SEGMENT);
  assertPoisonOutside(out, 23, 40);
});

test('tcp: checksum over IPv6 with data, against the independent encoder', () => {
  const packet = buildTcp({ v6: true, seq: 1000, flags: TcpFlags.ACK | TcpFlags.PSH, payload: pattern(1001) });
  const want = u16(packet, 40 + 16);
  const v = new TcpView(packet, 40);
  assert.ok(v.isValidChecksumV6(packet, 8, 24, packet.length - 40));
  v.fillChecksumV6(packet, 8, 24, packet.length - 40);
  assert.equal(v.checksum, want);
  const zeroed = packet.slice(40);
  zeroed[16] = zeroed[17] = 0;
  assert.equal(want, naiveChecksum(pseudoHeader6(V6_SRC, V6_DST, 6, zeroed.length), zeroed));
});

test('tcp: tryTcp boundary, table-driven', () => {
  const cases = [
    { name: 'golden', bytes: SEGMENT, len: 40, want: true },
    { name: 'options past len', bytes: SEGMENT, len: 39, want: false },
    { name: '19 bytes', bytes: SEGMENT, len: 19, want: false },
    { name: 'data offset 4', bytes: hex('0001 0002 00000000 00000000 4010 0000 0000 0000'), len: 20, want: false },
  ];
  for (const c of cases) assert.equal(tryTcp(c.bytes, 0, c.len), c.want, c.name);
});

test('tcp: random bytes never throw', () => {
  for (const p of randomPackets(6, 1000, 70)) {
    if (tryTcp(p, 0, p.length)) parseTcp(new TcpView(p));
  }
});
