// nvme: a hostile VM against the NVMe controller: SQEs (admin and I/O) with their PRP
// lists and DSM ranges in guest RAM, SQ tail and CQ head doorbells, and controller
// register writes (CC enable/disable/shutdown, AQA/ASQ/ACQ, INTMS/INTMC) through the
// device model. The baseline is a controller brought up by the guest driver (admin
// queue, two I/O queue pairs) on either function: f0 serves a RAM disk inline, f1 a
// disk the host serves through the host-IO ring.
//
// Oracles: no trap, no exception from the device model; the canary VM (whose idle NVMe
// function is also brought up), the canary disk and every byte of card memory outside
// the VM's window and the firmware's own state for the functions under test
// unchanged; after a final drain (the harness consumes every CQE) no request is left in
// the pool or in flight on any SQ, queue indexes are inside their queues, host IO is
// balanced, and every SQE fetched got exactly one CQE unless a controller reset dropped it.
import * as M from "../../../assembly/memmap.js";
import * as R from "../../../assembly/nvme/regs.js";
import { Counter } from "../../../assembly/counters.js";
import { NvmePci, CtrlState } from "../../pcie/nvme-pci.js";
import { NvmeDriver, Opc, Fid, Cns } from "../../guest/nvme.js";
import { MemoryBackend } from "../../backends/memory.js";
import { queueAddr, shadowAddr } from "../../bench/virtio-sync-ref.js";
import { FuzzCard, Finding, range } from "../card.js";
import { ProgramCodec, type Op, type OpSpec } from "../program.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";

// NVMe base 2.0 §4.2 (SQE), §5.4/§5.5 (Create I/O CQ/SQ); NVM command set §3.2.3 (DSM)
// (the host's copies: assembly/nvme/spec.ts uses AssemblyScript types tsc cannot read)
const S = {
  SQE_SIZE: 64, SQE_NSID: 4, SQE_PRP1: 24, SQE_PRP2: 32, SQE_CDW10: 40, SQE_CDW11: 44, SQE_CDW12: 48,
  IO_READ: Opc.READ, IO_WRITE: Opc.WRITE, IO_FLUSH: Opc.FLUSH, IO_WRITE_ZEROES: Opc.WRITE_ZEROES, IO_DSM: Opc.DSM,
  ADM_IDENTIFY: Opc.IDENTIFY, ADM_GET_FEATURES: Opc.GET_FEATURES, ADM_SET_FEATURES: Opc.SET_FEATURES, ADM_CREATE_CQ: Opc.CREATE_CQ,
  ADM_CREATE_SQ: Opc.CREATE_SQ, ADM_DELETE_SQ: Opc.DELETE_SQ, ADM_DELETE_CQ: Opc.DELETE_CQ, ADM_DBBUF_CONFIG: Opc.DBBUF_CONFIG,
  CNS_NAMESPACE: Cns.NAMESPACE, CNS_CONTROLLER: Cns.CONTROLLER, CNS_ACTIVE_NS_LIST: Cns.ACTIVE_NS_LIST,
  FID_VOLATILE_WRITE_CACHE: Fid.VOLATILE_WRITE_CACHE, FID_NUMBER_OF_QUEUES: Fid.NUMBER_OF_QUEUES, FID_INTERRUPT_COALESCING: Fid.INTERRUPT_COALESCING,
  CDW11_PC: 1, CQ_CDW11_IEN: 2, DSM_AD: 4, DSM_RANGE_SIZE: 16, DSM_RANGE_NLB: 4, DSM_RANGE_SLBA: 8,
} as const;
const GUEST_BYTES = 0x30000;
const CANARY_GUEST_BYTES = 0x8000;
const PAGE = 4096;
const QSIZE = 16; // entries of every queue the driver creates
const IO_QUEUES = 2;
// SQ/CQ half layout of a queue entry (assembly/nvme/queue.ts)
const SQ_STATE = 0, SQ_SIZE = 8, SQ_HEAD = 12, SQ_INFLIGHT = 20, CQ_ACTIVE = 64, CQ_SIZE = 72, CQ_TAIL = 76, CQ_HEAD = 80;

