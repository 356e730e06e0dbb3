// Hostile guests (DESIGN rule 4): every bad input gets an NVMe error status (or, where
// no CQE can carry it, a counted drop), an err_nvme_* reason, no trap, and no write
// outside the buffers it addressed — the canary VM after guest 0's window stays intact.
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { NvmePci } from "../../host/pcie/nvme-pci.js";
import { Opc, Status, encodeSqe, type Sqe, type Cqe } from "../../host/guest/nvme.js";
import { BlkOp } from "../../host/guest/driver.js";
import * as R from "../../assembly/nvme/regs.js";
import { rig, io, runUntil, snapshot, expectOnlyChanged, cqeRange, diskBytes, sameBytes, pattern, GUEST_BYTES, CANARY, type Rig } from "./setup.js";

const PAGE = 4096;
const DB = R.NVME_DB_BASE;

/** Raw I/O command on queue 1; checks that only the CQ changed; returns the status. */
function hostileIo(r: Rig, s: Sqe): number {
  r.drv.submitRaw(1, { nsid: 1, ...s }, 0);
  const before = snapshot(r);
  r.drv.kick();
  let st = -1;
  runUntil(r, 1, (_t, x) => { st = x; });
  expectOnlyChanged(r, before, [cqeRange(r, 1)]);
  return st;
}

/** Raw admin command; checks that only the admin queues changed. */
function hostileAdmin(r: Rig, s: Sqe): Cqe {
  const a = r.drv.admin;
  const before = snapshot(r);
  const c = r.drv.adminRaw(s);
  expectOnlyChanged(r, before, [cqeRange(r, 0), [a.sqGpa, a.sqGpa + a.size * 64]]);
  return c;
}

/** Delete I/O queue pair 2 so the test can create it its own way. */
function freeQid2(r: Rig): void {
  expect(r.drv.adminRaw({ opc: Opc.DELETE_SQ, cdw10: 2 }).status).toBe(0);
  expect(r.drv.adminRaw({ opc: Opc.DELETE_CQ, cdw10: 2 }).status).toBe(0);
}

const createCq = (qid: number, entries: number, base: number, extra = 0): Sqe =>
  ({ opc: Opc.CREATE_CQ, prp1: base, cdw10: qid | ((entries - 1) << 16), cdw11: 1 | 2 | (qid << 16) | extra });
const createSq = (qid: number, entries: number, base: number, cq: number): Sqe =>
  ({ opc: Opc.CREATE_SQ, prp1: base, cdw10: qid | ((entries - 1) << 16), cdw11: 1 | (cq << 16) });

