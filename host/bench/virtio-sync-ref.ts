// Plain-TypeScript reference of the firmware's split-ring sync (assembly/virtio/ring.ts
// syncSplit): the same checks, the same shadow layout, written into the same card
// memory through a DataView. The benchmark runs both on identical work; a test checks
// that both leave identical shadow bytes on random and malformed rings.
import * as M from "../../assembly/memmap.js";
import * as V from "../../assembly/virtio/layout.js";
import { Counter } from "../../assembly/counters.js";
import type { Card } from "../card.js";
import type { BenchOptions, Figure } from "./harness.js";
import { compare } from "./harness.js";

const U16 = 0xffff;
const INVALID = -1;

export const queueAddr = (f: number, q: number) => M.QUEUE_TABLE_BASE + (f * M.MAX_QUEUES + q) * M.QUEUE_ENTRY_SIZE;
export const shadowAddr = (f: number, q: number) => M.SHADOW_BASE + (f * M.MAX_QUEUES + q) * M.SHADOW_QUEUE_SIZE;

/** The split-ring sync over one card's memory. */
export class SplitSyncRef {
  private readonly dv: DataView;
  constructor(memory: ArrayBuffer) { this.dv = new DataView(memory); }

  /** dma.ts translate: card offset of [gpa, gpa+len) in guest g's window, or INVALID. */
  private translate(g: number, lo: number, hi: number, len: number): number {
    const e = M.GUEST_TABLE_BASE + g * M.GUEST_ENTRY_SIZE;
    const size = this.dv.getUint32(e + M.GUEST_SIZE_OFF, true);
    if (hi !== 0 || lo > size || len > size - lo) return INVALID;
    return this.dv.getUint32(e + M.GUEST_BASE_OFF, true) + lo;
  }

  private putDesc(dp: number, da: number, len: number, flags: number): void {
    const dv = this.dv;
    dv.setUint32(dp, dv.getUint32(da, true), true);
    dv.setUint32(dp + 4, dv.getUint32(da + 4, true), true);
    dv.setUint32(dp + 8, len, true);
    dv.setUint32(dp + 12, flags & V.DESCF_WRITE, true);
  }

  private putChain(cr: number, id: number, err: number, first: number, nd: number, ringN: number): void {
    const dv = this.dv;
    dv.setUint32(cr + V.SHC_ID, id, true);
    dv.setUint32(cr + V.SHC_ERR, err, true);
    dv.setUint16(cr + V.SHC_FIRST, first, true);
    dv.setUint16(cr + V.SHC_NDESC, nd, true);
    dv.setUint32(cr + V.SHC_RING_N, ringN, true);
  }

  /** As the firmware's longChain: Brent's cycle search, bounded by V.LONG_CHAIN_PROBE steps. */
  private longChain(tbl: number, tsize: number, idx: number): number {
    const dv = this.dv;
    let tortoise = idx, power = 1, lam = 0;
    for (let i = 0; i < V.LONG_CHAIN_PROBE; i++) {
      const da = tbl + idx * 16;
      if ((dv.getUint16(da + V.DESC_FLAGS, true) & V.DESCF_NEXT) === 0) return Counter.err_virtio_chain_too_long;
      idx = dv.getUint16(da + V.DESC_NEXT, true);
      if (idx >= tsize) return Counter.err_virtio_bad_desc_index;
      if (idx === tortoise) return Counter.err_virtio_desc_loop;
      if (++lam === power) { tortoise = idx; power *= 2; lam = 0; }
    }
    return Counter.err_virtio_chain_too_long;
  }

  /** One chain from head into dp; returns reason << 16 | descriptors stored. */
  private walk(desc: number, size: number, head: number, g: number, mode: number, dp: number): number {
    const dv = this.dv;
    let tbl = desc, tsize = size, idx = head, seen = 0, nd = 0, indirect = false;
    for (;;) {
      const da = tbl + idx * 16;
      const fl = dv.getUint16(da + V.DESC_FLAGS, true);
      const len = dv.getUint32(da + V.DESC_LEN, true);
      if (fl & V.DESCF_INDIRECT) {
        if ((mode & V.QM_INDIRECT) === 0 || indirect || (fl & V.DESCF_NEXT) !== 0 || len === 0 || (len & 15) !== 0 || len >>> 4 > size) {
          return (Counter.err_virtio_indirect_bad << 16) | nd;
        }
        const t = this.translate(g, dv.getUint32(da, true), dv.getUint32(da + 4, true), len);
        if (t === INVALID) return (Counter.err_virtio_indirect_bad << 16) | nd;
        tbl = t; tsize = len >>> 4; idx = 0; seen = 0; indirect = true;
        continue;
      }
      if (len === 0) return (Counter.err_virtio_desc_zero_len << 16) | nd;
      if (len > V.MAX_DESC_LEN) return (Counter.err_virtio_desc_oversized << 16) | nd;
      if (nd === V.MAX_CHAIN) return (this.longChain(tbl, tsize, idx) << 16) | nd;
      this.putDesc(dp, da, len, fl);
      dp += V.SH_DESC_SIZE; nd++; seen++;
      if ((fl & V.DESCF_NEXT) === 0) return nd;
      const nx = dv.getUint16(da + V.DESC_NEXT, true);
      if (nx >= tsize) return (Counter.err_virtio_bad_desc_index << 16) | nd;
      if (seen >= tsize) return (Counter.err_virtio_desc_loop << 16) | nd;
      idx = nx;
    }
  }

