// asc transform for the fuzz build (asconfig.json target "fuzz"): edge coverage from the
// firmware itself. afterCompile gets the Binaryen module before optimization; we put
// `i32.store8 (FUZZ_COV_BASE + id) 1` at every function entry, at the start of each if
// arm (an else arm is added where there was none), at the start of every loop body and
// after every named block that branches can reach (a join point: the cases of a
// `switch` land there, so its br_if chain needs no marks of its own). Only the
// firmware's own functions (assembly/...) are instrumented, not asc's library.
// The map and its size come from assembly/memmap.ts (FUZZ_COV_BASE, FUZZ_COV_SIZE);
// the number of sites is exported as the i32 global `__fuzz_sites`.
// scripts/fuzz-edges.mjs then counts the sites that survive optimization.
//
// Before the edges, every store of every function (asc's library too) gets its page
// marked dirty (FUZZ_DIRTY_* in memmap.ts): the store's pointer goes through
// __fuzz_w(ptr, offset, bytes), which marks the pages of its first and last byte and
// returns the pointer, and memory.copy/fill become calls that mark their destination
// range first. The optimizer inlines __fuzz_w; a page already marked costs a load and a
// branch. The edge marks added after this pass are not tracked.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const memmap = readFileSync(new URL("../assembly/memmap.ts", import.meta.url), "utf8");
const literal = (name) => {
  const m = memmap.match(new RegExp(`export const ${name}: u32 = (0x[0-9a-fA-F]+|\\d+);`));
  if (!m) throw new Error(`fuzz-transform: ${name} not found as a literal in assembly/memmap.ts`);
  return Number(m[1]);
};
const COV_BASE = literal("FUZZ_COV_BASE");
const COV_SIZE = literal("FUZZ_COV_SIZE");
const DIRTY_SHIFT = literal("FUZZ_DIRTY_SHIFT");
const DIRTY_MAP = literal("FUZZ_DIRTY_MAP");
const DIRTY_PAGES = literal("FUZZ_DIRTY_MAP_SIZE");
const DIRTY_LIST = literal("FUZZ_DIRTY_LIST");
const DIRTY_CAP = (literal("FUZZ_DIRTY_LIST_SIZE") >>> 2) - 1;
const HITS = literal("FUZZ_HITS");
const HITS_SIZE = literal("FUZZ_HITS_SIZE");

/**
 * Export __fuzz_hits(bytes): scan the first `bytes` (a multiple of 8) of the coverage map
 * eight bytes at a time, write the index of every byte set to FUZZ_HITS, clear it, and
 * return how many: collecting an input's edges costs a few hundred ids in JavaScript.
 */
function addHitScan(module, B) {
  const m = module, i32 = B.i32, i64 = B.i64, c = (v) => m.i32.const(v);
  const I = 1, W = 2, N = 3, K = 4; // locals: byte index, word, hits, byte in word
  const get = (i, t = i32) => m.local.get(i, t);
  m.addFunction("__fuzz_hits", B.createType([i32]), i32, [i32, i64, i32, i32], m.block(null, [
    m.loop("word", m.if(m.i32.lt_u(get(I), get(0)), m.block(null, [
      m.local.set(W, m.i64.load(COV_BASE, 8, get(I))),
      m.if(m.i64.ne(get(W, i64), m.i64.const(0n)), m.block(null, [
        m.i64.store(COV_BASE, 8, get(I), m.i64.const(0n)),
        // each byte set: its index from the word's trailing zeros, then clear that byte
        m.loop("byte", m.block(null, [
          m.local.set(K, m.i32.shr_u(m.i32.wrap(m.i64.ctz(get(W, i64))), c(3))),
          m.i32.store(HITS, 4, m.i32.shl(get(N), c(2)), m.i32.add(get(I), get(K))),
          m.local.set(N, m.i32.add(get(N), c(1))),
          m.local.set(W, m.i64.and(get(W, i64), m.i64.xor(m.i64.shl(m.i64.const(0xffn), m.i64.extend_u(m.i32.shl(get(K), c(3)))), m.i64.const(-1n)))),
          m.br("byte", m.i64.ne(get(W, i64), m.i64.const(0n))),
        ])),
      ])),
      m.local.set(I, m.i32.add(get(I), c(8))),
      m.br("word"),
    ]))),
    m.return(get(N)),
  ], i32));
  m.addFunctionExport("__fuzz_hits", "__fuzz_hits");
}

