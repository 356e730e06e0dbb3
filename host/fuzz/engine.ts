// The fuzzing loop: coverage-guided (keep inputs that reach new feedback points),
// structure-aware (the target's generator and mutator) plus byte-level havoc, with
// oracles in the target's runner. A finding is minimized and saved with its target and
// seed; --replay runs it again. Deterministic: same target, seed and corpus give the
// same runs in the same order.
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Rng } from "./rng.js";
import { havoc } from "./program.js";
import type { Harness, Target } from "./target.js";

export interface FuzzOptions {
  seed: number;
  runs?: number;
  seconds?: number;
  /** Seed inputs (files); default test/fuzz/corpus/<target>. */
  corpus?: string;
  /** Write every input that reached new coverage here. */
  saveCorpus?: string;
  /** Where findings go (default .fuzz/findings/, git-ignored). */
  artifacts?: string;
  /** Full memory audit every this many runs (default: the target's Harness.auditEvery, else 2048). */
  auditEvery?: number;
  /** Progress line sink (default stderr); called about every 2 s, and at 10/60/300/600 s. */
  log?: (line: string) => void;
  /** Report coverage at these elapsed seconds (default 1, 10, 30, 60, 120, 300, 600). */
  marks?: number[];
  /** At the end, write the fewest corpus inputs that keep the coverage here (at most distillMax, default 40). */
  distill?: string;
  distillMax?: number;
  /** Also report coverage per firmware function (FuzzReport.byFunction). */
  perFunction?: boolean;
}

export interface FuzzReport {
  target: string;
  seed: number;
  runs: number;
  seconds: number;
  execPerSec: number;
  reached: number;
  total: number;
  unit: string;
  corpus: number;
  timeline: { seconds: number; runs: number; reached: number; features?: number }[];
  /** Host-side feedback points reached (targets with Harness.collectFeatures). */
  features?: number;
  finding?: { message: string; file?: string; size: number };
  /** Reached / total edges per firmware source file (firmware targets). */
  byFile?: Record<string, [number, number]>;
  /** The same per function, when FuzzOptions.perFunction. */
  byFunction?: Record<string, [number, number]>;
}

export const FINDING_MAGIC = "wasm-dpu-fuzz 1";

interface Entry { data: Uint8Array; fresh: number }

/**
 * The inputs since the last full audit, to find the one that broke it: copied into one
 * preallocated arena, so the millions of children a run makes die young instead of being
 * kept (and promoted, and swept) by the garbage collector. An input the arena has since
 * overwritten is gone (get() returns undefined): 4 KiB per slot, at most 64 MiB.
 */
export class RecentInputs {
  private readonly arena: Uint8Array;
  private readonly start: Float64Array;
  private readonly len: Uint32Array;
  private written = 0;
  constructor(readonly slots: number, bytes = Math.min(64 << 20, slots * 4096)) {
    this.arena = new Uint8Array(bytes);
    this.start = new Float64Array(slots).fill(-1);
    this.len = new Uint32Array(slots);
  }
  /** Input number `run` (slot run % slots). */
  put(run: number, input: Uint8Array): void {
    const k = run % this.slots, cap = this.arena.length;
    if (input.length > cap) { this.start[k] = -1; return; }
    let at = this.written % cap;
    if (at + input.length > cap) { this.written += cap - at; at = 0; } // never split an input
    this.arena.set(input, at);
    this.start[k] = this.written;
    this.len[k] = input.length;
    this.written += input.length;
  }
  /** Input number `run`, if still held. */
  get(run: number): Uint8Array | undefined {
    const k = run % this.slots, s = this.start[k]!;
    if (s < 0 || this.written - s > this.arena.length) return undefined;
    const at = s % this.arena.length;
    return this.arena.slice(at, at + this.len[k]!);
  }
}

/** First line of a finding's message with numbers masked: two findings are "the same" when these match. */
export function signature(e: unknown): string {
  const m = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return m.split("\n")[0]!.replace(/0x[0-9a-f]+|\d+/gi, "#").slice(0, 120);
}

export function describe(e: unknown): string {
  if (e instanceof WebAssembly.RuntimeError) return `trap: ${e.message}`;
  return e instanceof Error ? `${e.name === "Finding" ? "" : e.name + ": "}${e.message}` : String(e);
}

/** Does `input` still give a finding with this signature? (full audit included) */
function reproduces(h: Harness, input: Uint8Array, sig: string): boolean {
  h.restoreAll();
  try { h.run(input); h.fullAudit(); } catch (e) { return signature(e) === sig; }
  return false;
}

/** Shrink a finding: drop chunks, then zero bytes, while it still reproduces. */
export function minimize(h: Harness, input: Uint8Array, sig: string, budget = 2000): Uint8Array {
  let best = input;
  let tries = 0;
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && tries < budget; chunk >>= 1) {
    for (let at = 0; at < best.length && tries < budget; ) {
      const cand = new Uint8Array(best.length - Math.min(chunk, best.length - at));
      cand.set(best.subarray(0, at));
      cand.set(best.subarray(at + chunk), at);
      tries++;
      if (cand.length > 0 && reproduces(h, cand, sig)) best = cand;
      else at += chunk;
    }
  }
  for (let i = 0; i < best.length && tries < budget; i++) {
    if (best[i] === 0) continue;
    const cand = best.slice();
    cand[i] = 0;
    tries++;
    if (reproduces(h, cand, sig)) best = cand;
  }
  h.restoreAll();
  return best;
}

