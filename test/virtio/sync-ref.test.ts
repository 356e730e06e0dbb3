// The plain-TS split-ring sync (host/bench/virtio-sync-ref.ts) and the firmware's do the
// same work: on random and malformed rings both leave byte-identical shadow rings and
// queue state, so the benchmark compares like with like.
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { SplitSyncRef, queueAddr, shadowAddr, benchRing } from "../../host/bench/virtio-sync-ref.js";
import * as M from "../../assembly/memmap.js";
import * as V from "../../assembly/virtio/layout.js";
import { Counter } from "../../assembly/counters.js";

const GUEST = 1 << 20;

class Rng {
  constructor(private x: number) {}
  next(): number { let x = this.x; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.x = x >>> 0; return this.x; }
  below(n: number): number { return this.next() % n; }
  chance(p: number): boolean { return this.next() / 2 ** 32 < p; }
}

async function card(guestBytes = GUEST): Promise<Card> {
  return Card.create({ guests: [{ ramBytes: guestBytes }], disks: [{ kind: "memory", bytes: 1 << 16, blockSize: 512 }] });
}

/** Random ring contents: mostly sane chains, with every defect the sync checks for. */
function fillRing(c: Card, rng: Rng, qsize: number, desc: number, avail: number, tables: number): void {
  const dv = c.guests[0]!.dv;
  const addr = () => (rng.chance(0.05) ? GUEST - rng.below(64) : rng.chance(0.02) ? 2 ** 40 : rng.below(GUEST - 8192));
  const writeDesc = (at: number, n: number, allowIndirect: boolean) => {
    const len = rng.chance(0.03) ? 0 : rng.chance(0.02) ? V.MAX_DESC_LEN + 1 : 1 + rng.below(4096);
    let flags = 0;
    if (rng.chance(0.6)) flags |= V.DESCF_NEXT;
    if (rng.chance(0.5)) flags |= V.DESCF_WRITE;
    if (allowIndirect && rng.chance(0.1)) flags |= V.DESCF_INDIRECT;
    const next = rng.chance(0.03) ? n + rng.below(10) : rng.chance(0.5) ? (at + 1) % n : rng.below(n);
    return { addr: addr(), len, flags, next };
  };
  const put = (base: number, i: number, d: { addr: number; len: number; flags: number; next: number }) => {
    const p = base + i * 16;
    dv.setBigUint64(p, BigInt(d.addr), true);
    dv.setUint32(p + 8, d.len, true);
    dv.setUint16(p + 12, d.flags, true);
    dv.setUint16(p + 14, d.next & 0xffff, true);
  };
  for (let i = 0; i < qsize; i++) {
    const d = writeDesc(i, qsize, true);
    if (d.flags & V.DESCF_INDIRECT) { // point at one of 8 indirect tables of 8 entries, sometimes badly
      d.addr = rng.chance(0.1) ? GUEST - 8 : tables + rng.below(8) * 128;
      d.len = rng.chance(0.1) ? 1 + rng.below(200) : 16 * (1 + rng.below(8));
      if (rng.chance(0.7)) d.flags &= ~V.DESCF_NEXT;
    }
    put(desc, i, d);
  }
  for (let t = 0; t < 8 * 8; t++) put(tables, t, writeDesc(t % 8, 8, rng.chance(0.05)));
  // sometimes long direct chains: ending every 100 descriptors (too long) or looping round a small ring
  if (rng.chance(0.5)) for (let i = 0; i < qsize; i++) put(desc, i, { addr: addr(), len: 512, flags: i % 100 === 99 ? 0 : V.DESCF_NEXT, next: (i + 1) % qsize });
  for (let i = 0; i < qsize; i++) dv.setUint16(avail + V.AVAIL_RING + i * 2, rng.chance(0.03) ? qsize + rng.below(100) : rng.below(qsize), true);
}

