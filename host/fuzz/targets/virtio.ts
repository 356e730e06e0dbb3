// virtio-split and virtio-packed: a hostile VM's guest RAM and doorbells against the
// virtio-blk front end (queue sync into shadow rings, chain walk, request parse,
// completion). An input configures the queue (size, features, which function: RAM disk
// or a disk the host serves through the host-IO ring, doorbell or polling mode), then
// runs a program: descriptors, indirect tables, avail entries, virtio-blk headers, raw
// bytes in its data pages, publish, notify, poll.
//
// Oracles: no trap; the canary VM, the canary disk, the idle canary function and every
// byte of card memory outside the VM's window and the firmware's own state for the
// functions under test unchanged; after a final drain every request taken completed
// (used element or a counted drop), none left in the pool, the queue consumed all the
// driver published (or is BROKEN with a reason), host IO balanced, the used index in
// guest RAM equal to the used elements counted; split rings: the firmware's sync and
// the plain-TS reference (host/bench/virtio-sync-ref.ts) leave identical shadow rings
// and queue state before every poll.
import * as M from "../../../assembly/memmap.js";
import * as V from "../../../assembly/virtio/layout.js";
import { Counter } from "../../../assembly/counters.js";
import { FuncType } from "../../card.js";
import { MemoryBackend } from "../../backends/memory.js";
import { SplitSyncRef, queueAddr, shadowAddr } from "../../bench/virtio-sync-ref.js";
import { FuzzCard, Finding, range } from "../card.js";
import { ProgramCodec, type Op, type OpSpec } from "../program.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";

// ---- the fuzzed VM's RAM (guest physical addresses) ----
export const GUEST_BYTES = 0x20000;
const CANARY_GUEST_BYTES = 0x4000;
const DISK_BYTES = 0x8000; // 64 sectors
const DESC = 0x1000; // descriptor table (split) / descriptor ring (packed), up to 256 entries
const DRIVER = 0x2000; // avail ring / driver event suppression
const DEVICE = 0x3000; // used ring / device event suppression
const INDIRECT = 0x4000; // indirect tables: 512 descriptors
const HDRS = 0x6000; // 256 request slots of 32 bytes: header at 0, status byte at 24
const DATA = 0x8000; // data pages up to the end of the window
const SLOT = 32;
const SPLIT_SIZES = [2, 4, 8, 16, 64, 256, 1, 128];
const PACKED_SIZES = [1, 3, 8, 16, 50, 256, 7, 128];
const CANARY_BYTE = 0x5a;

const ADDR_INTERESTING = [0, DESC, DRIVER, HDRS, DATA, GUEST_BYTES - 1, GUEST_BYTES - 16, GUEST_BYTES, 0xffffffff, 0xfffffff0];
const LEN_INTERESTING = [0, 1, 15, 16, 17, 512, 4096, V.MAX_DESC_LEN, V.MAX_DESC_LEN + 1, 0xffffffff, GUEST_BYTES];
const IDX_INTERESTING = [0, 1, 2, 255, 256, 257, 0x7fff, 0x8000, 0xffff];
const FLAGS_INTERESTING = [0, V.DESCF_NEXT, V.DESCF_WRITE, V.DESCF_NEXT | V.DESCF_WRITE, V.DESCF_INDIRECT, V.DESCF_INDIRECT | V.DESCF_NEXT,
  V.PDESCF_AVAIL, V.PDESCF_AVAIL | V.DESCF_NEXT, V.PDESCF_AVAIL | V.DESCF_WRITE, V.PDESCF_USED, V.PDESCF_AVAIL | V.PDESCF_USED, 0xffff];
const TYPES = [V.BLK_T_IN, V.BLK_T_OUT, V.BLK_T_FLUSH, V.BLK_T_GET_ID, V.BLK_T_DISCARD, V.BLK_T_WRITE_ZEROES, 3, 0xffffffff];

