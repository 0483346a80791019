import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

import {
  buildTable,
  ForwardingTable,
  INDEX_MAX_BITS,
  Lookup,
  TableError,
  type TableInput,
  type TablePeerInput,
} from '../../../src/table/table.js';

/** Dotted quad to uint32, written out by hand so the table's own formatting is not trusted. */
function ip(s: string): number {
  const parts = s.split('.').map(Number);
  assert.equal(parts.length, 4, `bad test address ${s}`);
  return parts.reduce((a, b) => a * 256 + b, 0);
}

function cidr(s: string): { net: number; prefix: number } {
  const [addr, len] = s.split('/');
  return { net: ip(addr!), prefix: Number(len) };
}

function peer(node: string, underlay: string, ...podCIDRs: string[]): TablePeerInput {
  const u = ip(underlay);
  return {
    node,
    underlay: u,
    port: 4789,
    vni: 1,
    mac: Uint8Array.of(0x02, 0, u >>> 24, (u >>> 16) & 0xff, (u >>> 8) & 0xff, u & 0xff),
    podCIDRs: podCIDRs.map(cidr),
  };
}

function input(cluster: string, local: string[], peers: TablePeerInput[]): TableInput {
  const c = cidr(cluster);
  return {
    clusterNet: c.net,
    clusterPrefix: c.prefix,
    localPodCIDRs: local.map(cidr),
    peers,
  };
}

const describeAnswer = (n: number): string =>
  n === Lookup.OutsideCluster
    ? 'OutsideCluster'
    : n === Lookup.NoOwner
      ? 'NoOwner'
      : n === Lookup.Local
        ? 'Local'
        : `slot ${n}`;

interface LookupCase {
  name: string;
  table: TableInput;
  /** Address → expected answer. */
  want: Array<[string, number]>;
  indexBits?: number;
  fine?: boolean;
}

const mixed = input(
  '10.244.0.0/16',
  ['10.244.1.0/24'],
  [
    peer('a', '192.168.101.2', '10.244.2.0/24'),
    peer('b', '192.168.102.2', '10.244.3.0/26', '10.244.3.128/28'),
    peer('c', '192.168.103.2', '10.244.16.0/20'),
    peer('d', '192.168.104.2', '10.244.4.7/32'),
  ],
);

