// A fio-like job on one guest block driver: keeps `iodepth` IOs of `bs` bytes in
// flight, picks offsets and directions from a seeded PRNG (same seed → same IOs),
// records each IO's latency on the virtual clock and, with verify on, checks every
// read against the last generation written at that offset.
//
// The per-IO path allocates nothing and creates no closures: slot state lives in
// typed arrays indexed by the tag handed to the driver.
import type { GuestRam } from "../guest/ram.js";
import { BlkOp, type BlockDriver } from "../guest/driver.js";
import { Histogram } from "./histogram.js";
import { Prng } from "./prng.js";

/** fio's rw= values (sequential read/write, random read/write, mixed). */
export const RW_MODES = ["read", "write", "randread", "randwrite", "rw", "randrw"] as const;
export type RwMode = (typeof RW_MODES)[number];

export interface JobOptions {
  name: string;
  rw: RwMode;
  /** Percentage of reads in mixed modes (fio default 50). */
  rwmixread: number;
  /** Bytes per IO; a multiple of the device's block size. */
  bs: number;
  iodepth: number;
  /** Stop after this many IOs ... */
  number_ios?: number;
  /** ... or after this much virtual time (ns), whichever comes first. */
  runtime?: number;
  seed: number;
  verify: boolean;
  /** Bytes of the device the job uses, from offset 0 (default: all of it). */
  size?: number;
  /**
   * The device reads zeros where the job has not written (a fresh disk): verify then
   * checks those reads too. Default true; false for a disk image with old contents.
   */
  zeroed?: boolean;
}

export const JOB_DEFAULTS = { rw: "randrw", rwmixread: 50, bs: 4096, iodepth: 32, seed: 1, verify: false } as const;

/** Generation of a unit never written by the job: it must read as zeros. */
const GEN_ZERO = 0;
/** Generation of a unit whose last write failed: its contents are unknown, skip checks. */
const GEN_UNKNOWN = 0xffffffff;
/** Words a read buffer is poisoned with, so a device that returns no data is caught. */
const POISON = 0xdeadbeef;
const GOLDEN = 0x9e3779b9;
/** Stamp header at the start of every device block of a written buffer (words). */
const HDR_UNIT = 1, HDR_GEN = 2, HDR_BLOCK = 3;
/** Node's native memcmp when present; browsers fall back to a word loop. */
const nativeCompare = (globalThis as { Buffer?: { compare(a: Uint8Array, b: Uint8Array): number } }).Buffer?.compare;
const FREE = 0xff;

export interface DirStats {
  ios: number;
  bytes: number;
  lat: Histogram;
}

export interface JobResult {
  name: string;
  options: JobOptions;
  read: DirStats;
  write: DirStats;
  /** IOs that completed with a status other than 0. */
  errors: number;
  /** Status of the first failed IO (0: none), like fio's `error`. */
  firstError: number;
  verifyErrors: number;
  /** Where the first verify error was, for the report. */
  verifyDetail?: string;
  /** Completions for tags the job had not submitted (a driver bug). */
  strayCompletions: number;
  startNs: number;
  endNs: number;
}

export class Job {
  readonly options: JobOptions;
  private readonly prng: Prng;
  private readonly units: number;
  private readonly blocksPerUnit: number;
  private readonly bufGpa: Float64Array;
  private readonly bufWords: Uint32Array[];
  private readonly bufBytes: Uint8Array[];
  /** What a read must return: built per check (verify only). */
  private readonly expected: Uint32Array;
  private readonly expectedBytes: Uint8Array;
  private readonly blockWords: number;
  // per slot (= tag)
  private readonly slotOp: Uint8Array;
  private readonly slotUnit: Float64Array;
  private readonly slotT: Float64Array;
  private readonly slotGen: Uint32Array;
  private readonly freeSlots: Int32Array;
  private nfree: number;
  // per unit (bs bytes at unit * bs), only with verify
  private readonly gen: Uint32Array;
  private readonly busy: Uint8Array;
  private nextGen = 1;
  private seqUnit = 0;
  /** A slot prepared but refused by a full driver; resubmitted first next round. */
  private pending = -1;

  private issued = 0;
  private completed = 0;
  private readonly target: number;
  private startNs = -1;
  private endNs = 0;
  private now = 0;
  private step = 0;
  private limit = 0;
  private readonly stats: [DirStats, DirStats];
  private errors = 0;
  private firstError = 0;
  private verifyErrors = 0;
  private verifyDetail: string | undefined;
  private strays = 0;
  private readonly salt: number;
  // rw= decoded once
  private readonly random: boolean;
  private readonly mixed: boolean;
  private readonly readOnly: boolean;
  // options read per IO, as plain fields
  private readonly depth: number;
  private readonly bs: number;
  private readonly verify: boolean;
  private readonly runtime: number;
  private readonly readPct: number;