export function saveFinding(dir: string, target: string, seed: number, run: number, message: string, input: Uint8Array): string {
  mkdirSync(dir, { recursive: true });
  const hash = createHash("sha1").update(input).digest("hex").slice(0, 12);
  const file = join(dir, `${target}-seed${seed}-${hash}.fuzz`);
  const head = `${FINDING_MAGIC} target=${target} seed=${seed} run=${run}\n${message.split("\n")[0]}\n\n`;
  const out = new Uint8Array(Buffer.byteLength(head) + input.length);
  out.set(Buffer.from(head));
  out.set(input, Buffer.byteLength(head));
  writeFileSync(file, out);
  return file;
}

/** A saved finding (header + input) or a raw corpus file; the target comes from the header or the directory name. */
export function readInput(file: string): { target?: string; seed?: number; input: Uint8Array } {
  const b = readFileSync(file);
  const magic = Buffer.from(FINDING_MAGIC);
  if (b.subarray(0, magic.length).equals(magic)) {
    const end = b.indexOf("\n\n");
    const head = b.subarray(0, end).toString();
    const target = /target=(\S+)/.exec(head)?.[1];
    const seed = Number(/seed=(\d+)/.exec(head)?.[1]);
    return { ...(target ? { target } : {}), seed, input: new Uint8Array(b.subarray(end + 2)) };
  }
  const parts = file.split(/[\\/]/);
  return { ...(parts.length > 1 ? { target: parts[parts.length - 2]! } : {}), input: new Uint8Array(b) };
}

export function corpusFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir).filter((f) => !f.startsWith(".")).sort().map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

