import { kubeletNode } from './dist/test/support/kube-nodes.js';
const N = 15000;
const items = []; for (let i = 1; i <= N; i++) items.push(kubeletNode(i));
let t0 = performance.now();
const txt = JSON.stringify({ kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items });
console.log('stringify', (performance.now() - t0).toFixed(0), 'ms', (txt.length / 1e6).toFixed(1), 'MB');
for (let k = 0; k < 3; k++) { t0 = performance.now(); JSON.parse(txt); console.log('parse', (performance.now() - t0).toFixed(0)); }
const buf = Buffer.from(txt);
t0 = performance.now(); const s2 = buf.toString('utf8'); console.log('utf8 decode', (performance.now() - t0).toFixed(0));
t0 = performance.now(); const td = new TextDecoder().decode(buf); console.log('TextDecoder', (performance.now() - t0).toFixed(0));
