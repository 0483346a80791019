/**
 * rtnetlink messages for links, addresses and routes (linux/rtnetlink.h, linux/if_link.h,
 * linux/if_addr.h), as small plain values: `encode*` builds a request, `parse*` reads a message
 * the kernel sent (a dump entry, an answer or an event) into a repr, or undefined when the body
 * is too short for its fixed header. Only what the agent sets, checks or cleans up is modelled;
 * everything else in a message is skipped.
 *
 * Every kernel setting of the node goes through here, with CAP_NET_ADMIN and no /proc/sys write:
 * an IPv4 devconf value such as accept_local is an IFLA_INET_CONF attribute of RTM_NEWLINK
 * (nested under IFLA_AF_SPEC / AF_INET), which is what lets the agent run with /proc/sys
 * read-only, as container runtimes mount it. Note the asymmetry the kernel has there: a dump
 * reports IFLA_INET_CONF as a flat array of u32 (entry i is devconf i + 1), while a set takes
 * nested attributes whose type is the devconf id.
 */
import { addressToBytes, bytesToAddress } from '../../wire/addr.js';
import { attributes, LITTLE_ENDIAN, NetlinkWriter, NlmFlags, readString, readU32, readU8, type NetlinkMessage } from './wire.js';

/** Message types. */
export const Rtm = {
  NewLink: 16, DelLink: 17, GetLink: 18,
  NewAddr: 20, DelAddr: 21, GetAddr: 22,
  NewRoute: 24, DelRoute: 25, GetRoute: 26,
} as const;

/** Multicast groups as bind(2) bits (RTMGRP_*), for the event socket. */
export const RtmGroup = { Link: 0x1, Ipv4Addr: 0x10, Ipv4Route: 0x40, Ipv6Addr: 0x100, Ipv6Route: 0x400 } as const;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** Interface flags (linux/if.h). */
export const Iff = { Up: 0x1, LowerUp: 0x10000 } as const;

/** struct ifinfomsg, 16 bytes. */
export const IFINFO = { family: 0, type: 2, index: 4, flags: 8, change: 12 } as const;
export const IFINFO_LEN = IFINFO.change + 4;
/** struct ifaddrmsg, 8 bytes. */
export const IFADDR = { family: 0, prefixLen: 1, flags: 2, scope: 3, index: 4 } as const;
export const IFADDR_LEN = IFADDR.index + 4;
/** struct rtmsg, 12 bytes. */
export const RTMSG = { family: 0, dstLen: 1, srcLen: 2, tos: 3, table: 4, protocol: 5, scope: 6, type: 7, flags: 8 } as const;
export const RTMSG_LEN = RTMSG.flags + 4;

/** Link attributes (IFLA_*). */
export const Ifla = { IfName: 3, Mtu: 4, TxQueueLen: 13, OperState: 16, LinkInfo: 18, IfAlias: 20, AfSpec: 26 } as const;
/** Inside IFLA_LINKINFO. */
export const IflaInfo = { Kind: 1, Data: 2 } as const;
/** Inside IFLA_INFO_DATA of a "tun" link (kernel 4.15 and later). */
export const IflaTun = { Owner: 1, Group: 2, Type: 3, Pi: 4, VnetHdr: 5, Persist: 6, MultiQueue: 7, NumQueues: 8, NumDisabledQueues: 9 } as const;
/** IFLA_TUN_TYPE values: the TUNSETIFF type flags. */
export const TunType = { Tun: 1, Tap: 2 } as const;
/** Inside IFLA_AF_SPEC / AF_INET. */
export const IflaInet = { Conf: 1 } as const;
/** Inside IFLA_AF_SPEC / AF_INET6. */
export const IflaInet6 = { AddrGenMode: 8 } as const;
/** IFLA_INET6_ADDR_GEN_MODE values. */
export const AddrGenMode = { Eui64: 0, None: 1, StablePrivacy: 2, Random: 3 } as const;
/** IPv4 devconf ids (linux/ip.h IPV4_DEVCONF_*), the ones the agent sets. */
export const Ipv4Devconf = { AcceptLocal: 23 } as const;

/** Address attributes (IFA_*) and flags. */
export const Ifa = { Address: 1, Local: 2, Flags: 8 } as const;
export const IfaFlag = { NoDad: 0x02 } as const;

/** Route attributes (RTA_*) and rtmsg values. */
export const Rta = { Dst: 1, Oif: 4, Gateway: 5, Priority: 6, PrefSrc: 7, Table: 15 } as const;
export const RtTable = { Main: 254, Local: 255 } as const;
export const RtProto = { Kernel: 2, Boot: 3, Static: 4 } as const;
export const RtScope = { Universe: 0, Link: 253, Host: 254 } as const;
export const RtnType = { Unicast: 1, Local: 2 } as const;

