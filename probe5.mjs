import { kubeletNode } from './dist/test/support/kube-nodes.js';
const N = 15000;
const items = []; for (let i = 1; i <= N; i++) items.push(JSON.stringify(kubeletNode(i)));
const body = Buffer.from(`[${items.join(',')}]`);
function loopA(buf) { // current
  let depth = 0, inString = false, escaped = false, ends = 0;
  const n = buf.length;
  for (let i = 0; i < n; i++) {
    const b = buf[i];
    if (inString) { if (escaped) escaped = false; else if (b === 92) escaped = true; else if (b === 34) inString = false; }
    else if (b === 34) inString = true;
    else if (b === 123 || b === 91) depth++;
    else if (b === 125 || b === 93) { if (--depth === 1) ends++; }
  }
  return ends;
}
function loopB(buf) { // indexOf for strings
  let depth = 0, ends = 0, i = 0;
  const n = buf.length;
  while (i < n) {
    const b = buf[i++];
    if (b === 34) {
      for (;;) {
        const q = buf.indexOf(34, i);
        if (q < 0) return -1;
        let k = q - 1; while (k >= i && buf[k] === 92) k--;
        i = q + 1;
        if (((q - 1 - k) & 1) === 0) break;
      }
    } else if (b === 123 || b === 91) depth++;
    else if (b === 125 || b === 93) { if (--depth === 1) ends++; }
  }
  return ends;
}
function loopC(buf) { // inner string loop separate
  let depth = 0, ends = 0, i = 0;
  const n = buf.length;
  while (i < n) {
    let b = buf[i++];
    if (b === 34) {
      while (i < n) { b = buf[i++]; if (b === 34) break; if (b === 92) i++; }
    } else if (b === 123 || b === 91) depth++;
    else if (b === 125 || b === 93) { if (--depth === 1) ends++; }
  }
  return ends;
}
for (const [name, f] of [['A', loopA], ['B', loopB], ['C', loopC], ['A', loopA], ['B', loopB], ['C', loopC]]) {
  const t0 = performance.now(); const e = f(body); console.log(name, (performance.now() - t0).toFixed(0), 'ms', e);
}
