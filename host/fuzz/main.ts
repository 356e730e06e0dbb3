// `npm run fuzz -- TARGET [--seconds S | --runs N] [--seed N] [--corpus DIR]`,
// `npm run fuzz -- --list`, `npm run fuzz -- --replay FILE`.
import { parseArgs } from "node:util";
import { fuzz, replay, readInput, corpusFiles } from "./engine.js";
import { TARGETS, findTarget } from "./targets/index.js";

const USAGE = `usage: npm run fuzz -- TARGET [--seconds S | --runs N] [--seed N] [--corpus DIR] [--save-corpus DIR] [--artifacts DIR] [--distill DIR [--distill-max N]] [--coverage [--verbose]] [--json] [--quiet]
       npm run fuzz -- --list
       npm run fuzz -- --replay FILE|DIR [--target NAME] [--verbose]`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        list: { type: "boolean" }, replay: { type: "string" }, target: { type: "string" }, seconds: { type: "string" }, runs: { type: "string" },
        seed: { type: "string" }, corpus: { type: "string" }, "save-corpus": { type: "string" }, artifacts: { type: "string" },
        json: { type: "boolean" }, coverage: { type: "boolean" }, distill: { type: "string" }, "distill-max": { type: "string" }, verbose: { type: "boolean" }, quiet: { type: "boolean" }, help: { type: "boolean" },
      },
    });
  } catch (e) {
    console.error(`fuzz: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values: a, positionals } = parsed;
  if (a.help) { console.log(USAGE); return 0; }
  if (a.list) {
    for (const t of TARGETS) console.log(`${t.name.padEnd(14)} ${t.about}`);
    return 0;
  }
  if (a.replay !== undefined) {
    const files = corpusFiles(a.replay);
    const list = files.length ? files : [a.replay];
    let bad = 0;
    for (const file of list) {
      const { target: tname, input } = readInput(file);
      const name = a.target ?? tname;
      const t = name ? findTarget(name) : undefined;
      if (!t) { console.error(`fuzz: ${file}: no target (give --target, one of ${TARGETS.map((x) => x.name).join(", ")})`); return 2; }
      const r = await replay(t, input, a.verbose ? (l) => console.log(`  ${l}`) : undefined);
      if (r.finding) { bad++; console.log(`${file}: ${t.name}: FINDING: ${r.finding}`); }
      else console.log(`${file}: ${t.name}: ok, ${r.unit} ${r.reached}/${r.total}`);
    }
    return bad ? 1 : 0;
  }
  const name = positionals[0];
  if (!name) { console.error(`fuzz: which target?\n${USAGE}\ntargets: ${TARGETS.map((t) => t.name).join(", ")}`); return 2; }
  const t = findTarget(name);
  if (!t) { console.error(`fuzz: no target "${name}" (have: ${TARGETS.map((x) => x.name).join(", ")})`); return 2; }
  const num = (s: string | undefined, what: string): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${what} wants a number ≥ 0, got "${s}"`);
    return n;
  };
  let seconds, runs, seed, distillMax;
  try { seconds = num(a.seconds, "seconds"); runs = num(a.runs, "runs"); seed = num(a.seed, "seed") ?? 1; distillMax = num(a["distill-max"], "distill-max"); } catch (e) { console.error(`fuzz: ${(e as Error).message}`); return 2; }
  if (seconds !== undefined && runs !== undefined) { console.error("fuzz: give --seconds or --runs, not both"); return 2; }
  const r = await fuzz(t, {
    seed, ...(seconds !== undefined ? { seconds } : {}), ...(runs !== undefined ? { runs } : {}),
    ...(a.corpus ? { corpus: a.corpus } : {}), ...(a["save-corpus"] ? { saveCorpus: a["save-corpus"] } : {}),
    ...(a.artifacts ? { artifacts: a.artifacts } : {}), ...(a.coverage && a.verbose ? { perFunction: true } : {}), ...(a.distill ? { distill: a.distill } : {}), ...(distillMax !== undefined ? { distillMax } : {}), ...(a.quiet ? { log: () => {} } : {}),
  });
  if (a.json) console.log(JSON.stringify(r, null, 2));
  else {
    const f = (n?: number) => (n !== undefined ? `, host features ${n}` : "");
    console.log(`${r.target}: ${r.runs} runs in ${r.seconds.toFixed(1)} s (${Math.round(r.execPerSec)} exec/s), seed ${r.seed}, ${r.unit} ${r.reached}/${r.total || "?"}${f(r.features)}, corpus ${r.corpus}`);
    for (const m of r.timeline) console.log(`  after ${m.seconds} s: ${r.unit} ${m.reached}/${r.total || "?"}${f(m.features)} (${m.runs} runs)`);
    if (a.coverage && r.byFile) for (const [f, [got, all]] of Object.entries(r.byFile).sort()) console.log(`  ${f.padEnd(28)} ${String(got).padStart(5)}/${all}`);
    if (r.byFunction) {
      console.log("  functions with edges not reached:");
      for (const [f, [got, all]] of Object.entries(r.byFunction).sort()) if (got > 0 && got < all) console.log(`    ${f.padEnd(48)} ${String(got).padStart(5)}/${all}`);
    }
    if (r.finding) console.log(`FINDING: ${r.finding.message}\n  saved ${r.finding.file} (${r.finding.size} bytes); npm run fuzz -- --replay ${r.finding.file}`);
    else console.log("no findings");
  }
  return r.finding ? 1 : 0;
}

main().then((c) => process.exit(c), (e) => { console.error(`fuzz: ${(e as Error).stack ?? e}`); process.exit(1); });
