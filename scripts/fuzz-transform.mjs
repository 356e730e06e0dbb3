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
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const memmap = readFileSync(new URL("../assembly/memmap.ts", import.meta.url), "utf8");
const literal = (name) => {
  const m = memmap.match(new RegExp(`export const ${name}: u32 = (0x[0-9a-fA-F]+|\\d+);`));
  if (!m) throw new Error(`fuzz-transform: ${name} not found as a literal in assembly/memmap.ts`);
  return Number(m[1]);
};
const COV_BASE = literal("FUZZ_COV_BASE");
const COV_SIZE = literal("FUZZ_COV_SIZE");

export default class FuzzCoverage {
  afterCompile(module) {
    const B = this.binaryen;
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