/** Add __fuzz_page/__fuzz_w/__fuzz_range/__fuzz_copy/__fuzz_fill and route every store through them. */
function trackStores(module, B) {
  const i32 = B.i32, m = module, get = (i) => m.local.get(i, i32), c = (v) => m.i32.const(v);
  // __fuzz_page(pg): mark page pg (clamped to the map) and list it the first time
  m.addFunction("__fuzz_page", B.createType([i32]), B.none, [i32], m.block(null, [
    m.local.set(0, m.select(m.i32.lt_u(get(0), c(DIRTY_PAGES)), get(0), c(DIRTY_PAGES - 1))),
    m.if(m.i32.eqz(m.i32.load8_u(0, 1, m.i32.add(get(0), c(DIRTY_MAP)))), m.block(null, [
      m.i32.store8(0, 1, m.i32.add(get(0), c(DIRTY_MAP)), c(1)),
      m.local.set(1, m.i32.load(0, 4, c(DIRTY_LIST))),
      m.if(m.i32.lt_u(get(1), c(DIRTY_CAP)), m.i32.store(4, 4, m.i32.add(m.i32.shl(get(1), c(2)), c(DIRTY_LIST)), get(0))),
      m.i32.store(0, 4, c(DIRTY_LIST), m.i32.add(get(1), c(1))),
    ])),
  ]));
  const page = (addr) => m.call("__fuzz_page", [m.i32.shr_u(addr, c(DIRTY_SHIFT))], B.none);
  // __fuzz_w(p, offset, bytes) → p, its first and last byte's pages marked
  m.addFunction("__fuzz_w", B.createType([i32, i32, i32]), i32, [], m.block(null, [
    page(m.i32.add(get(0), get(1))),
    page(m.i32.sub(m.i32.add(m.i32.add(get(0), get(1)), get(2)), c(1))),
    m.return(get(0)),
  ], i32));
  // __fuzz_range(d, n): every page of [d, d + n)
  m.addFunction("__fuzz_range", B.createType([i32, i32]), B.none, [i32], m.block(null, [
    m.if(m.i32.eqz(get(1)), m.return()),
    m.local.set(2, m.i32.shr_u(m.i32.sub(m.i32.add(get(0), get(1)), c(1)), c(DIRTY_SHIFT))),
    m.local.set(0, m.i32.shr_u(get(0), c(DIRTY_SHIFT))),
    m.loop("next", m.block(null, [
      m.call("__fuzz_page", [get(0)], B.none),
      m.local.set(0, m.i32.add(get(0), c(1))),
      m.br("next", m.i32.le_u(get(0), get(2))),
    ])),
  ]));
  m.addFunction("__fuzz_copy", B.createType([i32, i32, i32]), B.none, [], m.block(null, [
    m.call("__fuzz_range", [get(0), get(2)], B.none), m.memory.copy(get(0), get(1), get(2)),
  ]));
  m.addFunction("__fuzz_fill", B.createType([i32, i32, i32]), B.none, [], m.block(null, [
    m.call("__fuzz_range", [get(0), get(2)], B.none), m.memory.fill(get(0), get(1), get(2)),
  ]));
  const helpers = new Set(["__fuzz_page", "__fuzz_w", "__fuzz_range", "__fuzz_copy", "__fuzz_fill"]);
  // memory.copy/fill have no value, so they sit only where a statement does: block
  // children, if arms, loop bodies, function bodies. Replace them there.
  const stmt = (e) => {
    if (e === 0) return e;
    const id = B._BinaryenExpressionGetId(e);
    if (id === B.MemoryCopyId) return m.call("__fuzz_copy", [B._BinaryenMemoryCopyGetDest(e), B._BinaryenMemoryCopyGetSource(e), B._BinaryenMemoryCopyGetSize(e)], B.none);
    if (id === B.MemoryFillId) return m.call("__fuzz_fill", [B._BinaryenMemoryFillGetDest(e), B._BinaryenMemoryFillGetValue(e), B._BinaryenMemoryFillGetSize(e)], B.none);
    return e;
  };
  const walk = (e) => {
    if (e === 0) return;
    const id = B._BinaryenExpressionGetId(e);
    if (id === B.BlockId) {
      const n = B._BinaryenBlockGetNumChildren(e);
      for (let i = 0; i < n; i++) {
        const k = B._BinaryenBlockGetChildAt(e, i);
        walk(k);
        const r = stmt(k);
        if (r !== k) B._BinaryenBlockSetChildAt(e, i, r);
      }
      return;
    }
    if (id === B.IfId) {
      walk(B._BinaryenIfGetCondition(e));
      const t = B._BinaryenIfGetIfTrue(e), f = B._BinaryenIfGetIfFalse(e);
      walk(t); walk(f);
      B._BinaryenIfSetIfTrue(e, stmt(t));
      if (f !== 0) B._BinaryenIfSetIfFalse(e, stmt(f));
      return;
    }
    if (id === B.LoopId) {
      const body = B._BinaryenLoopGetBody(e);
      walk(body);
      B._BinaryenLoopSetBody(e, stmt(body));
      return;
    }
    const keys = CHILD_KEYS[id];
    if (keys) {
      const info = B.getExpressionInfo(e);
      for (const k of keys) {
        const v = info[k];
        if (Array.isArray(v)) v.forEach(walk);
        else if (typeof v === "number") walk(v);
      }
    }
    if (id === B.StoreId) {
      B._BinaryenStoreSetPtr(e, m.call("__fuzz_w", [B._BinaryenStoreGetPtr(e), c(B._BinaryenStoreGetOffset(e)), c(B._BinaryenStoreGetBytes(e))], i32));
    } else if (id === B.SIMDLoadStoreLaneId || id === B.AtomicRMWId || id === B.AtomicCmpxchgId) {
      throw new Error("fuzz-transform: a lane store or atomic in the firmware: dirty-page tracking does not cover it yet");
    }
  };
  const n = m.getNumFunctions();
  for (let i = 0; i < n; i++) {
    const fn = m.getFunctionByIndex(i);
    const info = B.getFunctionInfo(fn);
    if (helpers.has(info.name) || info.body === 0) continue;
    walk(info.body);
    B._BinaryenFunctionSetBody(fn, stmt(B._BinaryenFunctionGetBody(fn)));
  }
}

