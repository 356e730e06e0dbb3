// A card running the fuzz build of the firmware (build/fuzz.wasm, edge coverage in
// memory), reset to one baseline between inputs, with the memory audit of the oracles:
// the bytes an input may change (its VM's window and disk, the firmware's own state for
// the functions under test) go back to the baseline after each input; every other byte
// of card memory must still equal the baseline.
//
// The fuzz build lists every page the firmware stores to (FUZZ_DIRTY_* in memmap.ts), so
// restoring is copying those pages back, and each of them that is not wholly writable is
// audited after every input. Ranges the host's side of a target writes (its guest
// driver, its storage controllers) are copied back whole ("eager"); ranges only the
// firmware writes are "tracked" and cost nothing unless touched. A cheap audit of the
// neighbours (canary VM, canary disk, firmware statics) runs after every input, the full
// audit of all card memory every few thousand inputs and on replay.
import * as M from "../../assembly/memmap.js";
import { Counter } from "../../assembly/counters.js";
import { Card, type CardConfig } from "../card.js";
import { loadFirmware } from "../loader.js";

export interface Range {
  base: number; end: number; what: string;
  /** Writable, but restored by restore()'s own rules (request pool, lazy shadows), not copied whole. */
  lazy?: boolean;
  /** Only the firmware writes it: restored through the dirty-page list, not copied whole (copied whole on a build without the list). */
  tracked?: boolean;
}

