/**
 * nftables change events (nfnetlink, linux/netfilter/nf_tables.h), read only as far as the
 * kernel guard needs: which table a change touched. Every nftables message of a table, chain,
 * rule, set or object names its table in attribute 1 (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
 * NFTA_RULE_TABLE, ...), after a 4-byte nfgenmsg whose first byte is the family. A whole ruleset
 * flush arrives as one table deletion per table.
 */
import { attributes, readString, type NetlinkMessage } from './wire.js';

/** The nftables multicast group (NFNLGRP_NFTABLES = 7) as a bind(2) bit. */
export const NFTABLES_GROUP = 1 << (7 - 1);
/** nfnetlink subsystem of nftables: the high byte of the message type. */
const NFNL_SUBSYS_NFTABLES = 10;
/** struct nfgenmsg: family u8, version u8, res_id be16. */
const NFGENMSG_LEN = 4;
/** The table-name attribute every table-scoped nftables message carries. */
const TABLE_ATTR = 1;
/** nftables families (NFPROTO_*), the ones vxnet uses. */
export const NftFamily = { inet: 1, ip: 2, ip6: 10 } as const;

/** The family and table an nftables event is about; undefined for other messages (NEWGEN, ...). */
export function nftEventTable(m: NetlinkMessage): { family: number; table: string } | undefined {
  if (m.type >> 8 !== NFNL_SUBSYS_NFTABLES || m.body.length < NFGENMSG_LEN) return undefined;
  const table = readString(attributes(m.body.subarray(NFGENMSG_LEN)).get(TABLE_ATTR));
  return table === undefined ? undefined : { family: m.body[0]!, table };
}
