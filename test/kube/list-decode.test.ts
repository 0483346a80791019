/**
 * The streaming NodeList decoder against an independent reference: JSON.parse of the whole text,
 * then the same fields picked by hand. Every list is fed in every way the network could cut it
 * (each split point, single bytes), pretty-printed and compact, with escapes and UTF-8 in the
 * places a field-skipping scanner gets wrong. Broken input must end in NodeListDecodeError,
 * never in another exception, a hang or a wrong Node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNode, NodeListDecodeError, NodeListDecoder } from '../../src/peers/kube-list-decode.js';
import type { NodeLike } from '../../src/peers/kube-node.js';
import { kubeletNode } from '../support/kube-nodes.js';
import { Rng } from '../rng.js';

/** The reference: what a peer needs, picked from a fully parsed Node. */
function reference(node: Record<string, unknown>): NodeLike {
  const out: NodeLike = {};
  const m = node['metadata'] as Record<string, unknown> | null | undefined;
  if (m !== undefined) {
    out.metadata = {};
    if (m !== null) {
      if (m['name'] !== undefined && m['name'] !== null) out.metadata.name = m['name'] as string;
      if (m['resourceVersion'] !== undefined && m['resourceVersion'] !== null) out.metadata.resourceVersion = m['resourceVersion'] as string;
      if (m['annotations'] !== undefined) out.metadata.annotations = (m['annotations'] ?? undefined) as Record<string, string> | undefined;
    }
  }
  const s = node['spec'] as Record<string, unknown> | null | undefined;
  if (s !== undefined) {
    out.spec = {};
    if (s !== null) {
      if (s['podCIDR'] !== undefined && s['podCIDR'] !== null) out.spec.podCIDR = s['podCIDR'] as string;
      if (s['podCIDRs'] !== undefined) out.spec.podCIDRs = (s['podCIDRs'] ?? undefined) as string[] | undefined;
    }
  }
  const st = node['status'] as Record<string, unknown> | null | undefined;
  if (st !== undefined) {
    out.status = {};
    if (st !== null && st['addresses'] !== undefined) out.status.addresses = (st['addresses'] ?? undefined) as Array<{ type: string; address: string }> | undefined;
  }
  return out;
}

/** Removes keys whose value is undefined, so deepEqual compares what is there. */
function clean<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function decodeAll(text: string | Buffer, cut: (n: number) => number[]): { nodes: NodeLike[]; rv: string } {
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  const nodes: NodeLike[] = [];
  const d = new NodeListDecoder((n) => nodes.push(n));
  let at = 0;
  for (const end of [...cut(buf.length), buf.length]) {
    d.push(buf.subarray(at, end));
    at = end;
  }
  return { nodes, rv: d.end().resourceVersion };
}