  /** syncSplit: up to `max` new avail chains of queue q of function f into its shadow ring. */
  sync(f: number, q: number, max: number): number {
    const dv = this.dv, qa = queueAddr(f, q), sh = shadowAddr(f, q);
    const g = dv.getUint32(M.FUNC_TABLE_BASE + f * M.FUNC_ENTRY_SIZE + M.FUNC_GUEST_OFF, true);
    const size = dv.getUint32(qa + V.Q_SIZE, true), mask = size - 1;
    const avail = dv.getUint32(qa + V.Q_DRIVER, true);
    const last = dv.getUint32(qa + V.Q_LAST_AVAIL, true);
    const pending = (dv.getUint16(avail + V.AVAIL_IDX, true) - last) & U16;
    if (pending > size) {
      dv.setUint32(qa + V.Q_STATE, V.QS_BROKEN, true);
      dv.setUint32(sh + V.SH_NCHAINS, 0, true);
      return 0;
    }
    const n = Math.min(pending, max, V.SH_BATCH_MAX);
    const desc = dv.getUint32(qa + V.Q_DESC, true), mode = dv.getUint32(qa + V.Q_MODE, true);
    let nd = 0, cr = sh + V.SH_CHAINS, i = 0;
    for (; i < n; i++) {
      if (nd + V.MAX_CHAIN > V.SH_DESC_CAP) break;
      const head = dv.getUint16(avail + V.AVAIL_RING + ((last + i) & mask) * 2, true);
      if (head >= size) this.putChain(cr, V.SHC_NO_ID, Counter.err_virtio_bad_desc_index, nd, 0, 1);
      else {
        const r = this.walk(desc, size, head, g, mode, sh + V.SH_DESCS + nd * V.SH_DESC_SIZE);
        const k = r & U16;
        this.putChain(cr, head, r >>> 16, nd, k, 1);
        nd += k;
      }
      cr += V.SH_CHAIN_SIZE;
    }
    dv.setUint32(sh + V.SH_NCHAINS, i, true);
    dv.setUint32(sh + V.SH_NDESC, nd, true);
    dv.setUint32(qa + V.Q_LAST_AVAIL, (last + i) & U16, true);
    const c = M.COUNTERS_BASE + Counter.virtio_desc_synced * 8;
    dv.setBigUint64(c, dv.getBigUint64(c, true) + BigInt(nd), true);
    return i;
  }

  /** As the firmware's virtioSyncBench: batches of SYNC_BATCH until `max` or nothing new. */
  syncBench(f: number, q: number, max: number): number {
    if (this.dv.getUint32(queueAddr(f, q) + V.Q_STATE, true) !== V.QS_READY) return 0;
    let done = 0;
    while (done < max) {
      const n = this.sync(f, q, Math.min(max - done, V.SYNC_BATCH));
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /** As virtioSyncRewind. */
  rewind(f: number, q: number, lastAvail: number): void {
    this.dv.setUint32(queueAddr(f, q) + V.Q_LAST_AVAIL, lastAvail & U16, true);
  }
}

/**
 * Put a split ring of `size` entries in guest 0 of the card, every entry a request of
 * `chain` descriptors (header, data, status) already made available, on a new
 * virtio-blk function whose queue 0 the firmware has enabled. Returns the function.
 */
export function benchRing(card: Card, size: number, chain = 3): number {
  const f = card.addFunction(1 /* FuncType.VIRTIO_BLK */, 0, 0, 1);
  const g = card.guests[0]!, dv = g.dv;
  // The ring holds size * chain descriptors (rounded to a power of two); `size` chains are available.
  const qsize = nextPow2(size * chain);
  const desc = g.alloc(qsize * 16, 16), avail = g.alloc(V.AVAIL_RING + qsize * 2 + 2, 2);
  const used = g.alloc(V.USED_RING + qsize * V.USED_ELEM_SIZE + 2, 4), bufs = g.alloc(size * 4096, 4096);
  for (let i = 0; i < size; i++) {
    for (let k = 0; k < chain; k++) {
      const d = desc + (i * chain + k) * 16;
      const last = k === chain - 1;
      dv.setBigUint64(d, BigInt(bufs + i * 4096 + (k === 0 ? 0 : last ? 4095 : 512)), true);
      dv.setUint32(d + 8, k === 0 ? 16 : last ? 1 : 3072, true);
      dv.setUint16(d + 12, (last ? 0 : V.DESCF_NEXT) | (k > 0 ? V.DESCF_WRITE : 0), true);
      dv.setUint16(d + 14, i * chain + k + 1, true);
    }
    dv.setUint16(avail + V.AVAIL_RING + i * 2, i * chain, true);
  }
  dv.setUint16(avail + V.AVAIL_IDX, size, true);
  card.fw.virtioSetFeatures(f, 2 ** V.F_RING_INDIRECT_DESC + 2 ** V.F_RING_EVENT_IDX, 1 << (V.F_VERSION_1 - 32));
  const rc = card.fw.virtioQueueSetup(f, 0, qsize, V.NO_VECTOR, desc, 0, avail, 0, used, 0);
  if (rc !== 0) throw new Error(`benchRing: queue setup refused (${Counter[rc]})`);
  return f;
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));

/** Firmware split-ring sync vs this reference: 3-descriptor chains, batches of 32. */
export async function benchVirtioSync(o: BenchOptions): Promise<Figure> {
  const { Card } = await import("../card.js");
  const card = await Card.create({ guests: [{ ramBytes: 8 << 20 }], disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 512 }] });
  const chains = 256;
  const f = benchRing(card, chains);
  const ref = new SplitSyncRef(card.memory.buffer);
  const fw = card.fw;
  return compare(
    "virtio split-ring sync (3-descriptor chains, batches of 32)", "req/s",
    () => { fw.virtioSyncRewind(f, 0, 0); return fw.virtioSyncBench(f, 0, chains); },
    "plain-TS reference", () => { ref.rewind(f, 0, 0); return ref.syncBench(f, 0, chains); },
    o,
  );
}
