/**
 * Received UDP datagrams merged into USO super-packets (wire/coalesce.ts with `udp: true`), end to
 * end through the real kernel: a pod on node 1 sends bursts of numbered datagrams whose every byte
 * is known (most of one size, every 17th shorter, so runs end early as well as at the run limit),
 * and a pod on node 2 checks each one it receives: its length, its bytes, that none came twice and
 * that none overtook an earlier one. The kernel cuts every merged packet back into datagrams on
 * its way to the receiving socket (which does not ask for UDP_GRO), so any mistake in the merged
 * headers (lengths, the checksum left for the kernel, the IPv4 identification) shows up as a
 * corrupt, missing or dropped datagram. Node 2's agent must have merged some of them (its
 * `vxnet_offload_packets_total{direction="rx"}` moves), or the test checks nothing. Between vxnet
 * nodes over IPv4 and IPv6, and from a kernel VXLAN node (flannel's setup), whose inner
 * checksums arrive finished and are verified before anything merges. A receiving socket that asks
 * for merged datagrams (UDP_GRO, as QUIC servers do) gets them merged, with the segment size, and
 * the same checks hold when it cuts them itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab, LabOptions } from '../../src/lab/lab.js';
import { sleep } from '../../src/lab/exec.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip(['ethtool']);
const groSkip = agentSkip(['ethtool', 'python3']);
const PORT = 9123;
const COUNT = 3000;
const BURST = 100;

/** argv: family ip port count. Prints LISTENING, then one JSON line when `count` arrived or the
 * flow went quiet. */
const RECEIVER = String.raw`
const dgram = require('node:dgram');
const [family, ip, port, count] = process.argv.slice(1);
const want = Number(count);
const s = dgram.createSocket({ type: family, recvBufferSize: 4 << 20 });
const seen = new Uint8Array(want);
let received = 0, bad = 0, dup = 0, overtook = 0, last = -1, quiet;
function done() { console.log(JSON.stringify({ received, bad, dup, overtook })); process.exit(0); }
s.on('message', (m) => {
  clearTimeout(quiet);
  quiet = setTimeout(done, 2000);
  const seq = m.length >= 4 ? m.readUInt32BE(0) : -1;
  let ok = seq >= 0 && seq < want && m.length === (seq % 17 === 16 ? 57 : 200);
  for (let i = 4; ok && i < m.length; i++) if (m[i] !== ((seq * 31 + i) & 0xff)) ok = false;
  if (!ok) { bad++; return; }
  if (seen[seq]) { dup++; return; }
  seen[seq] = 1;
  received++;
  if (seq < last) overtook++;
  last = seq;
  if (received === want) done();
});
s.bind(Number(port), ip, () => console.log('LISTENING'));
setTimeout(done, 60000);
`;

/** argv: family ip port count burst. Sends datagrams 0..count-1 in bursts, 20 ms apart. */
const SENDER = String.raw`
const dgram = require('node:dgram');
const [family, ip, port, count, burst] = process.argv.slice(1);
const s = dgram.createSocket({ type: family, sendBufferSize: 4 << 20 });
let seq = 0;
function datagram(n) {
  const b = Buffer.alloc(n % 17 === 16 ? 57 : 200);
  b.writeUInt32BE(n, 0);
  for (let i = 4; i < b.length; i++) b[i] = (n * 31 + i) & 0xff;
  return b;
}
function burstOnce() {
  const end = Math.min(Number(count), seq + Number(burst));
  let pending = end - seq;
  for (; seq < end; seq++) s.send(datagram(seq), Number(port), ip, () => { if (--pending === 0) next(); });
}
function next() {
  if (seq >= Number(count)) { s.close(); console.log('SENT ' + seq); return; }
  setTimeout(burstOnce, 20);
}
burstOnce();
`;

/** The same checks by a socket that asks for merged datagrams (UDP_GRO, as QUIC servers do): each
 * read may return several datagrams back to back, cut by the size the kernel reports. Python,
 * because Node's dgram cannot set UDP_GRO. argv: ip port count. Also reports how many reads
 * held more than one datagram. */
const GRO_RECEIVER = String.raw`
import json, socket, struct, sys
ip, port, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.setsockopt(socket.SOL_UDP, 104, 1)  # UDP_GRO
s.bind((ip, port))
print('LISTENING', flush=True)
s.settimeout(60)
seen = bytearray(want)
r = dict(received=0, bad=0, dup=0, overtook=0, mergedReads=0)
last = -1
def check(m):
    global last
    seq = struct.unpack('>I', m[:4])[0] if len(m) >= 4 else -1
    ok = 0 <= seq < want and len(m) == (57 if seq % 17 == 16 else 200)
    ok = ok and all(m[i] == ((seq * 31 + i) & 0xff) for i in range(4, len(m)))
    if not ok: r['bad'] += 1; return
    if seen[seq]: r['dup'] += 1; return
    seen[seq] = 1; r['received'] += 1
    if seq < last: r['overtook'] += 1
    last = seq
try:
    while r['received'] < want:
        data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(4))
        if r['received'] > 0: s.settimeout(2)
        size = len(data)
        for level, kind, value in anc:
            if level == socket.SOL_UDP and kind == 104: size = struct.unpack('i', value[:4])[0]
        if size < len(data): r['mergedReads'] += 1
        for off in range(0, len(data), size): check(data[off:off + size])
except socket.timeout:
    pass
print(json.dumps(r), flush=True)
`;

