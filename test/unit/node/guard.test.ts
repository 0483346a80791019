/**
 * The kernel guard's bookkeeping with scripted stand-ins for the device and the nftables table
 * (no kernel, no events): what each check counts and logs, a re-created device counted once,
 * /healthz failing while a repair fails and passing once one succeeds (each transition logged
 * once), a table failure reported next to a device that is fine, and no check after stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceSpec, type Fix } from '../../../src/node/device-spec.js';
import type { Convergence } from '../../../src/node/device.js';
import { KernelGuard, type GuardedDevice, type GuardedTable } from '../../../src/node/guard.js';
import type { Fields, Level } from '../../../src/agent/log.js';

type Step = Convergence | Error;

/** A device whose every converge() takes the next scripted result (then: nothing to do). */
class ScriptedDevice implements GuardedDevice {
  readonly name = 'vxnet0';
  readonly ifindex = 7;
  readonly spec = deviceSpec({ device: 'vxnet0', mtu: 1450, queueLength: 5000, address: '10.244.1.0', clusterCIDR: '10.244.0.0/16' });
  constructor(private readonly steps: Step[]) {}
  converge(): Convergence {
    const s = this.steps.shift() ?? { fixes: [], device: undefined };
    if (s instanceof Error) throw s;
    return s;
  }
}

class ScriptedTable implements GuardedTable {
  readonly name = 'inet vxnet';
  constructor(private readonly steps: Array<string | undefined | Error>) {}
  concerns(): boolean { return true; }
  async check(): Promise<string | undefined> {
    const s = this.steps.shift();
    if (s instanceof Error) throw s;
    return s;
  }
}

function recorder(): { log: (l: Level, msg: string, f?: Fields) => void; lines: Array<{ level: Level; msg: string; f: Fields }> } {
  const lines: Array<{ level: Level; msg: string; f: Fields }> = [];
  return { log: (level, msg, f = {}) => lines.push({ level, msg, f }), lines };
}

const ROUTE_FIX: Fix = { what: 'route', route: { family: 4, dst: '10.244.0.0', dstLen: 16, prefSrc: '10.244.1.0', priority: 0 }, got: undefined };
const MTU_FIX: Fix = { what: 'mtu', want: 1450, got: 1300 };

test('each fix is counted and logged with what, detail and trigger; a re-created device counts once', async () => {
  const r = recorder();
  const g = new KernelGuard({
    device: new ScriptedDevice([
      { fixes: [ROUTE_FIX, MTU_FIX], device: undefined },
      { fixes: [MTU_FIX, ROUTE_FIX, { what: 'up' }], device: 'vxnet0 was deleted; created again' },
    ]),
    log: r.log,
  });
  assert.deepEqual(await g.check('netlink event'), ['route', 'mtu']);
  assert.deepEqual(await g.check('periodic check'), ['device']);
  assert.deepEqual(await g.check('periodic check'), [], 'nothing left to fix');
  const got = g.repairs();
  assert.deepEqual({ route: got.route, mtu: got.mtu, device: got.device, up: got.up, nftables: got.nftables }, { route: 1, mtu: 1, device: 1, up: 0, nftables: 0 });
  const repaired = r.lines.filter((l) => l.msg === 'kernel state repaired').map((l) => [l.level, l.f['what'], l.f['detail'], l.f['trigger']]);
  assert.deepEqual(repaired, [
    ['warn', 'route', 'route 10.244.0.0/16 dev vxnet0 src 10.244.1.0 was missing', 'netlink event'],
    ['warn', 'mtu', 'mtu 1300 -> 1450', 'netlink event'],
    ['warn', 'device', 'vxnet0 was deleted; created again', 'periodic check'],
  ]);
  const device = r.lines.find((l) => l.f['what'] === 'device');
  assert.deepEqual(device?.f['steps'], ['mtu 1300 -> 1450', 'route 10.244.0.0/16 dev vxnet0 src 10.244.1.0 was missing', 'vxnet0 was down; set up']);
  assert.deepEqual(g.health(), { healthy: true, reason: 'kernel state as configured' });
});

test('health fails while a repair fails and passes after one succeeds; each transition is logged once', async () => {
  const r = recorder();
  const conflict = new Error('vxnet0 already exists and is a bridge device, not a TUN device');
  const g = new KernelGuard({ device: new ScriptedDevice([conflict, conflict, { fixes: [], device: 'vxnet0 was deleted; created again' }]), log: r.log });
  await g.check('netlink event');
  assert.deepEqual(g.health(), { healthy: false, reason: `cannot repair the kernel state: ${conflict.message}` });
  await g.check('periodic check');
  assert.equal(g.health().healthy, false);
  await g.check('netlink event');
  assert.deepEqual(g.health(), { healthy: true, reason: 'kernel state as configured' });
  assert.deepEqual(r.lines.filter((l) => l.level !== 'warn').map((l) => l.msg), [
    'cannot repair the kernel state; /healthz fails until it can',
    'kernel state repairable again',
  ], 'one error line for two failed checks with the same error, one line when it recovers');
  assert.equal(g.repairs().device, 1);
});

test('the nftables table: repaired and counted, or its failure reported beside a healthy device', async () => {
  const r = recorder();
  const g = new KernelGuard({
    device: new ScriptedDevice([]),
    nftables: new ScriptedTable(['table inet vxnet was missing; installed again', new Error('nft refused: no nf_tables'), undefined]),
    log: r.log,
  });
  assert.deepEqual(await g.check('netlink event'), ['nftables']);
  assert.equal(g.repairs().nftables, 1);
  await g.check('netlink event');
  assert.deepEqual(g.health(), { healthy: false, reason: 'cannot repair the kernel state: nftables table inet vxnet: nft refused: no nf_tables' });
  await g.check('periodic check');
  assert.equal(g.health().healthy, true);
});

test('checks asked for while one runs run once more after it; none run after stop', async () => {
  const r = recorder();
  let runs = 0;
  const table: GuardedTable = {
    name: 'inet vxnet', concerns: () => true,
    check: async () => { runs++; await new Promise((res) => setTimeout(res, 20)); return undefined; },
  };
  const g = new KernelGuard({ device: new ScriptedDevice([]), nftables: table, log: r.log });
  const first = g.check('a');
  void g.check('b');
  void g.check('c');
  await first;
  await new Promise((res) => setTimeout(res, 60));
  assert.equal(runs, 2, 'the first check, then one more for the two asked for meanwhile');
  g.stop();
  assert.deepEqual(await g.check('after stop'), []);
  assert.equal(runs, 2);
});
