// Guest NVMe driver, on the wire the way Linux's nvme-pci brings a controller up and
// drives it (NVMe base 2.0 §3.5.1 initialization; §4.1 queues; §4.1.1 PRPs):
// disable → wait CSTS.RDY=0 → AQA/ASQ/ACQ → enable → wait RDY → Identify Controller and
// Namespace → Set Features Number of Queues → Create I/O CQs, then SQs (one MSI-X vector
// per pair). I/O: SQEs written in guest RAM, PRP1/PRP2/PRP lists built in guest RAM, one
// SQ tail doorbell per queue per kick(), phase-tag completion walk, one CQ head doorbell
// per queue per reap(). Raw SQEs for tests: adminRaw() and submitRaw().
import type { BlockDriver } from "./driver.js";
import { BlkOp } from "./driver.js";
import type { GuestRam } from "./ram.js";
import { NvmePci } from "../pcie/nvme-pci.js";
import type { AttachContext } from "../testbed.js";
import * as R from "../../assembly/nvme/regs.js";
import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from "../pcie/config.js";
import { MSIX_CTRL_ENABLE, MSIX_ENTRY_SIZE } from "../pcie/msix.js";

// ---- wire constants (NVMe base 2.0 Figures 88/90, admin §5, NVM command set §3) ----
export const SQE_BYTES = 64;
export const CQE_BYTES = 16;
export const Opc = {
  // admin
  DELETE_SQ: 0x00, CREATE_SQ: 0x01, DELETE_CQ: 0x04, CREATE_CQ: 0x05, IDENTIFY: 0x06,
  SET_FEATURES: 0x09, GET_FEATURES: 0x0a, DBBUF_CONFIG: 0x7c,
  // NVM I/O
  FLUSH: 0x00, WRITE: 0x01, READ: 0x02, WRITE_ZEROES: 0x08, DSM: 0x09,
} as const;
export const Fid = { VOLATILE_WRITE_CACHE: 0x06, NUMBER_OF_QUEUES: 0x07, INTERRUPT_COALESCING: 0x08 } as const;
export const Cns = { NAMESPACE: 0, CONTROLLER: 1, ACTIVE_NS_LIST: 2 } as const;
/** Status as the 15-bit field of CQE DW3 [31:17]: SC | SCT << 8 | DNR << 14. */
export const DNR = 1 << 14;
export const SCT_CMD = 1 << 8;
export const SCT_MEDIA = 2 << 8;
export const Status = {
  SUCCESS: 0, INVALID_OPCODE: 0x01 | DNR, INVALID_FIELD: 0x02 | DNR, DATA_TRANSFER_ERROR: 0x04 | DNR,
  INVALID_NAMESPACE: 0x0b | DNR, PRP_OFFSET_INVALID: 0x13 | DNR, LBA_OUT_OF_RANGE: 0x80 | DNR,
  CQ_INVALID: SCT_CMD | 0x00 | DNR, INVALID_QID: SCT_CMD | 0x01 | DNR, INVALID_QSIZE: SCT_CMD | 0x02 | DNR,
  INVALID_VECTOR: SCT_CMD | 0x08 | DNR, INVALID_QUEUE_DELETION: SCT_CMD | 0x0c | DNR,
} as const;
const CDW0_CID_SHIFT = 16;
const CQ_IEN = 1 << 1;
const CDW11_PC = 1;
const DSM_AD = 1 << 2;
const NLB_MAX = 0x10000; // Read/Write/Write Zeroes: NLB is 16 bits, 0's based
const DSM_RANGE_NLB_MAX = 0xffffffff;
const PAGE = R.NVME_PAGE;
const MSI_ADDRESS = 0xfee00000; // x86 LAPIC message address (any fixed value works here)
const DEFAULT_MAX_PUMPS = 1000;

