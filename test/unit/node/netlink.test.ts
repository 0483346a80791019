/**
 * rtnetlink and nfnetlink messages without a kernel: requests against golden bytes written out
 * by hand from linux/netlink.h and linux/rtnetlink.h, answers built with a small encoder of the
 * test's own (`tlv`, not the product's writer) and parsed back into reprs, the extended ack's
 * text, the walkers' bounds on short and bad input, and random bytes that must never throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../rng.js';
import {
  AddrGenMode, encodeAddr, encodeDumpRoutes, encodeGetLink, encodeReplaceRoute, encodeSetLink, parseAddr, parseLink, parseRoute, Rtm, TunType,
} from '../../../src/node/netlink/rtnetlink.js';
import { attributes, messages, NlmFlags, NlmsgType, parseAck, type NetlinkMessage } from '../../../src/node/netlink/wire.js';
import { nftEventTable } from '../../../src/node/netlink/nftables.js';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Little-endian helpers of the test's own encoder (the machines this runs on are LE). */
const u16 = (v: number): number[] => [v & 0xff, v >> 8];
const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const str = (s: string): number[] => [...Buffer.from(s), 0];

/** One attribute: length, type, value, padded to 4. */
function tlv(type: number, value: number[]): number[] {
  const out = [...u16(4 + value.length), ...u16(type), ...value];
  while (out.length % 4) out.push(0);
  return out;
}
const nest = (type: number, ...children: number[][]): number[] => tlv(type | 0x8000, children.flat());

function message(type: number, flags: number, seq: number, body: number[]): number[] {
  return [...u32(16 + body.length), ...u16(type), ...u16(flags), ...u32(seq), ...u32(0), ...body];
}

function only(bytes: number[]): NetlinkMessage {
  const all = [...messages(Uint8Array.from(bytes))];
  assert.equal(all.length, 1);
  return all[0]!;
}

test('golden requests: get link by name, set link, add address, replace route, dump routes', () => {
  const cases: Array<{ name: string; got: Uint8Array; want: string }> = [
    {
      name: 'RTM_GETLINK vxnet0',
      got: encodeGetLink(7, { name: 'vxnet0' }),
      want: '2c000000' + '1200' + '0100' + '07000000' + '00000000' // nlmsghdr: 44 bytes, GETLINK, REQUEST, seq 7
        + '00000000' + '00000000' + '00000000' + '00000000' // ifinfomsg: AF_UNSPEC, index 0
        + '0b000300' + '76786e65743000' + '00', // IFLA_IFNAME "vxnet0\0", padded
    },
    {
      name: 'RTM_NEWLINK index 5: up, mtu 1450, accept_local 1, addr_gen_mode none',
      got: encodeSetLink(9, 5, { up: true, mtu: 1450, acceptLocal: 1, addrGenMode: AddrGenMode.None }),
      want: '48000000' + '1000' + '0500' + '09000000' + '00000000' // 72 bytes, NEWLINK, REQUEST|ACK
        + '00000000' + '05000000' + '01000000' + '01000000' // index 5, flags IFF_UP, change IFF_UP
        + '08000400' + 'aa050000' // IFLA_MTU 1450
        + '20001a80' // IFLA_AF_SPEC, nested, 32 bytes
        + '10000280' + '0c000180' + '08001700' + '01000000' // AF_INET { IFLA_INET_CONF { ACCEPT_LOCAL(23) = 1 } }
        + '0c000a80' + '05000800' + '01000000', // AF_INET6 { IFLA_INET6_ADDR_GEN_MODE = 1 (none) }, padded
    },
    {
      name: 'RTM_NEWADDR 10.244.1.0/32 on index 5',
      got: encodeAddr(3, 'add', { family: 4, index: 5, address: '10.244.1.0', prefixLen: 32 }),
      want: '28000000' + '1400' + '0505' + '03000000' + '00000000' // NEWADDR, REQUEST|ACK|REPLACE|CREATE
        + '02' + '20' + '00' + '00' + '05000000' // AF_INET, /32, no flags, scope universe, index 5
        + '08000200' + '0af40100' + '08000100' + '0af40100', // IFA_LOCAL, IFA_ADDRESS
    },
    {
      name: 'RTM_NEWADDR fd00:10:244:1::/128 nodad',
      got: encodeAddr(4, 'add', { family: 6, index: 5, address: 'fd00:10:244:1::', prefixLen: 128, noDad: true }),
      want: '2c000000' + '1400' + '0505' + '04000000' + '00000000'
        + '0a' + '80' + '02' + '00' + '05000000' // AF_INET6, /128, IFA_F_NODAD
        + '14000100' + 'fd000010024400010000000000000000', // IFA_ADDRESS
    },
    {
      name: 'RTM_NEWROUTE 10.244.0.0/16 dev 5 src 10.244.1.0',
      got: encodeReplaceRoute(5, { family: 4, dst: '10.244.0.0', dstLen: 16, oif: 5, prefSrc: '10.244.1.0', priority: 0 }),
      want: '3c000000' + '1800' + '0505' + '05000000' + '00000000'
        + '02' + '10' + '00' + '00' + 'fe' + '04' + 'fd' + '01' + '00000000' // AF_INET /16, main, static, scope link, unicast
        + '08000100' + '0af40000' + '08000400' + '05000000' + '08000700' + '0af40100' + '08000600' + '00000000', // DST OIF PREFSRC PRIORITY
    },
    {
      name: 'RTM_GETROUTE dump, IPv6, main table',
      got: encodeDumpRoutes(6, 6),
      want: '1c000000' + '1a00' + '0103' + '06000000' + '00000000' + '0a000000' + 'fe000000' + '00000000',
    },
  ];
  for (const c of cases) assert.equal(hex(c.got), c.want, c.name);
});

