/**
 * The tables for a peer snapshot, made the cheap way when it can be: the agent hands every
 * snapshot here and publishes what comes back.
 *
 * A snapshot that changes the facts of a few peers, and no names (a node's annotations changed,
 * a static peer got a new address), is applied as a patch of the table in force (`patchTable`):
 * the snapshot is compared with the last one in one pass, only the changed peers are parsed and
 * checked, and the new buffer is a copy with their entries rewritten. Slots stay, so per-peer
 * counters carry over as they are. Anything else is a full build: peers added or removed
 * (slots move), peers set aside before or now, IPv6 CIDRs changed, or more than a few peers
 * changed at once (then a build is as cheap as the patch would be). The full build parses and
 * screens the whole snapshot (`snapshot.ts`) and lays out new tables. Both paths give the same
 * lookups for the same snapshot; the tests compare them.
 */
import { samePeer, type Peer } from '../peers/source.js';
import { buildTable, patchTable, type TablePatch } from './table.js';
import { buildTable6 } from './table6.js';
import { tableInputs, type LocalFacts, type SetAside } from './snapshot.js';

/** The tables in force and where they came from. */
export interface Tables {
  /** The snapshot they were made from, before any peer was set aside. */
  readonly snapshot: readonly Peer[];
  /** The peers in the table: slot i is `peers[i]`. */
  readonly peers: readonly Peer[];
  readonly sab: SharedArrayBuffer;
  readonly sab6: SharedArrayBuffer | undefined;
  readonly setAside: readonly SetAside[];
  readonly warnings: readonly SetAside[];
  /** `full`, or the slots a patch rewrote. */
  readonly made: 'full' | { readonly patched: readonly number[] };
}

/** A patch for at most this many peers, or this share of them; beyond, a full build. */
const PATCH_MAX = 64;
const PATCH_SHARE = 1 / 16;

/** The tables for `snapshot`, patched from `prev` when only a few peers' facts changed. */
export function makeTables(snapshot: readonly Peer[], local: LocalFacts, prev?: Tables): Tables {
  return (prev && patched(snapshot, local, prev)) ?? built(snapshot, local);
}

function built(snapshot: readonly Peer[], local: LocalFacts): Tables {
  const next = tableInputs(snapshot, local);
  return {
    snapshot, peers: next.peers, sab: buildTable(next.input), sab6: next.input6 ? buildTable6(next.input6) : undefined,
    setAside: next.setAside, warnings: next.warnings, made: 'full',
  };
}

function patched(snapshot: readonly Peer[], local: LocalFacts, prev: Tables): Tables | undefined {
  const old = prev.snapshot;
  if (snapshot.length !== old.length || prev.setAside.length > 0 || prev.warnings.length > 0) return undefined;
  const changed: number[] = [];
  const limit = Math.min(PATCH_MAX, Math.ceil(snapshot.length * PATCH_SHARE));
  for (let i = 0; i < snapshot.length; i++) {
    const a = snapshot[i]!;
    const b = old[i]!;
    if (a.node !== b.node) return undefined;
    if (samePeer(a, b)) continue;
    if (changed.push(i) > limit) return undefined;
  }
  if (changed.length === 0) return prev;
  // The changed peers alone, screened as a full build would screen them.
  const alone = tableInputs(changed.map((i) => snapshot[i]!), local);
  if (alone.setAside.length > 0 || alone.warnings.length > 0) return undefined;
  const patches: TablePatch[] = changed.map((slot, k) => ({ slot, peer: alone.input.peers[k]! }));
  if (local.clusterCIDR6 !== undefined && changed.some((i) => !sameIpv6(snapshot[i]!, old[i]!))) return undefined;
  // MACs shared with another peer only warn, and a warning needs the full picture.
  const macs = new Set(changed.map((i) => snapshot[i]!.vtepMAC));
  if (macs.size !== changed.length) return undefined;
  const isChanged = new Uint8Array(snapshot.length);
  for (const i of changed) isChanged[i] = 1;
  for (let i = 0; i < snapshot.length; i++) if (isChanged[i] === 0 && macs.has(snapshot[i]!.vtepMAC)) return undefined;
  const sab = patchTable(prev.sab, patches);
  if (sab === undefined) return undefined;
  return { snapshot, peers: snapshot, sab, sab6: prev.sab6, setAside: [], warnings: [], made: { patched: changed } };
}

function sameIpv6(a: Peer, b: Peer): boolean {
  const six = (p: Peer): string => p.podCIDRs.filter((c) => c.includes(':')).join(',');
  return six(a) === six(b);
}