export type Family = 4 | 6;

export interface TunInfo {
  /** TunType.Tun or TunType.Tap. */
  readonly type: number;
  readonly multiQueue: boolean;
  readonly persist: boolean;
  readonly vnetHeader: boolean;
  /** Queues attached now, enabled or not; reported for multi-queue devices only (else 0). */
  readonly queues: number;
}

export interface LinkRepr {
  readonly index: number;
  readonly name: string;
  readonly flags: number;
  readonly mtu: number | undefined;
  readonly txQueueLen: number | undefined;
  readonly alias: string | undefined;
  /** IFLA_INFO_KIND: "tun", "vxlan", "bridge", ...; undefined for a device without one (a NIC). */
  readonly kind: string | undefined;
  /** For kind "tun", when the kernel reports it. */
  readonly tun: TunInfo | undefined;
  /** net.ipv4.conf.<dev>.accept_local, when the device has IPv4. */
  readonly acceptLocal: number | undefined;
  /** IFLA_INET6_ADDR_GEN_MODE, when the device has IPv6. */
  readonly addrGenMode: number | undefined;
}

export interface AddrRepr {
  readonly family: Family;
  readonly index: number;
  readonly address: string;
  readonly prefixLen: number;
  readonly flags: number;
  readonly scope: number;
}

export interface RouteRepr {
  readonly family: Family;
  readonly table: number;
  /** The destination network; "0.0.0.0" or "::" for a default route. */
  readonly dst: string;
  readonly dstLen: number;
  readonly oif: number | undefined;
  readonly gateway: string | undefined;
  readonly prefSrc: string | undefined;
  readonly priority: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
}

/** A route the agent installs: `dst/dstLen dev <index> [src prefSrc]`, table main, unicast. */
export interface RouteSpec {
  readonly family: Family;
  readonly dst: string;
  readonly dstLen: number;
  readonly oif: number;
  readonly prefSrc?: string | undefined;
  /** The kernel's default when none is given: 0 for IPv4, 1024 for IPv6. */
  readonly priority: number;
}

/** The metric the kernel gives a route added without one, per family. */
export function defaultPriority(family: Family): number {
  return family === 4 ? 0 : 1024;
}

function familyOf(af: number): Family | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

function afOf(family: Family): number {
  return family === 4 ? AF_INET : AF_INET6;
}

function addressBytes(address: string): Uint8Array {
  return addressToBytes(address);
}

function addressString(v: Uint8Array | undefined, family: Family): string | undefined {
  if (!v || v.length !== (family === 4 ? 4 : 16)) return undefined;
  return bytesToAddress(v);
}

function view(body: Uint8Array): DataView {
  return new DataView(body.buffer, body.byteOffset, body.byteLength);
}

// ---- requests ------------------------------------------------------------------------------

function linkHeader(w: NetlinkWriter, index: number, flags = 0, change = 0): void {
  const at = w.reserve(IFINFO_LEN);
  w.u8(at + IFINFO.family, AF_UNSPEC);
  w.i32(at + IFINFO.index, index);
  w.u32(at + IFINFO.flags, flags);
  w.u32(at + IFINFO.change, change);
}

/** RTM_GETLINK for one link, by index (> 0) or else by name. */
export function encodeGetLink(seq: number, by: { index: number } | { name: string }): Uint8Array {
  const w = new NetlinkWriter(Rtm.GetLink, NlmFlags.Request, seq);
  linkHeader(w, 'index' in by ? by.index : 0);
  if ('name' in by) w.attrString(Ifla.IfName, by.name);
  return w.finish();
}

/** RTM_GETLINK dump of every link. */
export function encodeDumpLinks(seq: number): Uint8Array {
  const w = new NetlinkWriter(Rtm.GetLink, NlmFlags.Request | NlmFlags.Dump, seq);
  linkHeader(w, 0);
  return w.finish();
}

/** What one RTM_NEWLINK on an existing link changes; absent fields stay as they are. */
export interface LinkChange {
  readonly up?: boolean;
  readonly mtu?: number;
  readonly txQueueLen?: number;
  readonly alias?: string;
  readonly name?: string;
  readonly acceptLocal?: number;
  readonly addrGenMode?: number;
}