export interface Sqe {
  opc: number; nsid?: number; fuse?: number; psdt?: number; cid?: number;
  prp1?: number; prp2?: number; cdw10?: number; cdw11?: number; cdw12?: number; cdw13?: number; cdw14?: number; cdw15?: number;
}
export interface Cqe { dw0: number; sqhd: number; sqid: number; cid: number; status: number }

/** 64 bytes of one SQE (little-endian; CID from `cid`). */
export function encodeSqe(s: Sqe): Uint8Array {
  const b = new Uint8Array(SQE_BYTES);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, (s.opc & 0xff) | ((s.fuse ?? 0) << 8) | ((s.psdt ?? 0) << 14) | ((s.cid ?? 0) << CDW0_CID_SHIFT), true);
  dv.setUint32(4, s.nsid ?? 0, true);
  set64(dv, 24, s.prp1 ?? 0);
  set64(dv, 32, s.prp2 ?? 0);
  [s.cdw10, s.cdw11, s.cdw12, s.cdw13, s.cdw14, s.cdw15].forEach((v, i) => dv.setUint32(40 + 4 * i, (v ?? 0) >>> 0, true));
  return b;
}

function set64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v % 2 ** 32, true);
  dv.setUint32(off + 4, Math.floor(v / 2 ** 32), true);
}

export interface NvmeDriverOptions {
  /** I/O queue pairs to ask for (default 1). */
  ioQueues?: number;
  /** Entries per I/O queue (default 128, at most CAP.MQES + 1). */
  queueSize?: number;
  /** Entries of the admin queues (default 32). */
  adminQueueSize?: number;
  /** Use Doorbell Buffer Config (shadow doorbells + EventIdx). */
  shadowDoorbells?: boolean;
  /** Runs the card while the driver waits (default: card.poll()). */
  pump?: () => void;
  /** Pumps before a wait gives up (default 1000). */
  maxPumps?: number;
}

export interface IdentifyController { vid: number; serial: string; model: string; firmware: string; mdts: number; cntlid: number; ver: number; sqes: number; cqes: number; nn: number; oncs: number; vwc: number; oacs: number }
export interface IdentifyNamespace { nsze: number; ncap: number; nuse: number; nlbaf: number; flbas: number; lbads: number; dlfeat: number }

/** One I/O (or the admin) queue pair as the driver keeps it. */
export interface QueuePair {
  readonly qid: number;
  readonly size: number;
  readonly sqGpa: number;
  readonly cqGpa: number;
  tail: number; // next SQ slot
  published: number; // tail last told to the controller
  head: number; // next CQ slot
  phase: number;
  sqhd: number; // controller's SQ head from the last CQE
  freeCids: number[];
  tags: number[];
  lists: number[]; // PRP list / DSM range page of a cid, or -1
  part: Uint8Array; // 1 when the cid carries one part of a split request
}

export class NvmeDriver implements BlockDriver {
  readonly name = "nvme";
  blockSize = 0;
  capacityBlocks = 0;
  maxInflight = 0;
  /** Max data bytes per command (MDTS); larger requests are split. */
  maxTransfer = 0;
  ctrl!: IdentifyController;
  ns!: IdentifyNamespace;
  readonly admin: QueuePair;
  readonly io: QueuePair[] = [];
  /** MSI-X messages received, by vector. */
  readonly irqs = new Array<number>(32).fill(0);
  private readonly g32: Uint32Array;
  private readonly pump: () => void;
  private readonly maxPumps: number;
  private readonly db: number; // BAR offset of the doorbells
  private shadow = -1; // gpa of the shadow doorbell page, EventIdx page at +PAGE
  private freePages: number[] = [];
  private rr = 0;
  private nextSplit = 0;
  private readonly splits = new Map<number, { tag: number; left: number; status: number }>();

