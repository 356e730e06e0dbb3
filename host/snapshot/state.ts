// Host state of a testbed as plain data, and back. The host objects (drivers, device
// models, jobs, PRNGs, histograms, the clock) are walked field by field from one root;
// a restore walks a testbed built from the same scenario in the same order and writes the
// saved values into it. So every class keeps its own code and methods, and nothing has to
// list its fields by hand:
//   - numbers, strings, booleans, bigints, null/undefined: saved as they are;
//   - typed arrays and DataViews over a card's memory: skipped (the memory image has them);
//     other typed arrays: copied;
//   - arrays, Maps, Sets, plain objects and class instances: walked;
//   - functions (methods bound as fields, callbacks, closures): skipped — the restored
//     testbed has its own, built by the same code;
//   - an object reached twice: saved once, the second time as a reference.
// Closures that capture mutable local variables would escape this; the host code keeps
// its state in fields (the tests check that a restored run is byte-identical).

export type Saved =
  | null | undefined | number | string | boolean | bigint
  | { $: "skip" }
  | { $: "ref"; id: number }
  | { $: "bytes"; type: string; data: ArrayBufferView }
  | { $: "arr"; id: number; items: Saved[] }
  | { $: "map"; id: number; entries: [Saved, Saved][] }
  | { $: "set"; id: number; items: Saved[] }
  | { $: "obj"; id: number; fields: Record<string, Saved> };

const SKIP: Saved = { $: "skip" };

export interface WalkOptions {
  /** Buffers whose views are not saved (the card memories). */
  skipBuffers: ReadonlySet<ArrayBufferLike>;
  /** Objects not walked at all (e.g. the firmware instance, the test's hooks). */
  skipObjects?: ReadonlySet<object>;
}

function isSkippedObject(v: object, o: WalkOptions): boolean {
  return (o.skipObjects?.has(v) ?? false) || v instanceof WebAssembly.Memory || v instanceof WebAssembly.Instance ||
    v instanceof WebAssembly.Module || v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet;
}

/** Save the state reachable from `root`. */
export function saveState(root: object, o: WalkOptions): Saved {
  const ids = new Map<object, number>();
  const walk = (v: unknown): Saved => {
    if (v === null || v === undefined || typeof v === "number" || typeof v === "string" || typeof v === "boolean" || typeof v === "bigint") return v;
    if (typeof v === "function" || typeof v === "symbol") return SKIP;
    const obj = v as object;
    if (ArrayBuffer.isView(obj)) {
      if (o.skipBuffers.has(obj.buffer)) return SKIP;
      if (obj instanceof DataView) return SKIP; // host DataViews are views of card memory or of saved arrays
      const ctor = (obj as unknown as { constructor: { name: string; new (b: ArrayBufferLike): ArrayBufferView } }).constructor;
      return { $: "bytes", type: ctor.name, data: new ctor((obj as unknown as { slice(): ArrayBufferView }).slice().buffer) };
    }
    if (obj instanceof ArrayBuffer || isSkippedObject(obj, o)) return SKIP;
    const seen = ids.get(obj);
    if (seen !== undefined) return { $: "ref", id: seen };
    const id = ids.size;
    ids.set(obj, id);
    if (Array.isArray(obj)) return { $: "arr", id, items: obj.map(walk) };
    if (obj instanceof Map) return { $: "map", id, entries: [...obj].map(([k, x]) => [walk(k), walk(x)]) };
    if (obj instanceof Set) return { $: "set", id, items: [...obj].map(walk) };
    const fields: Record<string, Saved> = {};
    for (const k of Object.keys(obj)) fields[k] = walk((obj as Record<string, unknown>)[k]);
    return { $: "obj", id, fields };
  };
  return walk(root);
}

/** Make a fresh value for a saved one that has no counterpart in the target. */
function build(s: Saved): unknown {
  if (s === null || typeof s !== "object") return s;
  switch (s.$) {
    case "bytes": return copyView(s.data);
    case "arr": return s.items.map(build);
    case "map": return new Map(s.entries.map(([k, v]) => [build(k), build(v)]));
    case "set": return new Set(s.items.map(build));
    case "obj": { const o: Record<string, unknown> = {}; for (const [k, v] of Object.entries(s.fields)) o[k] = build(v); return o; }
    default: return undefined;
  }
}

function copyView(d: ArrayBufferView): ArrayBufferView {
  const ctor = (d as unknown as { constructor: new (x: ArrayBufferView) => ArrayBufferView }).constructor;
  return new ctor(d);
}

export class RestoreError extends Error {}

/**
 * Write saved state into `root`, which must have been built the same way (same scenario,
 * same options). Objects are updated in place, so references held elsewhere stay valid.
 */
export function applyState(root: object, saved: Saved, o: WalkOptions): void {
  const ids = new Map<number, object>();
  // Returns the value to store in the parent slot (the same object when updated in place).
  const apply = (cur: unknown, s: Saved, path: string): unknown => {
    if (s === null || typeof s !== "object") return s;
    switch (s.$) {
      case "skip": return cur;
      case "ref": {
        const t = ids.get(s.id);
        if (t === undefined) throw new RestoreError(`snapshot: ${path}: reference to an object not restored yet`);
        return t;
      }
      case "bytes": {
        if (ArrayBuffer.isView(cur) && !(cur instanceof DataView) && (cur as unknown as { constructor: { name: string } }).constructor.name === s.type &&
            cur.byteLength === s.data.byteLength && !o.skipBuffers.has(cur.buffer)) {
          (cur as unknown as { set(a: ArrayBufferView): void }).set(s.data);
          return cur;
        }
        return copyView(s.data);
      }
      case "arr": {
        if (!Array.isArray(cur)) { const fresh = build(s) as unknown[]; ids.set(s.id, fresh); return fresh; }
        ids.set(s.id, cur);
        const n = s.items.length;
        // A pool that grew after construction (e.g. a controller's commands): its new members
        // are made of the class of the members it had, so they keep their methods.
        const proto = cur.length > 0 && cur[0] !== null && typeof cur[0] === "object" && !Array.isArray(cur[0]) ? Object.getPrototypeOf(cur[0]) as object : null;
        for (let i = 0; i < n; i++) {
          const item = s.items[i]!;
          const into = i >= cur.length && proto !== null && proto !== Object.prototype && item !== null && typeof item === "object" && item.$ === "obj" ? Object.create(proto) as object : cur[i];
          cur[i] = apply(into, item, `${path}[${i}]`);
        }
        cur.length = n;
        return cur;
      }
      case "map": {
        const m = cur instanceof Map ? cur : new Map();
        ids.set(s.id, m);
        const old = new Map(m);
        m.clear();
        for (const [k, v] of s.entries) { const key = build(k); m.set(key, apply(old.get(key), v, `${path}.get(${String(key)})`)); }
        return m;
      }
      case "set": {
        const st = cur instanceof Set ? cur : new Set();
        ids.set(s.id, st);
        st.clear();
        for (const x of s.items) st.add(build(x));
        return st;
      }
      case "obj": {
        if (cur === null || typeof cur !== "object" || Array.isArray(cur) || ArrayBuffer.isView(cur)) {
          const fresh = build(s) as object; ids.set(s.id, fresh); return fresh;
        }
        if (isSkippedObject(cur as object, o)) return cur;
        ids.set(s.id, cur as object);
        const t = cur as Record<string, unknown>;
        for (const [k, v] of Object.entries(s.fields)) {
          const next = apply(t[k], v, `${path}.${k}`);
          if (next !== t[k]) t[k] = next;
        }
        return cur;
      }
    }
  };
  apply(root, saved, "testbed");
}