const OPS: OpSpec[] = [
  { name: "desc", fields: [{ name: "slot", width: 2, interesting: IDX_INTERESTING }, { name: "addr", width: 4, interesting: ADDR_INTERESTING },
    { name: "addrHi", width: 1, interesting: [0, 1, 0xff] }, { name: "len", width: 4, interesting: LEN_INTERESTING },
    { name: "flags", width: 2, interesting: FLAGS_INTERESTING }, { name: "next", width: 2, interesting: IDX_INTERESTING }] },
  { name: "indirect", fields: [{ name: "entry", width: 2, interesting: [0, 1, 511] }, { name: "addr", width: 4, interesting: ADDR_INTERESTING },
    { name: "len", width: 4, interesting: LEN_INTERESTING }, { name: "flags", width: 2, interesting: FLAGS_INTERESTING },
    { name: "next", width: 2, interesting: IDX_INTERESTING }] },
  { name: "avail", fields: [{ name: "pos", width: 2, interesting: IDX_INTERESTING }, { name: "head", width: 2, interesting: IDX_INTERESTING }] },
  { name: "publish", fields: [{ name: "n", width: 2, interesting: [0, 1, 255, 256, 257, 0x8000, 0xffff] }] },
  { name: "header", fields: [{ name: "slot", width: 1 }, { name: "type", width: 4, interesting: TYPES },
    { name: "sector", width: 4, interesting: [0, 1, 63, 64, 65, 0xffffffff] }, { name: "sectorHi", width: 4, interesting: [0, 1, 0x80000000, 0xffffffff] },
    { name: "num", width: 4, interesting: [0, 1, 64, V.MAX_DISCARD_SECTORS, 0xffffffff] }, { name: "segFlags", width: 4, interesting: [0, 1, 2, 0xffffffff] }] },
  { name: "bytes", fields: [{ name: "off", width: 2 }], blob: true },
  { name: "notify", fields: [{ name: "queue", width: 1, interesting: [0, 1, 31] }] },
  { name: "poll", fields: [{ name: "budget", width: 1, interesting: [0, 1, 255] }] },
  { name: "event", fields: [{ name: "which", width: 1 }, { name: "value", width: 2, interesting: [0, 1, 2, 0x8000, 0xffff] }] },
  { name: "reset", fields: [] },
  // queue_enable with the driver's register values (virtio 1.2 §4.1.4.3): size, MSI-X vector, ring addresses
  { name: "setup", fields: [{ name: "size", width: 2, interesting: [0, 1, 2, 3, 256, 257, 32768, 32769, 0xffff] },
    { name: "vector", width: 2, interesting: [0, 1, 31, 32, V.NO_VECTOR, 0xfffe] },
    { name: "desc", width: 4, interesting: ADDR_INTERESTING }, { name: "driver", width: 4, interesting: ADDR_INTERESTING },
    { name: "device", width: 4, interesting: ADDR_INTERESTING }, { name: "hi", width: 1, interesting: [0, 1, 0x80] }] },
  { name: "vector", fields: [{ name: "queue", width: 1, interesting: [0, 1, 31, 32] }, { name: "vector", width: 2, interesting: [0, 1, V.NO_VECTOR, 0xfffe] },
    { name: "config", width: 1 }] },
];

interface Ctx { packed: boolean; qsize: number; wrap: number; pos: number; availIdx: number }

export function virtioTarget(packed: boolean): Target {
  const name = packed ? "virtio-packed" : "virtio-split";
  return {
    name,
    about: `${packed ? "packed" : "split"} virtqueues of virtio-blk: guest-RAM descriptors, indirect tables, ${packed ? "" : "avail ring, "}headers and doorbells; oracles: traps, memory audit, completion and ring invariants${packed ? "" : ", differential vs the plain-TS sync"}`,
    create: (o) => VirtioHarness.create(packed, o?.module),
  };
}

