import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadKubeConfig } from './dist/src/peers/kube-client.js';
import { listNodes } from './dist/src/peers/kube-list.js';
import { nodeToPeer, annotationKeys } from './dist/src/peers/kube-node.js';
import { HttpMethod, IsomorphicFetchHttpLibrary, RequestContext } from '@kubernetes/client-node';
const N = Number(process.argv[2] ?? 15000);
const child = spawn(process.execPath, ['dist/test/support/kube-apiserver.js', '--scale', String(N), '--kubeconfig', '/tmp/probe-kc'], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((r) => createInterface(child.stdout).once('line', r));
const kc = loadKubeConfig('/tmp/probe-kc');
const keys = annotationKeys('vxnet.io');
for (let r = 0; r < 3; r++) {
  // raw stream timing
  const ctx = new RequestContext(kc.getCurrentCluster().server + '/api/v1/nodes?resourceVersion=0', HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  let t0 = performance.now();
  const res = await new IsomorphicFetchHttpLibrary().send(ctx).toPromise();
  const th = performance.now() - t0;
  let chunks = 0, bytes = 0;
  for await (const c of res.body.stream()) { chunks++; bytes += c.length; }
  console.log(`raw: headers ${th.toFixed(0)} ms, body ${(performance.now() - t0).toFixed(0)} ms, ${chunks} chunks, ${(bytes/1e6).toFixed(0)} MB`);
  t0 = performance.now(); const c0 = process.cpuUsage();
  let peers = 0;
  const l = await listNodes(kc, { resourceVersion: '0' }, (n) => { if (nodeToPeer(n, keys).ok) peers++; }, 60000);
  const cu = process.cpuUsage(c0);
  console.log(`listNodes+convert ${(performance.now() - t0).toFixed(0)} ms cpu ${((cu.user + cu.system)/1000).toFixed(0)} ms, ${l.nodes} nodes ${peers} peers`);
}
child.kill();