export default class FuzzCoverage {
  afterCompile(module) {
    const B = this.binaryen;
    trackStores(module, B);
    let next = 0;
    let fname = "";
    const owner = []; // site id → function name (build/fuzz-sites.json, for per-file coverage)
    const mark = () => {
      owner.push(fname);
      if (next >= COV_SIZE) throw new Error(`fuzz-transform: more than ${COV_SIZE} edges; grow FUZZ_COV_SIZE`);
      return module.i32.store8(0, 1, module.i32.const(COV_BASE + next++), module.i32.const(1));
    };
    const isJoin = (e) => e !== 0 && B._BinaryenExpressionGetId(e) === B.BlockId && B._BinaryenBlockGetName(e) !== 0 &&
      B._BinaryenExpressionGetType(e) === B.none;
    // [mark, e, mark-after-e-if-e-is-a-join-point], keeping e's type
    const wrap = (e) => {
      const kids = [mark(), e];
      if (isJoin(e)) kids.push(mark());
      return module.block(null, kids, B._BinaryenExpressionGetType(e));
    };
    const walk = (e) => {
      if (e === 0) return;
      const id = B._BinaryenExpressionGetId(e);
      switch (id) {
        case B.BlockId: {
          const n = B._BinaryenBlockGetNumChildren(e);
          for (let i = 0; i < n; i++) walk(B._BinaryenBlockGetChildAt(e, i));
          for (let i = n - 1; i >= 0; i--) {
            if (isJoin(B._BinaryenBlockGetChildAt(e, i))) B._BinaryenBlockInsertChildAt(e, i + 1, mark());
          }
          return;
        }
        case B.IfId: {
          walk(B._BinaryenIfGetCondition(e));
          const t = B._BinaryenIfGetIfTrue(e), f = B._BinaryenIfGetIfFalse(e);
          walk(t); walk(f);
          B._BinaryenIfSetIfTrue(e, wrap(t));
          B._BinaryenIfSetIfFalse(e, f === 0 ? mark() : wrap(f));
          B._BinaryenExpressionFinalize(e);
          return;
        }
        case B.LoopId: {
          const body = B._BinaryenLoopGetBody(e);
          walk(body);
          B._BinaryenLoopSetBody(e, wrap(body));
          return;
        }
        default: {
          const keys = CHILD_KEYS[id];
          if (!keys) return;
          const info = B.getExpressionInfo(e);
          for (const k of keys) {
            const v = info[k];
            if (Array.isArray(v)) v.forEach(walk);
            else if (typeof v === "number") walk(v);
          }
        }
      }
    };
    const n = module.getNumFunctions();
    for (let i = 0; i < n; i++) {
      const fn = module.getFunctionByIndex(i);
      const info = B.getFunctionInfo(fn);
      if (!info.name.startsWith("assembly/") || info.body === 0) continue;
      fname = info.name;
      walk(info.body);
      B._BinaryenFunctionSetBody(fn, wrap(B._BinaryenFunctionGetBody(fn)));
    }
    mkdirSync(new URL("../build/", import.meta.url), { recursive: true });
    writeFileSync(new URL("../build/fuzz-sites.json", import.meta.url), JSON.stringify(owner));
    if (next * 4 > HITS_SIZE) throw new Error(`fuzz-transform: ${next} edges do not fit FUZZ_HITS (${HITS_SIZE} bytes, 4 per edge); grow it`);
    addHitScan(module, B);
    module.addGlobal("__fuzz_sites", B.i32, false, module.i32.const(next));
    module.addGlobalExport("__fuzz_sites", "__fuzz_sites");
    this.log?.(`fuzz-transform: ${next} edge sites instrumented (map at 0x${COV_BASE.toString(16)}, ${COV_SIZE} bytes)`);
  }
}

