/**
 * The forwarding table against a deliberately naive reference on random peer sets, in the way
 * wireguard-go tests its allowed-IPs trie against a slow router. The reference does nothing
 * clever: a plain list of pod CIDRs, scanned linearly for the longest one that holds the address,
 * with containment decided by ordinary arithmetic rather than masks and shifts.
 *
 * The seed is printed on failure; rerun one with VXNET_TABLE_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  buildTable,
  ForwardingTable,
  INDEX_MAX_BITS,
  Lookup,
  TableError,
  type TableInput,
  type TablePeerInput,
} from '../../../src/table/table.js';
import { Rng } from '../../rng.js';


interface NaiveCidr {
  first: number;
  size: number;
  prefix: number;
  owner: number;
}

/** The reference: every question answered by a linear scan. */
class NaiveTable {
  private readonly cidrs: NaiveCidr[] = [];
  private readonly clusterFirst: number;
  private readonly clusterSize: number;

  constructor(private readonly input: TableInput) {
    this.clusterFirst = input.clusterNet;
    this.clusterSize = 2 ** (32 - input.clusterPrefix);
    for (const c of input.localPodCIDRs) this.add(c, Lookup.Local);
    input.peers.forEach((p, slot) => {
      for (const c of p.podCIDRs) this.add(c, slot);
    });
  }

  private add(c: { net: number; prefix: number }, owner: number): void {
    this.cidrs.push({ first: c.net, size: 2 ** (32 - c.prefix), prefix: c.prefix, owner });
  }

  lookup(dst: number): number {
    if (dst < this.clusterFirst || dst >= this.clusterFirst + this.clusterSize) {
      return Lookup.OutsideCluster;
    }
    let best: NaiveCidr | undefined;
    for (const c of this.cidrs) {
      if (dst >= c.first && dst < c.first + c.size && (best === undefined || c.prefix > best.prefix)) {
        best = c;
      }
    }
    return best === undefined ? Lookup.NoOwner : best.owner;
  }

  slotForUnderlay(addr: number): number {
    return this.input.peers.findIndex((p) => p.underlay === addr);
  }

  /** Whether two CIDRs share an address, by ranges. */
  static overlaps(a: { net: number; prefix: number }, b: { net: number; prefix: number }): boolean {
    const aEnd = a.net + 2 ** (32 - a.prefix);
    const bEnd = b.net + 2 ** (32 - b.prefix);
    return a.net < bEnd && b.net < aEnd;
  }
}

/** uint32 to dotted quad, for failure messages. */
function dotted(a: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(a / 2 ** shift) % 256).join('.');
}

/** Rounds `addr` down to a multiple of the block size of `prefix`, by arithmetic. */
function alignDown(addr: number, prefix: number): number {
  const size = 2 ** (32 - prefix);
  return addr - (addr % size);
}

interface Scenario {
  input: TableInput;
  /** Pod CIDRs of every owner, for picking boundary addresses. */
  cidrs: Array<{ net: number; prefix: number }>;
}

