/**
 * VXLAN remote checksum offload on the wire, between vxnet nodes and with the Linux kernel's
 * VXLAN as the other end: bulk TCP crosses with the RCO flag and byte where Linux puts them
 * (tshark decodes the VXLAN header), the receiver's pods accept every segment, and nothing is
 * sent with RCO to a node that does not take it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCapture } from '../../src/lab/capture.js';
import { podEndpoint, iperf } from '../../src/lab/checks.js';
import type { Lab, LabOptions } from '../../src/lab/lab.js';
import { agentSkip, withLab } from './helpers.js';

const skip = agentSkip(['tshark', 'ethtool', 'iperf3']);

function say(msg: string): void {
  process.stderr.write(`observed: ${msg}\n`);
}

/** Bulk TCP from p1a to p2a while the router's port toward node 2 is captured: the VXLAN flags
 * (first 16 bits) and last byte of the data packets, and the receiver's rate. */
async function bulk(lab: Lab): Promise<{ flags: Map<string, number>; bps: number }> {
  const cap = await startCapture(lab, lab.router, {
    iface: lab.node(2).routerIface, filter: `udp port ${lab.port} and greater 1000`,
    fields: ['vxlan.flags', 'vxlan.reserved8'], vxlanPorts: [lab.port], seconds: 20, count: 300,
  });
  const r = await iperf(lab, podEndpoint(lab.pod('p2a')), podEndpoint(lab.pod('p1a')), { seconds: 2 });
  const pkts = await cap.stop(10);
  const flags = new Map<string, number>();
  for (const p of pkts) {
    const key = `${Number(p['vxlan.flags']?.[0]).toString(16)}/${Number(p['vxlan.reserved8']?.[0] ?? 0)}`;
    flags.set(key, (flags.get(key) ?? 0) + 1);
  }
  return { flags, bps: r.bitsPerSecond };
}

const cases: Array<{ name: string; opts: LabOptions; want: string }> = [
  { name: 'vxnet -> vxnet', opts: { nodes: 2, podsPerNode: 1 }, want: '820/17' },
  { name: 'vxnet -> kernel VXLAN with remcsumrx', opts: { nodes: 2, podsPerNode: 1, kind: (i) => (i === 1 ? 'vxnet' : 'kernel'), kernelRemoteChecksum: 'rx' }, want: '820/17' },
  { name: 'kernel VXLAN with remcsumtx -> vxnet', opts: { nodes: 2, podsPerNode: 1, kind: (i) => (i === 1 ? 'kernel' : 'vxnet'), kernelRemoteChecksum: 'tx' }, want: '820/17' },
  { name: 'vxnet -> kernel VXLAN without RCO (flannel\'s setup)', opts: { nodes: 2, podsPerNode: 1, kind: (i) => (i === 1 ? 'vxnet' : 'kernel') }, want: '800/0' },
];

for (const c of cases) {
  test(`remote checksum offload: ${c.name}`, { skip, timeout: 150_000 }, async () => {
    await withLab(c.opts, async (lab) => {
      const { flags, bps } = await bulk(lab);
      say(`${c.name}: ${(bps / 1e9).toFixed(2)} Gbit/s; VXLAN flags/last byte of captured data packets: ${JSON.stringify([...flags])}`);
      assert.ok(bps > 0, 'the transfer completed: the receiving pod accepted the segments');
      const total = [...flags.values()].reduce((a, b) => a + b, 0);
      assert.ok(total >= 50, `captured ${total} data packets`);
      assert.equal(flags.get(c.want) ?? 0, total, `every data packet ${c.want}`);
      for (const i of [1, 2]) {
        if (lab.node(i).kind !== 'vxnet') continue;
        const m = await lab.metrics(i);
        const bad = m.filter((s) => s.name === 'vxnet_dropped_total' && s.value > 0).map((s) => `${s.labels['reason']}=${s.value}`);
        assert.deepEqual(bad.filter((b) => /reserved_bits|bad_inner_ip|tun_write/.test(b)), [], `node${i}: no drops of RCO packets`);
      }
    });
  });
}
