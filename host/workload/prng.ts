// Seeded PRNG for workloads (DESIGN rule 5): xoshiro128** (Blackman & Vigna, 2018),
// seeded through splitmix32 so that any 32-bit seed, 0 included, gives a good state.
// Plain number fields and Math.imul: no allocation per draw.

const GOLDEN = 0x9e3779b9; // 2^32 / phi, splitmix's increment
const TWO_32 = 4294967296;

/** splitmix32 step: the next value of the sequence started at `state`, and its successor state. */
export function splitmix32(state: number): [value: number, next: number] {
  const next = (state + GOLDEN) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [(z ^ (z >>> 16)) >>> 0, next];
}

export class Prng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    let st = seed >>> 0;
    [this.s0, st] = splitmix32(st);
    [this.s1, st] = splitmix32(st);
    [this.s2, st] = splitmix32(st);
    [this.s3] = splitmix32(st);
  }

  /** Next uniform u32. */
  next(): number {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 = s1 ^ this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** Uniform integer in [0, n) for n ≤ 2^32 (multiply-shift: no modulo, no loop). */
  below(n: number): number {
    return Math.floor((this.next() / TWO_32) * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