  constructor(readonly driver: BlockDriver, ram: GuestRam, options: JobOptions) {
    this.options = options;
    const { bs, iodepth } = options;
    const bsz = driver.blockSize;
    const area = options.size ?? driver.capacityBlocks * bsz;
    if (!Number.isInteger(bs) || bs <= 0 || bs % bsz !== 0) throw new RangeError(`job ${options.name}: bs ${bs} is not a multiple of the ${bsz}-byte block size`);
    if (bs % 4 !== 0) throw new RangeError(`job ${options.name}: bs ${bs} is not a multiple of 4`);
    if (area > driver.capacityBlocks * bsz) throw new RangeError(`job ${options.name}: size ${area} is larger than the ${driver.capacityBlocks * bsz}-byte device`);
    if (!Number.isInteger(iodepth) || iodepth < 1 || iodepth > driver.maxInflight) {
      throw new RangeError(`job ${options.name}: iodepth ${iodepth} outside 1..${driver.maxInflight} (what ${driver.name} can keep in flight)`);
    }
    this.units = Math.floor(area / bs);
    if (this.units < iodepth) throw new RangeError(`job ${options.name}: ${this.units} blocks of ${bs} bytes cannot keep ${iodepth} IOs apart`);
    this.blocksPerUnit = bs / bsz;
    this.target = options.number_ios ?? Infinity;
    if (this.target === Infinity && options.runtime === undefined) throw new RangeError(`job ${options.name}: set number_ios or runtime`);
    const rw = options.rw;
    this.random = rw === "randread" || rw === "randwrite" || rw === "randrw";
    this.mixed = rw === "rw" || rw === "randrw";
    this.readOnly = rw === "read" || rw === "randread";
    this.depth = iodepth;
    this.bs = bs;
    this.verify = options.verify;
    this.runtime = options.runtime ?? Infinity;
    this.readPct = options.rwmixread;
    this.prng = new Prng(options.seed);
    this.salt = this.prng.next();

    this.bufGpa = new Float64Array(iodepth);
    this.bufWords = [];
    this.bufBytes = [];
    for (let s = 0; s < iodepth; s++) {
      const gpa = ram.alloc(bs, 4096);
      this.bufGpa[s] = gpa;
      this.bufWords.push(new Uint32Array(ram.u8.buffer, ram.u8.byteOffset + gpa, bs / 4));
      this.bufBytes.push(ram.u8.subarray(gpa, gpa + bs));
    }
    this.expected = new Uint32Array(options.verify ? bs / 4 : 0);
    this.expectedBytes = new Uint8Array(this.expected.buffer);
    this.blockWords = bsz / 4;
    this.slotOp = new Uint8Array(iodepth).fill(FREE);
    this.slotUnit = new Float64Array(iodepth);
    this.slotT = new Float64Array(iodepth);
    this.slotGen = new Uint32Array(iodepth);
    this.freeSlots = new Int32Array(iodepth);
    for (let s = 0; s < iodepth; s++) this.freeSlots[s] = iodepth - 1 - s;
    this.nfree = iodepth;
    this.gen = new Uint32Array(options.verify ? this.units : 0);
    this.busy = new Uint8Array(options.verify ? this.units : 0);
    this.stats = [{ ios: 0, bytes: 0, lat: new Histogram() }, { ios: 0, bytes: 0, lat: new Histogram() }];
  }

  get done(): boolean {
    return this.inflight === 0 && this.pending < 0 && !this.mayIssue();
  }

  get inflight(): number { return this.depth - this.nfree - (this.pending >= 0 ? 1 : 0); }

  /** IOs completed so far, and the number the job will do (Infinity for a runtime job). */
  progress(): { completed: number; target: number } { return { completed: this.completed, target: this.target }; }

  private mayIssue(): boolean {
    return this.issued < this.target && (this.startNs < 0 || this.now - this.startNs < this.runtime);
  }

  /** Queue IOs up to iodepth at virtual time `now`, then kick once. Returns how many were queued. */
  submit(now: number): number {
    this.now = now;
    if (this.startNs < 0) this.startNs = now;
    const d = this.driver;
    let n = 0;
    if (this.pending >= 0) {
      if (!this.post(this.pending, now)) return 0;
      this.pending = -1;
      n++;
    }
    while (this.nfree > 0 && this.mayIssue()) {
      const s = this.freeSlots[--this.nfree]!;
      this.prepare(s);
      if (!this.post(s, now)) {
        this.pending = s;
        break;
      }
      n++;
    }
    if (n > 0) d.kick();
    return n;
  }

  /**
   * Walk the driver's completions. Completion k is stamped at base + (k+1)·step, capped
   * at `limit` (the end of the poll that produced them); step 0 stamps them all at base.
   * Returns how many.
   */
  reap(base: number, step = 0, limit = base): number {
    this.now = base;
    this.step = step;
    this.limit = Math.max(base, limit);
    const n = this.driver.reap(this.onDone);
    this.now = this.limit;
    return n;
  }

