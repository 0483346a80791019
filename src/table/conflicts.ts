/**
 * Conflicts among many entries, in O(n log n): overlapping address blocks and duplicate values.
 * These are the checks across a whole peer list (the config file, the Kubernetes peer screen,
 * the table builders), so they must stay fast at tens of thousands of peers, where a pairwise
 * comparison takes minutes.
 *
 * Overlaps. CIDR blocks are aligned, so two of them either nest or are disjoint. Sorted by first
 * address, wider first on a tie, every block that contains the current one is still "open" when
 * the sweep reaches it, and the open blocks form a chain of nested blocks: a stack. Popping the
 * blocks that end at or before the current start leaves exactly the blocks that contain it. One
 * pass therefore sees every overlapping pair, each from its later member.
 *
 * Two answers come out of that pass. `first` is the pair a person reading the file top to bottom
 * would hit first: the block with the smallest `seq` that overlaps a block with a smaller `seq`,
 * paired with the smallest such partner (what a pairwise check in file order reports). `involved`
 * marks every block that overlaps any other, and `partner` names one block it overlaps, for
 * callers that set aside all parties to a conflict and say with whom. Marks are made once per block (a watermark on the stack), so a thousand copies of one
 * CIDR cost a thousand steps, not a million. Numbers (IPv4) and bigints (IPv6) go through the
 * same code: `<` compares both.
 *
 * Duplicates. Values that fit a double exactly (an IPv4 address, a 48-bit MAC) are sorted as a
 * Float64Array, natively, and only when two are equal is the input walked again to name the first
 * pair in input order. A Map would do the same in one pass, but at tens of thousands of entries
 * its allocation and hashing cost several times more.
 */

export interface Block<T extends number | bigint> {
  /** First address. */
  readonly start: T;
  /** One past the last address. */
  readonly end: T;
  /** Position in the input as a person reads it (file order); smaller is earlier. */
  readonly seq: number;
}

export interface OverlapReport {
  /** The first overlapping pair in `seq` order: `later` overlaps `earlier` (indices into the input). */
  readonly first: { readonly later: number; readonly earlier: number } | undefined;
  /** Per input block: 1 when it overlaps any other block. */
  readonly involved: Uint8Array;
  /** Per input block: the index of one block it overlaps, or -1. */
  readonly partner: Int32Array;
}

/** Sort order the sweep needs: first address ascending, wider (later end) first, then seq. */
export function compareBlocks<T extends number | bigint>(a: Block<T>, b: Block<T>): number {
  if (a.start !== b.start) return a.start < b.start ? -1 : 1;
  if (a.end !== b.end) return a.end > b.end ? -1 : 1;
  return a.seq - b.seq;
}

/**
 * The indices of `blocks` in `compareBlocks` order. IPv4 blocks that are CIDRs (a power-of-two
 * size, aligned) listed in `seq` order, which is how every caller builds them, are sorted by three
 * stable counting passes over typed arrays (prefix length, then the low and the high half of the
 * start address): several times faster than a comparator sort at tens of thousands of blocks.
 * Anything else takes the comparator.
 */
export function sortOrder<T extends number | bigint>(blocks: ReadonlyArray<Block<T>>): Int32Array {
  return (radixOrder(blocks) ?? Int32Array.from(blocks.keys()).sort((a, b) => compareBlocks(blocks[a]!, blocks[b]!)));
}

function radixOrder<T extends number | bigint>(blocks: ReadonlyArray<Block<T>>): Int32Array | undefined {
  const n = blocks.length;
  const start = new Uint32Array(n);
  const prefix = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = blocks[i]!;
    if (typeof b.start !== 'number' || typeof b.end !== 'number' || (i > 0 && b.seq <= blocks[i - 1]!.seq)) return undefined;
    const size = b.end - b.start;
    const bits = Math.log2(size);
    if (!Number.isInteger(bits) || bits < 0 || bits > 32 || b.start % size !== 0 || b.end > 2 ** 32) return undefined;
    start[i] = b.start;
    prefix[i] = 32 - bits;
  }
  let order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let next = new Int32Array(n);
  const pass = (buckets: number, key: (i: number) => number): void => {
    const count = new Int32Array(buckets + 1);
    for (let i = 0; i < n; i++) count[key(order[i]!) + 1]!++;
    for (let k = 0; k < buckets; k++) count[k + 1]! += count[k]!;
    for (let i = 0; i < n; i++) {
      const j = order[i]!;
      next[count[key(j)]!++] = j;
    }
    [order, next] = [next, order];
  };
  pass(33, (i) => prefix[i]!);
  pass(65536, (i) => start[i]! & 0xffff);
  pass(65536, (i) => start[i]! >>> 16);
  return order;
}

