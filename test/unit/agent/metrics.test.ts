/**
 * `/metrics` as Prometheus reads it: the exact text for a fixed agent state (golden), the rules of
 * text format 0.0.4 for every family (HELP and TYPE once, before the samples; counters end in
 * `_total`; label values escaped), the per-peer switch, and the standard process metrics against
 * what this process reports about itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderMetrics, type PeerStatus, type StatusSource } from '../../../src/agent/metrics.js';
import { Counter, Drop, IoOp, ioErrorSlot, newCounters, readCounters } from '../../../src/datapath/counters.js';
import { VERSION } from '../../../src/agent/version.js';
import { checkConfig, ConfigError } from '../../../src/agent/config.js';

const PKG_VERSION = (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function fakeSource(o: { perPeerMetrics: boolean; peers?: PeerStatus[]; ready?: boolean; staleSeconds?: number }): StatusSource {
  const c = newCounters();
  c[Counter.IcmpSent] = 2;
  c[Counter.IcmpSuppressed] = 1;
  c[Counter.TxBatches] = 4;
  c[Counter.RxBatches] = 3;
  c[Counter.TxSegments] = 5;
  c[Counter.RxCoalesced] = 6;
  c[Drop.unknown_peer] = 7;
  c[Drop.no_route] = 8;
  c[ioErrorSlot(IoOp.UdpSend, 90)] = 3; // EMSGSIZE
  c[Counter.PathMtuUpdates] = 1;
  const peers = o.peers ?? [
    { node: 'n2', underlayIP: '192.0.2.2', podCIDRs: ['10.244.2.0/24'], vtepMAC: '02:00:00:00:00:02', txPackets: 6, txBytes: 5040, rxPackets: 5, rxBytes: 4200, pathMTU: 1500 },
    { node: 'n3', underlayIP: '192.0.2.3', podCIDRs: ['10.244.3.0/24'], vtepMAC: '02:00:00:00:00:03', txPackets: 4, txBytes: 3360, rxPackets: 4, rxBytes: 3360, pathMTU: 1500 },
  ];
  return {
    node: 'n1',
    cfg: { perPeerMetrics: o.perPeerMetrics },
    traffic: () => ({ counters: readCounters(c, { txPackets: 10, txBytes: 8400, rxPackets: 9, rxBytes: 7560 }), peers, removed: { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 } }),
    healthy: () => true,
    kernelRepairs: () => ({ route: 2, mtu: 1 }),
    ready: () => ({ ready: o.ready ?? true, reason: 'test', staleSeconds: o.staleSeconds ?? 0 }),
    info: () => ({ tableGeneration: 3 }),
  };
}

const GOLDEN_VXNET = `# HELP vxnet_build_info Always 1; the labels say which vxnet version runs on which node, on which Node.js.
# TYPE vxnet_build_info gauge
vxnet_build_info{version="${PKG_VERSION}",node="n1",nodejs="${process.versions.node}"} 1
# HELP vxnet_packets_total Packets encapsulated (tx) and decapsulated (rx).
# TYPE vxnet_packets_total counter
vxnet_packets_total{direction="tx"} 10
vxnet_packets_total{direction="rx"} 9
# HELP vxnet_bytes_total Inner IP bytes encapsulated (tx) and decapsulated (rx).
# TYPE vxnet_bytes_total counter
vxnet_bytes_total{direction="tx"} 8400
vxnet_bytes_total{direction="rx"} 7560
# HELP vxnet_dropped_total Packets dropped, by reason.
# TYPE vxnet_dropped_total counter
vxnet_dropped_total{reason="truncated"} 0
vxnet_dropped_total{reason="bad_flags"} 0
vxnet_dropped_total{reason="reserved_bits"} 0
vxnet_dropped_total{reason="wrong_vni"} 0
vxnet_dropped_total{reason="unknown_peer"} 7
vxnet_dropped_total{reason="bad_inner_mac"} 0
vxnet_dropped_total{reason="bad_ethertype"} 0
vxnet_dropped_total{reason="bad_inner_ip"} 0
vxnet_dropped_total{reason="spoofed_source"} 0
vxnet_dropped_total{reason="not_local"} 0
vxnet_dropped_total{reason="tun_write"} 0
vxnet_dropped_total{reason="bad_ip"} 0
vxnet_dropped_total{reason="no_route"} 8
vxnet_dropped_total{reason="too_big"} 0
vxnet_dropped_total{reason="local_loop"} 0
vxnet_dropped_total{reason="udp_send"} 0
# HELP vxnet_icmp_errors_total ICMP errors sent back through TUN (sent) or held back by the rate limit (suppressed).
# TYPE vxnet_icmp_errors_total counter
vxnet_icmp_errors_total{result="sent"} 2
vxnet_icmp_errors_total{result="suppressed"} 1
# HELP vxnet_batches_total Batch system calls that moved at least one packet.
# TYPE vxnet_batches_total counter
vxnet_batches_total{direction="tx"} 4
vxnet_batches_total{direction="rx"} 3
# HELP vxnet_offload_packets_total Segments cut from TSO/USO super-packets (tx), and TCP segments and UDP datagrams merged into super-packets for TUN (rx).
# TYPE vxnet_offload_packets_total counter
vxnet_offload_packets_total{direction="tx"} 5
vxnet_offload_packets_total{direction="rx"} 6
# HELP vxnet_io_errors_total Failed system calls of the data path, by operation and errno.
# TYPE vxnet_io_errors_total counter
vxnet_io_errors_total{op="tun_read",errno="EAGAIN"} 0
vxnet_io_errors_total{op="tun_read",errno="ENOBUFS"} 0
vxnet_io_errors_total{op="tun_read",errno="EMSGSIZE"} 0
vxnet_io_errors_total{op="tun_read",errno="EINVAL"} 0
vxnet_io_errors_total{op="tun_read",errno="EFAULT"} 0
vxnet_io_errors_total{op="tun_read",errno="EIO"} 0
vxnet_io_errors_total{op="tun_read",errno="EBADF"} 0
vxnet_io_errors_total{op="tun_read",errno="EBADFD"} 0
vxnet_io_errors_total{op="tun_read",errno="ENETUNREACH"} 0
vxnet_io_errors_total{op="tun_read",errno="EHOSTUNREACH"} 0
vxnet_io_errors_total{op="tun_read",errno="other"} 0
vxnet_io_errors_total{op="tun_write",errno="EAGAIN"} 0
vxnet_io_errors_total{op="tun_write",errno="ENOBUFS"} 0
vxnet_io_errors_total{op="tun_write",errno="EMSGSIZE"} 0
vxnet_io_errors_total{op="tun_write",errno="EINVAL"} 0
vxnet_io_errors_total{op="tun_write",errno="EFAULT"} 0
vxnet_io_errors_total{op="tun_write",errno="EIO"} 0
vxnet_io_errors_total{op="tun_write",errno="EBADF"} 0
vxnet_io_errors_total{op="tun_write",errno="EBADFD"} 0
vxnet_io_errors_total{op="tun_write",errno="ENETUNREACH"} 0
vxnet_io_errors_total{op="tun_write",errno="EHOSTUNREACH"} 0
vxnet_io_errors_total{op="tun_write",errno="other"} 0
vxnet_io_errors_total{op="udp_recv",errno="EAGAIN"} 0
vxnet_io_errors_total{op="udp_recv",errno="ENOBUFS"} 0
vxnet_io_errors_total{op="udp_recv",errno="EMSGSIZE"} 0
vxnet_io_errors_total{op="udp_recv",errno="EINVAL"} 0
vxnet_io_errors_total{op="udp_recv",errno="EFAULT"} 0
vxnet_io_errors_total{op="udp_recv",errno="EIO"} 0
vxnet_io_errors_total{op="udp_recv",errno="EBADF"} 0
vxnet_io_errors_total{op="udp_recv",errno="EBADFD"} 0
vxnet_io_errors_total{op="udp_recv",errno="ENETUNREACH"} 0
vxnet_io_errors_total{op="udp_recv",errno="EHOSTUNREACH"} 0
vxnet_io_errors_total{op="udp_recv",errno="other"} 0
vxnet_io_errors_total{op="udp_send",errno="EAGAIN"} 0
vxnet_io_errors_total{op="udp_send",errno="ENOBUFS"} 0
vxnet_io_errors_total{op="udp_send",errno="EMSGSIZE"} 3
vxnet_io_errors_total{op="udp_send",errno="EINVAL"} 0
vxnet_io_errors_total{op="udp_send",errno="EFAULT"} 0
vxnet_io_errors_total{op="udp_send",errno="EIO"} 0
vxnet_io_errors_total{op="udp_send",errno="EBADF"} 0
vxnet_io_errors_total{op="udp_send",errno="EBADFD"} 0
vxnet_io_errors_total{op="udp_send",errno="ENETUNREACH"} 0
vxnet_io_errors_total{op="udp_send",errno="EHOSTUNREACH"} 0
vxnet_io_errors_total{op="udp_send",errno="other"} 0
# HELP vxnet_tx_fragmented_total Inner IPv4 packets without DF fragmented to fit a smaller path to their peer.
# TYPE vxnet_tx_fragmented_total counter
vxnet_tx_fragmented_total 0
# HELP vxnet_gso_fallbacks_total UDP GSO sends the kernel refused, retried as single datagrams.
# TYPE vxnet_gso_fallbacks_total counter
vxnet_gso_fallbacks_total 0
# HELP vxnet_path_mtu_updates_total Changes of a peer's path MTU, learned from the kernel or aged out.
# TYPE vxnet_path_mtu_updates_total counter
vxnet_path_mtu_updates_total 1
# HELP vxnet_removed_peers_packets_total Packets to and from peers no longer in the table: the per-peer packets plus these are the totals.
# TYPE vxnet_removed_peers_packets_total counter
vxnet_removed_peers_packets_total{direction="tx"} 0
vxnet_removed_peers_packets_total{direction="rx"} 0
# HELP vxnet_peers Peers in the forwarding table.
# TYPE vxnet_peers gauge
vxnet_peers 2
# HELP vxnet_kernel_repairs_total Changes to the agent's device, addresses, routes or nftables table that the agent found and put back, by what was repaired.
# TYPE vxnet_kernel_repairs_total counter
vxnet_kernel_repairs_total{what="device"} 0
vxnet_kernel_repairs_total{what="up"} 0
vxnet_kernel_repairs_total{what="mtu"} 1
vxnet_kernel_repairs_total{what="queue_length"} 0
vxnet_kernel_repairs_total{what="alias"} 0
vxnet_kernel_repairs_total{what="accept_local"} 0
vxnet_kernel_repairs_total{what="addr_gen_mode"} 0
vxnet_kernel_repairs_total{what="address"} 0
vxnet_kernel_repairs_total{what="route"} 2
vxnet_kernel_repairs_total{what="nftables"} 0
# HELP vxnet_peer_packets_total Packets per peer node.
# TYPE vxnet_peer_packets_total counter
vxnet_peer_packets_total{peer="n2",direction="tx"} 6
vxnet_peer_packets_total{peer="n2",direction="rx"} 5
vxnet_peer_packets_total{peer="n3",direction="tx"} 4
vxnet_peer_packets_total{peer="n3",direction="rx"} 4
# HELP vxnet_peer_bytes_total Inner IP bytes per peer node.
# TYPE vxnet_peer_bytes_total counter
vxnet_peer_bytes_total{peer="n2",direction="tx"} 5040
vxnet_peer_bytes_total{peer="n2",direction="rx"} 4200
vxnet_peer_bytes_total{peer="n3",direction="tx"} 3360
vxnet_peer_bytes_total{peer="n3",direction="rx"} 3360
# HELP vxnet_ready 1 when the peer source is fresh.
# TYPE vxnet_ready gauge
vxnet_ready 1
# HELP vxnet_peer_source_stale_seconds Seconds since the peer source last synced successfully (0 when fresh).
# TYPE vxnet_peer_source_stale_seconds gauge
vxnet_peer_source_stale_seconds 0
# HELP vxnet_table_generation Forwarding table generation in force.
# TYPE vxnet_table_generation gauge
vxnet_table_generation 3
`;

/** The process_* families: names, types and HELP are fixed; their values are this process's. */
const GOLDEN_PROCESS_HEADERS = [
  '# HELP process_cpu_seconds_total User and system CPU time of the agent process (all threads), in seconds.',
  '# TYPE process_cpu_seconds_total counter',
  '# HELP process_resident_memory_bytes Resident set size of the agent process, in bytes.',
  '# TYPE process_resident_memory_bytes gauge',
  '# HELP process_start_time_seconds Start time of the agent process, in seconds since the Unix epoch.',
  '# TYPE process_start_time_seconds gauge',
];