const cases: LookupCase[] = [
  {
    name: 'mixed sizes /20 /24 /26 /28 /32 in a /16: first, last and neighbours',
    table: mixed,
    indexBits: 16,
    fine: false,
    want: [
      ['10.244.0.0', Lookup.NoOwner],
      ['10.244.0.255', Lookup.NoOwner],
      ['10.244.1.0', Lookup.Local],
      ['10.244.1.255', Lookup.Local],
      ['10.244.2.0', 0],
      ['10.244.2.255', 0],
      ['10.244.3.0', 1],
      ['10.244.3.63', 1],
      ['10.244.3.64', Lookup.NoOwner],
      ['10.244.3.127', Lookup.NoOwner],
      ['10.244.3.128', 1],
      ['10.244.3.143', 1],
      ['10.244.3.144', Lookup.NoOwner],
      ['10.244.4.6', Lookup.NoOwner],
      ['10.244.4.7', 3],
      ['10.244.4.8', Lookup.NoOwner],
      ['10.244.15.255', Lookup.NoOwner],
      ['10.244.16.0', 2],
      ['10.244.31.255', 2],
      ['10.244.32.0', Lookup.NoOwner],
      ['10.244.255.255', Lookup.NoOwner],
      ['10.243.255.255', Lookup.OutsideCluster],
      ['10.245.0.0', Lookup.OutsideCluster],
      ['0.0.0.0', Lookup.OutsideCluster],
      ['255.255.255.255', Lookup.OutsideCluster],
    ],
  },
  {
    name: 'lab layout: /16 cluster of /24s has a 256-entry index',
    table: input(
      '10.244.0.0/16',
      ['10.244.1.0/24'],
      [peer('node2', '192.168.102.2', '10.244.2.0/24'), peer('node3', '192.168.103.2', '10.244.3.0/24')],
    ),
    indexBits: 8,
    fine: false,
    want: [
      ['10.244.1.1', Lookup.Local],
      ['10.244.2.1', 0],
      ['10.244.3.254', 1],
      ['10.244.4.0', Lookup.NoOwner],
    ],
  },
  {
    name: 'cluster /8 with /24s has a 65536-entry index',
    table: input(
      '10.0.0.0/8',
      ['10.0.0.0/24'],
      [peer('a', '172.16.0.1', '10.255.255.0/24'), peer('b', '172.16.0.2', '10.128.0.0/24')],
    ),
    indexBits: 16,
    fine: false,
    want: [
      ['10.0.0.0', Lookup.Local],
      ['10.0.1.0', Lookup.NoOwner],
      ['10.255.255.255', 0],
      ['10.255.254.255', Lookup.NoOwner],
      ['10.128.0.0', 1],
      ['10.127.255.255', Lookup.NoOwner],
      ['11.0.0.0', Lookup.OutsideCluster],
      ['9.255.255.255', Lookup.OutsideCluster],
    ],
  },
  {
    name: 'cap exceeded: /8 with /32 and /30 go through the fine path',
    table: input(
      '10.0.0.0/8',
      ['10.0.0.0/24'],
      [
        peer('a', '172.16.0.1', '10.1.0.0/24', '10.2.0.5/32'),
        peer('b', '172.16.0.2', '10.2.0.8/30', '10.2.0.0/30'),
        peer('c', '172.16.0.3', '10.2.0.16/28'),
        peer('d', '172.16.0.4', '10.255.255.255/32'),
      ],
    ),
    indexBits: INDEX_MAX_BITS,
    fine: true,
    want: [
      ['10.0.0.255', Lookup.Local],
      ['10.1.0.77', 0],
      ['10.2.0.0', 1],
      ['10.2.0.3', 1],
      ['10.2.0.4', Lookup.NoOwner],
      ['10.2.0.5', 0],
      ['10.2.0.6', Lookup.NoOwner],
      ['10.2.0.7', Lookup.NoOwner],
      ['10.2.0.8', 1],
      ['10.2.0.11', 1],
      ['10.2.0.12', Lookup.NoOwner],
      ['10.2.0.15', Lookup.NoOwner],
      ['10.2.0.16', 2],
      ['10.2.0.31', 2],
      ['10.2.0.32', Lookup.NoOwner],
      ['10.255.255.254', Lookup.NoOwner],
      ['10.255.255.255', 3],
      ['11.0.0.0', Lookup.OutsideCluster],
    ],
  },
  {
    name: 'pod CIDR equal to the whole cluster CIDR',
    table: input('10.244.0.0/16', [], [peer('all', '192.168.1.1', '10.244.0.0/16')]),
    indexBits: 0,
    want: [
      ['10.244.0.0', 0],
      ['10.244.255.255', 0],
      ['10.245.0.0', Lookup.OutsideCluster],
      ['10.243.255.255', Lookup.OutsideCluster],
    ],
  },
  {
    name: 'local pod CIDR equal to the whole cluster CIDR',
    table: input('10.244.0.0/16', ['10.244.0.0/16'], []),
    want: [
      ['10.244.7.7', Lookup.Local],
      ['10.245.0.0', Lookup.OutsideCluster],
    ],
  },
  {
    name: 'empty table',
    table: input('10.244.0.0/16', [], []),
    indexBits: 0,
    want: [
      ['10.244.0.0', Lookup.NoOwner],
      ['10.244.255.255', Lookup.NoOwner],
      ['10.245.0.0', Lookup.OutsideCluster],
    ],
  },
  {
    name: '/32 cluster with a /32 pod CIDR',
    table: input('10.9.9.9/32', [], [peer('one', '192.168.1.1', '10.9.9.9/32')]),
    indexBits: 0,
    want: [
      ['10.9.9.9', 0],
      ['10.9.9.8', Lookup.OutsideCluster],
      ['10.9.9.10', Lookup.OutsideCluster],
    ],
  },
  {
    name: 'top of the address space (uint32 above 2^31)',
    table: input(
      '255.255.0.0/16',
      ['255.255.0.0/24'],
      [peer('hi', '254.0.0.1', '255.255.255.0/24'), peer('hi32', '254.0.0.2', '255.255.128.1/32')],
    ),
    want: [
      ['255.255.255.255', 0],
      ['255.255.255.0', 0],
      ['255.255.254.255', Lookup.NoOwner],
      ['255.255.128.1', 1],
      ['255.255.128.0', Lookup.NoOwner],
      ['255.255.0.0', Lookup.Local],
      ['255.254.255.255', Lookup.OutsideCluster],
      ['0.0.0.0', Lookup.OutsideCluster],
    ],
  },
  {
    name: 'top half of the address space through the fine path',
    table: input(
      '240.0.0.0/4',
      [],
      [peer('p', '1.1.1.1', '255.255.255.255/32', '240.0.0.0/31'), peer('q', '1.1.1.2', '255.255.255.252/31')],
    ),
    indexBits: INDEX_MAX_BITS,
    fine: true,
    want: [
      ['255.255.255.255', 0],
      ['255.255.255.254', Lookup.NoOwner],
      ['255.255.255.253', 1],
      ['255.255.255.252', 1],
      ['255.255.255.251', Lookup.NoOwner],
      ['240.0.0.0', 0],
      ['240.0.0.1', 0],
      ['240.0.0.2', Lookup.NoOwner],
      ['239.255.255.255', Lookup.OutsideCluster],
    ],
  },
  {
    name: '/1 clusters at both halves of the address space',
    table: input('128.0.0.0/1', [], [peer('x', '1.1.1.1', '128.0.0.0/2'), peer('y', '1.1.1.2', '255.0.0.0/8')]),
    indexBits: 7,
    want: [
      ['128.0.0.0', 0],
      ['191.255.255.255', 0],
      ['192.0.0.0', Lookup.NoOwner],
      ['254.255.255.255', Lookup.NoOwner],
      ['255.0.0.0', 1],
      ['255.255.255.255', 1],
      ['127.255.255.255', Lookup.OutsideCluster],
      ['0.0.0.0', Lookup.OutsideCluster],
    ],
  },
  {
    name: '0.0.0.0/1 cluster',
    table: input('0.0.0.0/1', ['0.0.0.0/8'], [peer('x', '200.1.1.1', '127.255.255.255/32')]),
    indexBits: INDEX_MAX_BITS,
    fine: true,
    want: [
      ['0.0.0.0', Lookup.Local],
      ['0.255.255.255', Lookup.Local],
      ['127.255.255.255', 0],
      ['127.255.255.254', Lookup.NoOwner],
      ['128.0.0.0', Lookup.OutsideCluster],
    ],
  },
];

