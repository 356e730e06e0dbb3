// The fuzzer's seeded PRNG (DESIGN rule 5): the same seed gives the same inputs, in the
// same order, so a run can be repeated from its seed alone. xorshift32 seeded through
// splitmix32 (a zero seed is fine).
import { splitmix32 } from "../workload/prng.js";

export class Rng {
  private x: number;
  constructor(seed: number) {
    const [v] = splitmix32(seed >>> 0);
    this.x = v || 0x9e3779b9;
  }
  /** Uniform u32. */
  next(): number {
    let x = this.x;
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }
  /** Uniform in [0, n); n ≤ 2^32. */
  below(n: number): number { return n <= 1 ? 0 : Math.floor((this.next() / 4294967296) * n); }
  chance(p: number): boolean { return this.next() / 4294967296 < p; }
  pick<T>(a: readonly T[]): T { return a[this.below(a.length)]!; }
  /** Small values far more often than large ones: log-uniform in [0, max]. */
  small(max: number): number { return Math.min(max, Math.floor(2 ** (this.next() / 4294967296 * Math.log2(max + 1))) - 1 + this.below(2)); }
}
