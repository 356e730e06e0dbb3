// A card: one WebAssembly.Memory laid out by the memory map, one firmware instance,
// the guests whose RAM windows it can reach, its disks and its PCIe functions.
// The host crosses into the firmware once per poll (DESIGN rule 2).
import * as M from "../assembly/memmap.js";
import { Counter } from "../assembly/counters.js";
import { loadFirmware, instantiateFirmware, type Firmware } from "./loader.js";
import { layoutCard, type Layout } from "./layout.js";
import { GuestRam } from "./guest/ram.js";
import type { BlockBackend } from "./backends/types.js";
import { MemoryBackend } from "./backends/memory.js";
import { BlkOp } from "./guest/driver.js";

export enum FuncType { NONE = 0, VIRTIO_BLK = 1, NVME = 2 } // as assembly/pcie/func.ts
export enum DiskKind { NONE = 0, RAM = 1, HOST = 2, NVMEOF = 3 } // as assembly/blk/disk.ts
export enum BlkStatus { OK = 0, IOERR = 1, UNSUPP = 2, LBA_RANGE = 3 } // as assembly/blk/req.ts

export type DiskConfig =
  | { kind: "memory"; bytes: number; blockSize: number }
  | { kind: "host"; backend: BlockBackend }
  /** A namespace of an NVMe-oF target, served by the firmware over RDMA once host/nvmeof/initiator.ts has connected it. */
  | { kind: "nvmeof"; blockSize: number; blocks: number };

/**
 * A remote disk as the host sees it: its geometry (front ends show it to the guest); the data
 * never passes through the host, so the block calls refuse.
 */
export class NvmfDisk implements BlockBackend {
  readonly kind = "nvmeof";
  constructor(readonly blockSize: number, readonly blocks: number) {}
  private refuse(): never { throw new Error("nvmeof disk: served by the firmware over the fabric, not by the host"); }
  read(): void { this.refuse(); }
  write(): void { this.refuse(); }
  flush(): void { this.refuse(); }
  discard(): void { this.refuse(); }
  writeZeroes(): void { this.refuse(); }
  close(): void {}
}

export interface CardConfig {
  guests: { ramBytes: number }[];
  disks: DiskConfig[];
}

// Request slot fields the host reads when it serves host IO (assembly/blk/req.ts).
const R_OP = 16, R_NSEGS = 20, R_LBA = 24, R_NBLOCKS = 32, R_STATUS = 36, R_DISK = 56, R_SEGS = 64;

export class Card {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly guests: GuestRam[];
  readonly disks: BlockBackend[];
  /** Virtual time in ns; the caller advances it (host/timing.ts). */
  now = 0;
  private irqHandlers: (((vectors: number) => void) | undefined)[] = [];
  private nfuncs = 0;
  private readonly counters64: BigUint64Array;

  private constructor(readonly memory: WebAssembly.Memory, readonly fw: Firmware, readonly layout: Layout, cfg: CardConfig) {
    this.u8 = new Uint8Array(memory.buffer);
    this.dv = new DataView(memory.buffer);
    this.counters64 = new BigUint64Array(memory.buffer, M.COUNTERS_BASE, M.COUNTERS_MAX);
    this.guests = layout.guests.map((r, i) => new GuestRam(i, memory.buffer, r.base, r.size));
    this.guests.forEach((g) => fw.setGuest(g.index, g.base, g.size));
    this.disks = cfg.disks.map((d, i) => {
      if (d.kind === "memory") {
        const r = layout.disks[i]!;
        const b = new MemoryBackend(this.u8.subarray(r.base, r.base + r.size), d.blockSize);
        fw.setDisk(i, DiskKind.RAM, Math.log2(d.blockSize), b.blocks, r.base);
        return b;
      }
      if (d.kind === "nvmeof") {
        fw.setDisk(i, DiskKind.NVMEOF, Math.log2(d.blockSize), d.blocks, 0);
        return new NvmfDisk(d.blockSize, d.blocks);
      }
      fw.setDisk(i, DiskKind.HOST, Math.log2(d.backend.blockSize), d.backend.blocks, 0);
      return d.backend;
    });
  }