const PAGE_SHIFT = M.FUZZ_DIRTY_SHIFT, PAGE_BYTES = 1 << PAGE_SHIFT;
const DIRTY_CAP = (M.FUZZ_DIRTY_LIST_SIZE >>> 2) - 1;

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
  /** The fuzz build's dirty-page list and map (undefined on a build without them, or a card too large for the map). */
  private readonly dirtyList?: Uint32Array;
  private readonly dirtyMap?: Uint8Array;
  /** Per page: 1 when the page lies wholly inside the writable ranges (no audit needed). */
  private pageWritable = new Uint8Array(0);
  /** Byte per edge id: 1 for the live ones (build/fuzz-edges.json). */
  private readonly live: Uint8Array;
  private readonly covWords: Uint32Array;
  /** The fuzz build's scan of the coverage map (ids of the bytes set, written to FUZZ_HITS), and that list. */
  private readonly hitScan?: (bytes: number) => number;
  private readonly hitList: Uint32Array = new Uint32Array(0);
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
    const span = ((edges.ids.length ? edges.ids[edges.ids.length - 1]! + 1 : 0) + 7) & ~7; // __fuzz_hits scans 8 bytes at a time
    this.covWords = new Uint32Array(card.memory.buffer, M.FUZZ_COV_BASE, span >>> 2);
    this.live = new Uint8Array(span);
    for (const id of edges.ids) this.live[id] = 1;
    const scan = (card.fw as unknown as { __fuzz_hits?: (bytes: number) => number }).__fuzz_hits;
    if (scan) {
      this.hitScan = scan;
      this.hitList = new Uint32Array(card.memory.buffer, M.FUZZ_HITS, M.FUZZ_HITS_SIZE >>> 2);
    }
    const tracking = "__fuzz_sites" in card.fw && card.u8.length <= M.FUZZ_DIRTY_MAP_SIZE << PAGE_SHIFT;
    if (tracking) {
      this.dirtyList = new Uint32Array(card.memory.buffer, M.FUZZ_DIRTY_LIST, M.FUZZ_DIRTY_LIST_SIZE >>> 2);
      this.dirtyMap = card.u8.subarray(M.FUZZ_DIRTY_MAP, M.FUZZ_DIRTY_MAP + M.FUZZ_DIRTY_MAP_SIZE);
    }
  }

  /** Does this card list the pages the firmware wrote (the fuzz build)? */
  get tracking(): boolean { return this.dirtyList !== undefined; }

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
      { base: M.FUZZ_DIRTY_LIST, end: M.FUZZ_DIRTY_MAP + M.FUZZ_DIRTY_MAP_SIZE, what: "dirty-page list and map", lazy: true },
      { base: M.FUZZ_HITS, end: M.FUZZ_HITS + M.FUZZ_HITS_SIZE, what: "edge hit list", lazy: true },
      { base: M.REQ_BASE, end: M.REQ_BASE + M.REQ_POOL_SIZE, what: "request pool", lazy: true }];
    if (M.FUZZ_DIRTY_LIST + M.FUZZ_DIRTY_LIST_SIZE !== M.FUZZ_DIRTY_MAP) throw new Error("fuzz: the dirty-page list must sit just below its map");
    this.eager = writable.filter((r) => !r.lazy && !(r.tracked && this.tracking));
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
    this.u8.fill(0, M.FUZZ_DIRTY_LIST, M.FUZZ_DIRTY_MAP + M.FUZZ_DIRTY_MAP_SIZE);
    this.baseline = this.u8.slice();
    const pages = Math.ceil(this.u8.length / PAGE_BYTES);
    this.pageWritable = new Uint8Array(pages);
    for (const r of merged) for (let p = Math.ceil(r.base / PAGE_BYTES); (p + 1) * PAGE_BYTES <= r.end && p < pages; p++) this.pageWritable[p] = 1;
  }

  /** Pages the firmware stored to since the last restore (all marked pages when the list overflowed). */
  private dirtyPages(): ArrayLike<number> {
    const list = this.dirtyList!, n = list[0]!;
    if (n <= DIRTY_CAP) return list.subarray(1, 1 + n);
    const out: number[] = [], map = this.dirtyMap!;
    for (let p = 0; p < map.length; p++) if (map[p]) out.push(p);
    return out;
  }

  /** Copy the pages the firmware wrote back from the baseline and clear the list. */
  private restoreDirty(): void {
    if (!this.dirtyList) return;
    const pages = this.dirtyPages(), b = this.baseline, u8 = this.u8, map = this.dirtyMap!;
    const last = map.length - 1;
    for (let k = 0; k < pages.length; k++) {
      const p = pages[k]!;
      map[p] = 0;
      // the map's last page stands for every page above its reach
      const base = p * PAGE_BYTES, end = p === last ? u8.length : base + PAGE_BYTES;
      u8.set(b.subarray(base, end), base);
    }
    this.dirtyList[0] = 0;
  }

  /** Audit the pages the firmware wrote that are not wholly writable: their bytes outside the writable ranges. */
  auditDirty(): void {
    if (!this.dirtyList) return;
    const pages = this.dirtyPages(), last = this.dirtyMap!.length - 1;
    for (let k = 0; k < pages.length; k++) {
      const p = pages[k]!;
      if (this.pageWritable[p]) continue;
      const base = p * PAGE_BYTES;
      this.auditOutsideWritable(base, p === last ? this.u8.length : Math.min(this.u8.length, base + PAGE_BYTES));
    }
  }

  /** Every byte of [base, end) outside the writable ranges equals the baseline. */
  private auditOutsideWritable(base: number, end: number): void {
    let at = base;
    for (const r of this.writable) {
      if (r.end <= at) continue;
      if (r.base >= end) break;
      this.compare(at, Math.min(r.base, end), "card memory outside every writable range");
      at = Math.max(at, r.end);
      if (at >= end) return;
    }
    this.compare(at, end, "card memory outside every writable range");
  }

  /**
   * Shadow rings of queues (f, q) to restore only when the queue's state entry differs
   * from the baseline, and then only the first `bytes(entry now, entry at baseline)`
   * bytes (the entries a queue of that size can hold; the rest is never read).
   */
  lazyShadows(list: { f: number; q: number; bytes: (entry: Uint32Array, base: Uint32Array) => number }[]): void { this.lazy = list; }

  private wrote: number[] = [];

  /** The host side of a target wrote [base, base + bytes) of a tracked range: restore() copies it back. */
  hostWrote(base: number, bytes: number): void { this.wrote.push(base, base + bytes); }

  /** Back to the baseline: writable ranges, the pages the firmware wrote, what the host said it wrote, and the request slots the input used. */
  restore(): void {
    const b = this.baseline, u8 = this.u8;
    const w = this.wrote;
    for (let i = 0; i < w.length; i += 2) u8.set(b.subarray(w[i]!, w[i + 1]!), w[i]!);
    w.length = 0;
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
    this.restoreDirty();
    if (!this.tracking) this.restorePool(); // the pool's pages the firmware wrote are in the dirty list
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

  /** Per-input audit: the canaries, then the pages the firmware wrote; throws a Finding naming the first changed byte. */
  auditCanaries(): void {
    for (const r of this.canaries) this.compare(r.base, r.end, r.what);
    this.auditDirty();
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
    const live = this.live;
    let fresh = 0;
    if (this.hitScan) {
      // the fuzz build lists the bytes set (and clears them): a few hundred ids, not the map
      const n = this.hitScan(this.live.length), hits = this.hitList;
      for (let k = 0; k < n; k++) {
        const id = hits[k]!;
        if (live[id] !== 0 && seen[id] === 0) { seen[id] = 1; fresh++; }
      }
      return fresh;
    }
    // a word at a time: an input reaches a few hundred of the thousands of edges
    const w = this.covWords, cov = this.cov;
    for (let k = 0; k < w.length; k++) {
      if (w[k] === 0) continue;
      for (let id = k << 2, e = id + 4; id < e; id++) {
        if (cov[id] !== 0 && live[id] !== 0 && seen[id] === 0) { seen[id] = 1; fresh++; }
      }
      w[k] = 0;
    }
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

  /** A firmware counter (u64, read as two words: no BigInt on the per-input path). */
  counter(c: Counter): number {
    const i = (M.COUNTERS_BASE >>> 2) + c * 2;
    return this.u32[i]! + this.u32[i + 1]! * 2 ** 32;
  }

  /** Every byte back to the baseline (after a full audit failed, to find the input that did it). */
  restoreAll(): void { this.u8.set(this.baseline); }

  /**
   * The first byte of card memory that differs from the baseline, outside the coverage map,
   * the dirty-page list and the `except` ranges; undefined when none does. After restore()
   * this says whether a target's restore is complete (tests), so the next input starts
   * where the first did.
   */
  firstDifference(except: Range[] = []): number | undefined {
    const skip = [{ base: M.FUZZ_COV_BASE, end: M.FUZZ_COV_BASE + M.FUZZ_COV_SIZE }, { base: M.FUZZ_DIRTY_LIST, end: M.FUZZ_DIRTY_MAP + M.FUZZ_DIRTY_MAP_SIZE },
      { base: M.FUZZ_HITS, end: M.FUZZ_HITS + M.FUZZ_HITS_SIZE }, ...except]
      .sort((a, b) => a.base - b.base);
    let at = 0;
    const diff = (base: number, end: number) => {
      if (end <= base) return undefined;
      const a = Buffer.from(this.u8.buffer, base, end - base), b = Buffer.from(this.baseline.buffer, base, end - base);
      if (a.equals(b)) return undefined;
      let i = 0;
      while (a[i] === b[i]) i++;
      return base + i;
    };
    for (const r of skip) {
      const d = diff(at, r.base);
      if (d !== undefined) return d;
      at = Math.max(at, r.end);
    }
    return diff(at, this.u8.length);
  }
}

/** [base, base+size) as a Range. */
export const range = (base: number, size: number, what: string): Range => ({ base, end: base + size, what });
/** [base, base+size) as a Range only the firmware writes (restored through the dirty pages). */
export const tracked = (base: number, size: number, what: string): Range => ({ ...range(base, size, what), tracked: true });
