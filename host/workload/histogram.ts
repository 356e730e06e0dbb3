// Latency histogram in fixed memory: log-linear buckets like HdrHistogram and fio's
// clat_ns plat: values below 2^SUB_BITS are exact, above that every power-of-two
// octave is split into 2^(SUB_BITS-1) equal buckets, so a bucket is at most
// 1/32 (≈3 %) of its value wide. min, max and mean are exact.

const SUB_BITS = 6;
const EXACT = 1 << SUB_BITS; // values 0..63 have a bucket each
const HALF = EXACT >> 1; // buckets per octave above EXACT
const MAX_MSB = 52; // values up to 2^53 ns (104 days) are bucketed; larger ones land in the last bucket
const BUCKETS = EXACT + (MAX_MSB - SUB_BITS + 1) * HALF;
const TWO_32 = 4294967296;

/** The percentiles every report prints (fio's keys are these with six decimals). */
export const PERCENTILES = [50, 90, 99, 99.9] as const;

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;
  private sum = 0;

  record(ns: number): void {
    const v = ns > 0 ? Math.round(ns) : 0;
    this.counts[bucketOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  get mean(): number { return this.count === 0 ? 0 : this.sum / this.count; }

  /** The value below which p % of the recorded values fall (bucket midpoint, clamped to [min, max]). */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, bucketMid(i)));
    }
    return this.max;
  }

  merge(o: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += o.counts[i]!;
    this.count += o.count;
    this.sum += o.sum;
    this.min = Math.min(this.min, o.min);
    this.max = Math.max(this.max, o.max);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = this.sum = this.max = 0;
    this.min = Infinity;
  }
}

function msbOf(v: number): number {
  return v < TWO_32 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
}

export function bucketOf(v: number): number {
  if (v < EXACT) return v;
  if (v < TWO_32) { // the common case: integer ops only
    const m = 31 - Math.clz32(v);
    return EXACT + (m - SUB_BITS) * HALF + (v >>> (m - SUB_BITS + 1)) - HALF;
  }
  const msb = Math.min(msbOf(v), MAX_MSB);
  const shift = msb - SUB_BITS + 1; // v >> shift lies in [HALF, EXACT)
  const sub = Math.min(Math.floor(v / 2 ** shift), EXACT - 1) - HALF;
  return EXACT + (msb - SUB_BITS) * HALF + sub;
}

/** Lowest value of bucket i and its width. */
export function bucketRange(i: number): [low: number, width: number] {
  if (i < EXACT) return [i, 1];
  const octave = Math.floor((i - EXACT) / HALF);
  const sub = (i - EXACT) % HALF;
  const width = 2 ** (octave + 1);
  return [(HALF + sub) * width, width];
}

function bucketMid(i: number): number {
  const [low, width] = bucketRange(i);
  return low + Math.floor((width - 1) / 2);
}
