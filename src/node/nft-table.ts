/**
 * The agent's nftables table (`inet vxnet`, outbound NAT: src/netfilter/masquerade.ts) as state
 * the agent owns. nftables has no cheap way to compare a table with a spec, so the agent takes
 * the kernel's own listing of the table right after it installs it, and later compares listings:
 * missing, flushed, a chain or rule deleted, a rule added into it, all read as "differs", and
 * the table is installed again, whole, in one transaction (which is also how it was installed).
 * The table has no counters, so an unchanged table lists the same.
 */
import { installMasquerade, TABLE_FAMILY, TABLE_NAME, type MasqueradeSpec } from '../netfilter/masquerade.js';
import { nft, NftError, type NftOptions } from '../netfilter/nft.js';
import { NftFamily } from './netlink/nftables.js';

export class OwnedNftTable {
  private baseline: string | undefined;

  constructor(private readonly spec: MasqueradeSpec, private readonly opts: NftOptions = {}) {}

  readonly name = `${TABLE_FAMILY} ${TABLE_NAME}`;

  /** Records the table as it is now, just installed, as the state to keep. */
  async adopt(): Promise<void> {
    this.baseline = await this.list();
  }

  /** Whether an nftables event about (family, table) concerns this table. */
  concerns(family: number, table: string): boolean {
    return family === NftFamily.inet && table === TABLE_NAME;
  }

  /** Installs the table again when it differs from the baseline; returns what was wrong, or undefined. */
  async check(): Promise<string | undefined> {
    const now = await this.list();
    if (now !== undefined && now === this.baseline) return undefined;
    await installMasquerade(this.spec, this.opts);
    this.baseline = await this.list();
    return now === undefined ? `table ${this.name} was missing; installed again` : `table ${this.name} differed from what the agent installed; replaced whole`;
  }

  /** `nft list table inet vxnet`, or undefined when there is no such table. */
  private async list(): Promise<string | undefined> {
    try {
      return await nft(['list', 'table', TABLE_FAMILY, TABLE_NAME], '', this.opts);
    } catch (err) {
      if (err instanceof NftError && /No such file or directory/i.test(err.stderr)) return undefined;
      throw err;
    }
  }
}
