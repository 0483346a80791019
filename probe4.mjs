import { kubeletNode } from './dist/test/support/kube-nodes.js';
import { NodeListDecoder } from './dist/src/peers/kube-list-decode.js';
import { nodeToPeer, annotationKeys } from './dist/src/peers/kube-node.js';
const N = 15000;
const items = []; for (let i = 1; i <= N; i++) items.push(JSON.stringify(kubeletNode(i)));
const body = Buffer.from(`{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[${items.join(',')}]}`);
const keys = annotationKeys('vxnet.io');
for (let r = 0; r < 4; r++) {
  let n = 0; let peers = 0;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  const d = new NodeListDecoder((node) => { n++; });
  for (let o = 0; o < body.length; o += 65536) d.push(body.subarray(o, o + 65536));
  d.end();
  const t1 = performance.now();
  const d2 = new NodeListDecoder((node) => { if (nodeToPeer(node, keys).ok) peers++; });
  for (let o = 0; o < body.length; o += 65536) d2.push(body.subarray(o, o + 65536));
  d2.end();
  const t2 = performance.now();
  const c = process.cpuUsage(c0);
  console.log(`decode ${(t1 - t0).toFixed(0)} ms, decode+convert ${(t2 - t1).toFixed(0)} ms, nodes ${n}, peers ${peers}, MB ${(body.length / 1e6).toFixed(0)}, cpu ${((c.user + c.system) / 1000).toFixed(0)} ms`);
}
let t0 = performance.now(); JSON.parse(body.toString()); console.log('JSON.parse whole', (performance.now() - t0).toFixed(0));