const OPC_IO = [S.IO_READ, S.IO_WRITE, S.IO_FLUSH, S.IO_WRITE_ZEROES, S.IO_DSM, 0x03, 0x7f, 0xff];
const OPC_ADMIN = [S.ADM_IDENTIFY, S.ADM_GET_FEATURES, S.ADM_SET_FEATURES, S.ADM_CREATE_CQ, S.ADM_CREATE_SQ, S.ADM_DELETE_SQ,
  S.ADM_DELETE_CQ, S.ADM_DBBUF_CONFIG, 0x02, 0x0c, 0xff];
const ADDR_INTERESTING = [0, 1, 4, PAGE - 4, PAGE, 0x10000, GUEST_BYTES - PAGE, GUEST_BYTES - 4, GUEST_BYTES, 0xfffff000, 0xffffffff];
const CDW_INTERESTING = [0, 1, 2, 0xf, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0xffffffff, 0x10001, 0xffff0000];

const OPS: OpSpec[] = [
  { name: "sqe", fields: [{ name: "qid", width: 1, interesting: [0, 1, 2, 3, 31, 255] }, { name: "slot", width: 1 },
    { name: "opc", width: 1, interesting: [...OPC_IO, ...OPC_ADMIN] }, { name: "flags", width: 1, interesting: [0, 1, 2, 3, 0x40, 0x80, 0xc0] },
    { name: "cid", width: 2 }, { name: "nsid", width: 4, interesting: [0, 1, 2, 0xfffffffe, 0xffffffff] },
    { name: "prp1", width: 4, interesting: ADDR_INTERESTING }, { name: "prp1Hi", width: 1, interesting: [0, 1, 0xff] },
    { name: "prp2", width: 4, interesting: ADDR_INTERESTING }, { name: "cdw10", width: 4, interesting: CDW_INTERESTING },
    { name: "cdw11", width: 4, interesting: CDW_INTERESTING }, { name: "cdw12", width: 4, interesting: CDW_INTERESTING },
    { name: "cdw13", width: 4, interesting: CDW_INTERESTING }] },
  { name: "sqdb", fields: [{ name: "qid", width: 1, interesting: [0, 1, 2, 3, 31] }, { name: "tail", width: 2, interesting: [0, 1, QSIZE - 1, QSIZE, 0xffff] }] },
  { name: "cqdb", fields: [{ name: "qid", width: 1, interesting: [0, 1, 2, 3, 31] }, { name: "head", width: 2, interesting: [0, 1, QSIZE - 1, QSIZE, 0xffff] }] },
  { name: "reg", fields: [{ name: "reg", width: 1, interesting: [R.NVME_REG_CC, R.NVME_REG_AQA, R.NVME_REG_ASQ, R.NVME_REG_ACQ, R.NVME_REG_INTMS] },
    { name: "value", width: 4, interesting: [0, 1, 0x460001, 0x464001, 0x468001, 0x460000, 0xffffffff] }] },
  { name: "prp", fields: [{ name: "page", width: 1 }, { name: "index", width: 2, interesting: [0, 1, 511, 512] },
    { name: "addr", width: 4, interesting: ADDR_INTERESTING }, { name: "addrHi", width: 1, interesting: [0, 1] }] },
  { name: "range", fields: [{ name: "page", width: 1 }, { name: "index", width: 1, interesting: [0, 1, 255] },
    { name: "nlb", width: 4, interesting: [0, 1, 16, 0xffffffff] }, { name: "slba", width: 4, interesting: [0, 1, 15, 16, 0xffffffff] },
    { name: "slbaHi", width: 4, interesting: [0, 1, 0xffffffff] }] },
  { name: "bytes", fields: [{ name: "off", width: 2 }], blob: true },
  { name: "poll", fields: [{ name: "budget", width: 1, interesting: [0, 1, 255] }] },
];

interface FuncInfo { dev: NvmePci; sq: number[]; cq: number[]; sqTail: number[]; cqHead: number[]; data: number; lists: number; spare: number; blockSize: number; blocks: number }

export const nvmeTarget: Target = {
  name: "nvme",
  about: "NVMe controller: admin and I/O SQEs, PRP lists, DSM ranges, SQ/CQ doorbells and register writes; oracles: traps, memory audit, completion and queue invariants",
  create: (o) => NvmeHarness.create(o?.module),
};

