/**
 * Micro-benchmarks for the wire layer's hot loops: the Internet checksum, TSO segmentation and
 * receive coalescing. Run with `node dist/bench/wire.js`. Each line prints time per operation and
 * the payload throughput it implies; the numbers are for comparing changes on one machine, not
 * for the design card (the lab bench measures the whole data path).
 */

import { onesComplementSum } from '../src/wire/checksum.js';
import { CoalescedBatch, Coalescer } from '../src/wire/coalesce.js';
import { segmentTcp } from '../test/support/segment-copy.js';
import { planSegments, SegmentPlan, writeSegmentHeader } from '../src/wire/segment.js';
import { IpProtocol, Ipv4View } from '../test/support/wire/ipv4.js';
import { TcpFlags, TcpView } from '../test/support/wire/tcp.js';
import { VirtioGsoType, VirtioNetHdrFlags } from '../test/support/wire/virtio.js';

function bench(name: string, bytesPerOp: number, fn: () => void): void {
  for (let i = 0; i < 2000; i++) fn();
  let ops = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < 500_000_000) {
    for (let i = 0; i < 100; i++) fn();
    ops += 100;
    elapsed = Number(process.hrtime.bigint() - start);
  }
  const ns = elapsed / ops;
  const gbps = (bytesPerOp * 8) / ns;
  console.log(`${name.padEnd(44)} ${ns.toFixed(1).padStart(9)} ns/op  ${gbps.toFixed(2).padStart(7)} Gbit/s`);
}

/** An IPv4 TCP packet with `payload` bytes at `buf[off]`, checksums valid. */
function writeSegment(buf: Uint8Array, off: number, seq: number, id: number, payload: number): number {
  const ip = new Ipv4View(buf, off);
  buf[off] = 0x45;
  buf[off + 1] = 0;
  ip.totalLength = 40 + payload;
  ip.identification = id;
  ip.flagsAndFragmentOffset = 0x4000;
  ip.ttl = 64;
  ip.protocol = IpProtocol.TCP;
  ip.sourceAddress = 0x0af40105;
  ip.destinationAddress = 0x0af40207;
  ip.fillChecksum();
  const tcp = new TcpView(buf, off + 20);
  tcp.sourcePort = 43210;
  tcp.destinationPort = 80;
  tcp.sequenceNumber = seq;
  tcp.acknowledgmentNumber = 1;
  tcp.headerLength = 20;
  tcp.flags = TcpFlags.ACK;
  tcp.window = 502;
  tcp.urgentPointer = 0;
  for (let i = 0; i < payload; i++) buf[off + 40 + i] = (i * 7) & 0xff;
  tcp.fillChecksumV4(0x0af40105, 0x0af40207, 20 + payload);
  return 40 + payload;
}

const slab = new Uint8Array(1 << 20);
for (let i = 0; i < slab.length; i++) slab[i] = (i * 31) & 0xff;

for (const len of [20, 64, 1500, 9000, 65535]) {
  bench(`onesComplementSum ${len} B (odd offset)`, len, () => onesComplementSum(slab, 3, len));
}

{
  const mss = 1448;
  const superLen = writeSegment(slab, 100, 1000, 1, 44 * mss);
  const hdr = {
    flags: VirtioNetHdrFlags.NeedsCsum,
    gsoType: VirtioGsoType.TcpV4,
    headerLength: 40,
    gsoSize: mss,
    csumStart: 20,
    csumOffset: 16,
  };
  const out = new Uint8Array(64 * 2048);
  const outOffsets = Int32Array.from({ length: 64 }, (_, i) => i * 2048 + 64);
  const outLengths = new Int32Array(64);
  bench('segmentTcp 64 KB super-packet into 44 x 1448, payload copied (test support)', superLen, () => {
    segmentTcp(slab, 100, superLen, hdr, out, outOffsets, outLengths, 64);
  });
  // What the data path does: plan once, rebuild each segment's headers and checksum, leave the
  // payload where it is (it goes out as its own iovec piece).
  const plan = new SegmentPlan();
  const ip = new Ipv4View(new Uint8Array(0));
  bench('planSegments + writeSegmentHeader, 64 KB into 44 x 1448, no copy', superLen, () => {
    const n = planSegments(slab, 100, superLen, hdr, 1450, 1400, plan);
    for (let i = 0; i < n; i++) writeSegmentHeader(plan, i, slab, 100, slab, 70000 + i * 64, ip);
  });
}

{
  const n = 32;
  const batch = new Uint8Array(n * 2048 + 4 * 65536);
  const offsets = new Int32Array(n);
  const lengths = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    offsets[i] = i * 2048 + 64;
    lengths[i] = writeSegment(batch, offsets[i]!, 1000 + i * 1448, i, 1448);
  }
  const coalescer = new Coalescer({ maxBatch: n });
  const out = new CoalescedBatch(batch, n);
  // Merging rewrites the head segment's headers in place: put them back before every run.
  const head = batch.slice(offsets[0]!, offsets[0]! + 40);
  bench('Coalescer 32 x 1448 of one flow (verify)', n * 1448, () => {
    batch.set(head, offsets[0]!);
    coalescer.coalesce(batch, offsets, lengths, n, out);
  });
  const trusting = new Coalescer({ maxBatch: n, verifyChecksums: false });
  bench('Coalescer 32 x 1448 of one flow (no verify)', n * 1448, () => {
    batch.set(head, offsets[0]!);
    trusting.coalesce(batch, offsets, lengths, n, out);
  });
}
