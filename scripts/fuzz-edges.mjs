// After the fuzz build: count the edge sites scripts/fuzz-transform.mjs put in that
// survive optimization (stores of 1 to a constant address inside the coverage map),
// and record them in build/fuzz-edges.json, so the fuzzer prints "edges reached / total"
// against what the firmware can still reach.
import { readFileSync, writeFileSync } from "node:fs";
import B from "binaryen";

const memmap = readFileSync(new URL("../assembly/memmap.ts", import.meta.url), "utf8");
const literal = (name) => Number(memmap.match(new RegExp(`export const ${name}: u32 = (0x[0-9a-fA-F]+|\\d+);`))[1]);
const BASE = literal("FUZZ_COV_BASE"), SIZE = literal("FUZZ_COV_SIZE");
const wasm = process.argv[2] ?? "build/fuzz.wasm";
const m = B.readBinary(readFileSync(wasm));
const live = new Set();
const walk = (e) => {
  if (!e) return;
  const info = B.getExpressionInfo(e);
  if (info.id === B.StoreId && info.bytes === 1) {
    const p = B.getExpressionInfo(info.ptr), v = B.getExpressionInfo(info.value);
    if (p.id === B.ConstId && v.id === B.ConstId && v.value === 1) {
      const a = p.value + info.offset;
      if (a >= BASE && a < BASE + SIZE) live.add(a - BASE);
    }
  }
  for (const k of ["children", "operands"]) if (Array.isArray(info[k])) info[k].forEach(walk);
  for (const k of ["condition", "ifTrue", "ifFalse", "body", "value", "ptr", "left", "right", "target", "delta", "dest", "source", "size", "expected", "replacement"]) {
    if (typeof info[k] === "number" && k in info && info[k] !== 0 && !(info.id === B.StoreId && k === "value") && !(info.id === B.ConstId)) walk(info[k]);
  }
};
for (let i = 0; i < m.getNumFunctions(); i++) walk(B.getFunctionInfo(m.getFunctionByIndex(i)).body);
const out = wasm.replace(/\.wasm$/, "-edges.json");
const ids = [...live].sort((a, b) => a - b);
let owner = [];
try { owner = JSON.parse(readFileSync(new URL("../build/fuzz-sites.json", import.meta.url), "utf8")); } catch { /* older build */ }
// source file of each live edge (assembly/virtio/ring/syncSplit → assembly/virtio/ring)
const fns = ids.map((id) => owner[id] ?? "?");
const files = fns.map((f) => f.replace(/\/[^/]*$/, ""));
writeFileSync(out, JSON.stringify({ total: live.size, ids, files, fns }) + "\n");
console.log(`fuzz-edges: ${live.size} edges live after optimization in ${wasm} → ${out}`);