interface Family { name: string; type: string; help: string; samples: Array<{ labels: Record<string, string>; value: number }> }

/** A strict reader of text format 0.0.4: every sample must belong to the family declared above it. */
function parseFamilies(text: string): Family[] {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families: Family[] = [];
  const lines = text.slice(0, -1).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (help) {
      const type = /^# TYPE (\S+) (counter|gauge)$/.exec(lines[i + 1] ?? '');
      assert.ok(type, `line ${i + 2}: want "# TYPE ${help[1]} counter|gauge" after its HELP, got ${JSON.stringify(lines[i + 1])}`);
      assert.equal(type[1], help[1], `line ${i + 2}: TYPE names another family`);
      families.push({ name: help[1]!, type: type[2]!, help: help[2]!, samples: [] });
      i++;
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/.exec(line);
    assert.ok(m, `line ${i + 1}: not a sample: ${JSON.stringify(line)}`);
    const fam = families.at(-1);
    assert.equal(m[1], fam?.name, `line ${i + 1}: sample of ${m[1]} outside its family`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, ch: string) => (ch === 'n' ? '\n' : ch));
    }
    const value = Number(m[3]);
    assert.ok(Number.isFinite(value), `line ${i + 1}: value ${m[3]} is not a number`);
    fam!.samples.push({ labels, value });
  }
  return families;
}