for (const c of cases) {
  test(`lookup: ${c.name}`, () => {
    const t = new ForwardingTable(buildTable(c.table));
    if (c.indexBits !== undefined) assert.equal(t.indexBits, c.indexBits, 'indexBits');
    if (c.fine !== undefined) assert.equal(t.fineCount > 0, c.fine, `fineCount ${t.fineCount}`);
    for (const [addr, want] of c.want) {
      const got = t.lookup(ip(addr));
      assert.equal(got, want, `lookup(${addr}): got ${describeAnswer(got)}, want ${describeAnswer(want)}`);
    }
  });
}

test('lookup accepts an int32-typed address the same as its uint32 value', () => {
  const t = new ForwardingTable(buildTable(cases[3]!.table));
  const hi = new ForwardingTable(buildTable(cases[8]!.table));
  const hiFine = new ForwardingTable(buildTable(cases[9]!.table));
  assert.equal(t.lookup(ip('10.2.0.5') | 0), 0);
  assert.equal(hi.lookup(ip('255.255.128.1') | 0), 1);
  assert.equal(hi.lookup(-1), 0); // 255.255.255.255
  assert.equal(hiFine.lookup(-1), 0);
  assert.equal(hiFine.lookup(ip('255.255.255.253') | 0), 1);
  assert.equal(hiFine.lookup(ip('255.255.255.251') | 0), Lookup.NoOwner);
});