class NvmeHarness implements Harness {
  readonly unit = "edges";
  readonly codec = new ProgramCodec(OPS, 1);
  private readonly g: DataView;
  private readonly gu8: Uint8Array;
  private readonly hostDiskBaseline: Uint8Array;

  private constructor(readonly fc: FuzzCard, readonly funcs: FuncInfo[], readonly hostDisk: MemoryBackend) {
    this.g = fc.card.guests[0]!.dv;
    this.gu8 = fc.card.guests[0]!.u8;
    this.hostDiskBaseline = hostDisk.bytes.slice();
  }

  get total(): number { return this.fc.edgesTotal; }
  get mapSize(): number { return M.FUZZ_COV_SIZE; }

  static async create(module?: WebAssembly.Module): Promise<NvmeHarness> {
    const hostDisk = new MemoryBackend(new Uint8Array(0x8000), 512);
    const fc = await FuzzCard.create({
      guests: [{ ramBytes: GUEST_BYTES }, { ramBytes: CANARY_GUEST_BYTES }],
      disks: [{ kind: "memory", bytes: 0x10000, blockSize: 4096 }, { kind: "host", backend: hostDisk }, { kind: "memory", bytes: 0x2000, blockSize: 512 }],
    }, module);
    const card = fc.card;
    const funcs: FuncInfo[] = [];
    for (const disk of [0, 1]) {
      const dev = new NvmePci(card, { guest: 0, disk, ioQueues: IO_QUEUES });
      const drv = NvmeDriver.open(dev, { ioQueues: IO_QUEUES, queueSize: QSIZE, adminQueueSize: QSIZE });
      const qs = [drv.admin, ...drv.io];
      const g = card.guests[0]!;
      funcs.push({
        dev, sq: qs.map((q) => q.sqGpa), cq: qs.map((q) => q.cqGpa), sqTail: qs.map((q) => q.tail), cqHead: qs.map((q) => q.head),
        data: g.alloc(8 * PAGE), lists: g.alloc(4 * PAGE), spare: g.alloc(4 * PAGE),
        blockSize: drv.blockSize, blocks: drv.capacityBlocks,
      });
    }
    const canary = new NvmePci(card, { guest: 1, disk: 2, ioQueues: 1 });
    NvmeDriver.open(canary, { ioQueues: 1, queueSize: QSIZE, adminQueueSize: QSIZE });
    const g0 = card.guests[0]!, cg = card.guests[1]!;
    for (const f of funcs) for (let i = f.data; i < f.data + 8 * PAGE; i++) g0.u8[i] = (i * 13) & 0xff;
    const d0 = card.layout.disks[0]!, cd = card.layout.disks[2]!;
    for (let i = 0; i < d0.size; i++) card.u8[d0.base + i] = (i * 7) & 0xff;
    for (let i = 0; i < 2; i++) card.poll();
    const writable = [
      range(M.COUNTERS_BASE, M.QUEUE_TABLE_BASE - M.COUNTERS_BASE, "counters, globals, tables"),
      range(queueAddr(0, 0), 2 * M.MAX_QUEUES * M.QUEUE_ENTRY_SIZE, "queue state f0-f1"),
      range(M.DOORBELL_BASE, M.IRQ_STATE_BASE - M.DOORBELL_BASE, "doorbells, polling, irq out"),
      range(M.IRQ_STATE_BASE, 2 * M.MAX_VECTORS * M.IRQ_ENTRY_SIZE, "irq state f0-f1"),
      range(M.BAR_BASE, 2 * M.BAR_SIZE, "BAR0 f0-f1"),
      { ...range(shadowAddr(0, 0), 2 * M.MAX_QUEUES * M.SHADOW_QUEUE_SIZE, "shadow rings f0-f1"), lazy: true },
      range(M.HOSTIO_CTRL, M.SCRATCH_BASE - M.HOSTIO_CTRL, "host-IO rings"),
      range(M.SCRATCH_BASE, 2 * M.SCRATCH_FUNC_SIZE, "scratch f0-f1"),
      range(d0.base, d0.size, "RAM disk 0"),
      range(g0.base, g0.size, "the fuzzed VM's window"),
    ];
    const canaries = [
      range(cg.base, cg.size, "canary VM's window"),
      range(cd.base, cd.size, "canary disk"),
      range(queueAddr(2, 0), 2 * M.QUEUE_ENTRY_SIZE, "canary function's queues"),
      range(M.BAR_BASE + 2 * M.BAR_SIZE, 0x2000, "canary function's registers and doorbells"),
      range(0, 4096, "firmware static data"),
    ];
    // an SQ's shadow holds at most its size in SQEs; restore those of queues the input touched
    const sqBytes = (now: Uint32Array, was: Uint32Array) => (Math.max(now[SQ_SIZE / 4]!, was[SQ_SIZE / 4]!) || 512) * S.SQE_SIZE;
    fc.lazyShadows([0, 1].flatMap((f) => Array.from({ length: M.MAX_QUEUES }, (_, q) => ({ f, q, bytes: sqBytes }))));
    fc.freeze(writable, canaries);
    return new NvmeHarness(fc, funcs, hostDisk);
  }

