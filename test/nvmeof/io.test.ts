// VM I/O through the DPU to a remote namespace: virtio-blk and NVMe front ends, reads placed by
// the target's RDMA WRITEs straight into guest RAM, writes RDMA READ from it or carried in the
// capsule, and more requests than capsule slots waiting their turn in order.
import { describe, it, expect } from "vitest";
import { world, bringUp, vio, settle, pattern, BlkOp, F, S, type World } from "./target.js";

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const ioCaps = (w: World) => w.target.capsules.filter((c) => c.qid === 1 && c.opc !== F.OPC_FABRICS);

describe("VM I/O over NVMe-oF", () => {
  for (const front of ["virtio", "nvme"] as const) {
    it(`${front}: a write then a read of 64 KiB round-trip through the target's namespace`, async () => {
      const w = await world({ front, blockSize: 512, blocks: 8192 });
      bringUp(w);
      const g = w.host.guests[0]!, src = g.alloc(65536), dst = g.alloc(65536);
      const data = pattern(65536, 5);
      g.u8.set(data, src);
      expect(vio(w, BlkOp.WRITE, 300, 128, src)).toBe(0);
      expect(same(w.target.disk.subarray(300 * 512, 300 * 512 + 65536), data)).toBe(true);
      w.target.disk.fill(0x5a, 1000 * 512, 1000 * 512 + 4096); // and a read of something else
      expect(vio(w, BlkOp.READ, 300, 128, dst)).toBe(0);
      expect(same(g.u8.subarray(dst, dst + 65536), data)).toBe(true);
      expect(vio(w, BlkOp.READ, 1000, 8, dst)).toBe(0);
      expect(g.u8.subarray(dst, dst + 4096).every((b) => b === 0x5a)).toBe(true);
      const k = w.host.counters();
      expect([k.nvmf_responses, k.bytes_written, k.bytes_read]).toEqual([k.nvmf_capsules_sent, 65536, 65536 + 4096]);
      expect(w.host.errors()).toEqual({});
      expect(w.tcard.errors()).toEqual({});
      expect(w.host.inFlight()).toBe(0);
    });
  }

  it("a small write goes in the capsule and lands on the target; write zeroes and discard zero the blocks", async () => {
    const w = await world();
    bringUp(w, { mtu: 4096 });
    const g = w.host.guests[0]!, buf = g.alloc(4096);
    const data = pattern(2048, 9);
    g.u8.set(data, buf);
    expect(vio(w, BlkOp.WRITE, 12, 4, buf)).toBe(0);
    expect(same(w.target.disk.subarray(12 * 512, 12 * 512 + 2048), data)).toBe(true);
    expect(w.host.counters().nvmf_incapsule_writes).toBe(1);
    w.target.disk.fill(0xee, 0, 64 * 512);
    expect(vio(w, BlkOp.WRITE_ZEROES, 0, 8, 0)).toBe(0);
    expect(vio(w, BlkOp.DISCARD, 32, 8, 0)).toBe(0);
    expect(vio(w, BlkOp.FLUSH, 0, 0, 0)).toBe(0);
    const d = w.target.disk;
    expect([d.subarray(0, 4096).every((b) => b === 0), d[4096], d.subarray(32 * 512, 40 * 512).every((b) => b === 0), d[40 * 512]]).toEqual([true, 0xee, true, 0xee]);
  });

  it("more requests than capsule slots: the rest wait (counted), then all complete with the right data", async () => {
    const w = await world();
    bringUp(w, { depth: 4 });
    const g = w.host.guests[0]!;
    const bufs = Array.from({ length: 24 }, () => g.alloc(8192));
    for (let i = 0; i < 24; i++) {
      w.target.disk.set(pattern(8192, 100 + i), i * 8192);
      expect(w.drv.submit(BlkOp.READ, i * 16, 16, bufs[i]!, i)).toBe(true);
    }
    w.target.hold = true;
    w.drv.kick();
    for (let i = 0; i < 200; i++) w.step();
    // Only as many capsules as the queue's depth reach the target while none is answered.
    expect(w.target.capsules.filter((c) => c.qid === 1 && c.opc !== F.OPC_FABRICS).length).toBe(4);
    expect(w.host.counters().nvmf_waited).toBe(20);
    w.target.release();
    expect(settle(w, 24)).toEqual(new Array(24).fill(0));
    for (let i = 0; i < 24; i++) expect(same(g.u8.subarray(bufs[i]!, bufs[i]! + 8192), pattern(8192, 100 + i))).toBe(true);
    expect(w.target.capsules.filter((c) => c.qid === 1 && c.opc !== F.OPC_FABRICS).map((c) => Number(c.slba) / 16)).toEqual([...Array(24).keys()]); // in order
    expect(w.host.errors()).toEqual({});
  });

  it("under loss, reordering and duplication (seeded) every read and write completes once with the right data", async () => {
    for (const seed of [1, 2]) {
      const w = await world({ seed, blocks: 2048, link: { loss: 0.02, reorder: 0.02, duplicate: 0.02 } });
      bringUp(w, { depth: 16 });
      const g = w.host.guests[0]!, model = new Uint8Array(2048 * 512);
      const bufs = Array.from({ length: 16 }, () => g.alloc(8192));
      let x = seed * 7919;
      const rnd = (n: number) => { x = (x * 1103515245 + 12345) >>> 0; return (x >>> 8) % n; };
      for (let round = 0; round < 6; round++) {
        const reads: [number, number][] = [];
        for (let i = 0; i < 16; i++) {
          const lba = i * 128 + rnd(112), n = 1 + rnd(16), write = round % 2 === 0; // disjoint ranges: one answer per block
          if (write) {
            const d = pattern(n * 512, seed * 1000 + round * 16 + i);
            g.u8.set(d, bufs[i]!);
            expect(w.drv.submit(BlkOp.WRITE, lba, n, bufs[i]!, i)).toBe(true);
            model.set(d, lba * 512);
          } else {
            expect(w.drv.submit(BlkOp.READ, lba, n, bufs[i]!, i)).toBe(true);
            reads.push([lba, n]);
          }
        }
        w.drv.kick();
        expect(settle(w, 16, 200_000)).toEqual(new Array(16).fill(0));
        expect(same(w.target.disk, model)).toBe(true);
        reads.forEach(([lba, n], i) => expect(same(g.u8.subarray(bufs[i]!, bufs[i]! + n * 512), model.subarray(lba * 512, (lba + n) * 512))).toBe(true));
      }
      for (let i = 0; i < 500; i++) w.step();
      expect(w.drv.reap(() => {})).toBe(0); // no request completed twice
      expect(w.host.inFlight()).toBe(0);
      const e = w.host.errors();
      expect(Object.keys(e).filter((k) => k.startsWith("err_nvmf"))).toEqual([]);
      expect(w.host.counters().rdma_rc_resends + w.tcard.counters().rdma_rc_resends).toBeGreaterThan(0); // the loss did bite
    }
  });

  it("requests longer than the controller's MDTS go out as consecutive commands and complete once, when the last answers", async () => {
    const w = await world({ blockSize: 512, blocks: 8192 });
    w.target.mdts = 1; // 8 KiB per command
    const ctrl = bringUp(w, { depth: 8 });
    expect(ctrl.maxTransfer).toBe(8192);
    const g = w.host.guests[0]!, src = g.alloc(65536), dst = g.alloc(65536);
    const data = pattern(65536, 21);
    g.u8.set(data, src);
    expect(vio(w, BlkOp.WRITE, 1000, 128, src)).toBe(0);
    const parts = ioCaps(w).slice(-8);
    expect(parts.map((c) => [c.opc, c.slba, c.nlb, c.sglAddr - BigInt(g.base), c.sglLen])).toEqual(
      Array.from({ length: 8 }, (_, k) => [S.IO_WRITE, BigInt(1000 + 16 * k), 16, BigInt(src + 8192 * k), 8192]));
    expect(same(w.target.disk.subarray(1000 * 512, 1000 * 512 + 65536), data)).toBe(true);
    expect(vio(w, BlkOp.READ, 1000, 128, dst)).toBe(0);
    expect(same(g.u8.subarray(dst, dst + 65536), data)).toBe(true);
    expect(w.host.counters().bytes_read).toBe(65536); // counted once, for the whole request
    // One part failing fails the request, once, after every part has answered.
    let n = 0;
    w.target.hook = (c) => (c.opc === S.IO_READ && n++ === 3 ? { status: S.S_INTERNAL_ERROR } : undefined);
    expect(vio(w, BlkOp.READ, 1000, 128, dst)).toBe(1);
    for (let i = 0; i < 100; i++) w.step();
    expect(w.drv.reap(() => {})).toBe(0);
    expect(w.host.inFlight()).toBe(0);
    // More parts than the queue has slots can never go out: refused, not held forever.
    w.target.hook = undefined;
    const big = g.alloc(128 * 512 * 2);
    expect(vio(w, BlkOp.READ, 0, 144, big)).toBe(2); // 9 parts, depth 8: UNSUPP
    expect(w.host.errors()).toEqual({ err_nvmf_status: 1, err_nvmf_bad_length: 1 });
  });
});
