// Structure-aware inputs: an input is a header then a program of operations, each an
// opcode byte and a payload of fixed-width little-endian fields (a few have a length
// byte and raw bytes). Every byte string decodes (short payloads are zero-filled), so
// byte-level mutation always yields a runnable program; structural mutation works on
// the decoded operations and their named fields, so the fuzzer gets past first checks.
import type { Rng } from "./rng.js";

export interface Field {
  name: string;
  /** bytes: 1, 2, 4 or 8 (8 = u64, split in two u32 halves when decoded). */
  width: 1 | 2 | 4 | 8;
  /** Values worth trying for this field besides bit flips (boundaries of the format). */
  interesting?: readonly number[];
}

export interface OpSpec {
  name: string;
  fields: readonly Field[];
  /** A trailing length byte and that many raw bytes. */
  blob?: boolean;
}

/** Operations decoded from one input at most (longer inputs are cut). */
export const MAX_OPS = 96;

export interface Op { code: number; vals: number[]; blob?: Uint8Array }
export interface Program { header: Uint8Array; ops: Op[] }

export class ProgramCodec {
  private readonly sizes: number[];
  private readonly widths: number[][];
  constructor(readonly specs: readonly OpSpec[], readonly headerBytes: number) {
    this.sizes = specs.map((s) => s.fields.reduce((n, f) => n + f.width, 0));
    this.widths = specs.map((s) => s.fields.map((f) => f.width));
  }

  op(name: string, ...vals: number[]): Op {
    const code = this.specs.findIndex((s) => s.name === name);
    if (code < 0) throw new Error(`program: no op ${name}`);
    return { code, vals };
  }

  decode(b: Uint8Array): Program {
    const header = new Uint8Array(this.headerBytes);
    header.set(b.subarray(0, this.headerBytes));
    const ops: Op[] = [];
    let i = this.headerBytes;
    const n = b.length;
    // short inputs decode as if zero-padded: copy the tail into a padded buffer once
    let src = b;
    const nspecs = this.specs.length;
    while (i < n && ops.length < MAX_OPS) {
      const code = src[i++]! % nspecs;
      const spec = this.specs[code]!;
      const ws = this.widths[code]!;
      if (i + this.sizes[code]! > src.length) { const pad = new Uint8Array(i + this.sizes[code]! + 1); pad.set(src.subarray(0, n)); src = pad; }
      const vals = new Array<number>(ws.length);
      for (let k = 0; k < ws.length; k++) {
        const w = ws[k]!;
        if (w === 1) vals[k] = src[i]!;
        else if (w === 2) vals[k] = src[i]! | (src[i + 1]! << 8);
        else if (w === 4) vals[k] = (src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24)) >>> 0;
        else vals[k] = ((src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24)) >>> 0) +
          ((src[i + 4]! | (src[i + 5]! << 8) | (src[i + 6]! << 16) | (src[i + 7]! << 24)) >>> 0) * 4294967296;
        i += w;
      }
      const op: Op = { code, vals };
      if (spec.blob) {
        const len = i < n ? src[i]! : 0;
        i++;
        op.blob = b.slice(Math.min(i, n), Math.min(i + len, n));
        i += len;
      }
      ops.push(op);
    }
    return { header, ops };
  }


  encode(p: Program): Uint8Array {
    let n = this.headerBytes;
    for (const op of p.ops) n += 1 + this.sizes[op.code]! + (this.specs[op.code]!.blob ? 1 + (op.blob?.length ?? 0) : 0);
    const out = new Uint8Array(n);
    out.set(p.header.subarray(0, this.headerBytes));
    let i = this.headerBytes;
    for (const op of p.ops) {
      out[i++] = op.code;
      const spec = this.specs[op.code]!;
      const fs = spec.fields;
      for (let k = 0; k < fs.length; k++) {
        const w = fs[k]!.width;
        const v = op.vals[k] ?? 0;
        const lo = v >>> 0;
        out[i] = lo & 0xff;
        if (w > 1) out[i + 1] = (lo >>> 8) & 0xff;
        if (w > 2) { out[i + 2] = (lo >>> 16) & 0xff; out[i + 3] = lo >>> 24; }
        if (w > 4) { const h = Math.floor(v / 4294967296) >>> 0; out[i + 4] = h & 0xff; out[i + 5] = (h >>> 8) & 0xff; out[i + 6] = (h >>> 16) & 0xff; out[i + 7] = h >>> 24; }
        i += w;
      }
      if (spec.blob) {
        const blob = (op.blob ?? new Uint8Array(0)).subarray(0, 255);
        out[i++] = blob.length;
        out.set(blob, i);
        i += blob.length;
      }
    }
    return out;
  }

  /** One line per operation: name field=value ... (hex). */
  explain(b: Uint8Array): string[] {
    const p = this.decode(b);
    return [`header ${Array.from(p.header, (x) => x.toString(16).padStart(2, "0")).join(" ")}`, ...p.ops.map((op) => {
      const spec = this.specs[op.code]!;
      const f = spec.fields.map((fd, k) => `${fd.name}=0x${(op.vals[k] ?? 0).toString(16)}`).join(" ");
      return `${spec.name} ${f}${op.blob ? ` [${Buffer.from(op.blob).toString("hex")}]` : ""}`;
    })];
  }

  /**
   * One structural mutation: drop, duplicate, move or insert an operation, set a field to
   * a boundary value, nudge it, or replace it with a random one; or flip a header bit.
   */
  mutate(p: Program, rng: Rng, fresh: () => Op[]): Program {
    const ops = p.ops.slice();
    const header = p.header.slice();
    const which = rng.below(10);
    if (ops.length === 0 || which === 0) {
      const add = fresh();
      ops.splice(rng.below(ops.length + 1), 0, ...add.slice(0, 1 + rng.below(Math.max(1, add.length))));
    } else if (which === 1) ops.splice(rng.below(ops.length), 1 + rng.below(Math.min(4, ops.length)));
    else if (which === 2) { const i = rng.below(ops.length); ops.splice(rng.below(ops.length + 1), 0, cloneOp(ops[i]!)); }
    else if (which === 3) { const [o] = ops.splice(rng.below(ops.length), 1); ops.splice(rng.below(ops.length + 1), 0, o!); }
    else if (which === 4 && header.length > 0) header[rng.below(header.length)]! ^= 1 << rng.below(8);
    else {
      const i = rng.below(ops.length);
      const op = cloneOp(ops[i]!);
      const spec = this.specs[op.code]!;
      if (spec.fields.length === 0) { ops.splice(i, 1); return { header, ops }; }
      const k = rng.below(spec.fields.length);
      const f = spec.fields[k]!;
      const max = 2 ** (8 * f.width);
      const v = op.vals[k] ?? 0;
      const r = rng.below(4);
      if (r === 0 && f.interesting?.length) op.vals[k] = rng.pick(f.interesting) % max;
      else if (r === 1) op.vals[k] = (v + (rng.chance(0.5) ? 1 : -1) * (1 + rng.small(64)) + max) % max;
      else if (r === 2) op.vals[k] = f.width === 8 ? rng.next() * 2 ** (rng.chance(0.5) ? 32 : 0) : rng.next() % max;
      else op.vals[k] = (v ^ 2 ** rng.below(8 * Math.min(4, f.width))) % max;
      if (op.blob && rng.chance(0.3)) { op.blob = op.blob.slice(); if (op.blob.length) op.blob[rng.below(op.blob.length)] = rng.next() & 0xff; }
      ops[i] = op;
    }
    if (ops.length > MAX_OPS) ops.length = MAX_OPS;
    return { header, ops };
  }
}