async function rxMerged(lab: Lab, i: number): Promise<number> {
  const m = await lab.metrics(i);
  return m.find((s) => s.name === 'vxnet_offload_packets_total' && s.labels['direction'] === 'rx')?.value ?? 0;
}

const cases: Array<{ name: string; opts: LabOptions; v6?: boolean; gro?: boolean }> = [
  { name: 'vxnet -> vxnet, IPv4', opts: { nodes: 2, podsPerNode: 1 } },
  { name: 'vxnet -> vxnet, IPv6 pods', opts: { nodes: 2, podsPerNode: 1, ipv6: true }, v6: true },
  { name: 'kernel VXLAN -> vxnet, IPv4', opts: { nodes: 2, podsPerNode: 1, kind: (i) => (i === 1 ? 'kernel' : 'vxnet') } },
  { name: 'vxnet -> vxnet, IPv4, a receiving socket with UDP_GRO', opts: { nodes: 2, podsPerNode: 1 }, gro: true },
  // The field's variations: the underlay MTU (a merged run's segment size must fit the device MTU
  // on both ends), a narrower hop mid-path, and another VNI and port.
  { name: 'vxnet -> vxnet, 1400-byte underlay, VNI 7777 on port 4789', opts: { nodes: 2, podsPerNode: 1, underlayMTU: () => 1400, vni: 7777, port: 4789 } },
  { name: 'vxnet -> vxnet, 9001-byte underlay', opts: { nodes: 2, podsPerNode: 1, underlayMTU: () => 9001 } },
  { name: 'vxnet -> vxnet, a 1400-byte hop mid-path', opts: { nodes: 2, podsPerNode: 1, narrowHop: { nodes: [2], mtu: 1400 } } },
];

for (const c of cases) {
  test(`UDP merged on receive: ${c.name}: every datagram arrives whole, once, in order`, { skip: c.gro ? groSkip : skip, timeout: 150_000 }, async () => {
    await withLab(c.opts, async (lab) => {
      const a = lab.pod('p1a');
      const b = lab.pod('p2a');
      const family = c.v6 ? 'udp6' : 'udp4';
      const to = c.v6 ? b.ip6 : b.ip;
      assert.ok(to, `pod ${b.name} has an address of the family`);
      const before = await rxMerged(lab, 2);
      const rx = c.gro
        ? lab.spawn(b.ns, ['python3', '-c', GRO_RECEIVER, to, String(PORT), String(COUNT)], 90_000)
        : lab.spawn(b.ns, [process.execPath, '-e', RECEIVER, family, to, String(PORT), String(COUNT)], 90_000);
      try {
        for (let i = 0; i < 100 && !rx.stdout.includes('LISTENING') && rx.running; i++) await sleep(50);
        assert.ok(rx.stdout.includes('LISTENING'), `receiver did not start: ${rx.stderr}`);
        const tx = await lab.execOk(a.ns, [process.execPath, '-e', SENDER, family, to, String(PORT), String(COUNT), String(BURST)], { timeoutMs: 60_000 });
        assert.match(tx.stdout, new RegExp(`SENT ${COUNT}`));
        const res = await rx.wait(30_000);
        const line = res.stdout.split('\n').find((l) => l.startsWith('{'));
        assert.ok(line, `receiver printed no result: ${res.stdout} ${res.stderr}`);
        const r = JSON.parse(line) as { received: number; bad: number; dup: number; overtook: number; mergedReads?: number };
        const merged = (await rxMerged(lab, 2)) - before;
        process.stderr.write(`observed: ${c.name}: ${JSON.stringify(r)} of ${COUNT} sent; node2 merged ${merged} datagrams\n`);
        assert.equal(r.bad, 0, 'no datagram arrived with a wrong length or wrong bytes');
        assert.equal(r.dup, 0, 'none arrived twice');
        assert.equal(r.overtook, 0, 'none overtook an earlier one of the flow');
        assert.ok(r.received >= COUNT * 0.95, `received ${r.received} of ${COUNT}`);
        assert.ok(merged >= COUNT / 10, `node 2 merged ${merged} datagrams into super-packets: the merging was exercised`);
        if (c.gro) assert.ok((r.mergedReads ?? 0) > 0, 'the UDP_GRO socket read merged datagrams, with the segment size the kernel reported');
      } finally {
        if (rx.running) await rx.stop('SIGKILL', 1000);
      }
    });
  });
}
