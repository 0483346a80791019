/**
 * nftables inside a lab namespace: the product's nft runner (src/netfilter/nft.ts) with
 * `ip netns exec NS` in front, so lab rules go in as the agent's do, one transaction each.
 */
import { nft } from '../netfilter/nft.js';
import { inNs } from './exec.js';

/** Applies an `nft -f` script inside namespace `ns`. */
export async function installRuleset(ns: string, script: string): Promise<void> {
  await nft(['-f', '-'], script, { command: inNs(ns, ['nft']) });
}

/** `nft list ruleset` of namespace `ns`, as text. */
export function listRuleset(ns: string): Promise<string> {
  return nft(['list', 'ruleset'], '', { command: inNs(ns, ['nft']) });
}