  // ---- generation ----
  generate(rng: Rng): Uint8Array {
    const cfg = rng.below(2);
    const fi = this.funcs[cfg]!;
    const tails = fi.sqTail.slice(), heads = fi.cqHead.slice();
    const ops: Op[] = [];
    const rounds = 1 + rng.small(3);
    for (let r = 0; r < rounds; r++) {
      if (rng.chance(0.1)) ops.push(...this.controllerReset(rng, tails, heads));
      ops.push(...this.commands(rng, fi, tails, heads, 1 + rng.small(6)));
    }
    if (rng.chance(0.05)) ops.splice(rng.below(ops.length + 1), 0, this.codec.op("reg", R.NVME_REG_CC, rng.pick([0, 0x460000, 0x464001, 0x460001])));
    return this.codec.encode({ header: Uint8Array.of(cfg), ops });
  }

  /**
   * Controller reset and re-enable (CC.EN 1→0→1, NVMe 2.0 §3.5.1), sometimes with new
   * admin queue attributes or an odd CC (shutdown, wrong entry sizes, page size): the
   * admin queue then starts again at slot 0 and the I/O queues are gone.
   */
  private controllerReset(rng: Rng, tails: number[], heads: number[]): Op[] {
    const c = this.codec, ops: Op[] = [c.op("reg", R.NVME_REG_CC, rng.chance(0.8) ? 0 : rng.pick([0x4000, 0x8000]))];
    if (rng.chance(0.3)) ops.push(c.op("reg", R.NVME_REG_AQA, rng.pick([(QSIZE - 1) | ((QSIZE - 1) << 16), 0, 0x0fff0fff, 1 | (1 << 16)])));
    if (rng.chance(0.2)) ops.push(c.op("reg", rng.pick([R.NVME_REG_ASQ, R.NVME_REG_ACQ]), rng.pick([0, PAGE, GUEST_BYTES - PAGE, GUEST_BYTES, 0xfffff000])));
    ops.push(c.op("reg", R.NVME_REG_CC, rng.chance(0.85) ? 0x460001 : rng.pick([0x000001, 0x470001, 0x460081, 0x460011, 0x464001])));
    tails[0] = 0; heads[0] = 0;
    return ops;
  }

  /** n well-formed commands on one queue, its doorbell, a poll, then the CQ head doorbell. */
  private commands(rng: Rng, fi: FuncInfo, tails: number[], heads: number[], n: number): Op[] {
    const c = this.codec, ops: Op[] = [];
    const qid = rng.chance(0.25) ? 0 : 1 + rng.below(IO_QUEUES);
    for (let k = 0; k < Math.min(n, QSIZE - 1); k++) {
      const slot = (tails[qid]! - fi.sqTail[qid]! + QSIZE) % QSIZE;
      ops.push(...(qid === 0 ? this.admin(rng, fi, slot) : this.io(rng, fi, slot, qid)));
      tails[qid] = (tails[qid]! + 1) % QSIZE;
    }
    ops.push(c.op("sqdb", qid, tails[qid]!), c.op("poll", 255));
    const done = Math.min(n, QSIZE - 1);
    heads[qid] = (heads[qid]! + done) % QSIZE;
    ops.push(c.op("cqdb", qid, heads[qid]!));
    return ops;
  }

