// `npm run bench -- --only fuzz-<target>`: executions per second of one fuzz target
// (run from the baseline, every oracle, coverage collected) on a fixed set of seeded
// inputs, beside the same inputs on the release build (no edge map, no dirty-page list,
// so writable ranges are copied and compared whole): the ratio is what the
// instrumentation costs, less what the dirty-page restore saves.
import { loadFirmware } from "../loader.js";
import { compare, type BenchOptions, type Figure } from "../bench/harness.js";
import { findTarget } from "./targets/index.js";
import { Rng } from "./rng.js";

export function benchFuzz(name: string): (o: BenchOptions) => Promise<Figure> {
  return async (o) => {
    const t = findTarget(name);
    if (!t) throw new Error(`bench: no fuzz target ${name}`);
    const fuzzed = await t.create(), plain = await t.create({ module: await loadFirmware() });
    const rng = new Rng(1);
    const inputs: Uint8Array[] = [];
    while (inputs.length < 256) {
      const inp = inputs.length % 2 ? fuzzed.mutate(fuzzed.generate(rng), rng) : fuzzed.generate(rng);
      try { fuzzed.run(inp); inputs.push(inp); } catch { /* a finding: not a benchmark input */ }
    }
    const seen = new Uint8Array(fuzzed.mapSize);
    let i = 0, j = 0;
    return compare(`fuzz ${name}: executions/s (run, oracles, coverage), fuzz build`, "exec/s",
      () => { fuzzed.run(inputs[i++ & 255]!); fuzzed.collect(seen); return 1; },
      "same inputs on the release build (no edge map, no dirty-page list)", () => { plain.run(inputs[j++ & 255]!); plain.collect(seen); return 1; }, o);
  };
}
