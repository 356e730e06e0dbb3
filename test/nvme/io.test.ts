// End to end through Card + NvmePci + the guest driver against a memory disk.
import { describe, it, expect } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import { Opc, Cns } from "../../host/guest/nvme.js";
import * as R from "../../assembly/nvme/regs.js";
import { CtrlState } from "../../host/pcie/nvme-pci.js";
import { rig, io, diskBytes, pattern, runUntil, sameBytes, type Rig } from "./setup.js";

const PAGE = 4096;

/** Addresses the driver put in the last SQE it wrote on I/O queue 1. */
function lastSqe(r: Rig): { prp1: number; prp2: number } {
  const q = r.drv.io[0]!;
  const at = q.sqGpa + ((q.tail + q.size - 1) % q.size) * 64;
  const dv = r.drv.guest.dv;
  return { prp1: dv.getUint32(at + 24, true), prp2: dv.getUint32(at + 32, true) };
}

function roundTrip(r: Rig, lba: number, nblocks: number, buf: number, seed: number): void {
  const g = r.drv.guest, bs = r.drv.blockSize, n = nblocks * bs;
  const data = pattern(n, seed);
  g.u8.set(data, buf);
  expect(io(r, BlkOp.WRITE, lba, nblocks, buf)).toBe(0);
  expect(sameBytes(diskBytes(r).subarray(lba * bs, lba * bs + n), data)).toBe(true);
  g.u8.fill(0, buf, buf + n);
  expect(io(r, BlkOp.READ, lba, nblocks, buf)).toBe(0);
  expect(sameBytes(g.u8.subarray(buf, buf + n), data)).toBe(true);
}