class VirtioHarness implements Harness {
  readonly unit = "edges";
  readonly codec = new ProgramCodec(OPS, 1);
  private readonly ref: SplitSyncRef;
  private readonly hostDisk: MemoryBackend;
  private readonly hostDiskBaseline: Uint8Array;
  private readonly g: DataView;
  private readonly gu8: Uint8Array;
  private readonly save = new Uint8Array(M.SHADOW_QUEUE_SIZE + M.QUEUE_ENTRY_SIZE + M.COUNTERS_SIZE);
  private readonly fwOut = new Uint8Array(M.SHADOW_QUEUE_SIZE + M.QUEUE_ENTRY_SIZE);

  private constructor(readonly fc: FuzzCard, readonly packed: boolean, hostDisk: MemoryBackend) {
    this.hostDisk = hostDisk;
    this.hostDiskBaseline = hostDisk.bytes.slice();
    this.ref = new SplitSyncRef(fc.card.memory.buffer);
    this.g = fc.card.guests[0]!.dv;
    this.gu8 = fc.card.guests[0]!.u8;
  }

  get total(): number { return this.fc.edgesTotal; }
  get mapSize(): number { return M.FUZZ_COV_SIZE; }

  static async create(packed: boolean, module?: WebAssembly.Module): Promise<VirtioHarness> {
    const hostDisk = new MemoryBackend(new Uint8Array(DISK_BYTES), 512);
    const fc = await FuzzCard.create({
      guests: [{ ramBytes: GUEST_BYTES }, { ramBytes: CANARY_GUEST_BYTES }],
      disks: [{ kind: "memory", bytes: DISK_BYTES, blockSize: 512 }, { kind: "host", backend: hostDisk }, { kind: "memory", bytes: 0x2000, blockSize: 512 }],
    }, module);
    const card = fc.card;
    card.addFunction(FuncType.VIRTIO_BLK, 0, 0, 1); // f0: RAM disk, served inline
    card.addFunction(FuncType.VIRTIO_BLK, 0, 1, 1); // f1: host disk, through the host-IO ring
    const canaryF = card.addFunction(FuncType.VIRTIO_BLK, 1, 2, 1); // f2: the canary VM's device, enabled and idle
    const cg = card.guests[1]!;
    cg.u8.fill(CANARY_BYTE);
    card.fw.virtioSetFeatures(canaryF, 0, 1);
    card.fw.virtioSetDriverOk(canaryF, 1);
    if (card.fw.virtioQueueSetup(canaryF, 0, 16, V.NO_VECTOR, 0x1000, 0, 0x2000, 0, 0x3000, 0) !== 0) throw new Error("fuzz: canary queue setup failed");
    const cd = card.layout.disks[2]!;
    card.u8.fill(CANARY_BYTE + 1, cd.base, cd.base + cd.size);
    const d0 = card.layout.disks[0]!;
    for (let i = 0; i < d0.size; i++) card.u8[d0.base + i] = (i * 7) & 0xff;
    const g0 = card.guests[0]!;
    for (let i = DATA; i < GUEST_BYTES; i++) g0.u8[i] = (i * 13) & 0xff;
    const writable = [
      range(M.COUNTERS_BASE, M.QUEUE_TABLE_BASE - M.COUNTERS_BASE, "counters, globals, tables"),
      range(queueAddr(0, 0), 2 * M.MAX_QUEUES * M.QUEUE_ENTRY_SIZE, "queue state f0-f1"),
      range(M.DOORBELL_BASE, M.IRQ_STATE_BASE - M.DOORBELL_BASE, "doorbells, polling, irq out"),
      range(M.IRQ_STATE_BASE, 2 * M.MAX_VECTORS * M.IRQ_ENTRY_SIZE, "irq state f0-f1"),
      range(shadowAddr(0, 0), M.SHADOW_QUEUE_SIZE, "shadow f0 q0"),
      range(shadowAddr(1, 0), M.SHADOW_QUEUE_SIZE, "shadow f1 q0"),
      range(M.HOSTIO_CTRL, M.SCRATCH_BASE - M.HOSTIO_CTRL, "host-IO rings"),
      range(M.SCRATCH_BASE, 2 * M.SCRATCH_FUNC_SIZE, "scratch f0-f1"),
      range(d0.base, d0.size, "RAM disk 0"),
      range(g0.base, g0.size, "the fuzzed VM's window"),
    ];
    const canaries = [
      range(cg.base, cg.size, "canary VM's window"),
      range(cd.base, cd.size, "canary disk"),
      range(queueAddr(2, 0), M.QUEUE_ENTRY_SIZE, "canary function's queue"),
      range(shadowAddr(2, 0), 4096, "canary function's shadow ring"),
      range(0, 4096, "firmware static data"),
      range(g0.base + g0.size, Math.min(4096, cg.base - g0.base - g0.size) || 0, "page after the VM's window"),
    ].filter((r) => r.end > r.base);
    fc.freeze(writable, canaries);
    return new VirtioHarness(fc, packed, hostDisk);
  }

