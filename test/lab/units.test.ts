/**
 * The lab's pure parts, without root: the address plan, output parsers (ping, Prometheus,
 * tshark fields), the conflist builder, the chart, and the CNI runtime's chaining, driven with
 * fake plugins (shell scripts that record what they were given) so the protocol is checked
 * without touching any network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConflist } from '../../src/agent/cni-conflist.js';
import { cniAdd, cniDel, resultIPv4, resultIPv6, CniError } from '../../src/lab/cni-runtime.js';
import { parsePing, percentile } from '../../src/lab/checks.js';
import { parsePrometheus, sampleValue } from '../../src/lab/http.js';
import { parseFields } from '../../src/lab/capture.js';
import { renderBarChart } from '../../src/lab/svg-chart.js';
import { procSample, renderTable, renderRatios, renderLatencyVsSocat, combineRounds, machineBusySeconds } from '../../src/lab/bench.js';
import { isValidLabId, randomLabId, nsPrefix } from '../../src/lab/state.js';
import * as topo from '../../src/lab/topology.js';
import { backendOf } from '../../src/lab/backends/index.js';

test('address plan follows contracts.md "Lab defaults"', () => {
  const cases = [
    { i: 1, underlay: '192.168.101.2', router: '192.168.101.1', pod: '10.244.1.0/24', tunnel: '10.244.1.0', gw: '10.244.1.1', mac: '02:76:78:6c:00:01' },
    { i: 3, underlay: '192.168.103.2', router: '192.168.103.1', pod: '10.244.3.0/24', tunnel: '10.244.3.0', gw: '10.244.3.1', mac: '02:76:78:6c:00:03' },
    { i: 42, underlay: '192.168.142.2', router: '192.168.142.1', pod: '10.244.42.0/24', tunnel: '10.244.42.0', gw: '10.244.42.1', mac: '02:76:78:6c:00:2a' },
  ];
  for (const c of cases) {
    assert.equal(topo.underlayIP(c.i), c.underlay);
    assert.equal(topo.routerIP(c.i), c.router);
    assert.equal(topo.podCIDR(c.i), c.pod);
    assert.equal(topo.tunnelAddress(c.i), c.tunnel);
    assert.equal(topo.podGateway(c.i), c.gw);
    assert.equal(topo.vtepMAC(c.i), c.mac);
    // Locally administered (bit 1 of the first octet), unicast (bit 0 clear).
    assert.equal(parseInt(c.mac.slice(0, 2), 16) & 0x03, 0x02);
  }
  assert.equal(backendOf('vxnet').podMTU(topo.UNDERLAY_MTU), 1450);
  assert.equal(backendOf('kernel').podMTU(topo.UNDERLAY_MTU), 1450);
  assert.equal(backendOf('direct').podMTU(topo.UNDERLAY_MTU), 1500);
  assert.equal(topo.cidrContains('10.244.1.0/24', '10.244.1.255'), true);
  assert.equal(topo.cidrContains('10.244.1.0/24', '10.244.2.0'), false);
  assert.equal(topo.cidrContains('0.0.0.0/0', '1.2.3.4'), true);
  assert.throws(() => topo.ipToInt('10.244.1'), /not an IPv4/);
  assert.throws(() => topo.ipToInt('10.244.1.256'), /not an IPv4/);
});

test('dual-stack address plan: the i-th /64 of fd00:10:244::/56, in hex', () => {
  assert.equal(topo.CLUSTER_CIDR6, 'fd00:10:244::/56');
  assert.equal(topo.podCIDR6(1), 'fd00:10:244:1::/64');
  assert.equal(topo.podCIDR6(42), 'fd00:10:244:2a::/64');
  assert.equal(topo.tunnelAddress6(3), 'fd00:10:244:3::');
  assert.equal(topo.podGateway6(3), 'fd00:10:244:3::1');
  const result = { ips: [{ address: '10.244.1.2/24' }, { address: 'fd00:10:244:1::2/64' }] };
  assert.equal(resultIPv4(result), '10.244.1.2');
  assert.equal(resultIPv6(result), 'fd00:10:244:1::2');
  assert.equal(resultIPv6({ ips: [{ address: '10.244.1.2/24' }] }), null);
});

test('lab ids and namespace names stay short and safe', () => {
  for (let i = 0; i < 50; i++) {
    const id = randomLabId();
    assert.ok(isValidLabId(id), id);
    // Longest derived name: vxl<id>-p<nn><letter>; interface names never derive from the id.
    assert.ok(`${nsPrefix(id)}p99z`.length <= 15, id);
  }
  for (const bad of ['', 'ABC', 'a/b', 'toolong123', '../x']) assert.equal(isValidLabId(bad), false, bad);
});

test('parsePing reads counts and per-reply times', () => {
  const out = `PING 10.244.2.2 (10.244.2.2) 56(84) bytes of data.
64 bytes from 10.244.2.2: icmp_seq=1 ttl=62 time=0.215 ms
64 bytes from 10.244.2.2: icmp_seq=3 ttl=62 time=1.50 ms

--- 10.244.2.2 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms
rtt min/avg/max/mdev = 0.215/0.857/1.500/0.642 ms`;
  const r = parsePing(out);
  assert.equal(r.sent, 3);
  assert.equal(r.received, 2);
  assert.deepEqual(r.rttsMs, [0.215, 1.5]);
  const none = parsePing('3 packets transmitted, 0 received, 100% packet loss, time 2040ms');
  assert.deepEqual([none.sent, none.received, none.rttsMs.length], [3, 0, 0]);
});

test('percentile is nearest-rank', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal(percentile(v, 50), 50);
  assert.equal(percentile(v, 99), 99);
  assert.equal(percentile(v, 100), 100);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('Prometheus text: labels, escapes, sums over matching samples', () => {
  const text = `# HELP vxnet_dropped_total Packets dropped, by reason.
# TYPE vxnet_dropped_total counter
vxnet_dropped_total{reason="wrong_vni"} 5
vxnet_dropped_total{reason="unknown_peer"} 2
vxnet_dropped_total{reason="odd\\"name",dir="rx"} 1
vxnet_rx_packets_total 1234
bad line here
`;
  const s = parsePrometheus(text);
  assert.equal(s.length, 4);
  assert.equal(sampleValue(s, 'vxnet_dropped_total', { reason: 'wrong_vni' }), 5);
  assert.equal(sampleValue(s, 'vxnet_dropped_total'), 8);
  assert.equal(sampleValue(s, 'vxnet_dropped_total', { reason: 'odd"name' }), 1);
  assert.equal(sampleValue(s, 'vxnet_rx_packets_total'), 1234);
  assert.equal(sampleValue(s, 'missing'), 0);
});

test('tshark field rows split occurrences, outer before inner', () => {
  const fields = ['ip.src', 'vxlan.vni', 'eth.type'];
  const rows = parseFields('192.168.101.2,10.244.1.2|1|0x0800,0x0800\n\n10.0.0.1||0x0806\n', fields);
  assert.deepEqual(rows, [
    { 'ip.src': ['192.168.101.2', '10.244.1.2'], 'vxlan.vni': ['1'], 'eth.type': ['0x0800', '0x0800'] },
    { 'ip.src': ['10.0.0.1'], 'vxlan.vni': [], 'eth.type': ['0x0806'] },
  ]);
});

test('buildConflist: bridge gateway, no masquerade, MTU, host-local over the pod CIDR, portmap', () => {
  const c = buildConflist({ podCIDR: '10.244.7.0/24', mtu: 1450, ipamDataDir: '/run/x' }) as {
    cniVersion: string;
    name: string;
    plugins: Record<string, unknown>[];
  };
  assert.equal(c.cniVersion, '1.0.0');
  assert.equal(c.name, 'vxnet');
  assert.deepEqual(c.plugins[0], {
    type: 'bridge',
    bridge: 'cni0',
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: false,
    hairpinMode: true,
    mtu: 1450,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.7.0/24' }]], dataDir: '/run/x' },
  });
  assert.deepEqual(c.plugins[1], { type: 'portmap', capabilities: { portMappings: true } });
  const named = buildConflist({ podCIDR: '10.244.1.0/24', mtu: 1400, bridge: 'br9', name: 'n' }) as {
    name: string;
    plugins: { bridge?: string; ipam?: Record<string, unknown> }[];
  };
  assert.equal(named.name, 'n');
  assert.equal(named.plugins[0]?.bridge, 'br9');
  assert.equal(named.plugins[0]?.ipam?.['dataDir'], undefined);
});

/** A fake plugin: records env and stdin to LOG, prints a result naming itself. */
function fakePlugin(dir: string, name: string, log: string, fail = false): void {
  const f = join(dir, name);
  writeFileSync(
    f,
    `#!/bin/sh
input=$(cat)
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "${name}" "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$input" >> ${log}
${fail ? `echo '{"cniVersion":"1.0.0","code":11,"msg":"boom","details":"from ${name}"}'; exit 1` : `echo '{"cniVersion":"1.0.0","ips":[{"address":"10.244.9.${name === 'one' ? 5 : 6}/24"}],"by":"${name}"}'`}
`,
  );
  chmodSync(f, 0o755);
}

