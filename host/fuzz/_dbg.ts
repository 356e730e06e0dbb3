import { readFileSync } from "node:fs";
import { findTarget } from "./targets/index.js";
import { Rng } from "./rng.js";
import { havoc } from "./program.js";
const t = findTarget(process.argv[2]!)!;
const h: any = await t.create();
const owner: string[] = JSON.parse(readFileSync("build/fuzz-sites.json", "utf8"));
const edges = JSON.parse(readFileSync("build/fuzz-edges.json", "utf8"));
const seen = new Uint8Array(h.mapSize);
const rng = new Rng(1);
const corpus: Uint8Array[] = [];
for (let i = 0; i < 30000; i++) {
  const inp = corpus.length && rng.chance(0.8) ? (rng.chance(0.5) ? h.mutate(rng.pick(corpus), rng) : havoc(rng.pick(corpus), rng)) : h.generate(rng);
  try { h.run(inp); } catch (e) { console.log("finding", String(e)); }
  if (h.collect(seen) > 0) corpus.push(inp);
}
const per: Record<string, [number, number]> = {};
for (const id of edges.ids) { const f = owner[id]!; const e = (per[f] ??= [0, 0]); e[1]++; if (seen[id]) e[0]++; }
for (const [f, [a, b]] of Object.entries(per).sort()) if (/virtio|nvme|blk|irq|index|pipeline/.test(f) && a < b) console.log(`${a}/${b}`.padEnd(8), f);