const cloneOp = (o: Op): Op => ({ code: o.code, vals: o.vals.slice(), ...(o.blob ? { blob: o.blob.slice() } : {}) });

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING_16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x100, 0x1000];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x1000, 0xfff];

/** Byte-level havoc (AFL style): flips, boundary values, arithmetic, block insert/delete/copy, splice. */
export function havoc(input: Uint8Array, rng: Rng, other?: Uint8Array, maxLen = 1024): Uint8Array {
  let n = Math.min(input.length, maxLen);
  // room to grow by a few inserts (at most maxLen): a whole maxLen buffer per call costs more than a small input's run
  const buf = new Uint8Array(Math.min(maxLen, n + 256) + 64);
  buf.set(input.subarray(0, n));
  const insert = (at: number, src: Uint8Array) => {
    const len = Math.min(src.length, buf.length - n);
    buf.copyWithin(at + len, at, n);
    buf.set(src.subarray(0, len), at);
    n += len;
  };
  const rounds = 1 + rng.small(16);
  for (let r = 0; r < rounds; r++) {
    switch (rng.below(11)) {
      case 0: if (n) buf[rng.below(n)]! ^= 1 << rng.below(8); break;
      case 1: if (n) buf[rng.below(n)] = rng.pick(INTERESTING_8); break;
      case 2: if (n > 1) { const i = rng.below(n - 1), v = rng.pick(INTERESTING_16); buf[i] = v & 0xff; buf[i + 1] = v >>> 8; } break;
      case 3: if (n > 3) { const i = rng.below(n - 3), v = rng.pick(INTERESTING_32); for (let k = 0; k < 4; k++) buf[i + k] = (v >>> (8 * k)) & 0xff; } break;
      case 4: if (n) { const i = rng.below(n); buf[i] = (buf[i]! + (rng.chance(0.5) ? 1 : -1) * (1 + rng.below(35)) + 256) & 0xff; } break;
      case 5: if (n) buf[rng.below(n)] = rng.next() & 0xff; break;
      case 6: if (n > 1) { const i = rng.below(n), len = Math.min(n - i, 1 + rng.small(64)); buf.copyWithin(i, i + len, n); n -= len; } break;
      case 7: if (n < maxLen) { const len = 1 + rng.small(32), b = new Uint8Array(len); for (let k = 0; k < len; k++) b[k] = rng.next() & 0xff; insert(rng.below(n + 1), b); } break;
      case 8: if (n > 1 && n < maxLen) { const from = rng.below(n), len = 1 + rng.small(Math.min(64, n - from) - 1); insert(rng.below(n + 1), buf.slice(from, from + len)); } break;
      case 9: if (n > 1) { const from = rng.below(n), len = 1 + rng.small(Math.min(64, n - from) - 1), to = rng.below(n); buf.copyWithin(to, from, Math.min(from + len, from + n - to)); } break;
      case 10: if (other && other.length > 1 && n > 1) {
        const cut = Math.min(rng.below(n), maxLen), cut2 = rng.below(other.length);
        const tail = other.subarray(cut2, Math.min(other.length, cut2 + Math.min(maxLen, buf.length) - cut));
        buf.set(tail, cut);
        n = cut + tail.length;
      } break;
    }
  }
  if (n > maxLen) n = maxLen;
  return buf.subarray(0, n);
}