  private io(rng: Rng, fi: FuncInfo, slot: number, qid: number): Op[] {
    const c = this.codec, ops: Op[] = [];
    const opc = rng.pick(OPC_IO.slice(0, rng.chance(0.9) ? 5 : 8));
    const nlb = rng.small(Math.min(15, fi.blocks - 1));
    const slba = rng.below(fi.blocks - nlb);
    const bytes = (nlb + 1) * fi.blockSize;
    const off = rng.chance(0.7) ? 0 : rng.below(PAGE / 4) * 4;
    const prp1 = fi.data + rng.below(4) * PAGE + off;
    const pages = Math.ceil((off + bytes) / PAGE);
    let prp2 = 0, cdw10 = slba, cdw11 = 0, cdw12 = nlb;
    if (opc === S.IO_READ || opc === S.IO_WRITE) {
      if (pages === 2) prp2 = fi.data + rng.below(8) * PAGE;
      else if (pages > 2) {
        const list = rng.below(4);
        prp2 = fi.lists + list * PAGE;
        for (let i = 0; i < pages - 1; i++) ops.push(c.op("prp", list, i, fi.data + rng.below(8) * PAGE, 0));
      }
    } else if (opc === S.IO_DSM) {
      const nr = rng.small(4);
      const page = rng.below(4);
      for (let i = 0; i <= nr; i++) ops.push(c.op("range", page, i, 1 + rng.small(8), rng.below(fi.blocks), 0));
      ops.push(c.op("sqe", qid, slot, opc, 0, rng.below(0x10000), 1, fi.lists + page * PAGE, 0, 0, nr, S.DSM_AD, 0, 0));
      return ops;
    } else if (opc === S.IO_WRITE_ZEROES) { cdw12 = nlb | (rng.chance(0.3) ? 1 << 25 : 0); }
    ops.push(c.op("sqe", qid, slot, opc, 0, rng.below(0x10000), rng.chance(0.95) ? 1 : rng.pick([0, 2, 0xffffffff]), prp1, 0, prp2, cdw10, cdw11, cdw12, 0));
    return ops;
  }

  private admin(rng: Rng, fi: FuncInfo, slot: number): Op[] {
    const c = this.codec;
    const opc = rng.pick(OPC_ADMIN);
    let nsid = 0, prp1 = fi.data + rng.below(8) * PAGE, prp2 = 0, cdw10 = 0, cdw11 = 0;
    switch (opc) {
      case S.ADM_IDENTIFY: cdw10 = rng.pick([S.CNS_NAMESPACE, S.CNS_CONTROLLER, S.CNS_ACTIVE_NS_LIST, 3]); nsid = cdw10 === S.CNS_NAMESPACE ? 1 : 0; break;
      case S.ADM_GET_FEATURES: case S.ADM_SET_FEATURES:
        cdw10 = rng.pick([S.FID_VOLATILE_WRITE_CACHE, S.FID_NUMBER_OF_QUEUES, S.FID_INTERRUPT_COALESCING, 0x01, 0xff]);
        cdw11 = rng.pick([0, 1, 0x10001, 0x1f001f, 0xffff, 0x0a04]); break;
      case S.ADM_CREATE_CQ: { const q = 3 + rng.below(3); prp1 = fi.spare + rng.below(2) * PAGE; cdw10 = q | ((rng.small(QSIZE) + 1) << 16); cdw11 = S.CDW11_PC | S.CQ_CDW11_IEN | (rng.below(4) << 16); break; }
      case S.ADM_CREATE_SQ: { const q = 3 + rng.below(3); prp1 = fi.spare + (2 + rng.below(2)) * PAGE; cdw10 = q | ((rng.small(QSIZE) + 1) << 16); cdw11 = S.CDW11_PC | ((rng.chance(0.7) ? q : rng.below(6)) << 16); break; }
      case S.ADM_DELETE_SQ: case S.ADM_DELETE_CQ: cdw10 = rng.below(6); break;
      case S.ADM_DBBUF_CONFIG: prp1 = fi.spare + 2 * PAGE; prp2 = fi.spare + 3 * PAGE; break;
    }
    return [c.op("sqe", 0, slot, opc, 0, rng.below(0x10000), nsid, prp1, 0, prp2, cdw10, cdw11, 0, 0)];
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let p = this.codec.decode(input);
    const fi = this.funcs[p.header[0]! & 1]!;
    for (let k = 0; k < steps; k++) p = this.codec.mutate(p, rng, () => this.commands(rng, fi, fi.sqTail.slice(), fi.cqHead.slice(), 1 + rng.small(3)));
    return this.codec.encode(p);
  }