  // ---- generation ----
  generate(rng: Rng): Uint8Array {
    const cfg = rng.below(256) & ~0x80;
    const ctx = this.ctx(cfg);
    const ops: Op[] = [];
    const rounds = 1 + rng.small(3);
    if (rng.chance(0.08)) {
      // queue_enable again with the same rings but another size or vector, or a ring outside the window
      const bad = rng.chance(0.5);
      ops.push(this.codec.op("setup", rng.chance(0.7) ? ctx.qsize : rng.pick([0, 3, 512, 32768, 65535]), rng.pick([0, 1, V.NO_VECTOR, 40]),
        bad && rng.chance(0.4) ? GUEST_BYTES - 64 : DESC, bad && rng.chance(0.4) ? GUEST_BYTES : DRIVER, bad && rng.chance(0.4) ? 0xfffffffe : DEVICE, bad && rng.chance(0.2) ? 1 : 0));
    }
    if (rng.chance(0.05)) ops.push(this.codec.op("vector", rng.below(2), rng.pick([0, 1, 31, V.NO_VECTOR]), rng.below(2)));
    for (let r = 0; r < rounds; r++) {
      ops.push(...this.requests(rng, ctx, 1 + rng.small(Math.min(ctx.qsize, 12))));
      ops.push(this.codec.op("notify", 0), this.codec.op("poll", rng.chance(0.8) ? 255 : rng.below(8)));
    }
    return this.codec.encode({ header: Uint8Array.of(cfg), ops });
  }

  private ctx(cfg: number): Ctx {
    const qsize = (this.packed ? PACKED_SIZES : SPLIT_SIZES)[cfg & 7]!;
    return { packed: this.packed, qsize, wrap: 1, pos: 0, availIdx: 0 };
  }

