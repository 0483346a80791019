/**
 * nftables change events (nfnetlink, linux/netfilter/nf_tables.h), read only as far as the
 * kernel guard needs: which table a change touched. Every nftables message of a table, chain,
 * rule, set or object names its table in attribute 1 (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
 * NFTA_RULE_TABLE, ...), after a 4-byte nfgenmsg whose first byte is the family. A whole ruleset
 * flush arrives as one table deletion per table.
 *
 * And the ruleset's generation (NFT_MSG_GETGEN): a number the kernel moves on with every
 * committed nftables transaction, of any table. The guard reads it before it pays for a listing
 * of its table (a child process): an unmoved generation means nothing in nftables changed.
 */
import { attributes, NetlinkWriter, NlmFlags, readString, type NetlinkMessage } from './wire.js';

/** The nftables multicast group (NFNLGRP_NFTABLES = 7) as a bind(2) bit. */
export const NFTABLES_GROUP = 1 << (7 - 1);
/** nfnetlink subsystem of nftables: the high byte of the message type. */
const NFNL_SUBSYS_NFTABLES = 10;
/** struct nfgenmsg: family u8, version u8, res_id be16. */
const NFGENMSG_LEN = 4;
/** NFT_MSG_NEWGEN (the answer, and the event) and NFT_MSG_GETGEN (the request). */
const NFT_MSG_NEWGEN = 15;
const NFT_MSG_GETGEN = 16;
/** NFTA_GEN_ID: the generation, a u32 in network byte order. */
const NFTA_GEN_ID = 1;
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

/** Asks for the ruleset's generation: a plain get (one answer, NFT_MSG_NEWGEN), family unspecified. */
export function getGenerationRequest(seq: number): Uint8Array {
  const w = new NetlinkWriter((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, NlmFlags.Request, seq);
  w.reserve(NFGENMSG_LEN); // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id 0
  return w.finish();
}

/** The generation an NFT_MSG_NEWGEN message carries; undefined for anything else. */
export function parseGeneration(m: NetlinkMessage): number | undefined {
  if (m.type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN) || m.body.length < NFGENMSG_LEN) return undefined;
  const v = attributes(m.body.subarray(NFGENMSG_LEN)).get(NFTA_GEN_ID);
  return v !== undefined && v.length >= 4 ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0, false) : undefined;
}