  private constructor(readonly dev: NvmePci, readonly guest: GuestRam, opts: NvmeDriverOptions) {
    this.g32 = new Uint32Array(guest.u8.buffer, guest.u8.byteOffset, guest.size >>> 2);
    this.pump = opts.pump ?? (() => dev.card.poll());
    this.maxPumps = opts.maxPumps ?? DEFAULT_MAX_PUMPS;
    this.db = R.NVME_DB_BASE;
    this.admin = this.newQueue(0, opts.adminQueueSize ?? 32);
  }

  /** Bring the controller up and create the I/O queues. Throws if the controller refuses. */
  static open(dev: NvmePci, opts: NvmeDriverOptions = {}): NvmeDriver {
    const d = new NvmeDriver(dev, dev.guest, opts);
    d.setupMsix();
    d.enableController();
    d.identify();
    if (opts.shadowDoorbells) d.setupShadowDoorbells();
    d.createIoQueues(opts.ioQueues ?? 1, opts.queueSize ?? 128);
    return d;
  }

  // ---- bring-up ----

  private setupMsix(): void {
    const cfg = this.dev.config;
    cfg.write(PCI_COMMAND, 2, cfg.read(PCI_COMMAND, 2) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    const vectors = this.dev.msix.vectors;
    for (let v = 0; v < vectors; v++) {
      const e = R.NVME_MSIX_TABLE_OFF + v * MSIX_ENTRY_SIZE;
      this.dev.write(e, MSI_ADDRESS);
      this.dev.write(e + 4, 0);
      this.dev.write(e + 8, v);
      this.dev.write(e + 12, 0); // unmask
    }
    const ctl = this.dev.msix.capOffset + 2;
    cfg.write(ctl, 2, cfg.read(ctl, 2) | MSIX_CTRL_ENABLE);
    this.guest.irq = (_addr, data) => { this.irqs[data & 31]!++; };
  }

  private enableController(): void {
    const dev = this.dev;
    const cap = dev.read(R.NVME_REG_CAP + 4);
    if ((cap & R.NVME_CAP_HI_CSS_NVM) === 0) throw new Error("nvme: controller lacks the NVM command set");
    if (dev.read(R.NVME_REG_CC) & R.NVME_CC_EN) dev.write(R.NVME_REG_CC, 0);
    this.waitFor(() => (dev.read(R.NVME_REG_CSTS) & R.NVME_CSTS_RDY) === 0, "CSTS.RDY = 0");
    const a = this.admin;
    dev.write(R.NVME_REG_AQA, (a.size - 1) | ((a.size - 1) << R.NVME_AQA_ACQS_SHIFT));
    dev.write(R.NVME_REG_ASQ, a.sqGpa, 8);
    dev.write(R.NVME_REG_ACQ, a.cqGpa, 8);
    dev.write(R.NVME_REG_CC, R.NVME_CC_EN | (R.NVME_SQES_LOG2 << R.NVME_CC_IOSQES_SHIFT) | (R.NVME_CQES_LOG2 << R.NVME_CC_IOCQES_SHIFT));
    this.waitFor(() => (dev.read(R.NVME_REG_CSTS) & (R.NVME_CSTS_RDY | R.NVME_CSTS_CFS)) !== 0, "CSTS.RDY = 1");
    if (dev.read(R.NVME_REG_CSTS) & R.NVME_CSTS_CFS) throw new Error("nvme: controller fatal status while enabling");
  }

  private identify(): void {
    const buf = this.takePage();
    this.adminOk({ opc: Opc.IDENTIFY, prp1: buf, cdw10: Cns.CONTROLLER }, "Identify Controller");
    const u8 = this.guest.u8, dv = this.guest.dv;
    const ascii = (off: number, len: number) => String.fromCharCode(...u8.subarray(buf + off, buf + off + len)).trimEnd();
    this.ctrl = {
      vid: dv.getUint16(buf, true), serial: ascii(4, 20), model: ascii(24, 40), firmware: ascii(64, 8),
      mdts: u8[buf + 77]!, cntlid: dv.getUint16(buf + 78, true), ver: dv.getUint32(buf + 80, true),
      oacs: dv.getUint16(buf + 256, true), sqes: u8[buf + 512]!, cqes: u8[buf + 513]!, nn: dv.getUint32(buf + 516, true),
      oncs: dv.getUint16(buf + 520, true), vwc: u8[buf + 525]!,
    };
    this.maxTransfer = this.ctrl.mdts === 0 ? 2 ** 31 : PAGE * 2 ** this.ctrl.mdts;
    this.adminOk({ opc: Opc.IDENTIFY, nsid: 1, prp1: buf, cdw10: Cns.NAMESPACE }, "Identify Namespace");
    const flbas = u8[buf + 26]!;
    const lbaf = dv.getUint32(buf + 128 + 4 * (flbas & 0xf), true);
    this.ns = {
      nsze: get64(dv, buf), ncap: get64(dv, buf + 8), nuse: get64(dv, buf + 16), nlbaf: u8[buf + 25]!, flbas,
      lbads: (lbaf >>> 16) & 0xff, dlfeat: u8[buf + 33]!,
    };
    this.blockSize = 2 ** this.ns.lbads;
    this.capacityBlocks = this.ns.nsze;
    this.freePages.push(buf);
  }

  private setupShadowDoorbells(): void {
    const pages = this.guest.alloc(2 * PAGE, PAGE);
    this.guest.u8.fill(0, pages, pages + 2 * PAGE);
    this.adminOk({ opc: Opc.DBBUF_CONFIG, prp1: pages, prp2: pages + PAGE }, "Doorbell Buffer Config");
    this.shadow = pages;
  }

  private createIoQueues(want: number, size: number): void {
    const mqes = this.dev.read(R.NVME_REG_CAP) & 0xffff;
    size = Math.min(size, mqes + 1);
    const nq = this.adminOk({ opc: Opc.SET_FEATURES, cdw10: Fid.NUMBER_OF_QUEUES, cdw11: (want - 1) | ((want - 1) << 16) }, "Set Features (Number of Queues)").dw0;
    const granted = Math.min(want, (nq & 0xffff) + 1, ((nq >>> 16) & 0xffff) + 1);
    for (let qid = 1; qid <= granted; qid++) {
      const q = this.newQueue(qid, size);
      this.adminOk({ opc: Opc.CREATE_CQ, prp1: q.cqGpa, cdw10: qid | ((size - 1) << 16), cdw11: CDW11_PC | CQ_IEN | (qid << 16) }, `Create I/O CQ ${qid}`);
      this.adminOk({ opc: Opc.CREATE_SQ, prp1: q.sqGpa, cdw10: qid | ((size - 1) << 16), cdw11: CDW11_PC | (qid << 16) }, `Create I/O SQ ${qid}`);
      this.io.push(q);
    }
    this.maxInflight = this.io.length * (size - 1);
  }

  private newQueue(qid: number, size: number): QueuePair {
    const sqGpa = this.guest.alloc(size * SQE_BYTES, PAGE);
    const cqGpa = this.guest.alloc(size * CQE_BYTES, PAGE);
    this.guest.u8.fill(0, cqGpa, cqGpa + size * CQE_BYTES);
    const freeCids: number[] = [];
    for (let c = size - 2; c >= 0; c--) freeCids.push(c); // one slot stays empty (§3.3.1.5)
    return { qid, size, sqGpa, cqGpa, tail: 0, published: 0, head: 0, phase: 1, sqhd: 0, freeCids,
      tags: new Array<number>(size).fill(0), lists: new Array<number>(size).fill(-1), part: new Uint8Array(size) };
  }

  // ---- waiting and admin commands ----

  /** Run the card until `cond` holds; throws after maxPumps. */
  waitFor(cond: () => boolean, what: string): void {
    for (let i = 0; i <= this.maxPumps; i++) {
      if (cond()) return;
      this.pump();
    }
    throw new Error(`nvme: timed out waiting for ${what}`);
  }

  /** One admin command, synchronously (bring-up, tests); returns its completion. */
  adminRaw(s: Sqe | Uint8Array): Cqe {
    const q = this.admin;
    const cid = this.place(q, s, 0);
    if (cid < 0) throw new Error("nvme: admin queue full");
    this.publish(q);
    let cqe: Cqe | undefined;
    this.waitFor(() => {
      this.walk(q, (c, _s, e) => { if (c === cid) cqe = this.cqeAt(e); });
      return cqe !== undefined;
    }, "an admin completion");
    return cqe!;
  }

  private adminOk(s: Sqe, what: string): Cqe {
    const c = this.adminRaw(s);
    if (c.status !== 0) throw new Error(`nvme: ${what} failed with status 0x${c.status.toString(16)}`);
    return c;
  }

  // ---- raw I/O for tests ----

  /** Put a raw SQE on I/O queue `qid` (its CID is assigned here); returns the CID or -1 when full. Call kick() to publish. */
  submitRaw(qid: number, s: Sqe | Uint8Array, tag: number): number {
    const q = qid === 0 ? this.admin : this.io[qid - 1];
    if (!q) throw new RangeError(`nvme: no queue ${qid}`);
    return this.place(q, s, tag);
  }

  /** Walk completions of one queue, reporting whole CQEs (tests). */
  reapRaw(qid: number, done: (tag: number, cqe: Cqe) => void): number {
    const q = qid === 0 ? this.admin : this.io[qid - 1]!;
    return this.walk(q, (cid, _s, e) => done(q.tags[cid]!, this.cqeAt(e)));
  }

  private place(q: QueuePair, s: Sqe | Uint8Array, tag: number): number {
    const cid = q.freeCids.pop();
    if (cid === undefined) return -1;
    const bytes = s instanceof Uint8Array ? s : encodeSqe(s);
    const at = q.sqGpa + q.tail * SQE_BYTES;
    this.guest.u8.set(bytes.subarray(0, SQE_BYTES), at);
    this.guest.dv.setUint16(at + 2, cid, true);
    q.tags[cid] = tag;
    q.part[cid] = 0;
    q.tail = q.tail + 1 === q.size ? 0 : q.tail + 1;
    return cid;
  }

  // ---- BlockDriver ----

  /**
   * Queue one request. A request larger than one command may carry (MDTS for reads and
   * writes, 65536 blocks for Write Zeroes) is split into commands on one queue, and
   * reported once, when its last part completes (as Linux's block layer splits by
   * max_hw_sectors).
   */
  submit(op: BlkOp, lba: number, nblocks: number, bufGpa: number, tag: number): boolean {
    const per = this.maxBlocks(op);
    const parts = nblocks <= per ? 1 : Math.ceil(nblocks / per);
    const q = this.pickQueue(parts);
    if (!q) {
      if (parts > this.io[0]!.size - 1) throw new RangeError(`nvme: ${nblocks} blocks need ${parts} commands, more than a queue holds`);
      return false;
    }
    if (parts === 1) { this.command(q, op, lba, nblocks, bufGpa, tag, false); return true; }
    const id = this.nextSplit++;
    this.splits.set(id, { tag, left: parts, status: 0 });
    const step = op === BlkOp.READ || op === BlkOp.WRITE ? per * this.blockSize : 0;
    for (let i = 0; i < parts; i++) this.command(q, op, lba + i * per, Math.min(per, nblocks - i * per), bufGpa + i * step, id, true);
    return true;
  }

  /** Blocks one command of `op` can carry. */
  private maxBlocks(op: BlkOp): number {
    if (op === BlkOp.READ || op === BlkOp.WRITE) return this.maxTransfer / this.blockSize;
    if (op === BlkOp.WRITE_ZEROES) return NLB_MAX; // 16-bit 0's based NLB (NVM cmd set §3.2.8)
    if (op === BlkOp.DISCARD) return DSM_RANGE_NLB_MAX; // 32-bit range length
    return Infinity;
  }

  /** Next queue (round robin) with `n` free command ids. */
  private pickQueue(n: number): QueuePair | undefined {
    const nq = this.io.length;
    for (let i = 0; i < nq; i++) {
      const q = this.io[(this.rr + i) % nq]!;
      if (q.freeCids.length >= n) { this.rr = (this.rr + i + 1) % nq; return q; }
    }
    return undefined;
  }

  /** Write one SQE at q's tail. */
  private command(q: QueuePair, op: BlkOp, lba: number, nblocks: number, bufGpa: number, tag: number, part: boolean): void {
    const cid = q.freeCids.pop()!;
    q.tags[cid] = tag;
    q.part[cid] = part ? 1 : 0;
    const w = (q.sqGpa + q.tail * SQE_BYTES) >>> 2;
    const g = this.g32;
    g.fill(0, w, w + 16);
    g[w + 1] = 1; // NSID
    if (op === BlkOp.READ || op === BlkOp.WRITE) {
      g[w] = (op === BlkOp.READ ? Opc.READ : Opc.WRITE) | (cid << CDW0_CID_SHIFT);
      this.prps(q, cid, w, bufGpa, nblocks * this.blockSize);
      this.lbas(w, lba, nblocks);
    } else if (op === BlkOp.WRITE_ZEROES) {
      g[w] = Opc.WRITE_ZEROES | (cid << CDW0_CID_SHIFT);
      this.lbas(w, lba, nblocks);
    } else if (op === BlkOp.DISCARD) {
      const page = this.takePage();
      q.lists[cid] = page;
      const r = page >>> 2; // one range: context 0, NLB (1's based), SLBA
      g[r] = 0; g[r + 1] = nblocks; g[r + 2] = lba % 2 ** 32; g[r + 3] = Math.floor(lba / 2 ** 32);
      g[w] = Opc.DSM | (cid << CDW0_CID_SHIFT);
      g[w + 6] = page;
      g[w + 10] = 0; // NR: one range
      g[w + 11] = DSM_AD;
    } else {
      g[w] = Opc.FLUSH | (cid << CDW0_CID_SHIFT);
    }
    q.tail = q.tail + 1 === q.size ? 0 : q.tail + 1;
  }

  /** One part of a split request finished; the request reports once, with its first error. */
  private partDone(id: number, status: number, done: (tag: number, status: number) => void): boolean {
    const s = this.splits.get(id)!;
    if (s.status === 0) s.status = status;
    if (--s.left !== 0) return false;
    this.splits.delete(id);
    done(s.tag, s.status);
    return true;
  }

  private lbas(w: number, lba: number, nblocks: number): void {
    const g = this.g32;
    g[w + 10] = lba % 2 ** 32;
    g[w + 11] = Math.floor(lba / 2 ** 32);
    g[w + 12] = nblocks - 1;
  }

  /** PRP1, then PRP2 as the second page or as a PRP list (§4.1.1); the buffer is contiguous. */
  private prps(q: QueuePair, cid: number, w: number, buf: number, bytes: number): void {
    const g = this.g32;
    g[w + 6] = buf % 2 ** 32; g[w + 7] = Math.floor(buf / 2 ** 32);
    const first = PAGE - (buf % PAGE);
    if (bytes <= first) return;
    const next = buf + first;
    if (bytes <= first + PAGE) { g[w + 8] = next % 2 ** 32; g[w + 9] = Math.floor(next / 2 ** 32); return; }
    const list = this.takePage();
    q.lists[cid] = list;
    const n = Math.ceil((bytes - first) / PAGE);
    for (let i = 0, e = list >>> 2; i < n; i++, e += 2) { const p = next + i * PAGE; g[e] = p % 2 ** 32; g[e + 1] = Math.floor(p / 2 ** 32); }
    g[w + 8] = list; g[w + 9] = 0;
  }

  kick(): void {
    this.publish(this.admin);
    for (const q of this.io) if (q.tail !== q.published) this.publish(q);
  }

  private publish(q: QueuePair): void {
    if (q.tail === q.published) return;
    const old = q.published;
    q.published = q.tail;
    this.ring(2 * q.qid, q.tail, old);
  }

  /** Doorbell `slot` (2y SQ tail, 2y+1 CQ head): MMIO, or shadow + EventIdx check for I/O queues. */
  private ring(slot: number, value: number, old: number): void {
    if (this.shadow >= 0 && slot >= 2) {
      const s = (this.shadow + slot * R.NVME_DB_STRIDE) >>> 2;
      this.g32[s] = value;
      const ev = this.g32[s + (PAGE >>> 2)]!;
      // Linux nvme_dbbuf_need_event: ring only when the new value passes EventIdx.
      if (((value - ev - 1) & 0xffff) >= ((value - old) & 0xffff)) return;
    }
    this.dev.write(this.db + slot * R.NVME_DB_STRIDE, value);
  }

  reap(done: (tag: number, status: number) => void): number {
    let n = 0;
    let parts = 0; // split parts that did not finish their request
    for (const q of this.io) {
      n += this.walk(q, (cid, status) => {
        if (q.part[cid] === 0) done(q.tags[cid]!, status);
        else if (!this.partDone(q.tags[cid]!, status, done)) parts++;
      });
    }
    return n - parts;
  }

  /** The CQE at guest word index e. */
  private cqeAt(e: number): Cqe {
    const g = this.g32, dw2 = g[e + 2]!, dw3 = g[e + 3]!;
    return { dw0: g[e]!, sqhd: dw2 & 0xffff, sqid: dw2 >>> 16, cid: dw3 & 0xffff, status: dw3 >>> 17 };
  }

  /** Phase-tag walk of q's CQ; frees CIDs and writes the CQ head doorbell once. */
  private walk(q: QueuePair, each: (cid: number, status: number, e: number) => void): number {
    const g = this.g32;
    let n = 0;
    const old = q.head;
    for (;;) {
      const e = (q.cqGpa + q.head * CQE_BYTES) >>> 2;
      const dw3 = g[e + 3]!;
      if (((dw3 >>> 16) & 1) !== q.phase) break;
      const dw2 = g[e + 2]!;
      const cid = dw3 & 0xffff;
      q.sqhd = dw2 & 0xffff;
      if (++q.head === q.size) { q.head = 0; q.phase ^= 1; }
      const list = q.lists[cid];
      if (list !== undefined && list >= 0) { this.freePages.push(list); q.lists[cid] = -1; }
      if (cid < q.size) q.freeCids.push(cid);
      n++;
      each(cid, dw3 >>> 17, e);
    }
    if (n !== 0) this.ring(2 * q.qid + 1, q.head, old);
    return n;
  }

  private takePage(): number { return this.freePages.pop() ?? this.guest.alloc(PAGE, PAGE); }
}

function get64(dv: DataView, off: number): number { return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 2 ** 32; }

/** Device factory for the testbed: adds the NVMe function, driver brought up with vm.queues pairs. */
export function attachNvme(ctx: AttachContext): NvmeDriver {
  const dev = new NvmePci(ctx.card, { guest: ctx.guestIndex, disk: ctx.disk, ioQueues: ctx.vm.queues });
  const drv = NvmeDriver.open(dev, { ioQueues: ctx.vm.queues, queueSize: ctx.vm.queue_size, shadowDoorbells: ctx.vm.polling });
  if (ctx.vm.polling) for (const q of drv.io) ctx.card.setPolling(dev.func, q.qid, true);
  return drv;
}