test('per-slot columns, names and pod CIDRs round-trip', () => {
  const peers = [
    { ...peer('nöde-ü', '192.168.101.2', '10.244.2.0/24', '10.244.9.0/28'), port: 8472, vni: 0xff_ffff },
    { ...peer('', '192.168.102.2'), node: 'b', port: 65535, vni: 0 },
    peer('c', '255.255.255.255'),
  ];
  const t = new ForwardingTable(buildTable(input('10.244.0.0/16', [], peers)));
  assert.equal(t.peerCount, 3);
  peers.forEach((p, slot) => {
    assert.equal(t.nodeName(slot), p.node);
    assert.equal(t.underlay[slot], p.underlay);
    assert.equal(t.port[slot], p.port);
    assert.equal(t.vni[slot], p.vni);
    assert.deepEqual([...t.mac.subarray(slot * 6, slot * 6 + 6)], [...p.mac]);
    assert.deepEqual(t.podCIDRs(slot), p.podCIDRs);
    assert.equal(t.slotForUnderlay(p.underlay), slot);
  });
  assert.equal(t.slotForUnderlay(ip('192.168.101.3')), -1);
  assert.equal(t.slotForUnderlay(0), -1);
  assert.equal(t.slotForUnderlay(-1), 2, 'int32 -1 is 255.255.255.255');
  assert.throws(() => t.nodeName(3), RangeError);
  assert.throws(() => t.podCIDRs(-1), RangeError);
});

test('empty table: no peers, no underlay matches', () => {
  const t = new ForwardingTable(buildTable(input('10.244.0.0/16', [], [])));
  assert.equal(t.peerCount, 0);
  assert.equal(t.slotForUnderlay(0), -1);
  assert.equal(t.slotForUnderlay(ip('192.168.1.1')), -1);
  assert.equal(t.underlay.length, 0);
  assert.equal(t.mac.length, 0);
});

test('a peer with no pod CIDRs is still found by underlay and owns nothing', () => {
  const t = new ForwardingTable(buildTable(input('10.244.0.0/16', [], [peer('bare', '192.168.1.9')])));
  assert.equal(t.slotForUnderlay(ip('192.168.1.9')), 0);
  assert.equal(t.lookup(ip('10.244.0.1')), Lookup.NoOwner);
  assert.deepEqual(t.podCIDRs(0), []);
});

interface ErrorCase {
  name: string;
  table: () => TableInput;
  /** Every fragment must appear in the message. */
  mentions: string[];
}