test('a TUN link as the kernel reports it parses into its repr', () => {
  const inetConf = Array.from({ length: 30 }, (_, i) => u32(i === 22 ? 1 : 0)).flat(); // devconf 23 (accept_local) is entry 22
  const body = [
    0, 0, ...u16(0xfffe), ...u32(7), ...u32(0x11091), ...u32(0), // ifinfomsg: index 7, UP|POINTOPOINT|NOARP|MULTICAST|LOWER_UP
    ...tlv(3, str('vxnet0')), ...tlv(4, u32(1450)), ...tlv(13, u32(5000)), ...tlv(20, str('vxnet: pod network')),
    ...nest(18, tlv(1, str('tun')), nest(2, tlv(3, [TunType.Tun]), tlv(4, [0]), tlv(5, [1]), tlv(6, [1]), tlv(7, [1]), tlv(8, u32(2)), tlv(9, u32(1)))),
    ...nest(26, nest(2, tlv(1, inetConf)), nest(10, tlv(8, [AddrGenMode.None]))),
  ];
  const got = parseLink(only(message(Rtm.NewLink, 0, 0, body)));
  assert.deepEqual(got, {
    index: 7, name: 'vxnet0', flags: 0x11091, mtu: 1450, txQueueLen: 5000, alias: 'vxnet: pod network', kind: 'tun',
    tun: { type: TunType.Tun, multiQueue: true, persist: true, vnetHeader: true, queues: 3 },
    acceptLocal: 1, addrGenMode: AddrGenMode.None,
  });
});

test('addresses and routes parse into reprs; other families are skipped', () => {
  const addr = parseAddr(only(message(Rtm.NewAddr, 0, 0, [2, 32, 0x80, 0, ...u32(7), ...tlv(1, [10, 244, 1, 0]), ...tlv(2, [10, 244, 1, 0]), ...tlv(8, u32(0x80))])));
  assert.deepEqual(addr, { family: 4, index: 7, address: '10.244.1.0', prefixLen: 32, flags: 0x80, scope: 0 });
  const addr6 = parseAddr(only(message(Rtm.NewAddr, 0, 0, [10, 64, 0, 253, ...u32(7), ...tlv(1, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])])));
  assert.equal(addr6?.address, 'fe80::1');
  assert.equal(parseAddr(only(message(Rtm.NewAddr, 0, 0, [17, 0, 0, 0, ...u32(7)]))), undefined, 'AF_PACKET');
  const route = parseRoute(only(message(Rtm.NewRoute, 0, 0, [
    2, 16, 0, 0, 254, 4, 253, 1, ...u32(0x10), ...tlv(15, u32(254)), ...tlv(1, [10, 244, 0, 0]), ...tlv(4, u32(7)), ...tlv(7, [10, 244, 1, 0]),
  ])));
  assert.deepEqual(route, {
    family: 4, table: 254, dst: '10.244.0.0', dstLen: 16, oif: 7, gateway: undefined, prefSrc: '10.244.1.0', priority: 0, protocol: 4, scope: 253, type: 1,
  });
  const def = parseRoute(only(message(Rtm.NewRoute, 0, 0, [2, 0, 0, 0, 254, 3, 0, 1, ...u32(0), ...tlv(5, [192, 168, 101, 1]), ...tlv(4, u32(2))])));
  assert.equal(def?.dst, '0.0.0.0');
  assert.equal(def?.gateway, '192.168.101.1');
});