test('golden: the vxnet_ families for a fixed state, per-peer series on', () => {
  const text = renderMetrics(fakeSource({ perPeerMetrics: true }));
  const vxnet = text.split('\n').filter((l) => !/^(# (HELP|TYPE) )?process_/.test(l)).join('\n');
  const got = vxnet.split('\n');
  const want = GOLDEN_VXNET.split('\n');
  for (let i = 0; i < Math.max(got.length, want.length); i++) assert.equal(got[i], want[i], `line ${i + 1}`);
  const headers = text.split('\n').filter((l) => /^# (HELP|TYPE) process_/.test(l));
  assert.deepEqual(headers, GOLDEN_PROCESS_HEADERS);
});

test('vxnet_build_info carries package.json’s version', () => {
  assert.equal(VERSION, PKG_VERSION);
  assert.notEqual(VERSION, 'unknown');
});

test('text format: HELP and TYPE once per family, counters end in _total, labels parse back', () => {
  for (const perPeerMetrics of [true, false]) {
    const families = parseFamilies(renderMetrics(fakeSource({ perPeerMetrics })));
    const names = families.map((f) => f.name);
    assert.deepEqual(names, [...new Set(names)], `perPeerMetrics ${perPeerMetrics}: a family is declared twice`);
    for (const f of families) {
      assert.equal(f.name.endsWith('_total'), f.type === 'counter', `${f.name}: type ${f.type}; counters and only counters end in _total`);
      assert.ok(f.samples.length > 0, `${f.name}: no samples`);
      assert.ok(f.help.endsWith('.'), `${f.name}: HELP is a sentence`);
      const keys = new Set(f.samples.map((s) => Object.keys(s.labels).join(',')));
      assert.equal(keys.size, 1, `${f.name}: samples with different label sets: ${[...keys].join(' | ')}`);
    }
  }
});

test('per-peer series: four per peer when switched on, none when off', () => {
  const cases = [
    { name: 'on, two peers', perPeerMetrics: true, peers: undefined, want: { vxnet_peer_packets_total: 4, vxnet_peer_bytes_total: 4 } },
    { name: 'on, no peers yet', perPeerMetrics: true, peers: [], want: { vxnet_peer_packets_total: 0, vxnet_peer_bytes_total: 0 } },
    { name: 'off (the default)', perPeerMetrics: false, peers: undefined, want: {} },
  ];
  for (const c of cases) {
    const text = renderMetrics(fakeSource({ perPeerMetrics: c.perPeerMetrics, ...(c.peers ? { peers: c.peers } : {}) }));
    const got: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = /^(vxnet_peer_(?:packets|bytes)_total)[{ ]/.exec(line);
      if (m) got[m[1]!] = (got[m[1]!] ?? 0) + 1;
    }
    const declared = [...text.matchAll(/^# TYPE (vxnet_peer_\w+_total) /gm)].map((m) => m[1]);
    assert.deepEqual(got, Object.fromEntries(Object.entries(c.want).filter(([, n]) => n > 0)), `${c.name}: per-peer samples`);
    assert.deepEqual(declared, Object.keys(c.want), `${c.name}: per-peer families declared`);
    assert.match(text, /^vxnet_peers \d+$/m, `${c.name}: the vxnet_peers gauge is always there`);
  }
});

test('label values are escaped: a peer name with a quote, a backslash and a newline', () => {
  const odd = 'a"b\\c\nd';
  const text = renderMetrics(fakeSource({
    perPeerMetrics: true,
    peers: [{ node: odd, underlayIP: '192.0.2.9', podCIDRs: ['10.244.9.0/24'], vtepMAC: '02:00:00:00:00:09', txPackets: 1, txBytes: 2, rxPackets: 3, rxBytes: 4, pathMTU: 1500 }],
  }));
  assert.ok(text.includes('vxnet_peer_bytes_total{peer="a\\"b\\\\c\\nd",direction="rx"} 4'), 'escaped sample line');
  const peerBytes = parseFamilies(text).find((f) => f.name === 'vxnet_peer_bytes_total');
  assert.equal(peerBytes?.samples[0]?.labels['peer'], odd, 'the label value parses back to the peer name');
});

test('readiness and staleness gauges follow the peer source', () => {
  const text = renderMetrics(fakeSource({ perPeerMetrics: false, ready: false, staleSeconds: 12.5 }));
  assert.match(text, /^vxnet_ready 0$/m);
  assert.match(text, /^vxnet_peer_source_stale_seconds 12\.5$/m);
});

test('process metrics: this process’s CPU, resident memory and start time', () => {
  const before = process.cpuUsage();
  const families = parseFamilies(renderMetrics(fakeSource({ perPeerMetrics: false })));
  const after = process.cpuUsage();
  const value = (name: string): number => {
    const f = families.find((x) => x.name === name);
    assert.ok(f, `${name} is exported`);
    assert.deepEqual(f.samples.map((s) => s.labels), [{}], `${name}: one sample without labels`);
    return f.samples[0]!.value;
  };
  const cpu = value('process_cpu_seconds_total');
  assert.ok(cpu >= (before.user + before.system) / 1e6 && cpu <= (after.user + after.system) / 1e6,
    `process_cpu_seconds_total: got ${cpu}, want between the process's own readings before and after`);
  const rss = value('process_resident_memory_bytes');
  const statusRss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024;
  assert.ok(rss > 0 && Math.abs(rss - statusRss) < 64 << 20, `process_resident_memory_bytes: got ${rss}, /proc/self/status says ${statusRss}`);
  const start = value('process_start_time_seconds');
  const want = Date.now() / 1000 - process.uptime();
  assert.ok(Math.abs(start - want) < 5, `process_start_time_seconds: got ${start}, want about ${want} (now - uptime)`);
});

test('config: perPeerMetrics is off unless set, and must be a boolean', () => {
  const base = { node: 'n1', underlayIP: '192.0.2.1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24' };
  assert.equal(checkConfig(base).perPeerMetrics, false, 'default');
  assert.equal(checkConfig({ ...base, perPeerMetrics: true }).perPeerMetrics, true, 'set');
  assert.throws(() => checkConfig({ ...base, perPeerMetrics: 'yes' }),
    (err: Error) => err instanceof ConfigError && /field "perPeerMetrics": must be true or false, got "yes"/.test(err.message));
});