export function encodeSetLink(seq: number, index: number, c: LinkChange): Uint8Array {
  const w = new NetlinkWriter(Rtm.NewLink, NlmFlags.Request | NlmFlags.Ack, seq);
  linkHeader(w, index, c.up ? Iff.Up : 0, c.up === undefined ? 0 : Iff.Up);
  if (c.name !== undefined) w.attrString(Ifla.IfName, c.name);
  if (c.mtu !== undefined) w.attrU32(Ifla.Mtu, c.mtu);
  if (c.txQueueLen !== undefined) w.attrU32(Ifla.TxQueueLen, c.txQueueLen);
  if (c.alias !== undefined) w.attrString(Ifla.IfAlias, c.alias);
  if (c.acceptLocal !== undefined || c.addrGenMode !== undefined) {
    const spec = w.beginNest(Ifla.AfSpec);
    if (c.acceptLocal !== undefined) {
      const inet = w.beginNest(AF_INET);
      const conf = w.beginNest(IflaInet.Conf);
      w.attrU32(Ipv4Devconf.AcceptLocal, c.acceptLocal);
      w.endNest(conf);
      w.endNest(inet);
    }
    if (c.addrGenMode !== undefined) {
      const inet6 = w.beginNest(AF_INET6);
      w.attrU8(IflaInet6.AddrGenMode, c.addrGenMode);
      w.endNest(inet6);
    }
    w.endNest(spec);
  }
  return w.finish();
}

export function encodeDelLink(seq: number, index: number): Uint8Array {
  const w = new NetlinkWriter(Rtm.DelLink, NlmFlags.Request | NlmFlags.Ack, seq);
  linkHeader(w, index);
  return w.finish();
}

/** RTM_NEWADDR (create or replace) or RTM_DELADDR of `address/prefixLen` on link `index`. */
export function encodeAddr(seq: number, op: 'add' | 'delete', a: { family: Family; index: number; address: string; prefixLen: number; noDad?: boolean }): Uint8Array {
  const w = new NetlinkWriter(op === 'add' ? Rtm.NewAddr : Rtm.DelAddr,
    NlmFlags.Request | NlmFlags.Ack | (op === 'add' ? NlmFlags.Create | NlmFlags.Replace : 0), seq);
  const at = w.reserve(IFADDR_LEN);
  w.u8(at + IFADDR.family, afOf(a.family));
  w.u8(at + IFADDR.prefixLen, a.prefixLen);
  w.u8(at + IFADDR.flags, a.noDad ? IfaFlag.NoDad : 0);
  w.u8(at + IFADDR.scope, RtScope.Universe);
  w.u32(at + IFADDR.index, a.index);
  const bytes = addressBytes(a.address);
  // IPv4 distinguishes the local address from the peer's; without a peer they are the same.
  if (a.family === 4) w.attr(Ifa.Local, bytes);
  w.attr(Ifa.Address, bytes);
  return w.finish();
}

/** RTM_GETADDR dump of one family's addresses (strict checking lets the kernel filter by link). */
export function encodeDumpAddrs(seq: number, family: Family, index = 0): Uint8Array {
  const w = new NetlinkWriter(Rtm.GetAddr, NlmFlags.Request | NlmFlags.Dump, seq);
  const at = w.reserve(IFADDR_LEN);
  w.u8(at + IFADDR.family, afOf(family));
  w.u32(at + IFADDR.index, index);
  return w.finish();
}

/** RTM_NEWROUTE (create or replace) of a device route in the main table. */
export function encodeReplaceRoute(seq: number, r: RouteSpec): Uint8Array {
  const w = new NetlinkWriter(Rtm.NewRoute, NlmFlags.Request | NlmFlags.Ack | NlmFlags.Create | NlmFlags.Replace, seq);
  const at = w.reserve(RTMSG_LEN);
  w.u8(at + RTMSG.family, afOf(r.family));
  w.u8(at + RTMSG.dstLen, r.dstLen);
  w.u8(at + RTMSG.table, RtTable.Main);
  w.u8(at + RTMSG.protocol, RtProto.Static);
  // What `ip route add <dst> dev <dev>` does: an IPv4 route with no gateway is scope link.
  w.u8(at + RTMSG.scope, r.family === 4 ? RtScope.Link : RtScope.Universe);
  w.u8(at + RTMSG.type, RtnType.Unicast);
  w.attr(Rta.Dst, addressBytes(r.dst));
  w.attrU32(Rta.Oif, r.oif);
  if (r.prefSrc !== undefined) w.attr(Rta.PrefSrc, addressBytes(r.prefSrc));
  w.attrU32(Rta.Priority, r.priority);
  return w.finish();
}

/** RTM_GETROUTE dump of one family's routes (strict checking lets the kernel filter by table). */
export function encodeDumpRoutes(seq: number, family: Family): Uint8Array {
  const w = new NetlinkWriter(Rtm.GetRoute, NlmFlags.Request | NlmFlags.Dump, seq);
  const at = w.reserve(RTMSG_LEN);
  w.u8(at + RTMSG.family, afOf(family));
  w.u8(at + RTMSG.table, RtTable.Main);
  return w.finish();
}

// ---- answers and events --------------------------------------------------------------------

