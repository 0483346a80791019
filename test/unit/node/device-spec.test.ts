/**
 * The device plan without a kernel: for each named state of the device (fresh, as wanted, a
 * stray link-local, the route stolen by another device, a wrong source, a competing metric,
 * dual stack, no IPv6 at all) the exact fixes, in the order the kernel needs them; the log text
 * of each kind of fix; and which existing devices may be adopted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEVICE_ALIAS, deviceSpec, describeFix, planFixes, type DeviceState, type Fix } from '../../../src/node/device-spec.js';
import { adoptionProblem } from '../../../src/node/device.js';
import { AddrGenMode, Iff, TunType, type AddrRepr, type LinkRepr, type RouteRepr } from '../../../src/node/netlink/rtnetlink.js';

const SPEC = deviceSpec({ device: 'vxnet0', mtu: 1450, queueLength: 5000, address: '10.244.1.0', clusterCIDR: '10.244.0.0/16' });
const SPEC6 = deviceSpec({
  device: 'vxnet0', mtu: 1450, queueLength: 5000, address: '10.244.1.0', clusterCIDR: '10.244.0.0/16',
  address6: 'fd00:10:244:1::', clusterCIDR6: 'fd00:10:244::/56',
});

const LINK: LinkRepr = {
  index: 7, name: 'vxnet0', flags: Iff.Up, mtu: 1450, txQueueLen: 5000, alias: DEVICE_ALIAS, kind: 'tun',
  tun: { type: TunType.Tun, multiQueue: true, persist: true, vnetHeader: true, queues: 0 }, acceptLocal: 1, addrGenMode: AddrGenMode.None,
};
const ADDR: AddrRepr = { family: 4, index: 7, address: '10.244.1.0', prefixLen: 32, flags: 0x80, scope: 0 };
const ROUTE: RouteRepr = {
  family: 4, table: 254, dst: '10.244.0.0', dstLen: 16, oif: 7, gateway: undefined, prefSrc: '10.244.1.0', priority: 0, protocol: 4, scope: 253, type: 1,
};
const GOOD: DeviceState = { link: LINK, addresses: [ADDR], routes: [ROUTE] };

/** The fixes as "what action? detail" strings, for readable comparisons. */
function summary(fixes: Fix[]): string[] {
  return fixes.map((f) => (f.what === 'address' ? `address ${f.action} ${f.address.address}/${f.address.prefixLen}` : f.what === 'route' ? `route ${f.route.dst}/${f.route.dstLen}` : f.what));
}

test('planFixes: the fixes for each state, in the kernel\'s order', () => {
  const cases: Array<{ name: string; spec?: typeof SPEC; state: DeviceState; want: string[] }> = [
    { name: 'as wanted', state: GOOD, want: [] },
    {
      name: 'a fresh device (as TUNSETIFF makes it)',
      state: { link: { ...LINK, flags: 0, mtu: 1500, txQueueLen: 500, alias: undefined, acceptLocal: 0, addrGenMode: AddrGenMode.Eui64 }, addresses: [], routes: [] },
      want: ['addr_gen_mode', 'mtu', 'queue_length', 'alias', 'accept_local', 'address add 10.244.1.0/32', 'up', 'route 10.244.0.0/16'],
    },
    {
      name: 'a stray link-local and an old pod CIDR address',
      state: { ...GOOD, addresses: [ADDR, { ...ADDR, family: 6, address: 'fe80::1', prefixLen: 64 }, { ...ADDR, address: '10.244.9.0' }] },
      want: ['address delete fe80::1/64', 'address delete 10.244.9.0/32'],
    },
    { name: 'the route taken by another device', state: { ...GOOD, routes: [{ ...ROUTE, oif: 9 }] }, want: ['route 10.244.0.0/16'] },
    { name: 'the route with another source', state: { ...GOOD, routes: [{ ...ROUTE, prefSrc: '10.244.9.0' }] }, want: ['route 10.244.0.0/16'] },
    { name: 'the route via a gateway', state: { ...GOOD, routes: [{ ...ROUTE, gateway: '192.168.101.1' }] }, want: ['route 10.244.0.0/16'] },
    { name: 'a blackhole in its place', state: { ...GOOD, routes: [{ ...ROUTE, type: 6 }] }, want: ['route 10.244.0.0/16'] },
    {
      name: 'ours missing, another at metric 100 left alone',
      state: { ...GOOD, routes: [{ ...ROUTE, oif: 2, priority: 100 }] },
      want: ['route 10.244.0.0/16'],
    },
    { name: 'a route of another table does not count', state: { ...GOOD, routes: [{ ...ROUTE, table: 100 }] }, want: ['route 10.244.0.0/16'] },
    { name: 'down', state: { ...GOOD, link: { ...LINK, flags: 0 } }, want: ['up'] },
    { name: 'no IPv6 on the device: no address generation mode to set', state: { ...GOOD, link: { ...LINK, addrGenMode: undefined } }, want: [] },
    {
      name: 'dual stack on an IPv4-only device',
      spec: SPEC6,
      state: GOOD,
      want: ['address add fd00:10:244:1::/128', 'route fd00:10:244::/56'],
    },
    {
      name: 'dual stack as wanted',
      spec: SPEC6,
      state: {
        link: LINK,
        addresses: [ADDR, { ...ADDR, family: 6, address: 'fd00:10:244:1::', prefixLen: 128 }],
        routes: [ROUTE, { ...ROUTE, family: 6, dst: 'fd00:10:244::', dstLen: 56, prefSrc: undefined, priority: 1024, scope: 0 }],
      },
      want: [],
    },
  ];
  for (const c of cases) {
    const got = summary(planFixes(c.spec ?? SPEC, c.state));
    assert.deepEqual(got, c.want, `${c.name}: got ${JSON.stringify(got)}, want ${JSON.stringify(c.want)}`);
  }
});

