/**
 * The agent's netfilter step at start-up, in one call: install (or, with `ipMasq: false`,
 * remove) vxnet's NAT table, then look for forward chains elsewhere that would drop pod traffic.
 * Nothing here stops the agent: pod-to-pod forwarding needs no NAT, so a node without nftables,
 * or one whose nft refuses the table, still forwards, and the log says what was not done and
 * how to fix it. The report it returns is what /status can show.
 */
import type { LogFn } from '../agent/log.js';
import { NftMissingError, type NftOptions } from './nft.js';
import { installMasquerade, removeVxnetTable, TABLE_FAMILY, TABLE_NAME, type MasqueradeSpec } from './masquerade.js';
import { checkForwardPolicy, type ForwardDrop } from './forward-policy.js';

export interface NetfilterConfig extends MasqueradeSpec {
  /** Masquerade pod traffic that leaves the cluster (config `ipMasq`, default true). */
  readonly ipMasq: boolean;
}

export interface NetfilterReport {
  /** installed: the table is in place; disabled: ipMasq false (table removed); no-nft; failed. */
  readonly masquerade: 'installed' | 'disabled' | 'no-nft' | 'failed';
  readonly forwardDrops: readonly ForwardDrop[];
}

const TABLE = `${TABLE_FAMILY} ${TABLE_NAME}`;

export async function setUpNetfilter(cfg: NetfilterConfig, log: LogFn, opts: NftOptions = {}): Promise<NetfilterReport> {
  const spec: MasqueradeSpec = {
    podCIDR: cfg.podCIDR, clusterCIDR: cfg.clusterCIDR, device: cfg.device,
    ...(cfg.podCIDR6 !== undefined && cfg.clusterCIDR6 !== undefined ? { podCIDR6: cfg.podCIDR6, clusterCIDR6: cfg.clusterCIDR6 } : {}),
  };
  let masquerade: NetfilterReport['masquerade'];
  try {
    if (cfg.ipMasq) {
      await installMasquerade(spec, opts);
      masquerade = 'installed';
      log('info', 'outbound NAT installed', {
        table: TABLE, podCIDR: spec.podCIDR, clusterCIDR: spec.clusterCIDR,
        ...(spec.podCIDR6 !== undefined ? { podCIDR6: spec.podCIDR6 } : {}),
      });
    } else {
      await removeVxnetTable(opts);
      masquerade = 'disabled';
      log('info', 'ipMasq is false: no outbound NAT; pods reach addresses outside the cluster with their own addresses, which the network must route back', { table: TABLE });
    }
  } catch (err) {
    if (err instanceof NftMissingError) {
      if (!cfg.ipMasq) {
        log('info', 'ipMasq is false and nft is not installed: no outbound NAT, no forward-policy check', { error: err.message });
        return { masquerade: 'disabled', forwardDrops: [] };
      }
      log('warn', 'nft not found: outbound NAT NOT installed; pods reach addresses outside the cluster with their own addresses (most networks drop them). Install nftables (apt-get install nftables) and restart the agent, or set "ipMasq": false if the network routes pod CIDRs', { error: err.message });
      return { masquerade: 'no-nft', forwardDrops: [] };
    }
    masquerade = 'failed';
    log('error', `outbound NAT NOT installed: nft refused table ${TABLE}; pods reach addresses outside the cluster with their own addresses. Check that the kernel has nf_tables with NAT (nft_chain_nat, nft_masq) and the agent CAP_NET_ADMIN`, { error: (err as Error).message });
  }
  let forwardDrops: ForwardDrop[] = [];
  try {
    forwardDrops = await checkForwardPolicy(cfg.clusterCIDR, spec.clusterCIDR6, opts);
  } catch (err) {
    log('warn', 'could not read the nftables ruleset to check forward policies', { error: (err as Error).message });
  }
  for (const d of forwardDrops) {
    log('warn', `forward chain ${d.family} ${d.table} ${d.chain} drops by default and accepts nothing for ${d.cidrs.join(' and ')}: pod traffic forwarded by this node (to other nodes, and beyond the cluster) is dropped. vxnet does not edit tables it does not own; run: ${d.commands.join(' ; ')} (and add them where that firewall's rules are kept)`, {
      table: `${d.family} ${d.table}`, chain: d.chain, commands: d.commands,
    });
  }
  return { masquerade, forwardDrops };
}