  private post(s: number, now: number): boolean {
    const op = this.slotOp[s]!;
    if (!this.driver.submit(op, this.slotUnit[s]! * this.blocksPerUnit, this.blocksPerUnit, this.bufGpa[s]!, s)) return false;
    this.slotT[s] = now;
    return true;
  }

  /** Choose direction and offset for slot s; with verify, fill or poison its buffer. */
  private prepare(s: number): void {
    const isRead = this.mixed ? this.prng.below(100) < this.readPct : this.readOnly;
    let u: number;
    if (this.random) u = this.prng.below(this.units);
    else {
      u = this.seqUnit;
      this.seqUnit = u + 1 === this.units ? 0 : u + 1;
    }
    this.issued++;
    this.slotOp[s] = isRead ? BlkOp.READ : BlkOp.WRITE;
    if (this.verify) {
      while (this.busy[u] !== 0) u = u + 1 === this.units ? 0 : u + 1; // keep IOs to one unit apart
      this.busy[u] = 1;
      if (isRead) this.bufWords[s]!.fill(POISON);
      else {
        const g = this.nextGen++;
        if (this.nextGen === GEN_UNKNOWN) this.nextGen = 1;
        this.slotGen[s] = g;
        this.stamp(this.bufWords[s]!, u, g);
      }
    }
    this.slotUnit[s] = u;
  }

  private readonly onDone = (tag: number, status: number): void => {
    if (!(tag >= 0 && tag < this.depth) || this.slotOp[tag] === FREE) {
      this.strays++;
      return;
    }
    const s = tag;
    const op = this.slotOp[s]!;
    const dir = this.stats[op === BlkOp.READ ? 0 : 1];
    const now = (this.now = Math.min(this.now + this.step, this.limit));
    dir.lat.record(now - this.slotT[s]!);
    this.completed++;
    this.endNs = now;
    if (status !== 0) {
      this.errors++;
      if (this.firstError === 0) this.firstError = status;
    } else {
      dir.ios++;
      dir.bytes += this.bs;
    }
    if (this.verify) this.settle(s, op, status);
    this.slotOp[s] = FREE;
    this.freeSlots[this.nfree++] = s;
  };

  /** Verify bookkeeping for a completed IO: record a write's generation, check a read. */
  private settle(s: number, op: number, status: number): void {
    const u = this.slotUnit[s]!;
    this.busy[u] = 0;
    if (op === BlkOp.WRITE) {
      this.gen[u] = status === 0 ? this.slotGen[s]! : GEN_UNKNOWN;
      return;
    }
    const g = this.gen[u]!;
    if (status !== 0 || g === GEN_UNKNOWN) return;
    if (g === GEN_ZERO && this.options.zeroed === false) return;
    const want = this.expected;
    if (g === GEN_ZERO) want.fill(0);
    else this.stamp(want, u, g);
    const bad = firstDifference(this.bufWords[s]!, this.bufBytes[s]!, want, this.expectedBytes);
    if (bad < 0) return;
    this.verifyErrors++;
    this.verifyDetail ??= `lba ${u * this.blocksPerUnit}: byte ${bad * 4} of the ${this.options.bs}-byte block differs from ${g === GEN_ZERO ? "zeros (never written)" : `write #${g}`}`;
  }

  /**
   * Fill a buffer for unit u at generation g: every word is the key of (u, g), and each
   * device block starts with a header {key, u, g, block index} so that misplaced blocks
   * show too. fill() runs at memset speed; the headers are a few stores.
   */
  private stamp(w: Uint32Array, u: number, g: number): void {
    w.fill(this.key(u, g));
    for (let b = 0, at = 0; at < w.length; b++, at += this.blockWords) {
      w[at + HDR_UNIT] = u;
      w[at + HDR_GEN] = g;
      w[at + HDR_BLOCK] = b;
    }
  }

  /** The stamp key of unit u at generation g: distinct per unit, generation and job. */
  private key(u: number, g: number): number {
    let z = (Math.imul(u, GOLDEN) ^ Math.imul(g, 0x85ebca6b) ^ this.salt) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
    return (z ^ (z >>> 15)) >>> 0;
  }

  result(): JobResult {
    const [read, write] = this.stats;
    return {
      name: this.options.name, options: this.options, read, write,
      errors: this.errors, firstError: this.firstError, verifyErrors: this.verifyErrors, verifyDetail: this.verifyDetail,
      strayCompletions: this.strays, startNs: Math.max(0, Math.round(this.startNs)), endNs: Math.round(this.endNs),
    };
  }
}

/** Index of the first word where got differs from want, or -1 (memcmp first where available). */
function firstDifference(got: Uint32Array, gotBytes: Uint8Array, want: Uint32Array, wantBytes: Uint8Array): number {
  if (nativeCompare && nativeCompare(gotBytes, wantBytes) === 0) return -1;
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return i;
  return -1;
}