  static async create(cfg: CardConfig, module?: WebAssembly.Module): Promise<Card> {
    if (cfg.guests.length > M.MAX_GUESTS) throw new RangeError(`card: ${cfg.guests.length} guests, at most ${M.MAX_GUESTS}`);
    if (cfg.disks.length > M.MAX_DISKS) throw new RangeError(`card: ${cfg.disks.length} disks, at most ${M.MAX_DISKS}`);
    for (const d of cfg.disks) {
      if (d.kind === "memory" && (d.blockSize !== 512 && d.blockSize !== 4096 || d.bytes <= 0 || d.bytes % d.blockSize !== 0)) {
        throw new RangeError(`card: memory disk of ${d.bytes} bytes with ${d.blockSize}-byte blocks`);
      }
      if (d.kind === "host" && d.backend.blocks >= 2 ** 32) throw new RangeError(`card: ${d.backend.kind} disk has too many blocks`);
      if (d.kind === "nvmeof" && (d.blockSize !== 512 && d.blockSize !== 4096 || !Number.isInteger(d.blocks) || d.blocks <= 0 || d.blocks >= 2 ** 32)) {
        throw new RangeError(`card: nvmeof disk of ${d.blocks} blocks of ${d.blockSize} bytes`);
      }
    }
    const layout = layoutCard(cfg.disks.map((d) => (d.kind === "memory" ? d.bytes : null)), cfg.guests.map((g) => g.ramBytes));
    const memory = new WebAssembly.Memory({ initial: layout.pages, maximum: layout.pages });
    const fw = await instantiateFirmware(module ?? (await loadFirmware()), memory);
    if (fw.init() !== 0) throw new Error("firmware: its static data does not fit below FW_STATE_BASE; the memory map and the build disagree");
    if (new DataView(memory.buffer).getUint32(M.G_MAGIC, true) !== M.MEMMAP_MAGIC) throw new Error("firmware: memory map magic missing after init()");
    return new Card(memory, fw, layout, cfg);
  }

  /** Add PCIe function f (a front end of `type`) for guest g on disk d; returns f. */
  addFunction(type: FuncType, guest: number, disk: number, nqueues: number): number {
    const f = this.nfuncs;
    if (f >= M.MAX_FUNCS) throw new RangeError(`card: at most ${M.MAX_FUNCS} functions`);
    if (!this.guests[guest]) throw new RangeError(`card: no guest ${guest}`);
    if (!this.disks[disk]) throw new RangeError(`card: no disk ${disk}`);
    if (nqueues < 1 || nqueues > M.MAX_QUEUES) throw new RangeError(`card: ${nqueues} queues, want 1..${M.MAX_QUEUES}`);
    this.fw.setFunction(f, type, guest, disk, nqueues);
    this.nfuncs++;
    return f;
  }

  /** Card offset of function f's BAR0 register file. */
  barBase(f: number): number { return M.BAR_BASE + f * M.BAR_SIZE; }

  /** A doorbell: record that queue q of function f has work. poll() does it. */
  doorbell(f: number, q: number): void {
    const p = M.DOORBELL_BASE + f * 4;
    this.dv.setUint32(p, (this.dv.getUint32(p, true) | (1 << q)) >>> 0, true);
  }

  /** Polling mode: the firmware looks at queue q every poll, doorbell or not. */
  setPolling(f: number, q: number, on: boolean): void {
    const p = M.POLLING_BASE + f * 4;
    const v = this.dv.getUint32(p, true);
    this.dv.setUint32(p, (on ? v | (1 << q) : v & ~(1 << q)) >>> 0, true);
  }

  /** Who receives function f's raised MSI-X vectors (its device model). */
  onIrq(f: number, handler: (vectors: number) => void): void { this.irqHandlers[f] = handler; }

  /** One batch: firmware poll, host IO served, interrupts delivered. Returns requests taken. */
  poll(budget = 256): number {
    const n = this.fw.poll(budget, this.now);
    this.serveHostIO();
    this.deliverIrqs();
    return n;
  }

  /** Which firmware build runs this card: "debug" has assertions on. */
  get firmwareVariant(): "debug" | "release" { return this.fw.firmwareDebug() ? "debug" : "release"; }

  /** Requests still owned by the firmware (parsed and not yet completed). */
  inFlight(): number { return this.fw.reqsInUse(); }

  private deliverIrqs(): void {
    for (let f = 0; f < this.nfuncs; f++) {
      const p = M.IRQ_OUT_BASE + f * 4;
      const bits = this.dv.getUint32(p, true);
      if (bits === 0) continue;
      this.dv.setUint32(p, 0, true);
      this.irqHandlers[f]?.(bits);
    }
  }