/**
 * Finds overlaps among `blocks`. `order` lists the indices of `blocks` sorted by `compareBlocks`
 * (`sortOrder`); a caller that already has it saves the sort.
 */
export function findOverlaps<T extends number | bigint>(blocks: ReadonlyArray<Block<T>>, order?: ArrayLike<number>): OverlapReport {
  const n = blocks.length;
  const sorted = order ?? sortOrder(blocks);
  const involved = new Uint8Array(n);
  const partner = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  // minAt[d]: the index, among stack[0..d], of the block with the smallest seq.
  const minAt = new Int32Array(n);
  let depth = 0;
  let marked = 0;
  let bestLater = -1;
  let bestEarlier = -1;
  for (let k = 0; k < n; k++) {
    const i = sorted[k]!;
    const b = blocks[i]!;
    while (depth > 0 && blocks[stack[depth - 1]!]!.end <= b.start) depth--;
    if (marked > depth) marked = depth;
    if (depth > 0) {
      involved[i] = 1;
      partner[i] = stack[depth - 1]!;
      for (; marked < depth; marked++) {
        involved[stack[marked]!] = 1;
        partner[stack[marked]!] = i;
      }
      const m = minAt[depth - 1]!;
      const [later, earlier] = blocks[m]!.seq < b.seq ? [i, m] : [m, i];
      if (bestLater < 0 || better(blocks, later, earlier, bestLater, bestEarlier)) {
        bestLater = later;
        bestEarlier = earlier;
      }
    }
    minAt[depth] = depth > 0 && blocks[minAt[depth - 1]!]!.seq < b.seq ? minAt[depth - 1]! : i;
    stack[depth++] = i;
    if (involved[i] === 1 && marked === depth - 1) marked = depth;
  }
  return { first: bestLater < 0 ? undefined : { later: bestLater, earlier: bestEarlier }, involved, partner };
}

/** True when pair (l, e) comes before pair (bl, be): smaller later seq, then smaller earlier seq. */
function better<T extends number | bigint>(blocks: ReadonlyArray<Block<T>>, l: number, e: number, bl: number, be: number): boolean {
  const ls = blocks[l]!.seq;
  const bls = blocks[bl]!.seq;
  return ls !== bls ? ls < bls : blocks[e]!.seq < blocks[be]!.seq;
}

/**
 * The first duplicate in input order: the smallest index `later` whose value appeared at an
 * `earlier` index, or undefined when all values differ. NaN never counts as a duplicate.
 */
export function firstDuplicate(values: Float64Array): { readonly later: number; readonly earlier: number } | undefined {
  const sorted = values.slice().sort();
  let dups: Set<number> | undefined;
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) (dups ??= new Set()).add(sorted[i]!);
  }
  if (dups === undefined) return undefined;
  const seen = new Map<number, number>();
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!dups.has(v)) continue;
    const earlier = seen.get(v);
    if (earlier !== undefined) return { later: i, earlier };
    seen.set(v, i);
  }
  return undefined;
}

/**
 * The first duplicate string in input order, like `firstDuplicate`. Names are hashed (FNV-1a
 * over UTF-16 code units) into an open-addressing table of indices, and compared only on a
 * hash match: one pass, two typed arrays, no Map.
 */
export function firstDuplicateString(values: readonly string[]): { readonly later: number; readonly earlier: number } | undefined {
  let bits = 1;
  while (2 ** bits < 2 * values.length) bits++;
  const mask = 2 ** bits - 1;
  const table = new Int32Array(2 ** bits).fill(-1);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    let h = 0x811c9dc5;
    for (let k = 0; k < v.length; k++) h = Math.imul(h ^ v.charCodeAt(k), 0x01000193);
    let at = (h >>> 0) & mask;
    for (let j = table[at]!; j >= 0; j = table[at]!) {
      if (values[j] === v) return { later: i, earlier: j };
      at = (at + 1) & mask;
    }
    table[at] = i;
  }
  return undefined;
}