describe("NVMe hostile guests: queue management", () => {
  it("SQ or CQ base outside the VM's window: Invalid Field, counted", async () => {
    const r = await rig(4096, { ioQueues: 2 });
    freeQid2(r);
    expect(hostileAdmin(r, createCq(2, 512, GUEST_BYTES - PAGE)).status).toBe(Status.INVALID_FIELD); // 8 KiB: crosses the end
    expect(hostileAdmin(r, createCq(2, 2, GUEST_BYTES)).status).toBe(Status.INVALID_FIELD);
    expect(hostileAdmin(r, createCq(2, 2, r.drv.guest.alloc(PAGE))).status).toBe(0);
    expect(hostileAdmin(r, createSq(2, 128, GUEST_BYTES - PAGE, 2)).status).toBe(Status.INVALID_FIELD);
    expect(hostileAdmin(r, createSq(2, 2, 2 ** 40, 2)).status).toBe(Status.INVALID_FIELD);
    expect(r.card.errors()).toEqual({ err_nvme_queue_out_of_window: 4 });
  });

  it("admin queue outside the window at enable: CSTS.CFS, not ready", async () => {
    const card = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 512 }] });
    const dev = new NvmePci(card, { guest: 0, disk: 0, ioQueues: 1 });
    dev.write(R.NVME_REG_AQA, 31 | (31 << 16));
    dev.write(R.NVME_REG_ASQ, (1 << 20) - PAGE, 8); // 32 x 64 B = 2 KiB fits; ACQ does not
    dev.write(R.NVME_REG_ACQ, 1 << 20, 8);
    dev.write(R.NVME_REG_CC, 1 | (6 << 16) | (4 << 20));
    expect(dev.read(R.NVME_REG_CSTS) & (R.NVME_CSTS_RDY | R.NVME_CSTS_CFS)).toBe(R.NVME_CSTS_CFS);
    expect(card.errors()).toEqual({ err_nvme_queue_out_of_window: 1, err_nvme_controller_fatal: 1 });
    card.poll(); // nothing runs on a controller that is not ready
    expect(card.counters().nvme_admin_commands).toBe(0);
  });

  it("SQ tail doorbell beyond the queue size: dropped and counted once, the queue goes on", async () => {
    const r = await rig(4096);
    const q = r.drv.io[0]!;
    const before = snapshot(r);
    r.dev.write(DB + 8, q.size + 3);
    for (let i = 0; i < 3; i++) r.card.poll();
    expectOnlyChanged(r, before);
    expect(r.card.errors()).toEqual({ err_nvme_bad_sq_tail: 1 });
    expect(r.card.counters().nvme_io_commands).toBe(0);
    const buf = r.drv.guest.alloc(PAGE);
    expect(io(r, BlkOp.READ, 0, 1, buf)).toBe(0);
  });

  it("CQ head doorbell beyond the queue size: ignored and counted", async () => {
    const r = await rig(4096);
    const buf = r.drv.guest.alloc(PAGE);
    expect(io(r, BlkOp.READ, 0, 1, buf)).toBe(0);
    const before = snapshot(r);
    r.dev.write(DB + 12, r.drv.io[0]!.size + 5);
    r.card.poll();
    expectOnlyChanged(r, before);
    expect(r.card.errors()).toEqual({ err_nvme_bad_cq_head: 1 });
    r.dev.write(DB + 12, r.drv.io[0]!.head); // the right value again
    for (let i = 0; i < 5; i++) expect(io(r, BlkOp.READ, i, 1, buf)).toBe(0);
  });

  it("CQ head past the entries posted (a guest expecting phases never written): ignored and counted", async () => {
    const r = await rig(4096, { queueSize: 8 });
    const buf = r.drv.guest.alloc(PAGE);
    expect(io(r, BlkOp.READ, 0, 1, buf)).toBe(0); // one CQE posted, head 1
    const before = snapshot(r);
    r.dev.write(DB + 12, 5); // claims 4 entries the controller never wrote
    r.card.poll();
    expectOnlyChanged(r, before);
    expect(r.card.errors()).toEqual({ err_nvme_cq_head_ahead: 1 });
    r.dev.write(DB + 12, 1);
    // The controller kept its own view: 20 more commands complete with correct phases.
    for (let i = 0; i < 20; i++) expect(io(r, BlkOp.READ, i, 1, buf)).toBe(0);
  });

  it("Create SQ on a missing CQ: Completion Queue Invalid", async () => {
    const r = await rig(4096, { ioQueues: 2 });
    freeQid2(r);
    const sq = r.drv.guest.alloc(PAGE);
    expect(hostileAdmin(r, createSq(2, 8, sq, 2)).status).toBe(Status.CQ_INVALID); // CQ 2 was deleted
    expect(hostileAdmin(r, createSq(2, 8, sq, 0)).status).toBe(Status.CQ_INVALID); // the admin CQ
    expect(hostileAdmin(r, createSq(2, 8, sq, 40)).status).toBe(Status.CQ_INVALID);
    expect(r.card.errors()).toEqual({ err_nvme_cq_invalid: 3 });
  });

  it("invalid queue ids: Invalid Queue Identifier", async () => {
    const r = await rig(4096, { ioQueues: 2 });
    const base = r.drv.guest.alloc(PAGE);
    expect(hostileAdmin(r, createCq(0, 2, base)).status).toBe(Status.INVALID_QID);
    expect(hostileAdmin(r, createCq(1, 2, base)).status).toBe(Status.INVALID_QID); // exists
    expect(hostileAdmin(r, createCq(3, 2, base)).status).toBe(Status.INVALID_QID); // beyond the function's queues
    expect(hostileAdmin(r, createCq(0xffff, 2, base)).status).toBe(Status.INVALID_QID);
    expect(hostileAdmin(r, createSq(1, 2, base, 1)).status).toBe(Status.INVALID_QID); // exists
    expect(hostileAdmin(r, { opc: Opc.DELETE_SQ, cdw10: 0 }).status).toBe(Status.INVALID_QID); // admin SQ
    expect(hostileAdmin(r, { opc: Opc.DELETE_SQ, cdw10: 9 }).status).toBe(Status.INVALID_QID);
    expect(hostileAdmin(r, { opc: Opc.DELETE_CQ, cdw10: 31 }).status).toBe(Status.INVALID_QID);
    expect(r.card.errors()).toEqual({ err_nvme_invalid_qid: 8 });
  });

  it("bad queue size, vector or PC=0: Invalid Queue Size / Invalid Interrupt Vector / Invalid Field", async () => {
    const r = await rig(4096, { ioQueues: 2 });
    freeQid2(r);
    const base = r.drv.guest.alloc(8 * PAGE);
    expect(hostileAdmin(r, createCq(2, 1, base)).status).toBe(Status.INVALID_QSIZE);
    expect(hostileAdmin(r, createCq(2, R.NVME_MQES + 2, base)).status).toBe(Status.INVALID_QSIZE);
    expect(hostileAdmin(r, { ...createCq(2, 2, base), cdw11: 2 | (40 << 16) | 1 }).status).toBe(Status.INVALID_VECTOR);
    expect(hostileAdmin(r, { ...createCq(2, 2, base), cdw11: 2 }).status).toBe(Status.INVALID_FIELD); // PC = 0
    expect(hostileAdmin(r, createCq(2, 2, base + 8)).status).toBe(Status.PRP_OFFSET_INVALID);
    expect(r.card.errors()).toEqual({ err_nvme_invalid_queue_size: 2, err_nvme_invalid_vector: 1, err_nvme_invalid_field: 1, err_nvme_prp_offset: 1 });
  });

  it("Delete of a queue with commands in flight: Invalid Queue Deletion", async () => {
    const r = await rig(512, { hostDisk: true });
    const buf = r.drv.guest.alloc(PAGE);
    diskBytes(r).set(pattern(PAGE, 3), 0);
    r.drv.submit(BlkOp.READ, 0, 8, buf, 1);
    r.drv.kick();
    r.card.fw.poll(256, r.card.now); // the read is now with the host backend, not yet back
    expect(r.card.inFlight()).toBe(1);
    const a = r.drv.admin;
    const before = snapshot(r);
    expect(r.drv.adminRaw({ opc: Opc.DELETE_SQ, cdw10: 1 }).status).toBe(Status.INVALID_QUEUE_DELETION);
    expect(r.drv.adminRaw({ opc: Opc.DELETE_CQ, cdw10: 1 }).status).toBe(Status.INVALID_QUEUE_DELETION); // SQ 1 still bound
    expect(r.card.errors()).toEqual({ err_nvme_queue_busy: 2 });
    let st = -1;
    runUntil(r, 1, (_t, s) => { st = s; });
    expect(st).toBe(0);
    // Only the admin queues, the read's buffer and I/O CQ 1 changed.
    expectOnlyChanged(r, before, [cqeRange(r, 0), [a.sqGpa, a.sqGpa + a.size * 64], [buf, buf + PAGE], cqeRange(r, 1)]);
    expect(sameBytes(diskBytes(r).subarray(0, PAGE), r.drv.guest.u8.subarray(buf, buf + PAGE))).toBe(true);
    // Idle now: deletion works.
    expect(r.drv.adminRaw({ opc: Opc.DELETE_SQ, cdw10: 1 }).status).toBe(0);
    expect(r.drv.adminRaw({ opc: Opc.DELETE_CQ, cdw10: 1 }).status).toBe(0);
  });

  it("controller reset with I/O at the backend: the late completion is dropped and counted, guest RAM untouched", async () => {
    const r = await rig(512, { hostDisk: true });
    const buf = r.drv.guest.alloc(PAGE);
    r.drv.submit(BlkOp.READ, 0, 8, buf, 1);
    r.drv.kick();
    r.card.fw.poll(256, r.card.now); // the read is with the host backend
    r.dev.write(R.NVME_REG_CC, 0); // reset: the queues are gone
    const before = snapshot(r);
    r.card.poll(); // host serves the read (into buf), the firmware reaps it next poll
    r.card.poll();
    expectOnlyChanged(r, before, [[buf, buf + PAGE]]); // no CQE into the old CQ
    expect(r.card.errors()).toEqual({ err_nvme_stale_completion: 1 });
    expect(r.card.inFlight()).toBe(0);
  });

  it("CQ full: fetching stops, counted once, and resumes on the CQ head doorbell", async () => {
    const r = await rig(4096, { ioQueues: 2 });
    freeQid2(r);
    const g = r.drv.guest;
    const cq = g.alloc(PAGE), sq = g.alloc(PAGE), buf = g.alloc(PAGE);
    expect(r.drv.adminRaw(createCq(2, 2, cq)).status).toBe(0); // room for one CQE
    expect(r.drv.adminRaw(createSq(2, 8, sq, 2)).status).toBe(0);
    for (let i = 0; i < 4; i++) g.u8.set(encodeSqe({ opc: Opc.READ, nsid: 1, cid: 100 + i, prp1: buf, cdw10: i }), sq + i * 64);
    r.dev.write(DB + 2 * 2 * 4, 4); // SQ 2 tail
    const cqe = (slot: number) => ({ cid: g.dv.getUint16(cq + slot * 16 + 12, true), p: g.dv.getUint16(cq + slot * 16 + 14, true) & 1, sqhd: g.dv.getUint16(cq + slot * 16 + 8, true) });
    for (let i = 0; i < 3; i++) r.card.poll();
    expect(cqe(0)).toEqual({ cid: 100, p: 1, sqhd: 1 });
    expect(cqe(1).cid).toBe(0); // the one free slot stays free
    expect(r.card.errors()).toEqual({ err_nvme_cq_full: 1 });
    expect(r.card.counters().nvme_io_commands).toBe(1);
    r.dev.write(DB + 2 * 2 * 4 + 4, 1); // CQ 2 head: entry 0 consumed
    r.card.poll();
    expect(cqe(1)).toEqual({ cid: 101, p: 1, sqhd: 2 });
    r.dev.write(DB + 2 * 2 * 4 + 4, 0);
    r.card.poll();
    expect(cqe(0)).toEqual({ cid: 102, p: 0, sqhd: 3 }); // wrapped: phase 0
    r.dev.write(DB + 2 * 2 * 4 + 4, 1);
    r.card.poll();
    expect(cqe(1)).toEqual({ cid: 103, p: 0, sqhd: 4 });
    expect(r.card.counters().nvme_io_commands).toBe(4);
    expect(r.card.errors()).toEqual({ err_nvme_cq_full: 3 }); // one per stall: after 100, 101 and 102
  });
});