  /** Serve what the firmware posted for host backends, then hand it back on the done ring. */
  private serveHostIO(): void {
    const dv = this.dv;
    const prod = dv.getUint32(M.HOSTIO_CTRL, true);
    let cons = dv.getUint32(M.HOSTIO_CTRL + 4, true);
    if (prod === cons) return;
    let done = dv.getUint32(M.HOSTIO_DONE_CTRL, true);
    for (; cons !== prod; cons = (cons + 1) >>> 0) {
      const r = dv.getUint32(M.HOSTIO_RING + (cons % M.HOSTIO_ENTRIES) * 4, true);
      dv.setUint32(M.REQ_BASE + r * M.REQ_SIZE + R_STATUS, this.serveOne(M.REQ_BASE + r * M.REQ_SIZE), true);
      dv.setUint32(M.HOSTIO_DONE_RING + (done % M.HOSTIO_ENTRIES) * 4, r, true);
      done = (done + 1) >>> 0;
    }
    dv.setUint32(M.HOSTIO_CTRL + 4, cons, true);
    dv.setUint32(M.HOSTIO_DONE_CTRL, done, true);
  }

  private serveOne(a: number): BlkStatus {
    const dv = this.dv;
    const disk = this.disks[dv.getUint32(a + R_DISK, true)];
    if (!disk) return BlkStatus.IOERR;
    const op = dv.getUint32(a + R_OP, true) as BlkOp;
    const lba = Number(dv.getBigUint64(a + R_LBA, true));
    const nblocks = dv.getUint32(a + R_NBLOCKS, true);
    try {
      if (op === BlkOp.READ || op === BlkOp.WRITE) {
        // Segments are window-checked card offsets; together they hold nblocks blocks.
        const nsegs = dv.getUint32(a + R_NSEGS, true);
        const bytes = this.gather(a, nsegs);
        if (op === BlkOp.READ) { disk.read(lba, bytes); this.scatter(a, nsegs, bytes); }
        else disk.write(lba, bytes);
      } else if (op === BlkOp.FLUSH) disk.flush();
      else if (op === BlkOp.DISCARD) disk.discard(lba, nblocks);
      else if (op === BlkOp.WRITE_ZEROES) disk.writeZeroes(lba, nblocks);
      else return BlkStatus.UNSUPP;
      return BlkStatus.OK;
    } catch {
      return BlkStatus.IOERR;
    }
  }

  /** The request's data as one buffer: a view when it has one segment, else a copy. */
  private gather(a: number, nsegs: number): Uint8Array {
    const dv = this.dv;
    if (nsegs === 1) {
      const off = dv.getUint32(a + R_SEGS, true);
      return this.u8.subarray(off, off + dv.getUint32(a + R_SEGS + 4, true));
    }
    let total = 0;
    for (let i = 0; i < nsegs; i++) total += dv.getUint32(a + R_SEGS + i * 8 + 4, true);
    const out = new Uint8Array(total);
    for (let i = 0, at = 0; i < nsegs; i++) {
      const off = dv.getUint32(a + R_SEGS + i * 8, true);
      const len = dv.getUint32(a + R_SEGS + i * 8 + 4, true);
      out.set(this.u8.subarray(off, off + len), at);
      at += len;
    }
    return out;
  }

  private scatter(a: number, nsegs: number, bytes: Uint8Array): void {
    if (nsegs === 1) return; // read straight into the single segment's view
    for (let i = 0, at = 0; i < nsegs; i++) {
      const off = this.dv.getUint32(a + R_SEGS + i * 8, true);
      const len = this.dv.getUint32(a + R_SEGS + i * 8 + 4, true);
      this.u8.set(bytes.subarray(at, at + len), off);
      at += len;
    }
  }

  /** Every firmware counter by name. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let c = 0; c < Counter.COUNT; c++) out[Counter[c]!] = Number(this.counters64[c]);
    return out;
  }

  /** The non-zero error and drop counters (`err_*`), by reason. */
  errors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let c = 0; c < Counter.COUNT; c++) {
      const name = Counter[c]!;
      const v = Number(this.counters64[c]);
      if (name.startsWith("err_") && v !== 0) out[name] = v;
    }
    return out;
  }
}