describe.each([512, 4096])("NVMe data path, %i-byte LBA format", (bs) => {
  it("brings the controller up the Linux way and identifies controller and namespace", async () => {
    const r = await rig(bs);
    expect(r.dev.read(R.NVME_REG_CSTS) & R.NVME_CSTS_RDY).toBe(1);
    expect(r.dev.read(R.NVME_REG_VS)).toBe(0x20000);
    const c = r.drv.ctrl;
    expect(c.model).toBe("wasm-dpu NVMe controller");
    expect(c.serial).toBe("WDPU-F00");
    expect(c.firmware).toBe("0.1.0");
    expect(c.vid).toBe(R.NVME_VENDOR_ID);
    expect(c.mdts).toBe(R.NVME_MDTS);
    expect(c.ver).toBe(R.NVME_VS_2_0);
    expect([c.sqes, c.cqes, c.nn]).toEqual([0x66, 0x44, 1]);
    expect(c.oncs & 0b1100).toBe(0b1100); // DSM and Write Zeroes
    const n = r.drv.ns;
    expect(n.nsze).toBe((4 << 20) / bs);
    expect(n.ncap).toBe(n.nsze);
    expect([n.nlbaf, n.flbas, n.lbads]).toEqual([0, 0, Math.log2(bs)]);
    expect(r.drv.blockSize).toBe(bs);
    // Active namespace list: NSID 1 only.
    const g = r.drv.guest, buf = g.alloc(PAGE);
    g.u8.fill(0xff, buf, buf + PAGE);
    expect(r.drv.adminRaw({ opc: Opc.IDENTIFY, prp1: buf, cdw10: Cns.ACTIVE_NS_LIST }).status).toBe(0);
    expect([g.dv.getUint32(buf, true), g.dv.getUint32(buf + 4, true)]).toEqual([1, 0]);
  });

  it("writes then reads back with PRP1 only (offset inside one page)", async () => {
    const r = await rig(bs);
    const buf = r.drv.guest.alloc(2 * PAGE) + PAGE - bs; // ends exactly at the page end
    roundTrip(r, 3, 1, buf, 1);
    expect(lastSqe(r).prp2).toBe(0);
  });

  it("writes then reads back with PRP1 + PRP2", async () => {
    const r = await rig(bs);
    const buf = r.drv.guest.alloc(3 * PAGE) + 1024; // from an offset, across a page boundary
    const nb = bs === 4096 ? 1 : (2 * PAGE - 1024) / bs;
    roundTrip(r, 5, nb, buf, 2);
    expect(lastSqe(r).prp2).toBe(buf - 1024 + PAGE);
  });

  it("writes then reads back through a PRP list (64 KiB at an offset)", async () => {
    const r = await rig(bs);
    const buf = r.drv.guest.alloc(18 * PAGE) + 512;
    roundTrip(r, 16, (16 * PAGE) / bs, buf, 3);
    const { prp2 } = lastSqe(r);
    expect(prp2 % PAGE).toBe(0);
    expect(r.drv.guest.dv.getUint32(prp2, true)).toBe(buf - 512 + PAGE); // first list entry: the second page
  });

  it("follows chained PRP lists and scattered pages (raw SQE)", async () => {
    const r = await rig(bs);
    const g = r.drv.guest;
    const pages = 6;
    const data = Array.from({ length: pages }, (_, i) => g.alloc(PAGE)).reverse(); // scattered, descending
    const src = pattern(pages * PAGE, 4);
    data.forEach((p, i) => g.u8.set(src.subarray(i * PAGE, (i + 1) * PAGE), p));
    // First list: the last two slots of a page (one data entry + a chain pointer),
    // then a second, page-aligned list page with the rest.
    const l1 = g.alloc(PAGE) + PAGE - 16, l2 = g.alloc(PAGE);
    g.dv.setUint32(l1, data[1]!, true);
    g.dv.setUint32(l1 + 8, l2, true);
    for (let i = 2; i < pages; i++) g.dv.setUint32(l2 + (i - 2) * 8, data[i]!, true);
    const nlb = (pages * PAGE) / bs - 1;
    let status = -1;
    r.drv.submitRaw(1, { opc: Opc.WRITE, nsid: 1, prp1: data[0], prp2: l1, cdw10: 8, cdw12: nlb }, 1);
    r.drv.kick();
    runUntil(r, 1, (_t, s) => { status = s; });
    expect(status).toBe(0);
    const lba0 = 8 * bs;
    expect(sameBytes(diskBytes(r).subarray(lba0, lba0 + pages * PAGE), src)).toBe(true);
    // Read it back into one contiguous buffer through the driver's own PRP list.
    const back = g.alloc(pages * PAGE);
    expect(io(r, BlkOp.READ, 8, nlb + 1, back)).toBe(0);
    expect(sameBytes(g.u8.subarray(back, back + pages * PAGE), src)).toBe(true);
  });

  it("splits a request larger than MDTS into several commands and reports it once", async () => {
    const r = await rig(bs, { queueSize: 8 });
    const bytes = 3 * R.NVME_MAX_XFER - 2 * bs; // three commands, the last one shorter
    const buf = r.drv.guest.alloc(bytes + PAGE) + 512;
    const before = r.card.counters().nvme_io_commands;
    roundTrip(r, 7, bytes / bs, buf, 11);
    expect(r.card.counters().nvme_io_commands - before).toBe(6); // 3 writes + 3 reads
    expect(r.drv.io[0]!.freeCids.length).toBe(7); // every part's command id came back
    // reap() counts and reports the request once.
    expect(r.drv.submit(BlkOp.READ, 7, bytes / bs, buf, 42)).toBe(true);
    r.drv.kick();
    const seen: number[] = [];
    let counted = 0;
    for (let i = 0; i < 10; i++) { r.card.poll(); counted += r.drv.reap((t, st) => { expect(st).toBe(0); seen.push(t); }); }
    expect([counted, seen]).toEqual([1, [42]]);
  });

  it("flushes, writes zeroes and deallocates only the addressed blocks", async () => {
    const r = await rig(bs);
    const g = r.drv.guest;
    const buf = g.alloc(16 * bs);
    const data = pattern(16 * bs, 5);
    g.u8.set(data, buf);
    expect(io(r, BlkOp.WRITE, 0, 16, buf)).toBe(0);
    expect(io(r, BlkOp.FLUSH, 0, 0, 0)).toBe(0);
    expect(io(r, BlkOp.WRITE_ZEROES, 2, 3, 0)).toBe(0);
    expect(io(r, BlkOp.DISCARD, 9, 4, 0)).toBe(0);
    const want = data.slice();
    want.fill(0, 2 * bs, 5 * bs);
    want.fill(0, 9 * bs, 13 * bs);
    expect(sameBytes(diskBytes(r).subarray(0, 16 * bs), want)).toBe(true);
    // Dataset Management with several ranges (one empty) in one command.
    const list = g.alloc(PAGE);
    const ranges = [[0, 1], [5, 0], [14, 2]];
    ranges.forEach(([slba, nlb], i) => { g.dv.setUint32(list + i * 16 + 4, nlb!, true); g.dv.setUint32(list + i * 16 + 8, slba!, true); });
    let status = -1;
    r.drv.submitRaw(1, { opc: Opc.DSM, nsid: 1, prp1: list, cdw10: ranges.length - 1, cdw11: 1 << 2 }, 0);
    r.drv.kick();
    runUntil(r, 1, (_t, s) => { status = s; });
    expect(status).toBe(0);
    want.fill(0, 0, bs);
    want.fill(0, 14 * bs, 16 * bs);
    expect(sameBytes(diskBytes(r).subarray(0, 16 * bs), want)).toBe(true);
  });
});

