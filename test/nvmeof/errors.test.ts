// What goes wrong between the DPU and the target ends as an error completion of the VM's
// request or a counted drop, never a trap, never a lost or doubly completed request: error
// statuses, stale / duplicate / malformed response capsules, a QP that breaks with commands in
// flight, and requests whose data a single keyed SGL cannot describe.
import { describe, it, expect } from "vitest";
import { world, bringUp, vio, settle, pattern, BlkOp, F, S, type World } from "./target.js";
import { raw } from "../virtio/setup.js";
import * as V from "../../assembly/virtio/layout.js";
import * as M from "../../assembly/memmap.js";

const BLK_S_IOERR = 1, BLK_S_UNSUPP = 2;

/** A response capsule: DW0, SQID, CID, status. */
function cqe(sqid: number, cid: number, status = 0, len = 16): Uint8Array {
  const b = new Uint8Array(len), dv = new DataView(b.buffer);
  if (len >= 16) {
    dv.setUint32(S.CQE_DW2, (sqid << 16) >>> 0, true);
    dv.setUint32(S.CQE_DW3, (cid | (status << S.CQE_STATUS_SHIFT)) >>> 0, true);
  }
  return b;
}

async function up(o: Parameters<typeof world>[0] = {}, b: Parameters<typeof bringUp>[1] = {}): Promise<World> {
  const w = await world(o);
  bringUp(w, b);
  return w;
}

const ioCapsules = (w: World) => w.target.capsules.filter((c) => c.qid === 1 && c.opc !== F.OPC_FABRICS);

