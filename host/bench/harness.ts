// Benchmark plumbing: every figure is measured beside its reference in the same run,
// samples interleaved so both see the same machine, and the medians compared.
export interface Figure {
  name: string;
  value: number;
  unit: string;
  reference: { name: string; value: number };
  ratio: number;
  samples: number;
}

export interface BenchOptions { samples: number; sampleMs: number }

/** Rate of `op` (which does `units` units of work per call) over one sample of about `ms` wall time. */
function sample(op: () => number, ms: number): number {
  let units = 0;
  const t0 = performance.now();
  let t = t0;
  do { units += op(); t = performance.now(); } while (t - t0 < ms);
  return units / ((t - t0) / 1000);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Measure `subject` and `reference` (each returns units of work done per call), alternating
 * samples, and report medians; `scale` turns units/s into the figure's unit (e.g. bytes → GB).
 */
export function compare(
  name: string, unit: string, subject: () => number,
  refName: string, reference: () => number, o: BenchOptions, scale = 1,
): Figure {
  subject(); reference(); // warm up both (JIT, page faults)
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < o.samples; i++) { a.push(sample(subject, o.sampleMs)); b.push(sample(reference, o.sampleMs)); }
  const value = median(a) * scale, ref = median(b) * scale;
  return { name, unit, value, reference: { name: refName, value: ref }, ratio: value / ref, samples: o.samples };
}

export function formatValue(v: number, unit: string): string {
  if (unit === "GB/s") return v.toFixed(2);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(1);
}