  /** Well-formed requests: header slot, data descriptors, status; chained in the ring or in an indirect table. */
  private requests(rng: Rng, ctx: Ctx, n: number): Op[] {
    const c = this.codec, ops: Op[] = [];
    let slot = rng.below(256);
    for (let k = 0; k < n; k++) {
      const type = rng.pick(TYPES.slice(0, 6));
      const hdr = HDRS + (slot & 0xff) * SLOT;
      const bufs: { addr: number; len: number; flags: number }[] = [{ addr: hdr, len: 16, flags: 0 }];
      if (type === V.BLK_T_IN || type === V.BLK_T_OUT || type === V.BLK_T_GET_ID) {
        const nd = type === V.BLK_T_GET_ID ? 1 : 1 + rng.small(3);
        for (let i = 0; i < nd; i++) {
          const len = type === V.BLK_T_GET_ID ? V.BLK_ID_BYTES : 512 * (1 + rng.small(8));
          bufs.push({ addr: DATA + rng.below((GUEST_BYTES - DATA - len) >> 9) * 512, len, flags: type === V.BLK_T_OUT ? 0 : V.DESCF_WRITE });
        }
      } else if (type === V.BLK_T_DISCARD || type === V.BLK_T_WRITE_ZEROES) bufs[0]!.len = 16 + V.DWZ_SEG_SIZE; // header then one segment, device-readable
      bufs.push({ addr: hdr + 24, len: 1, flags: V.DESCF_WRITE });
      ops.push(c.op("header", slot & 0xff, type, rng.small(80), 0, 1 + rng.small(16), rng.chance(0.8) ? 0 : 1));
      if (type === V.BLK_T_DISCARD || type === V.BLK_T_WRITE_ZEROES) {
        // the segment right after the header: {sector u64, num_sectors u32, flags u32}
        const seg = new Uint8Array(16);
        const dv = new DataView(seg.buffer);
        dv.setUint32(0, rng.small(80), true); dv.setUint32(8, 1 + rng.small(16), true); dv.setUint32(12, rng.chance(0.8) ? 0 : 1, true);
        ops.push({ code: OPS.findIndex((o) => o.name === "bytes"), vals: [hdr + 16], blob: seg });
      }
      const indirect = rng.chance(0.15);
      if (indirect) {
        const base = rng.below(32) * 16;
        bufs.forEach((b, i) => ops.push(c.op("indirect", base + i, b.addr, b.len, b.flags | (i < bufs.length - 1 ? V.DESCF_NEXT : 0), i + 1)));
        this.putChain(ops, ctx, [{ addr: INDIRECT + base * 16, len: bufs.length * 16, flags: V.DESCF_INDIRECT }]);
      } else this.putChain(ops, ctx, bufs);
      slot++;
    }
    if (!ctx.packed) ops.push(c.op("publish", n));
    return ops;
  }

  private putChain(ops: Op[], ctx: Ctx, bufs: { addr: number; len: number; flags: number }[]): void {
    const c = this.codec;
    if (!ctx.packed) {
      const head = ctx.pos % ctx.qsize;
      bufs.forEach((b, i) => {
        const s = (ctx.pos + i) % ctx.qsize;
        ops.push(c.op("desc", s, b.addr, 0, b.len, b.flags | (i < bufs.length - 1 ? V.DESCF_NEXT : 0), (s + 1) % ctx.qsize));
      });
      ops.push(c.op("avail", ctx.availIdx & 0xffff, head));
      ctx.pos += bufs.length;
      ctx.availIdx++;
      return;
    }
    const id = ctx.pos & 0xffff;
    bufs.forEach((b, i) => {
      const wrapFlags = ctx.wrap ? V.PDESCF_AVAIL : V.PDESCF_USED;
      ops.push(c.op("desc", ctx.pos % ctx.qsize, b.addr, 0, b.len, b.flags | wrapFlags | (i < bufs.length - 1 ? V.DESCF_NEXT : 0), id));
      ctx.pos++;
      if (ctx.pos % ctx.qsize === 0) ctx.wrap ^= 1;
    });
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let p = this.codec.decode(input);
    const ctx = this.ctx(p.header[0]!);
    ctx.pos = rng.below(ctx.qsize);
    ctx.availIdx = rng.below(ctx.qsize);
    for (let k = 0; k < steps; k++) p = this.codec.mutate(p, rng, () => this.requests(rng, ctx, 1 + rng.small(3)).concat(rng.chance(0.5) ? [this.codec.op("notify", 0), this.codec.op("poll", 255)] : []));
    return this.codec.encode(p);
  }

  // ---- running ----
  reset(): void {
    this.fc.restore();
    this.hostDisk.bytes.set(this.hostDiskBaseline);
    this.fc.card.now = 0;
  }