/** A link message (RTM_NEWLINK, RTM_DELLINK) as a repr. */
export function parseLink(m: NetlinkMessage): LinkRepr | undefined {
  if (m.body.length < IFINFO_LEN) return undefined;
  const v = view(m.body);
  const attrs = attributes(m.body.subarray(IFINFO_LEN));
  const info = attrs.get(Ifla.LinkInfo);
  const infoAttrs = info ? attributes(info) : undefined;
  const kind = readString(infoAttrs?.get(IflaInfo.Kind));
  let tun: TunInfo | undefined;
  const data = infoAttrs?.get(IflaInfo.Data);
  if (kind === 'tun' && data) {
    const t = attributes(data);
    tun = {
      type: readU8(t.get(IflaTun.Type)) ?? 0,
      multiQueue: readU8(t.get(IflaTun.MultiQueue)) === 1,
      persist: readU8(t.get(IflaTun.Persist)) === 1,
      vnetHeader: readU8(t.get(IflaTun.VnetHdr)) === 1,
      queues: (readU32(t.get(IflaTun.NumQueues)) ?? 0) + (readU32(t.get(IflaTun.NumDisabledQueues)) ?? 0),
    };
  }
  let acceptLocal: number | undefined;
  let addrGenMode: number | undefined;
  const spec = attrs.get(Ifla.AfSpec);
  if (spec) {
    const families = attributes(spec);
    const inet = families.get(AF_INET);
    const conf = inet ? attributes(inet).get(IflaInet.Conf) : undefined;
    // A flat u32 array in a dump: devconf id n is entry n - 1.
    const at = (Ipv4Devconf.AcceptLocal - 1) * 4;
    if (conf && conf.length >= at + 4) acceptLocal = readU32(conf.subarray(at, at + 4));
    const inet6 = families.get(AF_INET6);
    if (inet6) addrGenMode = readU8(attributes(inet6).get(IflaInet6.AddrGenMode));
  }
  return {
    index: v.getInt32(IFINFO.index, LITTLE_ENDIAN),
    name: readString(attrs.get(Ifla.IfName)) ?? '',
    flags: v.getUint32(IFINFO.flags, LITTLE_ENDIAN),
    mtu: readU32(attrs.get(Ifla.Mtu)),
    txQueueLen: readU32(attrs.get(Ifla.TxQueueLen)),
    alias: readString(attrs.get(Ifla.IfAlias)),
    kind,
    tun,
    acceptLocal,
    addrGenMode,
  };
}

/** An address message (RTM_NEWADDR, RTM_DELADDR) as a repr; undefined for other families. */
export function parseAddr(m: NetlinkMessage): AddrRepr | undefined {
  if (m.body.length < IFADDR_LEN) return undefined;
  const v = view(m.body);
  const family = familyOf(v.getUint8(IFADDR.family));
  if (family === undefined) return undefined;
  const attrs = attributes(m.body.subarray(IFADDR_LEN));
  // IPv4's own address is IFA_LOCAL (IFA_ADDRESS is the peer's on a point-to-point address).
  const address = addressString(attrs.get(family === 4 ? Ifa.Local : Ifa.Address) ?? attrs.get(Ifa.Address), family);
  if (address === undefined) return undefined;
  return {
    family,
    index: v.getUint32(IFADDR.index, LITTLE_ENDIAN),
    address,
    prefixLen: v.getUint8(IFADDR.prefixLen),
    flags: readU32(attrs.get(Ifa.Flags)) ?? v.getUint8(IFADDR.flags),
    scope: v.getUint8(IFADDR.scope),
  };
}

/** A route message (RTM_NEWROUTE, RTM_DELROUTE) as a repr; undefined for other families. */
export function parseRoute(m: NetlinkMessage): RouteRepr | undefined {
  if (m.body.length < RTMSG_LEN) return undefined;
  const v = view(m.body);
  const family = familyOf(v.getUint8(RTMSG.family));
  if (family === undefined) return undefined;
  const attrs = attributes(m.body.subarray(RTMSG_LEN));
  return {
    family,
    table: readU32(attrs.get(Rta.Table)) ?? v.getUint8(RTMSG.table),
    dst: addressString(attrs.get(Rta.Dst), family) ?? (family === 4 ? '0.0.0.0' : '::'),
    dstLen: v.getUint8(RTMSG.dstLen),
    oif: readU32(attrs.get(Rta.Oif)),
    gateway: addressString(attrs.get(Rta.Gateway), family),
    prefSrc: addressString(attrs.get(Rta.PrefSrc), family),
    priority: readU32(attrs.get(Rta.Priority)) ?? 0,
    protocol: v.getUint8(RTMSG.protocol),
    scope: v.getUint8(RTMSG.scope),
    type: v.getUint8(RTMSG.type),
  };
}
