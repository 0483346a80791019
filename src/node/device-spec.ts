/**
 * What the agent's device should look like, and what to change to get there: a pure function
 * from (wanted, found) to an ordered list of fixes, so that starting on a fresh node, adopting a
 * device an earlier agent left, and repairing one someone changed are the same computation, and
 * can be tested without a kernel.
 *
 * The device gets: the overlay MTU, the queue length, an alias that marks it as vxnet's (so
 * `vxnet cleanup` recognises it even under an older name), accept_local (ICMP errors the agent
 * writes back come from the device's own address, which the kernel would otherwise drop as a
 * martian), no IPv6 address generation (a TUN device has no link layer; a link-local address
 * would only send router solicitations into it), up, the node's pod-CIDR network address as a
 * /32 (and with IPv6 pods the IPv6 one as a /128, without duplicate address detection: there is
 * no link to duplicate it on), and one route per cluster CIDR via the device, in the main table
 * at the kernel's default metric. Any other address on the device is removed: the device is the
 * agent's alone. Routes of other destinations through the device, or to the same destination at
 * another metric, are left alone.
 *
 * Order matters to the kernel: address generation is switched off before the device comes up
 * (or it makes a link-local address at once), addresses exist before routes name them as the
 * source, and an IPv4 route needs the device up.
 */
import { bigIntToIpv6, ipv6ToBigInt, looksLikeIpv6, numberToIpv4, parseCidr4, parseCidr6 } from '../wire/addr.js';
import { AddrGenMode, defaultPriority, Iff, RtnType, RtTable, type AddrRepr, type Family, type LinkRepr, type RouteRepr } from './netlink/rtnetlink.js';

/** The alias on every device the agent creates; `vxnet cleanup` looks for it. */
export const DEVICE_ALIAS = 'vxnet: pod network TUN device (vxnet cleanup removes it)';

export interface AddressSpec { readonly family: Family; readonly address: string; readonly prefixLen: number }

export interface RouteTarget {
  readonly family: Family;
  readonly dst: string;
  readonly dstLen: number;
  readonly prefSrc?: string | undefined;
  readonly priority: number;
}

export interface DeviceSpec {
  readonly name: string;
  readonly mtu: number;
  readonly queueLength: number;
  readonly alias: string;
  readonly addresses: readonly AddressSpec[];
  readonly routes: readonly RouteTarget[];
}

/** What the kernel has now: the link of that name, its addresses, main-table routes. */
export interface DeviceState {
  readonly link: LinkRepr;
  readonly addresses: readonly AddrRepr[];
  readonly routes: readonly RouteRepr[];
}

/** Every kind of fix, as it appears in `vxnet_kernel_repairs_total{what}`. */
export const REPAIR_KINDS = ['device', 'up', 'mtu', 'queue_length', 'alias', 'accept_local', 'addr_gen_mode', 'address', 'route'] as const;
export type RepairKind = (typeof REPAIR_KINDS)[number];

export type Fix =
  | { readonly what: 'mtu' | 'queue_length'; readonly want: number; readonly got: number | undefined }
  | { readonly what: 'alias'; readonly want: string; readonly got: string | undefined }
  | { readonly what: 'accept_local' | 'addr_gen_mode'; readonly got: number }
  | { readonly what: 'up' }
  | { readonly what: 'address'; readonly action: 'add' | 'delete'; readonly address: AddressSpec }
  | { readonly what: 'route'; readonly route: RouteTarget; readonly got: RouteRepr | undefined };

export interface DeviceOptions {
  readonly device: string;
  readonly mtu: number;
  readonly queueLength: number;
  /** The pod CIDR's network address, the device's /32. */
  readonly address: string;
  readonly clusterCIDR: string;
  /** With IPv6 pods: the IPv6 pod CIDR's network address (a /128) and the IPv6 cluster CIDR. */
  readonly address6?: string | undefined;
  readonly clusterCIDR6?: string | undefined;
}

function network(cidr: string): { dst: string; dstLen: number } {
  if (looksLikeIpv6(cidr)) {
    const c = parseCidr6(cidr);
    return { dst: bigIntToIpv6(c.net), dstLen: c.prefix };
  }
  const c = parseCidr4(cidr);
  return { dst: numberToIpv4(c.net), dstLen: c.prefix };
}