test('describeFix: what the log says', () => {
  const cases: Array<{ fix: Fix; want: string }> = [
    { fix: { what: 'mtu', want: 1450, got: 1300 }, want: 'mtu 1300 -> 1450' },
    { fix: { what: 'alias', want: 'x', got: undefined }, want: 'alias (none) -> "x"' },
    { fix: { what: 'accept_local', got: 0 }, want: 'accept_local 0 -> 1' },
    { fix: { what: 'up' }, want: 'vxnet0 was down; set up' },
    { fix: { what: 'address', action: 'delete', address: { family: 6, address: 'fe80::1', prefixLen: 64 } }, want: 'remove stray address fe80::1/64' },
    { fix: { what: 'route', route: SPEC.routes[0]!, got: undefined }, want: 'route 10.244.0.0/16 dev vxnet0 src 10.244.1.0 was missing' },
    { fix: { what: 'route', route: SPEC.routes[0]!, got: { ...ROUTE, oif: 9 } }, want: 'route 10.244.0.0/16 dev vxnet0 src 10.244.1.0 (was ifindex 9 src 10.244.1.0, type 1)' },
  ];
  for (const c of cases) assert.equal(describeFix(c.fix, 'vxnet0'), c.want);
});

test('adoptionProblem: which existing device of the name the agent may take', () => {
  const cases: Array<{ name: string; link: LinkRepr; want: RegExp | undefined }> = [
    { name: 'a persistent multi-queue TUN nobody holds', link: LINK, want: undefined },
    { name: 'a kernel too old to describe TUN devices', link: { ...LINK, tun: undefined }, want: undefined },
    { name: 'a bridge', link: { ...LINK, kind: 'bridge', tun: undefined }, want: /^vxnet0 already exists and is a bridge device, not a TUN device/ },
    { name: 'a NIC', link: { ...LINK, kind: undefined, tun: undefined }, want: /a device of no link kind \(a physical NIC\?\)/ },
    { name: 'a TAP device', link: { ...LINK, tun: { ...LINK.tun!, type: TunType.Tap } }, want: /is a TAP device \(layer 2\)/ },
    { name: 'a single-queue TUN', link: { ...LINK, tun: { ...LINK.tun!, multiQueue: false } }, want: /single-queue TUN device/ },
    { name: 'held by another process', link: { ...LINK, tun: { ...LINK.tun!, queues: 2 } }, want: /held by another process \(2 queues attached\)/ },
  ];
  for (const c of cases) {
    const got = adoptionProblem(c.link);
    if (c.want === undefined) assert.equal(got, undefined, c.name);
    else assert.match(got ?? '(none)', c.want, c.name);
  }
});
