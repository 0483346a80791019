/**
 * The seeded PRNG every randomized test uses (xorshift32): small, fast, and reproducible from
 * the seed a failing test prints.
 */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 2 ** 32;
  }
  /** Integer in lo..hi inclusive. */
  int(lo: number, hi: number): number {
    return lo + (this.u32() % (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  u128(): bigint {
    return (BigInt(this.u32()) << 96n) | (BigInt(this.u32()) << 64n) | (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
}