describe("NVMe hostile guests: commands", () => {
  it("unknown opcodes, admin and I/O: Invalid Command Opcode", async () => {
    const r = await rig(4096);
    expect(hostileAdmin(r, { opc: 0x3e }).status).toBe(Status.INVALID_OPCODE);
    expect(hostileAdmin(r, { opc: 0x02, prp1: 2 ** 40 }).status).toBe(Status.INVALID_OPCODE); // Get Log Page: not offered
    expect(hostileIo(r, { opc: 0x7e })).toBe(Status.INVALID_OPCODE);
    expect(r.card.errors()).toEqual({ err_nvme_invalid_opcode: 3 });
  });

  it("bad NSID: Invalid Namespace or Format", async () => {
    const r = await rig(4096);
    const buf = r.drv.guest.alloc(PAGE);
    expect(hostileIo(r, { opc: Opc.READ, nsid: 2, prp1: buf })).toBe(Status.INVALID_NAMESPACE);
    expect(hostileIo(r, { opc: Opc.WRITE, nsid: 0, prp1: buf })).toBe(Status.INVALID_NAMESPACE);
    expect(hostileAdmin(r, { opc: Opc.IDENTIFY, nsid: 7, prp1: buf, cdw10: 0 }).status).toBe(Status.INVALID_NAMESPACE);
    expect(r.card.errors()).toEqual({ err_nvme_invalid_namespace: 3 });
  });

  it("PRP entries with offsets (PRP2 data pointer, list entries, chained list pointer): PRP Offset Invalid", async () => {
    const r = await rig(4096);
    const g = r.drv.guest;
    const buf = g.alloc(8 * PAGE), list = g.alloc(2 * PAGE);
    g.dv.setUint32(list, buf + PAGE, true);
    g.dv.setUint32(list + 8, buf + 2 * PAGE + 0x200, true); // offset in a list entry
    expect(hostileIo(r, { opc: Opc.WRITE, prp1: buf, prp2: list, cdw12: 2 })).toBe(Status.PRP_OFFSET_INVALID);
    expect(hostileIo(r, { opc: Opc.READ, prp1: buf, prp2: buf + PAGE + 8, cdw12: 1 })).toBe(Status.PRP_OFFSET_INVALID);
    expect(hostileIo(r, { opc: Opc.READ, prp1: buf + 2, cdw12: 0 })).toBe(Status.PRP_OFFSET_INVALID); // PRP1 not dword aligned
    // Chained list pointer with an offset: a list of one slot that chains to list+PAGE+8.
    g.dv.setUint32(list + PAGE - 8, list + PAGE + 8, true);
    expect(hostileIo(r, { opc: Opc.READ, prp1: buf, prp2: list + PAGE - 8, cdw12: 2 })).toBe(Status.PRP_OFFSET_INVALID);
    expect(r.card.errors()).toEqual({ err_nvme_prp_offset: 3, err_nvme_prp_list_bad: 1 });
  });

  it("PRPs outside the window: Data Transfer Error, the canary VM untouched", async () => {
    const r = await rig(4096);
    const g = r.drv.guest;
    const list = g.alloc(PAGE), buf = g.alloc(PAGE);
    expect(hostileIo(r, { opc: Opc.READ, prp1: GUEST_BYTES, cdw12: 0 })).toBe(Status.DATA_TRANSFER_ERROR);
    expect(hostileIo(r, { opc: Opc.READ, prp1: GUEST_BYTES - 512, prp2: GUEST_BYTES, cdw12: 0 })).toBe(Status.DATA_TRANSFER_ERROR);
    expect(hostileIo(r, { opc: Opc.READ, prp1: 2 ** 52, cdw12: 0 })).toBe(Status.DATA_TRANSFER_ERROR);
    g.dv.setUint32(list, buf, true);
    g.dv.setUint32(list + 8, GUEST_BYTES + PAGE, true); // second list entry outside
    expect(hostileIo(r, { opc: Opc.READ, prp1: buf, prp2: list, cdw12: 2 })).toBe(Status.DATA_TRANSFER_ERROR);
    expect(r.card.errors()).toEqual({ err_nvme_prp_out_of_window: 4 });
    expect(r.card.guests[1]!.u8.every((x) => x === CANARY)).toBe(true);
  });

  it("PRP list outside the window: Data Transfer Error", async () => {
    const r = await rig(4096);
    const buf = r.drv.guest.alloc(PAGE);
    expect(hostileIo(r, { opc: Opc.READ, prp1: buf, prp2: 2 ** 40, cdw12: 2 })).toBe(Status.DATA_TRANSFER_ERROR);
    expect(hostileIo(r, { opc: Opc.WRITE, prp1: buf, prp2: GUEST_BYTES, cdw12: 5 })).toBe(Status.DATA_TRANSFER_ERROR);
    expect(r.card.errors()).toEqual({ err_nvme_prp_list_bad: 2 });
  });

  it("transfer larger than MDTS: Invalid Field", async () => {
    const r = await rig(512);
    const buf = r.drv.guest.alloc(PAGE);
    const blocks = R.NVME_MAX_XFER / 512;
    expect(hostileIo(r, { opc: Opc.READ, prp1: buf, cdw12: blocks })).toBe(Status.INVALID_FIELD); // blocks + 1
    expect(hostileIo(r, { opc: Opc.WRITE, prp1: buf, cdw12: 0xffff })).toBe(Status.INVALID_FIELD);
    expect(r.card.errors()).toEqual({ err_nvme_transfer_too_large: 2 });
  });

  it("LBA out of range: LBA Out of Range, for reads, write zeroes and DSM", async () => {
    const r = await rig(4096);
    const g = r.drv.guest;
    const buf = g.alloc(PAGE), nsze = r.drv.capacityBlocks;
    expect(hostileIo(r, { opc: Opc.READ, prp1: buf, cdw10: nsze - 1, cdw12: 1 })).toBe(Status.LBA_OUT_OF_RANGE);
    expect(hostileIo(r, { opc: Opc.WRITE, prp1: buf, cdw10: 0, cdw11: 0x100 })).toBe(Status.LBA_OUT_OF_RANGE); // SLBA 2^40
    expect(hostileIo(r, { opc: Opc.WRITE_ZEROES, cdw10: nsze, cdw12: 0 })).toBe(Status.LBA_OUT_OF_RANGE);
    g.dv.setUint32(buf + 4, 8, true);
    g.dv.setUint32(buf + 8, nsze - 4, true);
    expect(hostileIo(r, { opc: Opc.DSM, prp1: buf, cdw10: 0, cdw11: 4 })).toBe(Status.LBA_OUT_OF_RANGE);
    expect(r.card.errors()).toEqual({ err_nvme_lba_out_of_range: 4 });
  });

  it("SGL data pointers (PSDT != 0): Invalid Field", async () => {
    const r = await rig(4096);
    const buf = r.drv.guest.alloc(PAGE);
    expect(hostileIo(r, { opc: Opc.READ, psdt: 1, prp1: buf })).toBe(Status.INVALID_FIELD);
    expect(hostileAdmin(r, { opc: Opc.IDENTIFY, psdt: 2, prp1: buf, cdw10: 1 }).status).toBe(Status.INVALID_FIELD);
    expect(r.card.errors()).toEqual({ err_nvme_sgl_unsupported: 2 });
  });

  it("fused commands: Invalid Field", async () => {
    const r = await rig(4096);
    const buf = r.drv.guest.alloc(PAGE);
    expect(hostileIo(r, { opc: 0x05, fuse: 1, prp1: buf })).toBe(Status.INVALID_FIELD); // Compare, first of a fused pair
    expect(hostileIo(r, { opc: Opc.WRITE, fuse: 2, prp1: buf })).toBe(Status.INVALID_FIELD);
    expect(r.card.errors()).toEqual({ err_nvme_fused_unsupported: 2 });
  });

  it("unsupported feature ids and Number of Queues 0xFFFF: Invalid Field", async () => {
    const r = await rig(4096);
    expect(hostileAdmin(r, { opc: Opc.SET_FEATURES, cdw10: 0x0b }).status).toBe(Status.INVALID_FIELD);
    expect(hostileAdmin(r, { opc: Opc.SET_FEATURES, cdw10: 0x07, cdw11: 0xffff }).status).toBe(Status.INVALID_FIELD);
    expect(hostileAdmin(r, { opc: Opc.GET_FEATURES, cdw10: 0x99 }).status).toBe(Status.INVALID_FIELD);
    expect(hostileAdmin(r, { opc: Opc.IDENTIFY, cdw10: 0x55, prp1: r.drv.guest.alloc(PAGE) }).status).toBe(Status.INVALID_FIELD);
    expect(r.card.errors()).toEqual({ err_nvme_invalid_field: 4 });
  });

  it("random SQEs never trap nor touch memory outside the VM's CQ (fuzz, fixed seed)", async () => {
    const r = await rig(512);
    let x = 12345;
    const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
    for (let i = 0; i < 300; i++) {
      const b = new Uint8Array(64);
      for (let k = 0; k < 64; k++) b[k] = rnd() & 0xff;
      b[0] = [0, 1, 2, 8, 9, 0x7e][rnd() % 6]!;
      if (b[0] === Opc.WRITE || b[0] === Opc.WRITE_ZEROES || b[0] === Opc.DSM) b[0] = Opc.READ; // writes would change the disk legitimately
      b[1] &= 0x3f; // plain commands mostly
      // Addresses: mostly inside the window, sometimes near or past its end.
      new DataView(b.buffer).setUint32(28, 0, true);
      new DataView(b.buffer).setUint32(24, rnd() % (GUEST_BYTES + 2 * PAGE), true);
      new DataView(b.buffer).setUint32(36, 0, true);
      new DataView(b.buffer).setUint32(32, rnd() % (GUEST_BYTES + 2 * PAGE), true);
      new DataView(b.buffer).setUint32(4, 1, true);
      r.drv.submitRaw(1, b, i);
      r.drv.kick();
      runUntil(r, 1);
    }
    expect(r.card.guests[1]!.u8.every((v) => v === CANARY)).toBe(true);
    expect(r.card.inFlight()).toBe(0);
  });
});