  run(input: Uint8Array): void {
    const fc = this.fc, card = fc.card, fw = card.fw, g = this.g;
    this.reset();
    const p = this.codec.decode(input);
    const cfg = p.header[0]!;
    const qsize = (this.packed ? PACKED_SIZES : SPLIT_SIZES)[cfg & 7]!;
    const f = cfg & 0x20 ? 1 : 0;
    const lo = (cfg & 0x08 ? 2 ** V.F_RING_INDIRECT_DESC : 0) + (cfg & 0x10 ? 2 ** V.F_RING_EVENT_IDX : 0);
    const hi = 1 << (V.F_VERSION_1 - 32) | (this.packed ? 1 << (V.F_RING_PACKED - 32) : 0);
    const before = this.snap();
    const setup = () => {
      fw.virtioSetFeatures(f, lo, hi);
      fw.virtioSetDriverOk(f, 1);
      const rc = fw.virtioQueueSetup(f, 0, qsize, 0, DESC, 0, DRIVER, 0, DEVICE, 0);
      if (rc !== 0) throw new Finding("setup", `queue setup refused a valid ring (${Counter[rc]})`);
      card.setPolling(f, 0, (cfg & 0x40) !== 0);
    };
    setup();
    let availIdx = 0, resets = 0, diffs = 0, enabled = true, takenAtSetup = 0;
    for (const op of p.ops) {
      const v = op.vals;
      switch (OPS[op.code]!.name) {
        case "desc": {
          const at = DESC + (v[0]! % qsize) * 16;
          g.setUint32(at, v[1]!, true); g.setUint32(at + 4, v[2]!, true); g.setUint32(at + 8, v[3]!, true);
          if (this.packed) { g.setUint16(at + V.PDESC_ID, v[5]!, true); g.setUint16(at + V.PDESC_FLAGS, v[4]!, true); }
          else { g.setUint16(at + V.DESC_FLAGS, v[4]!, true); g.setUint16(at + V.DESC_NEXT, v[5]!, true); }
          break;
        }
        case "indirect": {
          const at = INDIRECT + (v[0]! % 512) * 16;
          g.setUint32(at, v[1]!, true); g.setUint32(at + 4, 0, true); g.setUint32(at + 8, v[2]!, true);
          if (this.packed) { g.setUint16(at + V.PDESC_ID, v[4]!, true); g.setUint16(at + V.PDESC_FLAGS, v[3]!, true); }
          else { g.setUint16(at + V.DESC_FLAGS, v[3]!, true); g.setUint16(at + V.DESC_NEXT, v[4]!, true); }
          break;
        }
        case "avail":
          if (!this.packed) g.setUint16(DRIVER + V.AVAIL_RING + (v[0]! % qsize) * 2, v[1]!, true);
          break;
        case "publish":
          if (!this.packed) { availIdx = (availIdx + v[0]!) & 0xffff; g.setUint16(DRIVER + V.AVAIL_IDX, availIdx, true); }
          break;
        case "header": {
          const at = HDRS + v[0]! * SLOT;
          g.setUint32(at, v[1]!, true); g.setUint32(at + 4, 0, true); g.setUint32(at + 8, v[2]!, true); g.setUint32(at + 12, v[3]!, true);
          g.setUint32(at + 16 + 8, v[4]!, true); // a segment's num_sectors when the header is followed by one
          this.gu8[at + 24] = 0xff; // status byte, for the device to write
          break;
        }
        case "bytes": {
          // raw bytes anywhere but the rings the oracles read back (the indirect tables and data pages)
          const off = INDIRECT + (v[0]! % (GUEST_BYTES - INDIRECT));
          const blob = op.blob!.subarray(0, GUEST_BYTES - off);
          this.gu8.set(blob, off);
          break;
        }
        case "notify": card.doorbell(f, v[0]! & 31); break;
        case "poll":
          if (!this.packed && diffs++ < 2) this.differential(f);
          card.poll(v[0]! + 1);
          card.now += 1000;
          break;
        case "event":
          // split: avail flags (NO_INTERRUPT) or used_event; packed: driver event suppression {off_wrap, flags}
          if (this.packed) g.setUint16(DRIVER + (v[0]! & 1 ? V.PEVENT_FLAGS : V.PEVENT_OFF_WRAP), v[1]!, true);
          else g.setUint16(DRIVER + (v[0]! & 1 ? V.AVAIL_FLAGS : V.AVAIL_RING + qsize * 2), v[1]!, true);
          break;
        case "reset":
          fw.funcReset(f);
          resets++;
          setup();
          enabled = true;
          if (!this.packed) { availIdx = 0; g.setUint16(DRIVER + V.AVAIL_IDX, 0, true); }
          break;
        case "setup": {
          // a reset, then queue_enable with whatever the driver wrote in the registers
          fw.funcReset(f);
          resets++;
          fw.virtioSetFeatures(f, lo, hi);
          fw.virtioSetDriverOk(f, 1);
          const hiAddr = (k: number) => ((v[5]! >> k) & 1 ? 1 : 0);
          const rc = fw.virtioQueueSetup(f, 0, v[0]!, v[1]!, v[2]!, hiAddr(0), v[3]!, hiAddr(1), v[4]!, hiAddr(2));
          enabled = rc === 0;
          takenAtSetup = this.fc.counter(Counter.virtio_requests);
          if (!this.packed) { availIdx = 0; g.setUint16(DRIVER + V.AVAIL_IDX, 0, true); }
          break;
        }
        case "vector":
          if (v[2]! & 1) fw.virtioConfigVector(f, v[1]!);
          else fw.virtioQueueVector(f, v[0]!, v[1]!);
          break;
      }
    }
    // drain: the driver notifies once more and the card runs until it stops taking work
    card.doorbell(f, 0);
    for (let i = 0; i < 8; i++) {
      if (!this.packed && i === 0) this.differential(f);
      if (card.poll(4096) === 0 && card.inFlight() === 0) break;
    }
    this.invariants(f, enabled, availIdx, before, resets, takenAtSetup);
    fc.auditCanaries();
  }