test('acks: errno and the kernel\'s own text (extended ack), capped or not', () => {
  const request = message(Rtm.NewRoute, NlmFlags.Request | NlmFlags.Ack, 42, [2, 16, 0, 0, 254, 4, 253, 1, ...u32(0)]);
  const cases = [
    { name: 'capped, with text', flags: NlmFlags.Capped | NlmFlags.AckTlvs, echoed: request.slice(0, 16), attrs: tlv(1, str('Invalid prefsrc address')), want: { errno: 22, message: 'Invalid prefsrc address', seq: 42 } },
    { name: 'whole request echoed, with text', flags: NlmFlags.AckTlvs, echoed: request, attrs: tlv(1, str('Nexthop device is not up')), want: { errno: 22, message: 'Nexthop device is not up', seq: 42 } },
    { name: 'plain error', flags: 0, echoed: request, attrs: [], want: { errno: 22, message: undefined, seq: 42 } },
  ];
  for (const c of cases) {
    const m = only(message(NlmsgType.Error, c.flags, 42, [...u32(-22 >>> 0), ...c.echoed, ...c.attrs]));
    assert.deepEqual(parseAck(m), c.want, c.name);
  }
  const ok = only(message(NlmsgType.Error, NlmFlags.Capped, 42, [...u32(0), ...request.slice(0, 16)]));
  assert.equal(parseAck(ok)?.errno, 0, 'errno 0 is an ack');
  assert.equal(parseAck(only(message(NlmsgType.Error, 0, 1, [0, 0]))), undefined, 'too short');
});

test('walkers stop at the first length that does not fit', () => {
  const two = [...message(Rtm.NewLink, 0, 1, [0, 0, 0, 0]), ...message(Rtm.NewLink, 0, 2, [])];
  const cut = [...two, ...u32(200), ...u16(16), 0, 0];
  assert.deepEqual([...messages(Uint8Array.from(cut))].map((m) => m.seq), [1, 2]);
  assert.deepEqual([...messages(Uint8Array.from([...u32(8), 0, 0, 0, 0]))], [], 'a length below the header');
  const attrs = attributes(Uint8Array.from([...tlv(1, [1, 2, 3, 4]), ...u16(40), ...u16(2), 9, 9]));
  assert.deepEqual([...attrs.keys()], [1]);
  assert.equal(parseLink(only(message(Rtm.NewLink, 0, 0, [1, 2, 3]))), undefined, 'a body shorter than ifinfomsg');
});

test('nftables events name their table', () => {
  const cases = [
    { name: 'table deleted', type: (10 << 8) | 2, body: [1, 0, 0, 0, ...tlv(1, str('vxnet'))], want: { family: 1, table: 'vxnet' } },
    { name: 'rule added in ip filter', type: (10 << 8) | 6, body: [2, 0, 0, 0, ...tlv(1, str('filter')), ...tlv(2, str('forward'))], want: { family: 2, table: 'filter' } },
    { name: 'a new generation', type: (10 << 8) | 15, body: [0, 0, 0, 0, ...tlv(2, u32(5))], want: undefined },
    { name: 'not nftables', type: Rtm.NewLink, body: [1, 0, 0, 0, ...tlv(1, str('vxnet'))], want: undefined },
  ];
  for (const c of cases) assert.deepEqual(nftEventTable(only(message(c.type, 0, 0, c.body))), c.want, c.name);
});

test('random bytes never throw in any parser', () => {
  const rng = new Rng(0x5eed);
  const rand = (): number => rng.u32();
  for (let i = 0; i < 3000; i++) {
    const len = rand() % 200;
    const b = new Uint8Array(len);
    for (let j = 0; j < len; j++) b[j] = rand() & 0xff;
    // Half of them get a plausible header, so the bodies are walked too.
    if (len >= 16 && i % 2 === 0) new DataView(b.buffer).setUint32(0, len, true);
    for (const m of messages(b)) {
      parseLink(m);
      parseAddr(m);
      parseRoute(m);
      parseAck(m);
      nftEventTable(m);
    }
  }
});