const tricky = {
  metadata: {
    name: 'n-ü-\u00e9',
    resourceVersion: '42',
    labels: { 'a"b': 'x}y', 'c\\': '[[[', 'emoji': '🙂' },
    annotations: { 'vxnet.io/backend-data': '{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}', 'k\u003cx': 'a\\"b', 'k2': '' },
    managedFields: [{ fieldsV1: { 'f:metadata': { 'f:labels': { 'f:a"b': {} } } } }],
  },
  spec: { unschedulable: true, taints: [{ key: 'k', effect: 'NoSchedule', value: null }], podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00::/64'] },
  status: { capacity: { cpu: '8' }, nodeInfo: { n: -1.5e3, t: false }, addresses: [{ type: 'InternalIP', address: '192.168.1.2' }], images: [[], {}, [[{}]]] },
};

const CASES: Array<{ name: string; nodes: Array<Record<string, unknown>>; text?: (items: string) => string }> = [
  { name: 'kubelet-shaped Nodes', nodes: [kubeletNode(1), kubeletNode(2, { annotated: false }), kubeletNode(300)] as unknown as Array<Record<string, unknown>> },
  { name: 'escapes, UTF-8, brackets inside strings', nodes: [tricky] },
  { name: 'fields missing, null or empty', nodes: [{}, { metadata: null, spec: null, status: null }, { metadata: { annotations: null }, spec: { podCIDRs: null }, status: { addresses: [] } }] },
  { name: 'no Nodes', nodes: [] },
  {
    name: 'items before metadata, keys unknown to us at the top',
    nodes: [tricky],
    text: (items) => `{"items":${items},"apiVersion":"v1","metadata":{"resourceVersion":"7"},"extra":[1,{"a":"}"}],"n":12,"b":true,"kind":"NodeList"}`,
  },
];

function listText(nodes: Array<Record<string, unknown>>, pretty: boolean, wrap?: (items: string) => string): string {
  const items = JSON.stringify(nodes, null, pretty ? 2 : undefined);
  if (wrap) return wrap(items);
  return JSON.stringify({ kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items: '@@' }, null, pretty ? 2 : undefined).replace('"@@"', items);
}

test('decodes what JSON.parse decodes, however the bytes are cut', () => {
  for (const c of CASES) {
    for (const pretty of [false, true]) {
      const text = listText(c.nodes, pretty, c.text);
      const want = c.nodes.map((n) => clean(reference(n)));
      const label = `${c.name}${pretty ? ', pretty' : ''}`;
      const whole = decodeAll(text, () => []);
      assert.deepEqual(clean(whole.nodes), want, `${label}: in one chunk`);
      assert.equal(whole.rv, '7', `${label}: resourceVersion`);
      const bytes = Buffer.byteLength(text);
      // Every single split point (two chunks), and one byte at a time.
      for (let at = 1; at < bytes; at += bytes > 4000 ? 97 : 1) {
        assert.deepEqual(clean(decodeAll(text, () => [at]).nodes), want, `${label}: split at byte ${at}`);
      }
      assert.deepEqual(clean(decodeAll(text, (n) => Array.from({ length: n - 1 }, (_, i) => i + 1)).nodes), want, `${label}: one byte at a time`);
    }
  }
});

test('decodeNode reads one Node and rejects trailing bytes', () => {
  assert.deepEqual(clean(decodeNode(JSON.stringify(tricky))), clean(reference(tricky)));
  assert.throws(() => decodeNode(`${JSON.stringify(tricky)} x`), NodeListDecodeError);
  assert.throws(() => decodeNode('{"metadata":{"name":"a"}'), /ends early/);
});

test('broken lists: each is a NodeListDecodeError that says what was expected where', () => {
  const cases: Array<{ name: string; text: string; want: RegExp }> = [
    { name: 'not an object', text: '[]', want: /expected the NodeList to start with \{ at byte 0/ },
    { name: 'an item that is not an object', text: '{"items":[1]}', want: /expected a Node object in items at byte 10/ },
    { name: 'trailing comma in items', text: '{"items":[{},]}', want: /expected a Node object in items at byte 13/ },
    { name: 'trailing comma at the top', text: '{"kind":"NodeList",}', want: /expected a key at byte 19/ },
    { name: 'missing colon', text: '{"items" []}', want: /expected : at byte 9/ },
    { name: 'garbage after the list', text: '{"items":[]} {}', want: /expected nothing after the end of the NodeList at byte 13/ },
    { name: 'a bad scalar in a Node', text: '{"items":[{"metadata":{"name":nope}}]}', want: /expected a JSON value/ },
    { name: 'a name that is not a string', text: '{"items":[{"metadata":{"name":5}}]}', want: /expected a string/ },
    { name: 'metadata that is not an object', text: '{"items":[{"metadata":"x"}]}', want: /expected \{/ },
    { name: 'cut inside a Node', text: '{"items":[{"metadata":{"name":"a"', want: /ended early, after 33 bytes and 0 Nodes/ },
    { name: 'cut after the last Node', text: '{"items":[{}]', want: /ended early, after 13 bytes and 1 Nodes/ },
    { name: 'empty body', text: '', want: /ended early, after 0 bytes/ },
  ];
  for (const c of cases) {
    assert.throws(() => decodeAll(c.text, () => []), (err: unknown) => {
      assert.ok(err instanceof NodeListDecodeError, `${c.name}: ${String(err)}`);
      assert.match(err.message, c.want, c.name);
      return true;
    });
  }
});

test('a value larger than the limit is refused, not held', () => {
  const big = `{"items":[{"metadata":{"name":"a","annotations":{"x":"${'y'.repeat(5000)}"}}}]}`;
  const nodes: NodeLike[] = [];
  const d = new NodeListDecoder((n) => nodes.push(n), 1024);
  assert.throws(() => {
    for (let i = 0; i < big.length; i += 100) d.push(Buffer.from(big.slice(i, i + 100)));
  }, /larger than 1024 bytes/);
  assert.deepEqual(nodes, []);
});

/** The reference keeps fields of any type; the decoder keeps only well-typed ones (its guards). */
function shapesMatch(nodes: NodeLike[]): boolean {
  return nodes.every((n) =>
    (n.metadata?.annotations === undefined || (typeof n.metadata.annotations === 'object' && !Array.isArray(n.metadata.annotations) && Object.values(n.metadata.annotations).every((v) => typeof v === 'string'))) &&
    (n.metadata?.name === undefined || typeof n.metadata.name === 'string') &&
    (n.metadata?.resourceVersion === undefined || typeof n.metadata.resourceVersion === 'string') &&
    (n.spec?.podCIDR === undefined || typeof n.spec.podCIDR === 'string') &&
    (n.spec?.podCIDRs === undefined || (Array.isArray(n.spec.podCIDRs) && n.spec.podCIDRs.every((c) => typeof c === 'string'))) &&
    (n.status?.addresses === undefined || (Array.isArray(n.status.addresses) && n.status.addresses.every((a) => a !== null && typeof a === 'object' && typeof a.type === 'string' && typeof a.address === 'string'))));
}

test('random damage to a list never throws anything but NodeListDecodeError, and agrees with JSON.parse where that still parses', (t) => {
  const seed = 0x5eed_0b1e;
  const rng = new Rng(seed);
  const base = Buffer.from(listText([kubeletNode(1), tricky, kubeletNode(2)] as unknown as Array<Record<string, unknown>>, false));
  const bytes = Buffer.from('{}[]",:\\ 0an"');
  let compared = 0;
  for (let round = 0; round < 2000; round++) {
    const buf = Buffer.from(base);
    const edits = rng.int(1, 4);
    for (let e = 0; e < edits; e++) buf[rng.int(0, buf.length - 1)] = rng.chance(0.7) ? bytes[rng.int(0, bytes.length - 1)]! : rng.int(0, 255);
    const cutAt = rng.int(0, buf.length);
    const text = rng.chance(0.2) ? buf.subarray(0, cutAt) : buf;
    // Where the damage left valid JSON, the decoder must agree with the reference exactly.
    let want: NodeLike[] | undefined;
    try {
      const items = (JSON.parse(text.toString()) as { items?: unknown }).items;
      if (Array.isArray(items) && items.every((n) => n !== null && typeof n === 'object' && !Array.isArray(n))) {
        want = items.map((n) => clean(reference(n as Record<string, unknown>)));
      }
    } catch {
      // not JSON any more
    }
    try {
      const got = decodeAll(text, (n) => (n > 2 ? [rng.int(1, n - 1)] : []));
      if (want !== undefined && shapesMatch(want)) {
        compared++;
        assert.deepEqual(clean(got.nodes), want, `seed ${seed} round ${round}: differs from JSON.parse`);
      }
      // When it decodes, every Node it delivered has the shape the converter expects.
      for (const n of got.nodes) {
        if (n.metadata?.annotations !== undefined) assert.equal(typeof n.metadata.annotations, 'object');
        if (n.spec?.podCIDRs !== undefined) assert.ok(Array.isArray(n.spec.podCIDRs));
        for (const a of n.status?.addresses ?? []) assert.equal(typeof a.address, 'string');
      }
    } catch (err) {
      assert.ok(err instanceof NodeListDecodeError, `seed ${seed} round ${round}: ${String(err)}`);
    }
  }
  // Most single-byte edits land inside strings and leave valid JSON: the comparison is not vacuous.
  t.diagnostic(`${compared} of 2000 damaged lists were still JSON and matched the reference`);
  assert.ok(compared >= 300, `only ${compared} of 2000 damaged lists were still JSON`);
});