  // ---- running ----
  reset(): void {
    this.fc.restore();
    this.hostDisk.bytes.set(this.hostDiskBaseline);
    this.fc.card.now = 0;
    for (const fi of this.funcs) fi.dev.state = CtrlState.READY;
  }

  run(input: Uint8Array): void {
    const fc = this.fc, card = fc.card, g = this.g;
    this.reset();
    const p = this.codec.decode(input);
    const f = p.header[0]! & 1;
    const fi = this.funcs[f]!, dev = fi.dev;
    const before = this.snap();
    let resets = 0;
    for (const op of p.ops) {
      const v = op.vals;
      switch (OPS[op.code]!.name) {
        case "sqe": {
          const qid = v[0]!;
          const sq = fi.sq[qid % fi.sq.length]!;
          const at = sq + ((fi.sqTail[qid % fi.sq.length]! + v[1]!) % QSIZE) * S.SQE_SIZE;
          g.setUint32(at, v[2]! | (v[3]! << 8) | (v[4]! << 16), true);
          g.setUint32(at + S.SQE_NSID, v[5]!, true);
          g.setUint32(at + 8, 0, true); g.setUint32(at + 12, 0, true); g.setUint32(at + 16, 0, true); g.setUint32(at + 20, 0, true);
          g.setUint32(at + S.SQE_PRP1, v[6]!, true); g.setUint32(at + S.SQE_PRP1 + 4, v[7]!, true);
          g.setUint32(at + S.SQE_PRP2, v[8]!, true); g.setUint32(at + S.SQE_PRP2 + 4, 0, true);
          g.setUint32(at + S.SQE_CDW10, v[9]!, true); g.setUint32(at + S.SQE_CDW11, v[10]!, true);
          g.setUint32(at + S.SQE_CDW12, v[11]!, true); g.setUint32(at + 52, v[12]!, true);
          g.setUint32(at + 56, 0, true); g.setUint32(at + 60, 0, true);
          break;
        }
        case "sqdb": dev.write(R.NVME_DB_BASE + 2 * v[0]! * R.NVME_DB_STRIDE, v[1]!); break;
        case "cqdb": dev.write(R.NVME_DB_BASE + (2 * v[0]! + 1) * R.NVME_DB_STRIDE, v[1]!); break;
        case "reg": {
          const off = (v[0]! % R.NVME_REG_END) & ~3;
          const wasEn = (dev.read(R.NVME_REG_CC) & R.NVME_CC_EN) !== 0;
          dev.write(off, v[1]!);
          if (off === R.NVME_REG_CC && (wasEn !== ((v[1]! & R.NVME_CC_EN) !== 0) || (v[1]! >>> R.NVME_CC_SHN_SHIFT) & 3)) resets++;
          break;
        }
        case "prp": {
          const at = fi.lists + (v[0]! % 4) * PAGE + (v[1]! % 512) * 8;
          g.setUint32(at, v[2]!, true); g.setUint32(at + 4, v[3]!, true);
          break;
        }
        case "range": {
          const at = fi.lists + (v[0]! % 4) * PAGE + v[1]! * S.DSM_RANGE_SIZE;
          g.setUint32(at, 0, true); g.setUint32(at + S.DSM_RANGE_NLB, v[2]!, true);
          g.setUint32(at + S.DSM_RANGE_SLBA, v[3]!, true); g.setUint32(at + S.DSM_RANGE_SLBA + 4, v[4]!, true);
          break;
        }
        case "bytes": {
          // data pages, PRP lists and spare queue pages of this function: not the queues the oracles read
          const lo = fi.data, span = 16 * PAGE;
          const off = lo + (v[0]! % span);
          this.gu8.set(op.blob!.subarray(0, lo + span - off), off);
          break;
        }
        case "poll": card.poll(v[0]! + 1); card.now += 1000; break;
      }
    }
    this.drain(f);
    this.invariants(f, before, resets);
    fc.auditCanaries();
  }

