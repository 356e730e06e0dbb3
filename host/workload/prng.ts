// Seeded PRNG for workloads (DESIGN rule 5): xoshiro128** (Blackman & Vigna, 2018),
// seeded through splitmix32 so that any 32-bit seed, 0 included, gives a good state.
// Int32Array state and Math.imul: no allocation per draw.

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
  // State in a typed array: int32 fields of an object would be boxed doubles in V8.
  private readonly s = new Int32Array(4);

  constructor(seed: number) {
    let st = seed >>> 0;
    for (let i = 0; i < 4; i++) [this.s[i], st] = splitmix32(st);
  }

  /** A generator with the given raw state (not all zero), for reference vectors. */
  static fromState(s0: number, s1: number, s2: number, s3: number): Prng {
    const p = new Prng(0);
    p.s.set([s0, s1, s2, s3]);
    return p;
  }

  /** Next uniform u32. */
  next(): number {
    const s = this.s;
    const s0 = s[0]!, s1 = s[1]!;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const s2 = s[2]! ^ s0;
    const s3 = s[3]! ^ s1;
    s[1] = s1 ^ s2;
    s[0] = s0 ^ s3;
    s[2] = s2 ^ (s1 << 9);
    s[3] = rotl(s3, 11);
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
