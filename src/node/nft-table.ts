/**
 * The agent's nftables table (`inet vxnet`, outbound NAT: src/netfilter/masquerade.ts) as state
 * the agent owns. nftables has no cheap way to compare a table with a spec, so the agent takes
 * the kernel's own listing of the table right after it installs it, and later compares listings:
 * missing, flushed, a chain or rule deleted, a rule added into it, all read as "differs", and
 * the table is installed again, whole, in one transaction (which is also how it was installed).
 * The table has no counters, so an unchanged table lists the same.
 *
 * A listing is a child process (nft), and the guard asks every few seconds. So each check first
 * reads the ruleset's generation over netlink (one syscall pair, no process): when it has not
 * moved since the last listing that matched, nothing in nftables has changed and the check ends
 * there. The generation is read before the listing it vouches for, so a change that lands between
 * the two makes the next check list again. Where it cannot be read, every check lists, as before.
 */
import { installMasquerade, TABLE_FAMILY, TABLE_NAME, type MasqueradeSpec } from '../netfilter/masquerade.js';
import { nft, NftError, type NftOptions } from '../netfilter/nft.js';
import { getGenerationRequest, NftFamily, parseGeneration } from './netlink/nftables.js';
import { NetlinkProtocol, NetlinkSocket } from './netlink/socket.js';

/** The ruleset generation of this network namespace, or undefined when it cannot be read. */
export function readRulesetGeneration(): number | undefined {
  let sock: NetlinkSocket | undefined;
  try {
    sock = NetlinkSocket.open(NetlinkProtocol.Netfilter);
    const m = sock.get('read the nftables generation', getGenerationRequest(sock.nextSeq()));
    return m === undefined ? undefined : parseGeneration(m);
  } catch {
    return undefined;
  } finally {
    sock?.close();
  }
}

export interface OwnedNftTableOptions extends NftOptions {
  /** Reads the ruleset generation; default readRulesetGeneration. Returning undefined always lists. */
  readonly generation?: () => number | undefined;
}

export class OwnedNftTable {
  private baseline: string | undefined;
  /** The generation read just before the last listing that matched the baseline. */
  private verified: number | undefined;
  private listings = 0;

  constructor(private readonly spec: MasqueradeSpec, private readonly opts: OwnedNftTableOptions = {}) {}

  readonly name = `${TABLE_FAMILY} ${TABLE_NAME}`;

  /** How many times the table was listed (an nft process each), for tests. */
  get listed(): number {
    return this.listings;
  }

  /** Records the table as it is now, just installed, as the state to keep. */
  async adopt(): Promise<void> {
    const gen = this.generation();
    this.baseline = await this.list();
    this.verified = gen;
  }

  private generation(): number | undefined {
    return (this.opts.generation ?? readRulesetGeneration)();
  }

  /** Whether an nftables event about (family, table) concerns this table. */
  concerns(family: number, table: string): boolean {
    return family === NftFamily.inet && table === TABLE_NAME;
  }

  /** Installs the table again when it differs from the baseline; returns what was wrong, or undefined. */
  async check(): Promise<string | undefined> {
    const gen = this.generation();
    if (gen !== undefined && gen === this.verified) return undefined;
    const now = await this.list();
    if (now !== undefined && now === this.baseline) {
      this.verified = gen;
      return undefined;
    }
    await installMasquerade(this.spec, this.opts);
    const after = this.generation();
    this.baseline = await this.list();
    this.verified = after;
    return now === undefined ? `table ${this.name} was missing; installed again` : `table ${this.name} differed from what the agent installed; replaced whole`;
  }

  /** `nft list table inet vxnet`, or undefined when there is no such table. */
  private async list(): Promise<string | undefined> {
    this.listings++;
    try {
      return await nft(['list', 'table', TABLE_FAMILY, TABLE_NAME], '', this.opts);
    } catch (err) {
      if (err instanceof NftError && /No such file or directory/i.test(err.stderr)) return undefined;
      throw err;
    }
  }
}