test('CNI runtime: ADD chains prevResult in order, DEL runs in reverse, ipam.dataDir overridden', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-cni-'));
  try {
    const log = join(dir, 'log');
    fakePlugin(dir, 'one', log);
    fakePlugin(dir, 'two', log);
    const conflist = {
      cniVersion: '1.0.0',
      name: 'testnet',
      plugins: [
        { type: 'one', ipam: { type: 'host-local', dataDir: '/var/lib/cni/networks' } },
        { type: 'two', extra: 1 },
      ],
    };
    const inv = { conflist, containerId: 'c1', netnsPath: '/var/run/netns/podx', pluginNs: null, cniPath: dir, ipamDataDir: join(dir, 'ipam') };
    const result = await cniAdd(inv);
    assert.equal(result['by'], 'two', 'the final result is the last plugin\'s');
    assert.equal(resultIPv4(result), '10.244.9.6');
    const errs = await cniDel(inv, result);
    assert.deepEqual(errs, []);

    const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual(calls.map((c) => `${c[0]} ${c[1]}`), ['one ADD', 'two ADD', 'two DEL', 'one DEL']);
    for (const c of calls) assert.deepEqual(c.slice(2, 5), ['c1', '/var/run/netns/podx', 'eth0']);
    const stdin = calls.map((c) => JSON.parse(c[5] as string) as Record<string, unknown>);
    assert.equal(stdin[0]?.['name'], 'testnet');
    assert.equal(stdin[0]?.['cniVersion'], '1.0.0');
    assert.equal(stdin[0]?.['prevResult'], undefined, 'the first ADD has no prevResult');
    assert.deepEqual(stdin[0]?.['ipam'], { type: 'host-local', dataDir: join(dir, 'ipam') });
    assert.equal((stdin[1]?.['prevResult'] as Record<string, unknown>)['by'], 'one', 'the second ADD gets the first result');
    assert.equal(stdin[1]?.['extra'], 1);
    assert.equal((stdin[2]?.['prevResult'] as Record<string, unknown>)['by'], 'two', 'DEL gets the final ADD result');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CNI runtime: a plugin error becomes a CniError with the plugin\'s message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-cni-'));
  try {
    const log = join(dir, 'log');
    fakePlugin(dir, 'one', log);
    fakePlugin(dir, 'bad', log, true);
    const conflist = { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'one' }, { type: 'bad' }] };
    const inv = { conflist, containerId: 'c2', netnsPath: '/var/run/netns/p', pluginNs: null, cniPath: dir };
    await assert.rejects(cniAdd(inv), (e: unknown) => e instanceof CniError && /CNI ADD bad: boom: from bad/.test(e.message));
    const errs = await cniDel(inv);
    assert.equal(errs.length, 1, 'DEL keeps going past a failing plugin');
    assert.match(readFileSync(log, 'utf8'), /one\tDEL/);
    await assert.rejects(cniAdd({ ...inv, conflist: { ...conflist, plugins: [{ type: '../../bin/sh' }] } }), /bad plugin type/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bar chart: one bar per path, scaled per panel, n/a for missing values, escaped text', () => {
  const svg = renderBarChart('T <1>', [
    { title: 'A', unit: 'u', bars: [{ label: 'x & y', value: 10 }, { label: 'z', value: 5 }] },
    { title: 'B', unit: 'v', bars: [{ label: 'x & y', value: Number.NaN }, { label: 'z', value: 2 }] },
  ]);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /T &lt;1&gt;/);
  assert.match(svg, /x &amp; y/);
  const widths = [...svg.matchAll(/<rect x="170" y="\d+" width="(\d+)"/g)].map((m) => Number(m[1]));
  assert.equal(widths.length, 3, 'three drawn bars (the NaN one is not drawn)');
  assert.equal(widths[0], 2 * (widths[1] as number), '10 is twice as long as 5 in the same panel');
  assert.equal(widths[2], widths[0], 'each panel has its own scale: its maximum fills the width');
  assert.match(svg, />n\/a</);
});