describe("split-ring sync: firmware and plain-TS reference", () => {
  it("leave identical shadow bytes and queue state on random and malformed rings", async () => {
    const a = await card(), b = await card();
    const ref = new SplitSyncRef(b.memory.buffer);
    const rng = new Rng(0x5eed);
    const f = 0;
    for (const c of [a, b]) c.addFunction(1, 0, 0, 1);
    let chains = 0;
    const seen = new Set<number>();
    for (let ringNo = 0; ringNo < 40; ringNo++) {
      const qsize = [8, 16, 64, 256][ringNo % 4]!;
      const seed = rng.next();
      let idx = 0;
      for (const c of [a, b]) {
        const r = new Rng(seed);
        const base = 0x10000; // same guest addresses on both cards
        const desc = base, avail = base + 0x4000, used = base + 0x6000, tables = base + 0x9000;
        c.guests[0]!.u8.fill(0);
        const indirect = ringNo % 3 !== 0 ? 2 ** V.F_RING_INDIRECT_DESC : 0;
        c.fw.virtioSetFeatures(f, indirect, 1);
        expect(c.fw.virtioQueueSetup(f, 0, qsize, V.NO_VECTOR, desc, 0, avail, 0, used, 0)).toBe(0);
        fillRing(c, r, qsize, desc, avail, tables);
        idx = 0;
      }
      for (let step = 0; step < 6; step++) {
        // the driver publishes some entries (now and then more than a ring ahead)
        idx = (idx + (rng.chance(0.05) ? qsize + 1 + rng.below(50) : rng.below(qsize + 1))) & 0xffff;
        const max = 1 + rng.below(48);
        for (const c of [a, b]) c.guests[0]!.dv.setUint16(0x10000 + 0x4000 + V.AVAIL_IDX, idx, true);
        const na = a.fw.virtioSyncBench(f, 0, max);
        const nb = ref.syncBench(f, 0, max);
        expect(nb).toBe(na);
        chains += na;
        expect(Buffer.compare(a.u8.subarray(shadowAddr(f, 0), shadowAddr(f, 0) + M.SHADOW_QUEUE_SIZE),
          b.u8.subarray(shadowAddr(f, 0), shadowAddr(f, 0) + M.SHADOW_QUEUE_SIZE))).toBe(0);
        expect(Buffer.compare(a.u8.subarray(queueAddr(f, 0), queueAddr(f, 0) + M.QUEUE_ENTRY_SIZE),
          b.u8.subarray(queueAddr(f, 0), queueAddr(f, 0) + M.QUEUE_ENTRY_SIZE))).toBe(0);
        const sh = shadowAddr(f, 0);
        for (let i = 0; i < a.dv.getUint32(sh + V.SH_NCHAINS, true); i++) seen.add(a.dv.getUint32(sh + V.SH_CHAINS + i * V.SH_CHAIN_SIZE + V.SHC_ERR, true));
        if (a.fw.virtioQueueState(f, 0) === V.QS_BROKEN) seen.add(Counter.err_virtio_bad_avail_idx);
      }
    }
    expect(a.counters().virtio_desc_synced).toBe(b.counters().virtio_desc_synced);
    expect(chains).toBeGreaterThan(500);
    // the defects were exercised
    const reasons = [...seen].filter((e) => e !== 0).map((e) => Counter[e]).sort();
    expect(reasons).toEqual(["err_virtio_bad_avail_idx", "err_virtio_bad_desc_index", "err_virtio_chain_too_long", "err_virtio_desc_loop",
      "err_virtio_desc_oversized", "err_virtio_desc_zero_len", "err_virtio_indirect_bad"]);
  });

  it("agree on the benchmark ring: 256 three-descriptor chains", async () => {
    const a = await card(4 * GUEST), b = await card(4 * GUEST);
    const fa = benchRing(a, 256), fb = benchRing(b, 256);
    expect(a.fw.virtioSyncBench(fa, 0, 256)).toBe(256);
    expect(new SplitSyncRef(b.memory.buffer).syncBench(fb, 0, 256)).toBe(256);
    expect(a.counters().virtio_desc_synced).toBe(768);
    expect(Buffer.compare(a.u8.subarray(shadowAddr(fa, 0), shadowAddr(fa, 0) + M.SHADOW_QUEUE_SIZE),
      b.u8.subarray(shadowAddr(fb, 0), shadowAddr(fb, 0) + M.SHADOW_QUEUE_SIZE))).toBe(0);
  });
});