describe("NVMe-oF host: errors end as error completions or counted drops", () => {
  it("an error status from the target completes the VM's request with an error (virtio IOERR, NVMe status)", async () => {
    const w = await up();
    const gpa = w.host.guests[0]!.alloc(4096);
    w.target.hook = (c) => (c.opc === S.IO_READ ? { status: S.S_INTERNAL_ERROR } : undefined);
    expect(vio(w, BlkOp.READ, 0, 8, gpa)).toBe(BLK_S_IOERR);
    expect(w.host.errors()).toEqual({ err_nvmf_status: 1 });
    w.target.hook = undefined;
    expect(vio(w, BlkOp.READ, 0, 8, gpa)).toBe(0); // the queue carries on

    const n = await up({ front: "nvme" });
    const b = n.host.guests[0]!.alloc(4096);
    n.target.hook = (c) => (c.opc === S.IO_WRITE ? { status: S.S_LBA_OUT_OF_RANGE } : undefined);
    expect(vio(n, BlkOp.WRITE, 0, 1, b)).toBe(S.S_LBA_OUT_OF_RANGE); // LBA_RANGE reaches the NVMe guest as such
    n.target.hook = () => ({ status: S.S_INVALID_FIELD });
    expect(vio(n, BlkOp.READ, 0, 8, b)).toBe(S.S_UNRECOVERED_READ); // any other status: an I/O error
    expect(n.host.errors()).toEqual({ err_nvmf_status: 2 });
  });

  it("stale, duplicate and malformed response capsules are counted drops; the requests in flight are untouched", async () => {
    const w = await up();
    const g = w.host.guests[0]!, buf = g.alloc(4096);
    w.target.disk.set(pattern(4096, 1), 0);
    expect(vio(w, BlkOp.READ, 0, 8, buf)).toBe(0);
    const done = ioCapsules(w)[0]!.cid;
    w.target.hold = true; // the next read stays in flight on the same slot, with a new CID
    expect(w.drv.submit(BlkOp.READ, 0, 8, buf, 1)).toBe(true);
    w.drv.kick();
    for (let i = 0; i < 50; i++) w.step();
    const live = ioCapsules(w)[1]!.cid;
    expect(live & F.CID_SLOT_MASK).toBe(done & F.CID_SLOT_MASK);
    expect(live).not.toBe(done);
    w.target.sendRaw(1, cqe(1, done)); // duplicate of the answered command
    w.target.sendRaw(1, cqe(1, 0x3f)); // a CID never issued
    w.target.sendRaw(1, cqe(1, live, 0, 8)); // too short
    w.target.sendRaw(1, cqe(1, live, 0, 64)); // too long
    w.target.sendRaw(1, cqe(0, live)); // another queue's SQID
    let got = 0;
    for (let i = 0; i < 200; i++) { w.step(); got += w.drv.reap(() => {}); }
    expect(got).toBe(0); // none of them completed the read in flight
    expect(w.host.errors()).toEqual({ err_nvmf_stale_response: 2, err_nvmf_bad_response: 3 });
    g.u8.fill(0, buf, buf + 4096);
    w.target.release();
    expect(settle(w, 1)).toEqual([0]);
    expect(Buffer.compare(g.u8.subarray(buf, buf + 4096), pattern(4096, 1))).toBe(0);
    expect(w.host.inFlight()).toBe(0);
    w.target.sendRaw(1, cqe(1, live)); // the same answer again, now that it is done
    for (let i = 0; i < 50; i++) w.step();
    expect(w.host.errors().err_nvmf_stale_response).toBe(3);
    expect(w.drv.reap(() => {})).toBe(0);
  });

  it("a QP that breaks with commands in flight fails them and every later request (IOERR, err_nvmf_queue_down)", async () => {
    const w = await up();
    const buf = w.host.guests[0]!.alloc(8192);
    w.target.hold = true;
    for (let i = 0; i < 3; i++) expect(w.drv.submit(BlkOp.READ, i, 1, buf + i * 512, i)).toBe(true);
    w.drv.kick();
    for (let i = 0; i < 50; i++) w.step();
    expect(ioCapsules(w).length).toBe(3);
    const qpn = w.host.dv.getUint32(w.host.fw.rdmaCmConnAddr(1) + 16, true); // CN_LOCAL_QPN of the I/O queue's connection
    expect(w.host.fw.rdmaQpModify(qpn, 4 /* ERR */, 0, 0, 0)).toBe(0);
    expect(settle(w, 3)).toEqual([BLK_S_IOERR, BLK_S_IOERR, BLK_S_IOERR]);
    expect(w.host.fw.nvmfQueueState(1)).toBe(F.NvmfQueueState.FAILED);
    expect(vio(w, BlkOp.WRITE, 0, 1, buf)).toBe(BLK_S_IOERR);
    // One transport failure (the flushed work request that revealed it), then each request by its reason.
    expect(w.host.errors()).toEqual({ err_nvmf_send_failed: 1, err_nvmf_queue_down: 4 });
    expect(w.host.inFlight()).toBe(0);
    w.target.release(); // answers to a dead queue change nothing
    for (let i = 0; i < 100; i++) w.step();
    expect(w.drv.reap(() => {})).toBe(0);
  });

  it("data in one run of guest RAM (adjacent descriptors) is one keyed SGL; scattered data is refused (UNSUPP, counted)", async () => {
    const w = await up({}, { mtu: 4096 });
    const g = w.host.guests[0]!, rig = { card: w.host, dev: undefined as never, drv: w.virtio!, guest: g };
    const a = g.alloc(8192);
    w.target.disk.set(pattern(8192, 4), 512 * 64);
    const r1 = raw(rig, { type: V.BLK_T_IN, sector: 64n, data: [{ addr: a, len: 4096, write: true }, { addr: a + 4096, len: 4096, write: true }] });
    w.virtio!.kick();
    settle(w, 1);
    expect(g.u8[r1.status]).toBe(0);
    const c = ioCapsules(w).at(-1)!;
    expect([c.sglAddr, c.sglLen, c.sglId]).toEqual([BigInt(g.base + a), 8192, F.SGL_ID_KEYED]);
    expect(Buffer.compare(g.u8.subarray(a, a + 8192), pattern(8192, 4))).toBe(0);
    const b = g.alloc(8192);
    const sent = w.target.capsules.length;
    const r2 = raw(rig, { type: V.BLK_T_IN, sector: 0n, data: [{ addr: a, len: 4096, write: true }, { addr: b, len: 4096, write: true }] });
    w.virtio!.kick();
    settle(w, 1);
    expect(g.u8[r2.status]).toBe(BLK_S_UNSUPP);
    expect(w.target.capsules.length).toBe(sent); // nothing went out
    // A scattered write small enough for the capsule is gathered into it instead.
    g.u8.set(pattern(512, 8), a);
    g.u8.set(pattern(512, 9), b);
    const r3 = raw(rig, { type: V.BLK_T_OUT, sector: 8n, data: [{ addr: a, len: 512, write: false }, { addr: b, len: 512, write: false }] });
    w.virtio!.kick();
    settle(w, 1);
    expect(g.u8[r3.status]).toBe(0);
    expect(Buffer.compare(w.target.disk.subarray(8 * 512, 10 * 512), Buffer.concat([pattern(512, 8), pattern(512, 9)]))).toBe(0);
    expect(w.host.errors()).toEqual({ err_nvmf_too_many_segs: 1 });
  });

  it("a remote disk without a live queue fails its requests (IOERR, err_nvmf_queue_down) rather than holding them", async () => {
    const w = await world();
    const buf = w.host.guests[0]!.alloc(4096);
    expect(vio(w, BlkOp.READ, 0, 8, buf)).toBe(BLK_S_IOERR);
    expect(w.host.errors()).toEqual({ err_nvmf_queue_down: 1 });
  });

  it("tearing a queue down fails what it holds, gives its regions back, and stops the firmware driving the fabric", async () => {
    const w = await up();
    const buf = w.host.guests[0]!.alloc(4096);
    w.target.hold = true;
    expect(w.drv.submit(BlkOp.READ, 0, 8, buf, 1)).toBe(true);
    w.drv.kick();
    for (let i = 0; i < 50; i++) w.step();
    const mrs = () => Array.from({ length: M.MAX_MRS }, (_, i) => w.host.dv.getUint32(M.MR_TABLE_BASE + i * M.MR_ENTRY_SIZE, true)).filter((v) => v !== 0).length;
    const before = mrs();
    w.host.fw.nvmfQueueTeardown(1);
    w.host.fw.nvmfQueueTeardown(0);
    expect(mrs()).toBe(before - 4); // capsule and response regions of both queues
    expect(settle(w, 1)).toEqual([BLK_S_IOERR]);
    expect([w.host.fw.nvmfQueueState(0), w.host.fw.nvmfQueueState(1)]).toEqual([F.NvmfQueueState.IDLE, F.NvmfQueueState.IDLE]);
    expect(w.host.errors()).toEqual({ err_nvmf_queue_down: 1 });
    const rx = w.host.counters().rdma_rx_frames!;
    w.target.release(); // its answer arrives, but no host poll takes frames off the ring any more
    for (let i = 0; i < 100; i++) { w.fabric.step((w.now += 1000)); w.host.now = w.now; w.host.poll(); w.tcard.fw.rdmaPoll(1024, w.now); w.target.serve(); }
    expect(w.host.counters().rdma_rx_frames).toBe(rx);
    expect(w.drv.reap(() => {})).toBe(0);
  });

  it("hostile responses (seeded random lengths, queues, CIDs, statuses): each is counted once, as a drop or as the answer it names", async () => {
    const w = await up();
    const buf = w.host.guests[0]!.alloc(8 * 4096);
    w.target.hold = true;
    for (let i = 0; i < 8; i++) expect(w.drv.submit(BlkOp.READ, i * 8, 8, buf + i * 4096, i)).toBe(true);
    w.drv.kick();
    for (let i = 0; i < 50; i++) w.step();
    const live = ioCapsules(w).map((c) => c.cid);
    expect(live.length).toBe(8);
    let x = 12345;
    const rnd = (n: number) => { x = (x * 1103515245 + 12345) >>> 0; return (x >>> 8) % n; };
    const before = w.host.counters();
    const N = 300;
    let completed = 0;
    for (let i = 0; i < N; i++) {
      const len = [0, 4, 15, 16, 16, 16, 17, 64][rnd(8)]!;
      const cid = rnd(4) === 0 ? live[rnd(8)]! : rnd(0x10000); // a quarter name a command in flight
      const b = cqe([0, 1, 1, 7][rnd(4)]!, cid, rnd(0x8000), len);
      if (len >= 16) b.set([rnd(256), rnd(256), rnd(256), rnd(256)], 0);
      w.target.sendRaw(1, b);
      if (i % 10 === 9) for (let k = 0; k < 20; k++) { w.step(); completed += w.drv.reap(() => {}); }
    }
    w.target.release();
    for (let k = 0; k < 500; k++) { w.step(); completed += w.drv.reap(() => {}); }
    expect(completed).toBe(8); // every request once: by a hostile answer that named it, or by its own
    const after = w.host.counters();
    const d = (k: string) => after[k]! - before[k]!;
    expect(d("nvmf_responses") + d("err_nvmf_stale_response") + d("err_nvmf_bad_response")).toBe(N + 8);
    expect(d("nvmf_responses")).toBe(8);
    expect(w.host.inFlight()).toBe(0);
    expect(w.host.fw.nvmfQueueState(1)).toBe(F.NvmfQueueState.LIVE);
    expect(vio(w, BlkOp.READ, 0, 8, buf)).toBe(0); // and the queue still works
  });
});
