/**
 * How long the Kubernetes peer source takes to load a large cluster: the stand-in serves N Nodes
 * (5,000 by default, all annotated), and we time (1) the list through the real client, including
 * its JSON decoding into V1Node objects, (2) converting every Node to a Peer, and (3) a full
 * KubePeerSource start, which is list + conversion + the first snapshot. Then a burst of updates
 * to every node, which should be coalesced into a handful of snapshots.
 *
 *   node dist/bench/kube.js [nodes]
 *
 * Prints a markdown table. It asserts nothing about time: machines differ.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { ApiStandIn, makeNode } from '../test/support/kube-apiserver.js';
import { annotationKeys, nodeToPeer, publishAnnotations, VXNET_PREFIX } from '../src/peers/kube-node.js';
import { KubePeerSource } from '../src/peers/kube-watch.js';
import type { Peer } from '../src/peers/source.js';

function mac(i: number): string {
  const h = (n: number): string => n.toString(16).padStart(2, '0');
  return `02:00:${h((i >> 16) & 0xff)}:${h((i >> 8) & 0xff)}:${h(i & 0xff)}:01`;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? '5000');
  if (!Number.isInteger(count) || count < 2 || count > 65_000) throw new Error('nodes must be an integer in 2..65000');
  const keys = annotationKeys(VXNET_PREFIX);
  const standIn = new ApiStandIn({ historyLimit: count * 3 });
  for (let i = 1; i <= count; i++) {
    const ip = `10.${(i >> 8) & 0xff}.${i & 0xff}.1`;
    standIn.addNode(
      makeNode({
        name: `node-${i}`,
        podCIDR: `10.${64 + ((i >> 8) & 0x3f)}.${i & 0xff}.0/24`,
        internalIP: ip,
        annotations: publishAnnotations({ underlayIP: ip, vni: 1, vtepMAC: mac(i), port: 8472 }, keys),
      }),
    );
  }
  await standIn.start();
  const kc = standIn.kubeConfig();
  const rows: Array<[string, string]> = [];
  const time = async <T>(what: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    rows.push([what, `${(performance.now() - t0).toFixed(1)} ms`]);
    return r;
  };
  try {
    const api = kc.makeApiClient(CoreV1Api);
    await api.listNode(); // warm up the client and the JIT
    const list = await time(`list ${count} nodes (real client, decode)`, () => api.listNode());
    const peers = await time(`convert ${count} nodes to peers`, () => list.items.map((n) => nodeToPeer(n, keys)).filter((r) => r.ok).length);
    rows.push(['peers found', String(peers)]);

    let snapshots = 0;
    let last: readonly Peer[] = [];
    let gotUpdate: () => void = () => {};
    const source = new KubePeerSource({
      nodeName: 'node-1',
      kubeConfig: kc,
      annotationPrefix: VXNET_PREFIX,
      watchTimeoutSeconds: 600,
    });
    await time('KubePeerSource.start (list, convert, first snapshot)', () =>
      source.start({
        snapshot: (p) => {
          snapshots++;
          last = p;
          if (p.every((x) => x.port === 4789)) gotUpdate();
        },
        error: (e) => process.stderr.write(`${e.message}\n`),
      }),
    );
    rows.push(['peers in first snapshot', String(last.length)]);
    const before = snapshots;
    const updated = new Promise<void>((resolve) => (gotUpdate = resolve));
    await time(`update all ${count} nodes, until the snapshot has them all`, async () => {
      for (let i = 1; i <= count; i++) {
        standIn.updateNode(`node-${i}`, (n) => {
          const ip = n.status!.addresses![0]!.address;
          n.metadata.annotations = publishAnnotations({ underlayIP: ip, vni: 1, vtepMAC: mac(i), port: 4789 }, keys);
        });
      }
      await Promise.race([updated, new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 60 s')), 60_000).unref())]);
    });
    rows.push(['snapshots for that burst', String(snapshots - before)]);
    await source.stop();
  } finally {
    await standIn.stop();
  }
  const rss = process.memoryUsage().rss / 2 ** 20;
  rows.push(['process RSS after', `${rss.toFixed(0)} MiB`]);
  process.stdout.write(`| Kubernetes peer source, ${count} nodes | result |\n|---|---|\n`);
  for (const [k, v] of rows) process.stdout.write(`| ${k} | ${v} |\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