  /** Split rings: the firmware's sync and the plain-TS reference agree on the next batch (nothing kept). */
  private differential(f: number): void {
    const fc = this.fc, u8 = fc.u8, fw = fc.card.fw;
    const qa = queueAddr(f, 0), sh = shadowAddr(f, 0);
    if (fw.virtioQueueState(f, 0) !== V.QS_READY) return;
    const shLen = M.SHADOW_QUEUE_SIZE;
    const saveAll = this.save;
    saveAll.set(u8.subarray(sh, sh + shLen), 0);
    saveAll.set(u8.subarray(qa, qa + M.QUEUE_ENTRY_SIZE), shLen);
    saveAll.set(u8.subarray(M.COUNTERS_BASE, M.COUNTERS_BASE + M.COUNTERS_SIZE), shLen + M.QUEUE_ENTRY_SIZE);
    const back = () => {
      u8.set(saveAll.subarray(0, shLen), sh);
      u8.set(saveAll.subarray(shLen, shLen + M.QUEUE_ENTRY_SIZE), qa);
      u8.set(saveAll.subarray(shLen + M.QUEUE_ENTRY_SIZE), M.COUNTERS_BASE);
    };
    const nf = fw.virtioSyncBench(f, 0, V.SYNC_BATCH);
    const out = this.fwOut;
    out.set(u8.subarray(sh, sh + shLen), 0);
    out.set(u8.subarray(qa, qa + M.QUEUE_ENTRY_SIZE), shLen);
    back();
    const nr = this.ref.syncBench(f, 0, V.SYNC_BATCH);
    const same = nf === nr && Buffer.compare(out.subarray(0, shLen), u8.subarray(sh, sh + shLen)) === 0 &&
      Buffer.compare(out.subarray(shLen), u8.subarray(qa, qa + M.QUEUE_ENTRY_SIZE)) === 0;
    back();
    if (!same) {
      let at = 0;
      while (at < shLen && out[at] === u8[sh + at]) at++;
      throw new Finding("differential", `split-ring sync: firmware took ${nf} chains, the plain-TS reference ${nr}; first different byte at shadow offset ${at}`);
    }
  }