function randomScenario(rng: Rng): Scenario {
  const clusterPrefix = rng.int(8, 24);
  const clusterNet = alignDown(rng.u32(), clusterPrefix);
  const clusterSize = 2 ** (32 - clusterPrefix);
  // Most clusters use one pod-CIDR size, as Kubernetes does; some mix sizes freely.
  const typical = rng.int(clusterPrefix, Math.min(32, clusterPrefix + rng.int(0, 12)));
  const mixed = rng.chance(0.5);
  // Hot spots pack small CIDRs into few buckets so that fine buckets hold many rows.
  const hot = Array.from({ length: rng.int(1, 3) }, () => clusterNet + rng.int(0, clusterSize - 1));

  const accepted: Array<{ net: number; prefix: number }> = [];
  const attempts = rng.int(0, 120);
  for (let i = 0; i < attempts; i++) {
    let prefix = typical;
    if (mixed || rng.chance(0.1)) prefix = rng.int(clusterPrefix, 32);
    if (rng.chance(0.02)) prefix = clusterPrefix;
    const around = rng.chance(0.4)
      ? rng.pick(hot) + rng.int(-256, 256)
      : clusterNet + rng.int(0, clusterSize - 1);
    const clamped = Math.min(Math.max(around, clusterNet), clusterNet + clusterSize - 1);
    const c = { net: alignDown(clamped, prefix), prefix };
    if (!accepted.some((a) => NaiveTable.overlaps(a, c))) accepted.push(c);
  }

  const peerCount = rng.int(0, 40);
  const peers: TablePeerInput[] = [];
  const underlays = new Set<number>();
  for (let slot = 0; slot < peerCount; slot++) {
    let u = rng.chance(0.3) ? 0xc0a8_0000 + rng.int(0, 64) : rng.u32();
    while (underlays.has(u)) u = rng.u32();
    underlays.add(u);
    peers.push({
      node: `node-${slot}-${rng.u32().toString(36)}`,
      underlay: u,
      port: rng.int(1, 65535),
      vni: rng.int(0, 0xff_ffff),
      mac: Uint8Array.from({ length: 6 }, () => rng.int(0, 255)),
      podCIDRs: [],
    });
  }
  const local: Array<{ net: number; prefix: number }> = [];
  for (const c of accepted) {
    if (peers.length === 0 || rng.chance(0.1)) local.push(c);
    else (rng.pick(peers).podCIDRs as Array<{ net: number; prefix: number }>).push(c);
  }
  return { input: { clusterNet, clusterPrefix, localPodCIDRs: local, peers }, cidrs: accepted };
}

/** Addresses worth asking about: both edges of every CIDR and of the cluster, and random ones. */
function probes(rng: Rng, s: Scenario, count: number): number[] {
  const { clusterNet, clusterPrefix } = s.input;
  const clusterLast = clusterNet + 2 ** (32 - clusterPrefix) - 1;
  const out: number[] = [];
  const near = (a: number): void => {
    for (let d = -1; d <= 1; d++) {
      const x = a + d;
      if (x >= 0 && x <= 0xffff_ffff) out.push(x);
    }
  };
  near(clusterNet);
  near(clusterLast);
  for (const c of s.cidrs) {
    near(c.net);
    near(c.net + 2 ** (32 - c.prefix) - 1);
  }
  // Bucket edges at the capped index granularity.
  const granularity = Math.min(clusterPrefix + INDEX_MAX_BITS, 32);
  for (let i = 0; i < 20; i++) {
    near(alignDown(clusterNet + rng.int(0, clusterLast - clusterNet), granularity));
  }
  while (out.length < count) {
    const r = rng.int(0, 9);
    if (r < 6) out.push(rng.int(clusterNet, clusterLast));
    else if (r < 8 && s.cidrs.length > 0) {
      const c = rng.pick(s.cidrs);
      out.push(c.net + rng.int(0, 2 ** (32 - c.prefix) - 1));
    } else out.push(rng.u32());
  }
  return out;
}

const baseSeed = Number(process.env['VXNET_TABLE_SEED'] ?? Date.now() % 2 ** 31);
const TABLES = 400;
const PROBES_PER_TABLE = 2000;