const errorCases: ErrorCase[] = [
  {
    name: 'identical pod CIDRs on two nodes',
    table: () =>
      input('10.244.0.0/16', [], [peer('a', '1.0.0.1', '10.244.2.0/24'), peer('b', '1.0.0.2', '10.244.2.0/24')]),
    mentions: ['10.244.2.0/24', 'node "a"', 'node "b"', 'overlaps'],
  },
  {
    name: 'nested pod CIDRs on two nodes',
    table: () =>
      input('10.244.0.0/16', [], [peer('a', '1.0.0.1', '10.244.0.0/20'), peer('b', '1.0.0.2', '10.244.15.128/25')]),
    mentions: ['10.244.15.128/25', '10.244.0.0/20', 'node "a"', 'node "b"'],
  },
  {
    name: 'a /32 inside a wider CIDR that ends after it',
    table: () =>
      input(
        '10.0.0.0/8',
        [],
        [peer('a', '1.0.0.1', '10.1.0.0/16', '10.2.0.0/24'), peer('b', '1.0.0.2', '10.1.200.3/32')],
      ),
    mentions: ['10.1.200.3/32', '10.1.0.0/16'],
  },
  {
    name: 'a /32 at the last address of another node\'s /24',
    table: () =>
      input('10.244.0.0/16', [], [peer('a', '1.0.0.1', '10.244.2.0/24'), peer('b', '1.0.0.2', '10.244.2.255/32')]),
    mentions: ['10.244.2.255/32', '10.244.2.0/24', 'node "a"', 'node "b"'],
  },
  {
    name: 'peer overlaps the local pod CIDR',
    table: () => input('10.244.0.0/16', ['10.244.1.0/24'], [peer('a', '1.0.0.1', '10.244.1.128/26')]),
    mentions: ['10.244.1.128/26', 'the local node', 'node "a"'],
  },
  {
    name: 'one node lists overlapping CIDRs',
    table: () => input('10.244.0.0/16', [], [peer('a', '1.0.0.1', '10.244.1.0/24', '10.244.1.0/25')]),
    mentions: ['10.244.1.0/25', '10.244.1.0/24', 'node "a"'],
  },
  {
    name: 'pod CIDR outside the cluster CIDR',
    table: () => input('10.244.0.0/16', [], [peer('far', '1.0.0.1', '10.245.0.0/24')]),
    mentions: ['node "far"', '10.245.0.0/24', 'outside the cluster CIDR 10.244.0.0/16'],
  },
  {
    name: 'pod CIDR wider than the cluster CIDR',
    table: () => input('10.244.0.0/16', [], [peer('wide', '1.0.0.1', '10.0.0.0/8')]),
    mentions: ['node "wide"', '10.0.0.0/8', 'outside'],
  },
  {
    name: 'local pod CIDR outside the cluster CIDR',
    table: () => input('10.244.0.0/16', ['192.168.0.0/24'], []),
    mentions: ['the local node', '192.168.0.0/24'],
  },
  {
    name: 'pod CIDR with host bits set',
    table: () => input('10.244.0.0/16', [], [peer('sloppy', '1.0.0.1', '10.244.2.1/24')]),
    mentions: ['node "sloppy"', '10.244.2.1/24', '10.244.2.0/24'],
  },
  {
    name: 'pod CIDR prefix length 33',
    table: () => input('10.244.0.0/16', [], [peer('long', '1.0.0.1', '10.244.2.0/33')]),
    mentions: ['node "long"', '33'],
  },
  {
    name: 'duplicate underlay address',
    table: () =>
      input('10.244.0.0/16', [], [peer('a', '192.168.7.7', '10.244.2.0/24'), peer('b', '192.168.7.7', '10.244.3.0/24')]),
    mentions: ['"a"', '"b"', '192.168.7.7'],
  },
  {
    name: 'duplicate node name',
    table: () =>
      input('10.244.0.0/16', [], [peer('twin', '1.0.0.1', '10.244.2.0/24'), peer('twin', '1.0.0.2', '10.244.3.0/24')]),
    mentions: ['node "twin"', 'twice'],
  },
  {
    name: 'empty node name',
    table: () => input('10.244.0.0/16', [], [peer('', '1.0.0.1')]),
    mentions: ['peer 0', 'empty'],
  },
  {
    name: 'VNI wider than 24 bits',
    table: () => input('10.244.0.0/16', [], [{ ...peer('v', '1.0.0.1'), vni: 0x100_0000 }]),
    mentions: ['node "v"', 'VNI 16777216'],
  },
  {
    name: 'port 0',
    table: () => input('10.244.0.0/16', [], [{ ...peer('p', '1.0.0.1'), port: 0 }]),
    mentions: ['node "p"', 'port 0'],
  },
  {
    name: 'five-byte MAC',
    table: () => input('10.244.0.0/16', [], [{ ...peer('m', '1.0.0.1'), mac: new Uint8Array(5) }]),
    mentions: ['node "m"', 'MAC'],
  },
  {
    name: 'underlay not a uint32',
    table: () => input('10.244.0.0/16', [], [{ ...peer('u', '1.0.0.1'), underlay: -5 }]),
    mentions: ['node "u"', 'underlay'],
  },
  {
    name: 'cluster CIDR with host bits set',
    table: () => input('10.244.1.0/16', [], []),
    mentions: ['cluster CIDR 10.244.1.0/16', '10.244.0.0/16'],
  },
  {
    name: 'cluster CIDR /0',
    table: () => input('0.0.0.0/0', [], []),
    mentions: ['cluster CIDR', '1..32'],
  },
];

