// A card running the fuzz build of the firmware (build/fuzz.wasm, edge coverage in
// memory), reset to one baseline between inputs, with the memory audit of the oracles:
// the bytes an input may change (its VM's window and disk, the firmware's own state for
// the functions under test) are restored from the baseline after each input; every
// other byte of card memory must still equal the baseline. A cheap audit of the
// neighbours (canary VM, canary disk, other functions, firmware statics) runs after
// every input, the full audit of all card memory every few hundred inputs and on replay.
import * as M from "../../assembly/memmap.js";
import { Counter } from "../../assembly/counters.js";
import { Card, type CardConfig } from "../card.js";
import { loadFirmware } from "../loader.js";

export interface Range { base: number; end: number; what: string; /** writable, but restored by restore()'s own rules (request pool, lazy shadows), not copied whole */ lazy?: boolean }

let fuzzModule: Promise<WebAssembly.Module> | undefined;
let edgeInfo: Promise<{ total: number; ids: number[]; files?: string[]; fns?: string[] }> | undefined;

/** The compiled fuzz build (built by `npm run build`: asc target "fuzz", then scripts/fuzz-edges.mjs). */
export function loadFuzzFirmware(): Promise<WebAssembly.Module> {
  fuzzModule ??= loadFirmware("fuzz.wasm").catch((e) => {
    fuzzModule = undefined;
    throw new Error(`fuzz: cannot load build/fuzz.wasm (run \`npm run build\`): ${(e as Error).message}`);
  });
  return fuzzModule;
}

/** The edge sites live in the optimized fuzz build (build/fuzz-edges.json). */
export function loadEdges(): Promise<{ total: number; ids: number[]; files?: string[]; fns?: string[] }> {
  edgeInfo ??= (async () => {
    const url = new URL("../build/fuzz-edges.json", import.meta.url);
    const alt = new URL("../../build/fuzz-edges.json", import.meta.url); // from host/fuzz/ under vitest
    const { readFile } = await import("node:fs/promises");
    const text = await readFile(url).catch(() => readFile(alt));
    return JSON.parse(text.toString()) as { total: number; ids: number[]; files?: string[]; fns?: string[] };
  })();
  return edgeInfo;
}

/** Thrown by an oracle: the input broke a rule; `kind` groups findings. */
export class Finding extends Error {
  override name = "Finding";
  constructor(readonly kind: string, message: string) { super(`${kind}: ${message}`); }
}

export class FuzzCard {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  private baseline!: Uint8Array;
  /** Ranges an input may change (the full audit skips them); sorted, disjoint. */
  private writable: Range[] = [];
  /** Ranges restore() copies back whole. */
  private eager: Range[] = [];
  /** Ranges checked after every input. */
  private canaries: Range[] = [];
  private readonly cov: Uint8Array;
  private readonly edgeIds: Int32Array;
  /** Shadow rings restored only when their queue's state changed (see lazyShadows). */
  private lazy: { f: number; q: number; bytes: (entry: Uint32Array, base: Uint32Array) => number }[] = [];

  /** Source file of each live edge, by position in the live list (build/fuzz-edges.json). */
  readonly edgeFiles: string[];
  /** Function of each live edge (before inlining), same order. */
  readonly edgeFns: string[];

  private constructor(readonly card: Card, edges: { total: number; ids: number[]; files?: string[]; fns?: string[] }) {
    this.edgeFiles = edges.files ?? [];
    this.edgeFns = edges.fns ?? [];
    this.u8 = card.u8;
    this.u32 = new Uint32Array(card.memory.buffer);
    this.cov = card.u8.subarray(M.FUZZ_COV_BASE, M.FUZZ_COV_BASE + M.FUZZ_COV_SIZE);
    this.edgeIds = Int32Array.from(edges.ids);
  }

  /** A card on the fuzz build (or on `module`, e.g. the release build, which has no edge map). */
  static async create(cfg: CardConfig, module?: WebAssembly.Module): Promise<FuzzCard> {
    const [mod, edges] = await Promise.all([module ?? loadFuzzFirmware(), loadEdges()]);
    const card = await Card.create(cfg, mod);
    return new FuzzCard(card, edges);
  }

  /** A card already built on the fuzz build (e.g. by the testbed, with its peers), for auditing and coverage. */
  static async wrap(card: Card): Promise<FuzzCard> {
    return new FuzzCard(card, await loadEdges());
  }

  get edgesTotal(): number { return this.edgeIds.length; }

  /** Freeze the current memory as the baseline; `writable` are the ranges inputs may change. */
  freeze(writable: Range[], canaries: Range[]): void {
    const all: Range[] = [...writable, { base: M.FUZZ_COV_BASE, end: M.FUZZ_COV_BASE + M.FUZZ_COV_SIZE, what: "coverage map", lazy: true },
      { base: M.REQ_BASE, end: M.REQ_BASE + M.REQ_POOL_SIZE, what: "request pool", lazy: true }];
    this.eager = writable.filter((r) => !r.lazy);
    all.sort((a, b) => a.base - b.base);
    const merged: Range[] = [];
    for (const r of all) {
      const last = merged[merged.length - 1];
      if (last && r.base <= last.end) { last.end = Math.max(last.end, r.end); last.what += ", " + r.what; }
      else merged.push({ ...r });
    }
    this.writable = merged;
    // lazily restored shadows are writable too (the full audit skips them)
    for (const l of this.lazy) {
      const sh = M.SHADOW_BASE + (l.f * M.MAX_QUEUES + l.q) * M.SHADOW_QUEUE_SIZE;
      if (!merged.some((r) => r.base <= sh && r.end >= sh + M.SHADOW_QUEUE_SIZE)) throw new Error("fuzz: lazy shadow outside the writable ranges");
    }
    this.canaries = canaries;
    this.cov.fill(0);
    this.baseline = this.u8.slice();
  }