  private snap() {
    const fc = this.fc;
    return {
      hostio_posted: fc.counter(Counter.hostio_posted), hostio_completed: fc.counter(Counter.hostio_completed),
      virtio_requests: fc.counter(Counter.virtio_requests), virtio_used: fc.counter(Counter.virtio_used),
      err_virtio_bad_desc_index: fc.counter(Counter.err_virtio_bad_desc_index), err_virtio_packed_bad_id: fc.counter(Counter.err_virtio_packed_bad_id),
      err_virtio_bad_avail_idx: fc.counter(Counter.err_virtio_bad_avail_idx),
    };
  }

  private invariants(f: number, enabled: boolean, availIdx: number, before: ReturnType<VirtioHarness["snap"]>, resets: number, takenAtSetup: number): void {
    const card = this.fc.card, fw = card.fw;
    const c = this.snap();
    const d = (k: keyof typeof c) => c[k] - before[k];
    if (card.inFlight() !== 0) throw new Finding("invariant", `${card.inFlight()} requests still in the pool after the drain`);
    if (d("hostio_posted") !== d("hostio_completed")) throw new Finding("invariant", `host IO posted ${d("hostio_posted")} ≠ completed ${d("hostio_completed")}`);
    const taken = d("virtio_requests"), used = d("virtio_used");
    if (used > taken) throw new Finding("invariant", `${used} used elements for ${taken} chains taken (a completion twice?)`);
    const dropped = d("err_virtio_bad_desc_index") + d("err_virtio_packed_bad_id");
    const st = fw.virtioQueueState(f, 0);
    // a device reset drops what was in flight (virtio 1.2 §2.1), and a queue the driver broke
    // (DEVICE_NEEDS_RESET, counted) stops writing used elements: no used element owed then
    if (resets === 0 && st !== V.QS_BROKEN && used + dropped < taken) throw new Finding("invariant", `${taken} chains taken, ${used} completed, ${dropped} dropped with a reason: ${taken - used - dropped} lost silently`);
    if (!enabled) {
      if (st !== V.QS_DISABLED) throw new Finding("invariant", `queue setup was refused but the queue is in state ${st}`);
      const since = c.virtio_requests - takenAtSetup;
      if (since !== 0) throw new Finding("invariant", `a queue whose setup was refused took ${since} chains`);
      return;
    }
    if (st !== V.QS_READY && st !== V.QS_BROKEN) throw new Finding("invariant", `queue state ${st} after the input (want READY or BROKEN)`);
    if (st === V.QS_BROKEN && d("err_virtio_bad_avail_idx") === 0 && d("err_virtio_packed_bad_id") === 0 && fw.virtioNeedsReset(f) === 0) {
      throw new Finding("invariant", "queue BROKEN without a counted reason");
    }
    if (!this.packed && st === V.QS_READY && resets === 0) {
      const qa = queueAddr(f, 0);
      const last = this.fc.u32[(qa + V.Q_LAST_AVAIL) >>> 2]!;
      if (last !== availIdx) throw new Finding("invariant", `split ring READY but ${(availIdx - last) & 0xffff} published chains never taken (last_avail ${last}, avail.idx ${availIdx})`);
      const usedIdx = this.g.getUint16(DEVICE + V.USED_IDX, true);
      if (usedIdx !== (used & 0xffff)) throw new Finding("invariant", `used.idx ${usedIdx} in guest RAM, ${used} used elements counted`);
    }
  }

  explain(input: Uint8Array): string[] { return this.codec.explain(input); }
  collect(seen: Uint8Array): number { return this.fc.collect(seen); }
  byFile(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]> { return this.fc.byFile(seen, perFunction); }
  fullAudit(): void { this.fc.auditFull(); }
  restoreAll(): void { this.fc.restoreAll(); }
}