for (const c of errorCases) {
  test(`buildTable rejects: ${c.name}`, () => {
    assert.throws(
      () => buildTable(c.table()),
      (err: unknown) => {
        assert.ok(err instanceof TableError, `got ${String(err)}, want a TableError`);
        assert.equal(err.name, 'TableError');
        for (const m of c.mentions) {
          assert.ok(err.message.includes(m), `message ${JSON.stringify(err.message)} does not mention ${m}`);
        }
        return true;
      },
    );
  });
}

test('attach rejects a buffer that is not a table', () => {
  assert.throws(() => new ForwardingTable(new SharedArrayBuffer(8)), TypeError);
  assert.throws(() => new ForwardingTable(new SharedArrayBuffer(4096)), TypeError);
  const sab = buildTable(mixed);
  const truncated = new SharedArrayBuffer(sab.byteLength - 8);
  new Uint8Array(truncated).set(new Uint8Array(sab, 0, truncated.byteLength));
  assert.throws(() => new ForwardingTable(truncated), TypeError);
});

/** Every address the mixed table's cases mention, plus each slot's underlay. */
const probeAddrs = cases[0]!.want.map(([a]) => ip(a));
const probeUnderlays = [...mixed.peers.map((p) => p.underlay), ip('192.168.101.3'), 0];

function answers(t: ForwardingTable): { lookup: number[]; underlay: number[] } {
  return { lookup: probeAddrs.map((a) => t.lookup(a)), underlay: probeUnderlays.map((a) => t.slotForUnderlay(a)) };
}

test('a second ForwardingTable on the same buffer shares memory and answers the same', () => {
  const sab = buildTable(mixed);
  const first = new ForwardingTable(sab);
  const second = new ForwardingTable(sab);
  assert.deepEqual(answers(second), answers(first));
  assert.equal(second.underlay.buffer, sab, 'views are over the shared buffer, not a copy');
  assert.equal(second.nodeName(3), 'd');
});

test('a worker thread attached to the buffer answers the same', async () => {
  const sab = buildTable(mixed);
  const want = answers(new ForwardingTable(sab));
  const moduleURL = new URL('../../../src/table/table.js', import.meta.url).href;
  // The worker imports the built module and answers the same probes; nothing is copied but the
  // probe lists, since a SharedArrayBuffer is shared, not cloned, by postMessage.
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.moduleURL).then(({ ForwardingTable }) => {
      const t = new ForwardingTable(workerData.sab);
      parentPort.postMessage({
        lookup: workerData.addrs.map((a) => t.lookup(a)),
        underlay: workerData.underlays.map((a) => t.slotForUnderlay(a)),
        names: Array.from({ length: t.peerCount }, (_, s) => t.nodeName(s)),
        shared: t.underlay.buffer === workerData.sab,
      });
    });
  `;
  const worker = new Worker(source, {
    eval: true,
    workerData: { sab, moduleURL, addrs: probeAddrs, underlays: probeUnderlays },
  });
  try {
    const got = await new Promise<{ lookup: number[]; underlay: number[]; names: string[]; shared: boolean }>(
      (resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      },
    );
    assert.deepEqual({ lookup: got.lookup, underlay: got.underlay }, want);
    assert.deepEqual(got.names, ['a', 'b', 'c', 'd']);
    assert.equal(got.shared, true);
  } finally {
    await worker.terminate();
  }
});