test('bench table and ratios to kernel VXLAN', () => {
  const rows = [
    { key: 'kernel', label: 'kernel VXLAN', tcp1Bps: 10e9, tcp4Bps: 12e9, udpPps: 200_000, udpLossPct: 1, rttP50Ms: 0.05, rttP99Ms: 0.1,
      rttIdleP50Ms: 0.1, rttIdleP99Ms: 0.2, machineCpuSecPerGB: 1 },
    { key: 'vxnet', label: 'vxnet', tcp1Bps: 5e9, tcp4Bps: 6e9, udpPps: 100_000, udpLossPct: 2, rttP50Ms: 0.1, rttP99Ms: 0.3,
      rttIdleP50Ms: 0.15, rttIdleP99Ms: 0.8, machineCpuSecPerGB: 1.5, cpuSecPerGB: 3.5, cpuSecPerMpkt: 4.25, rssMB: 80, hwmMB: 90 },
    { key: 'socat', label: 'socat', tcp1Bps: 1e9, rttP50Ms: 0.2, rttP99Ms: 0.3, rttIdleP50Ms: 0.3, rttIdleP99Ms: 0.4 },
    { key: 'openvpn', label: 'OpenVPN', skipped: 'openvpn not installed' },
  ];
  const t = renderTable(rows);
  assert.match(t, /\| vxnet \| 5\.00 \| 6\.00 \| 100\.0 \| 2\.0% \| 0\.100 \/ 0\.300 \| 0\.150 \/ 0\.800 \| 1\.50 \| 3\.50 \| 4\.25 \| 80 \/ 90 \|/);
  assert.match(t, /\| OpenVPN \| skipped: openvpn not installed/);
  const r = renderRatios(rows);
  assert.match(r, /\| vxnet \| 0\.50x \| 0\.50x \| 0\.50x \| 1\.50x \| 2\.00x \/ 3\.00x \| 1\.50x \/ 4\.00x \|/);
  assert.doesNotMatch(r, /OpenVPN/);
  const l = renderLatencyVsSocat(rows);
  assert.match(l, /\| vxnet \| 0\.50x \| 1\.00x \| 0\.50x \| 2\.00x \|/);
  assert.doesNotMatch(l, /kernel/);
});