export async function fuzz(target: Target, o: FuzzOptions): Promise<FuzzReport> {
  const h = await target.create();
  const rng = new Rng(o.seed);
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const seen = new Uint8Array(h.mapSize);
  const corpus: Entry[] = [];
  const auditEvery = o.auditEvery ?? h.auditEvery ?? 2048;
  const recent = new RecentInputs(auditEvery);
  const marks = (o.marks ?? [1, 10, 30, 60, 120, 300, 600]).slice().sort((a, b) => a - b);
  const timeline: FuzzReport["timeline"] = [];
  let reached = 0, runs = 0, features = 0;
  const feat = () => (h.collectFeatures ? { features } : {});
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const report = (extra?: FuzzReport["finding"]): FuzzReport => {
    const s = elapsed();
    return { target: target.name, seed: o.seed, runs, seconds: s, execPerSec: runs / Math.max(s, 1e-9), reached, total: h.total, unit: h.unit,
      corpus: corpus.length, timeline, ...feat(), ...(h.byFile ? { byFile: h.byFile(seen) } : {}),
      ...(h.byFile && o.perFunction ? { byFunction: h.byFile(seen, true) } : {}), ...(extra ? { finding: extra } : {}) };
  };
  const found = (e: unknown, input: Uint8Array): FuzzReport => {
    const msg = describe(e);
    log(`fuzz: ${target.name}: FINDING after ${runs} runs: ${msg}`);
    const small = minimize(h, input, signature(e));
    let final = msg;
    try { h.restoreAll(); h.run(small); h.fullAudit(); } catch (e2) { final = describe(e2); }
    const file = saveFinding(o.artifacts ?? join(".fuzz", "findings"), target.name, o.seed, runs, final, small);
    log(`fuzz: minimized ${input.length} → ${small.length} bytes, saved ${file}\nfuzz: reproduce with: npm run fuzz -- --replay ${file}`);
    return report({ message: final, file, size: small.length });
  };
  const tryRun = (input: Uint8Array): unknown => {
    try { h.run(input); return undefined; } catch (e) { return e ?? new Error("undefined thrown"); }
  };

  // seeds: the corpus directory, then generated inputs
  const seeds = corpusFiles(o.corpus ?? join("test", "fuzz", "corpus", target.name)).map((f) => readInput(f).input);
  for (let i = 0; i < 8; i++) seeds.push(h.generate(rng));
  for (const s of seeds) {
    runs++;
    const e = tryRun(s);
    if (e) return found(e, s);
    const fresh = h.collect(seen), extra = h.collectFeatures?.(seen) ?? 0;
    reached += fresh;
    features += extra;
    if (fresh > 0 || extra > 0 || corpus.length === 0) corpus.push({ data: s, fresh });
  }
  try { h.fullAudit(); } catch (e) { return found(e, seeds[seeds.length - 1]!); }

  let nextLog = 2, markAt = 0;
  const stop = () => (o.runs !== undefined && runs >= o.runs) || (o.seconds !== undefined && elapsed() >= o.seconds) || (o.runs === undefined && o.seconds === undefined && runs >= 10000);
  while (!stop()) {
    // parents: recent finds more often (they sit on the coverage frontier)
    const parent = corpus[corpus.length - 1 - rng.small(corpus.length - 1)]!.data;
    let child: Uint8Array;
    const r = rng.below(20);
    if (r < 2) child = h.generate(rng);
    else if (r < 11) child = h.mutate(parent, rng, 1 + rng.small(3));
    else if (r < 17) child = havoc(parent, rng, rng.chance(0.2) ? rng.pick(corpus).data : undefined, h.maxLen);
    else child = havoc(h.mutate(parent, rng), rng, undefined, h.maxLen);
    runs++;
    const e = tryRun(child);
    if (e) return found(e, child);
    recent.put(runs, child);
    const fresh = h.collect(seen), extra = h.collectFeatures?.(seen) ?? 0;
    features += extra;
    if (fresh > 0 || extra > 0) {
      reached += fresh;
      corpus.push({ data: child, fresh });
      if (o.saveCorpus) saveCorpusFile(o.saveCorpus, child);
    }
    if (runs % auditEvery === 0) {
      try { h.fullAudit(); } catch (e0) {
        // a byte outside every window changed somewhere in the last batch: find the input
        for (let k = auditEvery - 1; k >= 0; k--) {
          const inp = recent.get(runs - k); // oldest first
          if (!inp) continue;
          h.restoreAll();
          const e1 = tryRun(inp) ?? (() => { try { h.fullAudit(); } catch (x) { return x; } return undefined; })();
          if (e1) return found(e1, inp);
        }
        return found(e0, recent.get(runs) ?? corpus[0]!.data);
      }
    }
    if ((runs & 63) === 0) {
      const s = elapsed();
      while (markAt < marks.length && s >= marks[markAt]!) { timeline.push({ seconds: marks[markAt]!, runs, reached, ...feat() }); markAt++; }
      if (s >= nextLog) {
        nextLog = s + (s < 20 ? 2 : 10);
        log(`fuzz: ${target.name} #${runs} ${Math.round(s)}s ${Math.round(runs / s)} exec/s  ${h.unit} ${reached}/${h.total || "?"}  corpus ${corpus.length}${h.collectFeatures ? `  features ${features}` : ""}`);
      }
    }
  }
  try { h.fullAudit(); } catch (e) { return found(e, recent.get(runs) ?? corpus[0]!.data); }
  const s = elapsed();
  while (markAt < marks.length && s >= marks[markAt]!) { timeline.push({ seconds: marks[markAt]!, runs, reached, ...feat() }); markAt++; }
  if (o.distill) {
    const kept = distill(h, corpus.map((c) => c.data), o.distillMax ?? 40);
    mkdirSync(o.distill, { recursive: true });
    for (const k of kept) saveCorpusFile(o.distill, k);
    log(`fuzz: distilled ${corpus.length} corpus entries to ${kept.length} in ${o.distill}`);
  }
  return report();
}

/**
 * Greedy set cover: the fewest inputs (at most `max`) that together reach what all of
 * `inputs` reach; the first picks reach the most.
 */
export function distill(h: Harness, inputs: Uint8Array[], max: number): Uint8Array[] {
  const sets = inputs.map((inp) => {
    const seen = new Uint8Array(h.mapSize);
    h.restoreAll();
    try { h.run(inp); } catch { return { inp, ids: [] as number[] }; }
    h.collect(seen);
    const ids: number[] = [];
    seen.forEach((v, i) => { if (v) ids.push(i); });
    return { inp, ids };
  });
  const have = new Uint8Array(h.mapSize);
  const out: Uint8Array[] = [];
  while (out.length < max) {
    let best = -1, gain = 0;
    sets.forEach((s, i) => {
      let g = 0;
      for (const id of s.ids) if (!have[id]) g++;
      if (g > gain || (g === gain && g > 0 && s.inp.length < sets[best]!.inp.length)) { gain = g; best = i; }
    });
    if (best < 0 || gain === 0) break;
    for (const id of sets[best]!.ids) have[id] = 1;
    out.push(sets[best]!.inp);
  }
  h.restoreAll();
  return out;
}

function saveCorpusFile(dir: string, data: Uint8Array): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, createHash("sha1").update(data).digest("hex").slice(0, 16)), data);
}

/** Replay one input with every oracle (full audit included); returns the finding or undefined, and the feedback reached. */
export async function replay(target: Target, input: Uint8Array, verbose?: (line: string) => void): Promise<{ finding?: string; reached: number; total: number; unit: string }> {
  const h = await target.create();
  if (verbose) for (const l of h.explain?.(input) ?? []) verbose(l);
  const seen = new Uint8Array(h.mapSize);
  try { h.run(input); h.fullAudit(); } catch (e) { return { finding: describe(e), reached: h.collect(seen), total: h.total, unit: h.unit }; }
  return { reached: h.collect(seen), total: h.total, unit: h.unit };
}