test(`differential: lookup and slotForUnderlay match the naive table (seed ${baseSeed})`, () => {
  let fineTables = 0;
  let cappedTables = 0;
  for (let i = 0; i < TABLES; i++) {
    const seed = (baseSeed + i) >>> 0;
    const rng = new Rng(seed);
    const s = randomScenario(rng);
    const where = `seed ${seed} (rerun: VXNET_TABLE_SEED=${seed})`;
    let table: ForwardingTable;
    try {
      table = new ForwardingTable(buildTable(s.input));
    } catch (err) {
      assert.fail(`${where}: buildTable threw on a valid peer set: ${String(err)}`);
    }
    if (table.fineCount > 0) fineTables++;
    if (table.indexBits === INDEX_MAX_BITS) cappedTables++;
    const naive = new NaiveTable(s.input);
    for (const addr of probes(rng, s, PROBES_PER_TABLE)) {
      const got = table.lookup(addr);
      const want = naive.lookup(addr);
      if (got !== want) {
        assert.fail(`${where}: lookup(${dotted(addr)}) got ${got}, want ${want}`);
      }
      // The data path may hand over an address read as int32; the answer must not change.
      const gotSigned = table.lookup(addr | 0);
      if (gotSigned !== want) {
        assert.fail(`${where}: lookup(${dotted(addr)} as int32) got ${gotSigned}, want ${want}`);
      }
    }
    const underlays = [...s.input.peers.map((p) => p.underlay)];
    for (let k = 0; k < 50; k++) underlays.push(rng.chance(0.5) ? rng.u32() : 0xc0a8_0000 + rng.int(0, 128));
    for (const u of underlays) {
      const got = table.slotForUnderlay(u);
      const want = naive.slotForUnderlay(u);
      if (got !== want) assert.fail(`${where}: slotForUnderlay(${dotted(u)}) got ${got}, want ${want}`);
    }
    s.input.peers.forEach((p, slot) => {
      if (table.nodeName(slot) !== p.node) assert.fail(`${where}: nodeName(${slot})`);
      assert.deepEqual(table.podCIDRs(slot), p.podCIDRs, `${where}: podCIDRs(${slot})`);
    });
  }
  // The generator must actually reach the fine path and the cap, or this test proves less
  // than it claims.
  assert.ok(fineTables > TABLES / 20, `only ${fineTables} of ${TABLES} tables used fine buckets`);
  assert.ok(cappedTables > TABLES / 20, `only ${cappedTables} of ${TABLES} tables hit the index cap`);
});

test(`differential: a peer set is rejected exactly when the naive check finds an overlap (seed ${baseSeed})`, () => {
  let rejected = 0;
  let accepted = 0;
  for (let i = 0; i < 1000; i++) {
    const seed = (baseSeed + 7919 * (i + 1)) >>> 0;
    const rng = new Rng(seed);
    const clusterPrefix = rng.int(8, 24);
    const clusterNet = alignDown(rng.u32(), clusterPrefix);
    const clusterEnd = clusterNet + 2 ** (32 - clusterPrefix);
    const span = Math.min(2 ** (32 - clusterPrefix), 4096);
    const randomPrefix = (): number => rng.int(Math.max(clusterPrefix, 20), 32);
    // A disjoint set, then one intruder placed at or next to an edge of a member, where an
    // off-by-one in the overlap check would hide. One intruder means one possible overlap, so a
    // missed overlap is not covered up by another one the check does catch.
    const cidrs: Array<{ net: number; prefix: number }> = [];
    for (let n = rng.int(1, 8); n > 0; n--) {
      const prefix = randomPrefix();
      const c = { net: alignDown(clusterNet + rng.int(0, span - 1), prefix), prefix };
      if (!cidrs.some((a) => NaiveTable.overlaps(a, c))) cidrs.push(c);
    }
    const host = rng.pick(cidrs);
    const hostEnd = host.net + 2 ** (32 - host.prefix);
    const at = rng.pick([host.net - 1, host.net, host.net + 1, hostEnd - 2, hostEnd - 1, hostEnd]);
    const prefix = rng.chance(0.5) ? 32 : randomPrefix();
    const intruder = { net: alignDown(Math.min(Math.max(at, clusterNet), clusterEnd - 1), prefix), prefix };
    const overlap = cidrs.some((a) => NaiveTable.overlaps(a, intruder));
    cidrs.splice(rng.int(0, cidrs.length), 0, intruder);

    const peers: TablePeerInput[] = cidrs.map((c, slot) => ({
      node: `n${slot}`,
      underlay: slot + 1,
      port: 4789,
      vni: 1,
      mac: new Uint8Array(6),
      podCIDRs: [c],
    }));
    const input: TableInput = { clusterNet, clusterPrefix, localPodCIDRs: [], peers };
    const where = `seed ${seed} (intruder ${dotted(intruder.net)}/${intruder.prefix})`;
    if (overlap) {
      rejected++;
      assert.throws(() => buildTable(input), TableError, `${where}: overlap not rejected`);
    } else {
      accepted++;
      assert.doesNotThrow(() => buildTable(input), `${where}: disjoint CIDRs rejected`);
    }
  }
  assert.ok(rejected > 100 && accepted > 100, `rejected ${rejected}, accepted ${accepted}: generator is lopsided`);
});