// Children of the other expression kinds the firmware compiles to (names as in
// binaryen.getExpressionInfo); kinds not listed have no children we instrument under.
const ids = {
  Break: ["condition", "value"], Switch: ["condition", "value"], Call: ["operands"], CallIndirect: ["target", "operands"],
  LocalSet: ["value"], GlobalSet: ["value"], Load: ["ptr"], Store: ["ptr", "value"], Unary: ["value"],
  Binary: ["left", "right"], Select: ["ifTrue", "ifFalse", "condition"], Drop: ["value"], Return: ["value"],
  MemoryGrow: ["delta"], MemoryCopy: ["dest", "source", "size"], MemoryFill: ["dest", "value", "size"],
  AtomicRMW: ["ptr", "value"], AtomicCmpxchg: ["ptr", "expected", "replacement"], SIMDExtract: ["vec"],
  SIMDReplace: ["vec", "value"], SIMDShuffle: ["left", "right"], SIMDTernary: ["a", "b", "c"], SIMDShift: ["vec", "shift"],
  SIMDLoad: ["ptr"], TupleMake: ["operands"], TupleExtract: ["tuple"], Throw: ["operands"],
};
const CHILD_KEYS = {};
const Bmod = (await import("binaryen")).default;
for (const [k, v] of Object.entries(ids)) CHILD_KEYS[Bmod[`${k}Id`]] = v;