export function deviceSpec(o: DeviceOptions): DeviceSpec {
  const dual = o.address6 !== undefined && o.clusterCIDR6 !== undefined;
  return {
    name: o.device,
    mtu: o.mtu,
    queueLength: o.queueLength,
    alias: DEVICE_ALIAS,
    addresses: [
      { family: 4, address: o.address, prefixLen: 32 },
      ...(dual ? [{ family: 6 as const, address: bigIntToIpv6(ipv6ToBigInt(o.address6!)), prefixLen: 128 }] : []),
    ],
    routes: [
      { family: 4, ...network(o.clusterCIDR), prefSrc: o.address, priority: defaultPriority(4) },
      ...(dual ? [{ family: 6 as const, ...network(o.clusterCIDR6!), priority: defaultPriority(6) }] : []),
    ],
  };
}

/** Whether the spec carries IPv6 (the device then needs IPv6 enabled). */
export function wantsIpv6(spec: DeviceSpec): boolean {
  return spec.addresses.some((a) => a.family === 6);
}

function sameAddress(a: AddressSpec, b: AddrRepr): boolean {
  return a.family === b.family && a.address === b.address && a.prefixLen === b.prefixLen;
}

/** The route in `routes` that holds the place of `r`: same table, destination and metric. */
function routeAt(r: RouteTarget, routes: readonly RouteRepr[]): RouteRepr | undefined {
  return routes.find((x) => x.family === r.family && x.table === RtTable.Main && x.dst === r.dst && x.dstLen === r.dstLen && x.priority === r.priority);
}

function routeIsOurs(r: RouteTarget, got: RouteRepr, index: number): boolean {
  return got.type === RtnType.Unicast && got.oif === index && got.gateway === undefined && (r.prefSrc === undefined || got.prefSrc === r.prefSrc);
}

/** The fixes that turn `state` into `spec`, in the order the kernel needs them; [] when it matches. */
export function planFixes(spec: DeviceSpec, state: DeviceState): Fix[] {
  const fixes: Fix[] = [];
  const l = state.link;
  // undefined: the device has no IPv6 (or no IPv4) at all, so there is nothing to set.
  if (l.addrGenMode !== undefined && l.addrGenMode !== AddrGenMode.None) fixes.push({ what: 'addr_gen_mode', got: l.addrGenMode });
  if (l.mtu !== spec.mtu) fixes.push({ what: 'mtu', want: spec.mtu, got: l.mtu });
  if (l.txQueueLen !== spec.queueLength) fixes.push({ what: 'queue_length', want: spec.queueLength, got: l.txQueueLen });
  if (l.alias !== spec.alias) fixes.push({ what: 'alias', want: spec.alias, got: l.alias });
  if (l.acceptLocal !== undefined && l.acceptLocal !== 1) fixes.push({ what: 'accept_local', got: l.acceptLocal });
  const mine = state.addresses.filter((a) => a.index === l.index);
  for (const a of mine) {
    if (!spec.addresses.some((s) => sameAddress(s, a))) fixes.push({ what: 'address', action: 'delete', address: { family: a.family, address: a.address, prefixLen: a.prefixLen } });
  }
  for (const s of spec.addresses) {
    if (!mine.some((a) => sameAddress(s, a))) fixes.push({ what: 'address', action: 'add', address: s });
  }
  if ((l.flags & Iff.Up) === 0) fixes.push({ what: 'up' });
  for (const r of spec.routes) {
    const got = routeAt(r, state.routes);
    if (!got || !routeIsOurs(r, got, l.index)) fixes.push({ what: 'route', route: r, got });
  }
  return fixes;
}

function cidrText(a: { address?: string; dst?: string; prefixLen?: number; dstLen?: number }): string {
  return `${a.address ?? a.dst}/${a.prefixLen ?? a.dstLen}`;
}

/** One line for the log: what was wrong and what the fix does. */
export function describeFix(f: Fix, device: string): string {
  switch (f.what) {
    case 'mtu':
    case 'queue_length':
    case 'alias':
      return `${f.what} ${f.got === undefined ? '(none)' : JSON.stringify(f.got)} -> ${JSON.stringify(f.want)}`;
    case 'accept_local':
      return `accept_local ${f.got} -> 1`;
    case 'addr_gen_mode':
      return `IPv6 address generation mode ${f.got} -> none`;
    case 'up':
      return `${device} was down; set up`;
    case 'address':
      return `${f.action === 'add' ? 'add' : 'remove stray'} address ${cidrText(f.address)}`;
    case 'route': {
      const want = `${cidrText(f.route)} dev ${device}${f.route.prefSrc ? ` src ${f.route.prefSrc}` : ''}`;
      if (!f.got) return `route ${want} was missing`;
      const was = f.got.gateway ? `via ${f.got.gateway}` : `ifindex ${f.got.oif ?? '?'}${f.got.prefSrc ? ` src ${f.got.prefSrc}` : ''}`;
      return `route ${want} (was ${was}, type ${f.got.type})`;
    }
  }
}