describe("NVMe queues and interrupts", () => {
  it("spreads I/O over several queue pairs, one MSI-X vector each", async () => {
    const r = await rig(4096, { ioQueues: 4 });
    expect(r.drv.io.length).toBe(4);
    const g = r.drv.guest;
    const buf = g.alloc(32 * PAGE);
    g.u8.set(pattern(32 * PAGE, 6), buf);
    for (let i = 0; i < 32; i++) expect(r.drv.submit(BlkOp.WRITE, i, 1, buf + i * PAGE, i)).toBe(true);
    r.drv.kick();
    const tags: number[] = [];
    runUntil(r, 32, (t, s) => { expect(s).toBe(0); tags.push(t); });
    expect(tags.sort((a, b) => a - b)).toEqual([...Array(32).keys()]);
    expect(sameBytes(diskBytes(r).subarray(0, 32 * PAGE), g.u8.subarray(buf, buf + 32 * PAGE))).toBe(true);
    for (const q of r.drv.io) expect(q.sqhd).toBe(8); // each SQ took 8 commands
    expect(r.drv.irqs.slice(1, 5)).toEqual([1, 1, 1, 1]); // one interrupt per CQ per poll
  });

  it("stops on the poll budget and goes on at the next poll without a new doorbell", async () => {
    const r = await rig(4096);
    const buf = r.drv.guest.alloc(PAGE);
    for (let i = 0; i < 10; i++) r.drv.submit(BlkOp.READ, i, 1, buf, i);
    const rings = r.dev.doorbellWrites;
    r.drv.kick();
    expect(r.dev.doorbellWrites).toBe(rings + 1); // one SQ tail doorbell for the batch
    expect(r.card.poll(4)).toBe(4);
    expect(r.card.poll(4)).toBe(4);
    expect(r.card.poll(4)).toBe(2);
    expect(r.drv.reap(() => {})).toBe(10);
    expect(r.dev.doorbellWrites).toBe(rings + 2); // and one CQ head doorbell for the reap
  });

  it("keeps completions straight across phase wrap-around", async () => {
    const r = await rig(4096, { queueSize: 4 });
    const g = r.drv.guest;
    const buf = g.alloc(PAGE);
    let flips = 0, last = r.drv.io[0]!.phase;
    for (let i = 0; i < 40; i++) {
      const n = 1 + (i % 3); // 1..3 commands per batch in a 4-entry queue
      for (let k = 0; k < n; k++) expect(r.drv.submit(BlkOp.WRITE, i, 1, buf, k)).toBe(true);
      g.dv.setUint32(buf, i, true);
      r.drv.kick();
      runUntil(r, n, (_t, s) => expect(s).toBe(0));
      if (r.drv.io[0]!.phase !== last) { flips++; last = r.drv.io[0]!.phase; }
    }
    expect(flips).toBeGreaterThan(10);
    expect(new DataView(diskBytes(r).buffer, diskBytes(r).byteOffset).getUint32(39 * PAGE, true)).toBe(39);
  });

  it("coalesces interrupts by threshold and by time (Set Features 08h)", async () => {
    const r = await rig(4096);
    const buf = r.drv.guest.alloc(PAGE);
    const irqs = () => r.drv.irqs[1]!;
    // THR 3 (0's based: 4 completions), TIME 2 x 100 µs.
    expect(r.drv.adminRaw({ opc: Opc.SET_FEATURES, cdw10: 0x08, cdw11: 3 | (2 << 8) }).status).toBe(0);
    expect(r.drv.adminRaw({ opc: Opc.GET_FEATURES, cdw10: 0x08 }).dw0).toBe(3 | (2 << 8));
    for (let i = 0; i < 2; i++) r.drv.submit(BlkOp.READ, i, 1, buf, i);
    r.drv.kick();
    runUntil(r, 2);
    expect(irqs()).toBe(0); // 2 < 4 and the time has not come
    r.card.now += 199_000;
    r.card.poll();
    expect(irqs()).toBe(0);
    r.card.now += 1_000;
    r.card.poll();
    expect(irqs()).toBe(1); // aggregation time reached
    for (let i = 0; i < 4; i++) r.drv.submit(BlkOp.READ, i, 1, buf, i);
    r.drv.kick();
    runUntil(r, 4);
    expect(irqs()).toBe(2); // threshold reached at once
    expect(r.card.counters().irq_coalesced).toBeGreaterThan(0);
  });

  it("polling mode with shadow doorbells: I/O flows without doorbell writes", async () => {
    const r = await rig(4096, { shadowDoorbells: true });
    r.card.setPolling(r.dev.func, 1, true);
    const g = r.drv.guest, buf = g.alloc(PAGE);
    g.u8.set(pattern(PAGE, 7), buf);
    expect(io(r, BlkOp.WRITE, 1, 1, buf)).toBe(0); // first kick may ring: EventIdx not yet set
    const rings = r.dev.doorbellWrites;
    for (let i = 0; i < 20; i++) expect(io(r, BlkOp.WRITE, 2 + i, 1, buf)).toBe(0);
    expect(r.dev.doorbellWrites).toBe(rings);
    expect(sameBytes(diskBytes(r).subarray(21 * PAGE, 22 * PAGE), g.u8.subarray(buf, buf + PAGE))).toBe(true);
  });

  it("polling mode reads the SQ tail without a doorbell bit", async () => {
    const r = await rig(4096);
    r.card.setPolling(r.dev.func, 1, true);
    const g = r.drv.guest, buf = g.alloc(PAGE);
    g.u8.set(pattern(PAGE, 8), buf);
    r.drv.submit(BlkOp.WRITE, 4, 1, buf, 0);
    // The guest stores the tail in the register file, but no doorbell bit is raised.
    r.card.dv.setUint32(r.dev.bar + R.NVME_DB_BASE + 8, 1, true);
    r.drv.io[0]!.published = 1;
    let status = -1;
    runUntil(r, 1, (_t, s) => { status = s; });
    expect(status).toBe(0);
    expect(sameBytes(diskBytes(r).subarray(4 * PAGE, 5 * PAGE), g.u8.subarray(buf, buf + PAGE))).toBe(true);
  });

  it("disables, shuts down and re-enables the controller", async () => {
    const r = await rig(4096);
    const fetched = r.card.counters().nvme_sqes_fetched;
    r.dev.write(R.NVME_REG_CC, r.dev.read(R.NVME_REG_CC) | (1 << R.NVME_CC_SHN_SHIFT));
    expect((r.dev.read(R.NVME_REG_CSTS) >> R.NVME_CSTS_SHST_SHIFT) & 3).toBe(R.NVME_SHST_COMPLETE);
    expect(r.dev.state).toBe(CtrlState.SHUT_DOWN);
    r.dev.write(R.NVME_REG_CC, 0);
    expect(r.dev.read(R.NVME_REG_CSTS)).toBe(0);
    expect(r.dev.state).toBe(CtrlState.DISABLED);
    // Disabled: doorbells do nothing.
    r.dev.write(R.NVME_DB_BASE + 8, 3);
    r.card.poll();
    expect(r.card.counters().nvme_sqes_fetched).toBe(0 + fetched);
    // A fresh driver brings it up again and I/O works.
    const { NvmeDriver } = await import("../../host/guest/nvme.js");
    const drv = NvmeDriver.open(r.dev, { ioQueues: 1 });
    const r2 = { ...r, drv };
    const buf = drv.guest.alloc(PAGE);
    drv.guest.u8.set(pattern(PAGE, 9), buf);
    expect(io(r2, BlkOp.WRITE, 0, 1, buf)).toBe(0);
    expect(sameBytes(diskBytes(r2).subarray(0, PAGE), drv.guest.u8.subarray(buf, buf + PAGE))).toBe(true);
  });

  it("serves a host-side disk asynchronously (completions through the host-IO ring)", async () => {
    const r = await rig(512, { hostDisk: true, ioQueues: 2 });
    const g = r.drv.guest, buf = g.alloc(8 * PAGE);
    g.u8.set(pattern(8 * PAGE, 10), buf);
    for (let i = 0; i < 8; i++) r.drv.submit(BlkOp.WRITE, i * 8, 8, buf + i * PAGE, i);
    r.drv.kick();
    runUntil(r, 8, (_t, s) => expect(s).toBe(0));
    expect(sameBytes(diskBytes(r).subarray(0, 8 * PAGE), g.u8.subarray(buf, buf + 8 * PAGE))).toBe(true);
    expect(r.drv.irqs[1]! + r.drv.irqs[2]!).toBeGreaterThan(0);
    expect(io(r, BlkOp.DISCARD, 8, 8, 0)).toBe(0);
    expect(diskBytes(r).subarray(PAGE, 2 * PAGE).every((x) => x === 0)).toBe(true);
    expect(r.card.inFlight()).toBe(0);
  });
});