test('machineBusySeconds counts user, nice, system, irq and softirq; not idle, iowait or steal', () => {
  // user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ (100/s)
  const stat = 'cpu  100 20 300 99999 500 6 70 800 0 0\ncpu0 50 10 150 50000 250 3 35 400 0 0\n';
  assert.equal(machineBusySeconds(stat), (100 + 20 + 300 + 6 + 70) / 100);
  assert.ok(Number.isNaN(machineBusySeconds('nothing here\n')));
  if (process.platform === 'linux') assert.ok(machineBusySeconds() > 0);
});

test('bench rounds combine into medians; memory is the largest seen', () => {
  const path = { key: 'vxnet', label: 'vxnet', kind: 'vxnet' as const };
  const r = combineRounds(path, [
    { key: 'vxnet', label: 'vxnet', tcp1Bps: 9e9, udpPps: 100, rssMB: 80, hwmMB: 85 },
    { key: 'vxnet', label: 'vxnet', tcp1Bps: 3e9, udpPps: 300, rssMB: 82, hwmMB: 90 },
    { key: 'vxnet', label: 'vxnet', tcp1Bps: 7e9, udpPps: 200, rssMB: 81, hwmMB: 88 },
  ]);
  assert.equal(r.tcp1Bps, 7e9);
  assert.equal(r.udpPps, 200);
  assert.equal(r.hwmMB, 90);
  assert.equal(r.rssMB, 82);
  assert.deepEqual(r.tcp1Samples, [9e9, 3e9, 7e9]);
  assert.equal(combineRounds(path, [{ key: 'vxnet', label: 'vxnet', tcp1Bps: 2e9 }, { key: 'vxnet', label: 'vxnet', tcp1Bps: 4e9 }]).tcp1Bps, 3e9);
});

test('procSample reads this process from /proc', { skip: process.platform !== 'linux' }, () => {
  const s = procSample(process.pid);
  assert.ok(s !== null);
  assert.ok(s.cpuSeconds >= 0 && s.rssKB > 1000 && s.hwmKB >= s.rssKB, JSON.stringify(s));
  assert.equal(procSample(0x7ffffffe), null);
});