  /**
   * Shadow rings of queues (f, q) to restore only when the queue's state entry differs
   * from the baseline, and then only the first `bytes(entry now, entry at baseline)`
   * bytes (the entries a queue of that size can hold; the rest is never read).
   */
  lazyShadows(list: { f: number; q: number; bytes: (entry: Uint32Array, base: Uint32Array) => number }[]): void { this.lazy = list; }

  /** Back to the baseline: writable ranges and the request slots the input used. */
  restore(): void {
    const b = this.baseline, u8 = this.u8;
    for (const s of this.lazy) {
      const qa = M.QUEUE_TABLE_BASE + (s.f * M.MAX_QUEUES + s.q) * M.QUEUE_ENTRY_SIZE;
      const now = new Uint32Array(u8.buffer, qa, M.QUEUE_ENTRY_SIZE >>> 2), was = new Uint32Array(b.buffer, qa, M.QUEUE_ENTRY_SIZE >>> 2);
      let same = true;
      for (let i = 0; i < now.length; i++) if (now[i] !== was[i]) { same = false; break; }
      if (same) continue;
      const sh = M.SHADOW_BASE + (s.f * M.MAX_QUEUES + s.q) * M.SHADOW_QUEUE_SIZE;
      const n = Math.min(M.SHADOW_QUEUE_SIZE, s.bytes(now, was));
      u8.set(b.subarray(sh, sh + n), sh);
    }
    for (const r of this.eager) u8.set(b.subarray(r.base, r.end), r.base);
    this.restorePool();
  }

  private restorePool(): void {
    // LIFO free list from a fresh pool: slots an input touched are a prefix; find its end
    // by the slot headers (state, free-list link), then restore whole slots up to it.
    const w = this.u32, bw = new Uint32Array(this.baseline.buffer);
    let hi = -1;
    const stride = M.REQ_SIZE >>> 2;
    for (let r = 0, i = M.REQ_BASE >>> 2; r < M.MAX_REQS; r++, i += stride) {
      if (w[i] !== bw[i] || w[i + 13] !== bw[i + 13]) hi = r; // R_STATE = 0, R_NEXT = 52
      else if (r > hi + 64) break;
    }
    if (hi >= 0) {
      const end = M.REQ_BASE + (hi + 1) * M.REQ_SIZE;
      this.u8.set(this.baseline.subarray(M.REQ_BASE, end), M.REQ_BASE);
    }
  }

  /** Canary audit: throws a Finding naming the first changed byte outside the VM's window. */
  auditCanaries(): void {
    for (const r of this.canaries) this.compare(r.base, r.end, r.what);
  }

  /** Full audit: every byte outside the writable ranges equals the baseline. */
  auditFull(): void {
    let at = 0;
    for (const r of this.writable) {
      this.compare(at, r.base, "card memory outside every writable range");
      at = r.end;
    }
    this.compare(at, this.u8.length, "card memory outside every writable range");
  }

  private compare(base: number, end: number, what: string): void {
    if (end <= base) return;
    const a = Buffer.from(this.u8.buffer, base, end - base), b = Buffer.from(this.baseline.buffer, base, end - base);
    if (a.equals(b)) return;
    let i = 0;
    while (a[i] === b[i]) i++;
    throw new Finding("memory", `${what}: byte at card offset 0x${(base + i).toString(16)} changed (0x${b[i]!.toString(16)} → 0x${a[i]!.toString(16)})`);
  }

  /** Edges hit since the last call, added to `seen`; returns how many were new. Clears the map. */
  collect(seen: Uint8Array): number {
    const ids = this.edgeIds, cov = this.cov;
    let fresh = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      if (cov[id] !== 0 && seen[id] === 0) { seen[id] = 1; fresh++; }
    }
    cov.fill(0, 0, ids.length ? ids[ids.length - 1]! + 1 : 0);
    return fresh;
  }

  /** Reached / total live edges per firmware source file. */
  byFile(seen: Uint8Array, perFunction = false): Record<string, [number, number]> {
    const out: Record<string, [number, number]> = {};
    this.edgeIds.forEach((id, k) => {
      const f = (perFunction ? this.edgeFns[k] : this.edgeFiles[k]) ?? "?";
      const e = (out[f] ??= [0, 0]);
      e[1]++;
      if (seen[id]) e[0]++;
    });
    return out;
  }

  /** Edges in this map (for one input's footprint). */
  hits(): number {
    let n = 0;
    for (const id of this.edgeIds) if (this.cov[id] !== 0) n++;
    return n;
  }

  counter(c: Counter): number { return Number(this.card.dv.getBigUint64(M.COUNTERS_BASE + c * 8, true)); }

  /** Every byte back to the baseline (after a full audit failed, to find the input that did it). */
  restoreAll(): void { this.u8.set(this.baseline); }
}

/** [base, base+size) as a Range. */
export const range = (base: number, size: number, what: string): Range => ({ base, end: base + size, what });