  /** The guest consumes every CQE posted (CQ head doorbell = CQ tail) until the controller stops. */
  private drain(f: number): void {
    const fc = this.fc, card = fc.card, dev = this.funcs[f]!.dev, w = fc.u32;
    for (let round = 0; round < 16; round++) {
      let rang = 0;
      for (let q = 0; q < M.MAX_QUEUES; q++) {
        const a = queueAddr(f, q) >>> 2;
        if (w[a + CQ_ACTIVE / 4] === 0) continue;
        const tail = w[a + CQ_TAIL / 4]!;
        if (tail !== w[a + CQ_HEAD / 4]) { dev.write(R.NVME_DB_BASE + (2 * q + 1) * R.NVME_DB_STRIDE, tail); rang++; }
      }
      const n = card.poll(4096);
      if (n === 0 && rang === 0 && card.inFlight() === 0) return;
    }
  }

  private snap() {
    const fc = this.fc;
    return {
      hostio_posted: fc.counter(Counter.hostio_posted), hostio_completed: fc.counter(Counter.hostio_completed),
      fetched: fc.counter(Counter.nvme_sqes_fetched), posted: fc.counter(Counter.nvme_cqes_posted),
      stale: fc.counter(Counter.err_nvme_stale_completion),
    };
  }

  private invariants(f: number, before: ReturnType<NvmeHarness["snap"]>, resets: number): void {
    const fc = this.fc, card = fc.card, w = fc.u32;
    const c = this.snap();
    const d = (k: keyof typeof c) => c[k] - before[k];
    if (card.inFlight() !== 0) throw new Finding("invariant", `${card.inFlight()} requests still in the pool after the drain`);
    if (d("hostio_posted") !== d("hostio_completed")) throw new Finding("invariant", `host IO posted ${d("hostio_posted")} ≠ completed ${d("hostio_completed")}`);
    for (let q = 0; q < M.MAX_QUEUES; q++) {
      const a = queueAddr(f, q) >>> 2;
      if (w[a + SQ_STATE / 4] !== 0) {
        if (w[a + SQ_HEAD / 4]! >= w[a + SQ_SIZE / 4]!) throw new Finding("invariant", `SQ ${q} head ${w[a + SQ_HEAD / 4]} outside its ${w[a + SQ_SIZE / 4]} entries`);
        if (w[a + SQ_INFLIGHT / 4] !== 0 && this.funcs[f]!.dev.state === CtrlState.READY) throw new Finding("invariant", `SQ ${q}: ${w[a + SQ_INFLIGHT / 4]} commands in flight after the drain`);
      }
      if (w[a + CQ_ACTIVE / 4] !== 0) {
        const size = w[a + CQ_SIZE / 4]!;
        if (w[a + CQ_TAIL / 4]! >= size || w[a + CQ_HEAD / 4]! >= size) throw new Finding("invariant", `CQ ${q} tail ${w[a + CQ_TAIL / 4]} / head ${w[a + CQ_HEAD / 4]} outside its ${size} entries`);
      }
    }
    if (d("posted") > d("fetched")) throw new Finding("invariant", `${d("posted")} CQEs posted for ${d("fetched")} SQEs fetched (a completion twice?)`);
    if (resets === 0 && this.funcs[f]!.dev.state === CtrlState.READY && d("posted") !== d("fetched")) {
      throw new Finding("invariant", `${d("fetched")} SQEs fetched, ${d("posted")} CQEs posted: ${d("fetched") - d("posted")} commands never completed`);
    }
  }

  explain(input: Uint8Array): string[] { return this.codec.explain(input); }
  collect(seen: Uint8Array): number { return this.fc.collect(seen); }
  byFile(seen: Uint8Array, perFunction?: boolean): Record<string, [number, number]> { return this.fc.byFile(seen, perFunction); }
  fullAudit(): void { this.fc.auditFull(); }
  restoreAll(): void { this.fc.restoreAll(); }
}
