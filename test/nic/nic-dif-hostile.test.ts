// Storage-side NIC: DIF checks on data WQEs (NVMe end-to-end protection, 8-byte PI per block)
// and what a failure does to the command's response; hostile WQEs and ring indexes from a
// controller (refused, counted, evented, never a trap or a packet from outside its window);
// the whole path under 5% loss, reorder and duplication.
import { describe, it, expect } from "vitest";
import {
  rig, rounds, writeWqes, dataWqes, writeCqe, events, cb, setCb, stageBase, counters, ops, postRecv, poll, ram, fill, protect, N, M,
  R, VA0, type Rig, type Cqe, type Wqe,
} from "./nic-setup.js";
import { pattern } from "../rdma/setup.js";
import { Counter } from "../../assembly/counters.js";

const BLOCK = 512;
const STATUS_SHIFT = 17; // NVMe CQE DW3 status [31:17]

function hostRecvs(r: Rig, q: number, n: number, off = 0xf0000): void {
  expect(postRecv(r.hq[q]!, Array.from({ length: n }, (_, i) => ({ wrid: 1000 + i, off: off + i * 64, len: 64 })))).toBe(n);
}
function hostRecvDone(r: Rig, q: number, n: number, max = 20_000): Cqe[] {
  const all: Cqe[] = [];
  rounds(r, () => { all.push(...poll(r.hq[q]!)); return all.filter((c) => c.opcode === R.WcOp.RECV).length >= n; }, max);
  return all.filter((c) => c.opcode === R.WcOp.RECV);
}

/** One protected read of `blocks` blocks for command cid: data + PI into staging, the data WQEs and the RESPONSE. */
function protectedRead(r: Rig, k: number, q: number, cid: number, blocks: number, ref: number, corrupt?: (data: Uint8Array, pi: Uint8Array) => void) {
  const data = pattern(blocks * BLOCK, cid), pi = protect(data, BLOCK, ref);
  corrupt?.(data, pi);
  const s = stageBase(k);
  r.nic.u8.set(data, s + 0x10000);
  r.nic.u8.set(pi, s + 0x80000);
  writeCqe(r.nic, k, 0x100, cid);
  const per = r.mtu / BLOCK;
  const ws = dataWqes(r.tqpn[q]!, r.mtu, 0x10000, data.length, VA0 + 0x20000n, r.hq[q]!.key, { flags: N.NWF_DIF, block: BLOCK, cid })
    .map((w, i) => ({ ...w, piOff: 0x80000 + i * per * 8, reftag: ref + i * per }));
  writeWqes(r.nic, k, [...ws, { type: N.NicWqeType.RESPONSE, qpn: r.tqpn[q]!, stageOff: 0x100, len: 16, cid, tag: 0xcafe }]);
  r.nic.fw.nicDoorbell(k);
  return data;
}

/** The status field of the response the host received at its receive buffer 0. */
const hostStatus = (r: Rig, q: number) => r.hq[q]!.c.dv.getUint32(r.hq[q]!.ram + 0xf0000 + 12, true) >>> STATUS_SHIFT;
const hostCid = (r: Rig, q: number) => r.hq[q]!.c.dv.getUint32(r.hq[q]!.ram + 0xf0000 + 12, true) & 0xffff;

describe("storage-side NIC: DIF", () => {
  it("good PI: every block checked, the response goes out as the controller wrote it", async () => {
    const r = await rig({ queues: 1, ctrls: 1, flags: N.NGF_DIF_CHECK | N.NGF_TAIL_FAST_PATH });
    hostRecvs(r, 0, 1);
    const data = protectedRead(r, 0, 0, 0x31, 8, 1000); // 4 KiB: 4 packets of 2 blocks at MTU 1024
    hostRecvDone(r, 0, 1);
    expect(ram(r.hq[0]!, 0x20000, data.length)).toEqual(data);
    expect([hostStatus(r, 0), hostCid(r, 0)]).toEqual([0, 0x31]);
    const c = counters(r.nic);
    expect([c.nic_dif_checked, c.err_nic_dif_guard, c.err_nic_dif_reftag]).toEqual([4, 0, 0]);
    expect(events(r.nic, 0)).toEqual([]);
  });

  for (const [what, corrupt, counter, status] of [
    ["a flipped data bit (guard)", (d: Uint8Array) => { d[3 * BLOCK + 17]! ^= 0x10; }, "err_nic_dif_guard", 0x4282],
    ["a wrong reference tag", (_: Uint8Array, pi: Uint8Array) => { pi[5 * 8 + 7]! ^= 1; }, "err_nic_dif_reftag", 0x4284],
  ] as const) {
    it(`${what}: the data still arrives whole, the response carries SCT 2h / DNR (${status.toString(16)}h), counted and evented`, async () => {
      const r = await rig({ queues: 1, ctrls: 1, flags: N.NGF_DIF_CHECK });
      hostRecvs(r, 0, 2);
      const data = protectedRead(r, 0, 0, 0x77, 8, 5000, corrupt);
      hostRecvDone(r, 0, 1);
      expect(ram(r.hq[0]!, 0x20000, data.length)).toEqual(data); // the RC message stayed whole
      expect([hostStatus(r, 0), hostCid(r, 0)]).toEqual([status, 0x77]);
      expect((hostStatus(r, 0) >> 8) & 7).toBe(2); // SCT: media and data integrity errors
      expect(hostStatus(r, 0) >> 14).toBe(1); // DNR
      expect(counters(r.nic)[counter]).toBe(1);
      expect(events(r.nic, 0)).toEqual([{ tag: 0xcafe, kind: "DIF_ERROR", status, qpn: r.tqpn[0] }]);
      expect(cb(r.nic, 0, N.CB_DIF_FAILED)).toBe(0); // carried out with its response
      // The next command on the queue is not affected.
      writeCqe(r.nic, 0, 0x200, 0x78);
      writeWqes(r.nic, 0, [{ type: N.NicWqeType.RESPONSE, qpn: r.tqpn[0]!, stageOff: 0x200, len: 16, cid: 0x78 }]);
      r.nic.fw.nicDoorbell(0);
      hostRecvDone(r, 0, 1);
      expect(r.hq[0]!.c.dv.getUint32(r.hq[0]!.ram + 0xf0000 + 64 + 12, true)).toBe(0x78 | (1 << 16));
    });
  }

  it("two packets of one command failing (guard, then reference tag): one response, with the first failure; nothing left pending", async () => {
    const r = await rig({ queues: 1, ctrls: 1, flags: N.NGF_DIF_CHECK | N.NGF_TAIL_FAST_PATH });
    hostRecvs(r, 0, 1);
    protectedRead(r, 0, 0, 0x12, 8, 77, (d, pi) => { d[1]! ^= 0x80; pi[6 * 8 + 4]! ^= 0x01; }); // packet 0 guard, packet 3 reftag
    hostRecvDone(r, 0, 1);
    expect(hostStatus(r, 0)).toBe(0x4282);
    const c = counters(r.nic);
    expect([c.err_nic_dif_guard, c.err_nic_dif_reftag]).toEqual([1, 1]);
    expect(events(r.nic, 0).map((e) => [e.kind, e.status])).toEqual([["DIF_ERROR", 0x4282]]);
    expect(cb(r.nic, 0, N.CB_DIF_FAILED)).toBe(0);
  });

  it("a QP rebound to another controller between the data and the response (failover): the response still carries the failure", async () => {
    const r = await rig({ queues: 1, ctrls: 2, bind: [0], flags: N.NGF_DIF_CHECK });
    hostRecvs(r, 0, 1);
    const q = r.tqpn[0]!;
    const data = pattern(2 * BLOCK, 4), pi = protect(data, BLOCK, 10);
    pi[0]! ^= 0xff; // the first block's guard
    r.nic.u8.set(data, stageBase(0));
    r.nic.u8.set(pi, stageBase(0) + 0x8000);
    writeWqes(r.nic, 0, [{ type: N.NicWqeType.SINGLE, qpn: q, len: data.length, total: data.length, flags: N.NWF_DIF, block: BLOCK, piOff: 0x8000,
      reftag: 10, cid: 0x99, raddr: VA0 + 0x20000n, rkey: r.hq[0]!.key }]);
    r.nic.fw.nicDoorbell(0);
    rounds(r, () => r.sent.length === 1, 100);
    expect(r.nic.fw.nicBindQp(q, 1)).toBe(0); // controller 0 is gone; controller 1 answers the command
    writeCqe(r.nic, 1, 0x100, 0x99);
    writeWqes(r.nic, 1, [{ type: N.NicWqeType.RESPONSE, qpn: q, stageOff: 0x100, len: 16, cid: 0x99, tag: 5 }]);
    r.nic.fw.nicDoorbell(1);
    hostRecvDone(r, 0, 1);
    expect([hostStatus(r, 0), hostCid(r, 0)]).toEqual([0x4282, 0x99]);
    expect(events(r.nic, 1)).toEqual([{ tag: 5, kind: "DIF_ERROR", status: 0x4282, qpn: q }]);
    expect([cb(r.nic, 0, N.CB_DIF_FAILED), cb(r.nic, 1, N.CB_DIF_FAILED)]).toEqual([0, 0]);
  });

  it("4 KiB blocks at MTU 1024 span packets: checked where each block ends, per QP, with two QPs' packets interleaved; one bad byte fails its command only", async () => {
    const BIG = 4096;
    const r = await rig({ queues: 2, ctrls: 2, flags: N.NGF_DIF_CHECK }); // no fast path: the two messages interleave packet by packet
    const datas = [0, 1].map((q) => pattern(3 * BIG, 40 + q));
    for (let q = 0; q < 2; q++) {
      hostRecvs(r, q, 1, 0xf0000 + q * 0x800);
      const data = datas[q]!, pi = protect(data, BIG, 100 * q);
      const bad = q === 1 ? data.slice() : data;
      if (q === 1) bad[BIG + 2 * r.mtu + 5]! ^= 4; // block 1, in its third packet
      r.nic.u8.set(bad, stageBase(q));
      r.nic.u8.set(pi, stageBase(q) + 0x40000);
      writeCqe(r.nic, q, 0x80000, 7);
      const ws = dataWqes(r.tqpn[q]!, r.mtu, 0, data.length, VA0 + 0x20000n + BigInt(q * 0x10000), r.hq[q]!.key, { flags: N.NWF_DIF, block: BIG, cid: 7 })
        .map((w, i) => { const b = Math.floor((i * r.mtu) / BIG); return { ...w, piOff: 0x40000 + b * 8, reftag: 100 * q + b }; });
      writeWqes(r.nic, q, [...ws, { type: N.NicWqeType.RESPONSE, qpn: r.tqpn[q]!, stageOff: 0x80000, len: 16, cid: 7 }]);
    }
    r.nic.fw.nicDoorbell(0);
    r.nic.fw.nicDoorbell(1);
    for (let q = 0; q < 2; q++) hostRecvDone(r, q, 1);
    expect(r.sent.slice(0, 4).map((f) => f.dqp)).toEqual([r.hq[0]!.qpn, r.hq[1]!.qpn, r.hq[0]!.qpn, r.hq[1]!.qpn]); // interleaved
    const status = (q: number) => r.host.dv.getUint32(r.hq[q]!.ram + 0xf0000 + q * 0x800 + 12, true) >>> STATUS_SHIFT;
    expect([status(0), status(1)]).toEqual([0, 0x4282]);
    const c = counters(r.nic);
    expect([c.nic_dif_checked, c.err_nic_dif_guard, c.err_nic_dif_reftag]).toEqual([24, 1, 0]);
    expect(ram(r.hq[0]!, 0x20000, datas[0]!.length)).toEqual(datas[0]);
  });

  it("a block that would not end with its message is refused at the TAIL (the check could not complete)", async () => {
    const r = await rig({ queues: 1, ctrls: 1, flags: N.NGF_DIF_CHECK });
    const q = r.tqpn[0]!;
    const ws = dataWqes(q, r.mtu, 0, 2 * r.mtu, VA0, r.hq[0]!.key, { flags: N.NWF_DIF, block: 4096, tag: 1 });
    writeWqes(r.nic, 0, ws);
    r.nic.fw.nicDoorbell(0);
    rounds(r, () => cb(r.nic, 0, N.CB_EVT_PROD) > 0, 100);
    expect(events(r.nic, 0).map((e) => [e.kind, e.status])).toEqual([["ERROR", Counter.err_nic_bad_wqe]]);
    expect(ops(r.sent)).toEqual(["RC_WRITE_FIRST"]);
  });

  it("with NGF_DIF_CHECK off the PI is not looked at (the controller asked, the switch is off)", async () => {
    const r = await rig({ queues: 1, ctrls: 1, flags: 0 });
    hostRecvs(r, 0, 1);
    protectedRead(r, 0, 0, 5, 2, 0, (d) => { d[0]! ^= 1; });
    hostRecvDone(r, 0, 1);
    expect(hostStatus(r, 0)).toBe(0);
    expect(counters(r.nic).nic_dif_checked).toBe(0);
  });
});

describe("storage-side NIC: hostile WQEs and indexes", () => {
  it("each bad WQE is refused with its reason, counted and evented; the good WQEs around them still go", async () => {
    const r = await rig({ queues: 2, ctrls: 2, bind: [0, 1], flags: N.NGF_DIF_CHECK });
    const q0 = r.tqpn[0]!, q1 = r.tqpn[1]!, key = r.hq[0]!.key, mtu = r.mtu;
    const good = (tag: number): Wqe => ({ type: N.NicWqeType.SINGLE, qpn: q0, stageOff: 0, len: 64, total: 64, raddr: VA0 + 0x30000n + BigInt(tag * 64), rkey: key, tag });
    const bad: [Wqe, string][] = [
      [{ type: 9, qpn: q0, len: 16, tag: 101 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.SINGLE, qpn: q1, len: 64, total: 64, tag: 102 }, "err_nic_wqe_qp"], // q1 is controller 1's
      [{ type: N.NicWqeType.SINGLE, qpn: 5000, len: 64, total: 64, tag: 103 }, "err_nic_wqe_qp"],
      [{ type: N.NicWqeType.SINGLE, qpn: 3, len: 64, total: 64, tag: 104 }, "err_nic_wqe_qp"], // not an RC engine QP
      [{ type: N.NicWqeType.SINGLE, qpn: q0, stageOff: M.NIC_STAGE_SIZE - 32, len: 64, total: 64, tag: 105 }, "err_nic_wqe_bounds"],
      [{ type: N.NicWqeType.SINGLE, qpn: q0, stageOff: 0xffffffc0, len: 128, total: 128, tag: 106 }, "err_nic_wqe_bounds"], // wraps 32 bits
      [{ type: N.NicWqeType.READ, qpn: q0, stageOff: M.NIC_STAGE_SIZE - 4096, total: 8192, raddr: VA0, rkey: key, tag: 107 }, "err_nic_wqe_bounds"],
      [{ type: N.NicWqeType.INTERMEDIATE, qpn: q0, len: mtu - 8, tag: 108 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.INITIAL, qpn: q0, len: mtu, total: mtu, tag: 109 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.TAIL, qpn: q0, len: mtu + 4, tag: 110 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.SINGLE, qpn: q0, len: 64, total: 65, tag: 111 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.RESPONSE, qpn: q0, len: 64, tag: 112 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.READ, qpn: q0, total: 0, tag: 113 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.SINGLE, qpn: q0, len: 600, total: 600, flags: N.NWF_DIF, block: 512, tag: 114 }, "err_nic_bad_wqe"], // not whole blocks
      [{ type: N.NicWqeType.SINGLE, qpn: q0, len: 512, total: 512, flags: N.NWF_DIF, block: 0, tag: 115 }, "err_nic_bad_wqe"],
      [{ type: N.NicWqeType.SINGLE, qpn: q0, len: 512, total: 512, flags: N.NWF_DIF, block: 512, piOff: M.NIC_STAGE_SIZE - 4, tag: 116 }, "err_nic_wqe_bounds"],
    ];
    writeWqes(r.nic, 0, [good(1), ...bad.map(([w]) => w), good(2)]);
    r.nic.fw.nicDoorbell(0);
    rounds(r, () => cb(r.nic, 0, N.CB_EVT_PROD) >= bad.length, 100);
    const ev = events(r.nic, 0);
    expect(ev.map((e) => [e.tag, e.kind])).toEqual(bad.map(([w]) => [w.tag, "ERROR"]));
    const byName = (n: string) => bad.filter(([, c]) => c === n).length;
    const c = counters(r.nic);
    for (const n of ["err_nic_bad_wqe", "err_nic_wqe_qp", "err_nic_wqe_bounds"]) expect(c[n]).toBe(byName(n));
    expect(ev.map((e) => e.status)).toEqual(bad.map(([, n]) => Counter[n as keyof typeof Counter]));
    expect(ops(r.sent)).toEqual(["RC_WRITE_ONLY", "RC_WRITE_ONLY"]);
    expect(cb(r.nic, 0, N.CB_SQ_HEAD)).toBe(bad.length + 2);
    expect(r.nic.fw.rdmaQpState(q0)).toBe(3); // the QP is still in RTS
  });

  it("a refused data WQE fails its command: the response the controller queued behind it carries Data Transfer Error, not success", async () => {
    const r = await rig({ queues: 1, ctrls: 1, flags: N.NGF_TAIL_FAST_PATH });
    hostRecvs(r, 0, 2);
    const q = r.tqpn[0]!, key = r.hq[0]!.key;
    writeCqe(r.nic, 0, 0x100, 0x41);
    writeCqe(r.nic, 0, 0x200, 0x42);
    writeWqes(r.nic, 0, [
      { type: N.NicWqeType.SINGLE, qpn: q, stageOff: M.NIC_STAGE_SIZE - 32, len: 64, total: 64, raddr: VA0 + 0x30000n, rkey: key, cid: 0x41, tag: 1 }, // out of the window
      { type: N.NicWqeType.RESPONSE, qpn: q, stageOff: 0x100, len: 16, cid: 0x41, tag: 2 },
      { type: N.NicWqeType.SINGLE, qpn: q, stageOff: 0, len: 64, total: 64, raddr: VA0 + 0x30040n, rkey: key, cid: 0x42, tag: 3 },
      { type: N.NicWqeType.RESPONSE, qpn: q, stageOff: 0x200, len: 16, cid: 0x42, tag: 4 },
    ]);
    r.nic.fw.nicDoorbell(0);
    hostRecvDone(r, 0, 2);
    const dw3 = (i: number) => r.hq[0]!.c.dv.getUint32(r.hq[0]!.ram + 0xf0000 + i * 64 + 12, true);
    expect([dw3(0) & 0xffff, dw3(0) >>> STATUS_SHIFT]).toEqual([0x41, 0x4004]); // SCT 0, SC 04h (Data Transfer Error), DNR
    expect([dw3(1) & 0xffff, dw3(1) >>> STATUS_SHIFT]).toEqual([0x42, 0]); // the next command is not affected
    expect(events(r.nic, 0).map((e) => [e.tag, e.kind])).toEqual([[1, "ERROR"]]);
    expect(cb(r.nic, 0, N.CB_DIF_FAILED)).toBe(0);
  });

  it("WQEs out of a WRITE message's sequence are refused, so the QP stays up and the message stays whole", async () => {
    const r = await rig({ queues: 1, ctrls: 1 });
    const q = r.tqpn[0]!, key = r.hq[0]!.key, mtu = r.mtu;
    const data = pattern(2 * mtu, 8);
    r.nic.u8.set(data, stageBase(0));
    writeCqe(r.nic, 0, 0x8000, 1);
    const [first, last] = dataWqes(q, mtu, 0, 2 * mtu, VA0 + 0x10000n, key);
    writeWqes(r.nic, 0, [
      { type: N.NicWqeType.INTERMEDIATE, qpn: q, len: mtu, tag: 201 }, // no message open
      first!,
      { type: N.NicWqeType.RESPONSE, qpn: q, stageOff: 0x8000, len: 16, tag: 202 }, // inside the open message
      { ...first!, tag: 203 }, // a second INITIAL
      { type: N.NicWqeType.READ, qpn: q, total: 64, raddr: VA0, rkey: key, tag: 204 },
      last!,
      { type: N.NicWqeType.TAIL, qpn: q, len: 10, tag: 205 }, // closed again
    ]);
    r.nic.fw.nicDoorbell(0);
    rounds(r, () => cb(r.nic, 0, N.CB_EVT_PROD) >= 5 && r.sent.length >= 2, 500);
    expect(events(r.nic, 0).map((e) => [e.tag, e.kind, e.status])).toEqual([201, 202, 203, 204, 205].map((t) => [t, "ERROR", Counter.err_nic_bad_wqe]));
    expect(ops(r.sent)).toEqual(["RC_WRITE_FIRST", "RC_WRITE_LAST"]);
    rounds(r, () => ram(r.hq[0]!, 0x10000, data.length).every((x, i) => x === data[i]), 500);
    expect(ram(r.hq[0]!, 0x10000, data.length)).toEqual(data);
    expect(r.nic.fw.rdmaQpState(q)).toBe(3);
    expect(r.host.fw.rdmaQpState(r.hq[0]!.qpn)).toBe(3);
  });

  it("a controller that writes the NIC's words of its block (CB_ON, CB_STAGE_KEY) gains nothing: the NIC keeps its own copies", async () => {
    const r = await rig({ queues: 1, ctrls: 2, bind: [0] });
    const q = r.tqpn[0]!;
    setCb(r.nic, 0, N.CB_STAGE_KEY, cb(r.nic, 1, N.CB_STAGE_KEY)); // controller 1's window key
    setCb(r.nic, 3, N.CB_ON, 1); // a controller nobody enabled
    writeWqes(r.nic, 3, [{ type: N.NicWqeType.SINGLE, qpn: q, len: 64, total: 64, raddr: VA0, rkey: r.hq[0]!.key }]);
    r.nic.fw.nicDoorbell(3);
    const data = pattern(64, 3);
    r.nic.u8.set(data, stageBase(0) + 0x40);
    writeWqes(r.nic, 0, [{ type: N.NicWqeType.SINGLE, qpn: q, stageOff: 0x40, len: 64, total: 64, raddr: VA0 + 0x100n, rkey: r.hq[0]!.key }]);
    r.nic.fw.nicDoorbell(0);
    rounds(r, () => r.sent.length === 1 && ram(r.hq[0]!, 0x100, 64).every((x, i) => x === data[i]), 200);
    expect(ram(r.hq[0]!, 0x100, 64)).toEqual(data); // sent from controller 0's own window
    expect(cb(r.nic, 3, N.CB_SQ_HEAD)).toBe(0); // controller 3's queue is not fetched
    expect(ops(r.sent)).toEqual(["RC_WRITE_ONLY"]);
    expect(r.nic.fw.rdmaQpState(q)).toBe(3);
  });

  it("random WQE bytes and bogus ring indexes never trap; every WQE is accounted for", async () => {
    const r = await rig({ queues: 2, ctrls: 2, flags: N.NGF_DIF_CHECK | N.NGF_TAIL_FAST_PATH });
    let x = 12345;
    const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
    const sq = (k: number) => M.NIC_CTRLS + k * M.NIC_CTRL_SIZE + N.NC_SQ;
    let written = 0;
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 2; k++) {
        let tail = cb(r.nic, k, N.CB_SQ_TAIL);
        for (let i = 0; i < 16; i++, tail++) {
          const e = sq(k) + (tail % M.NIC_SQ_DEPTH) * N.NW_SIZE;
          for (let b = 0; b < N.NW_SIZE; b += 4) r.nic.dv.setUint32(e + b, rnd(), true);
          // Half of them get a plausible type and QP so that deeper checks run too.
          if (i % 2) { r.nic.u8[e + N.NW_TYPE] = rnd() % 6; r.nic.dv.setUint32(e + N.NW_QPN, r.tqpn[rnd() % 2]!, true); }
          written++;
        }
        setCb(r.nic, k, N.CB_SQ_TAIL, tail);
        r.nic.fw.nicDoorbell(k);
      }
      rounds(r, () => false, 20);
    }
    rounds(r, () => [0, 1].every((k) => cb(r.nic, k, N.CB_SQ_HEAD) === cb(r.nic, k, N.CB_SQ_TAIL)), 2000);
    const c = counters(r.nic);
    expect(c.nic_wqes_fetched).toBe(written);
    // A tail moved past a whole queue, a command consumer moved past the producer: counted, ignored.
    setCb(r.nic, 0, N.CB_SQ_TAIL, cb(r.nic, 0, N.CB_SQ_HEAD) + M.NIC_SQ_DEPTH + 5);
    setCb(r.nic, 1, N.CB_CMD_CONS, cb(r.nic, 1, N.CB_CMD_PROD) + 3);
    r.nic.fw.nicDoorbell(0);
    rounds(r, () => false, 5);
    expect(counters(r.nic).err_nic_bad_index).toBeGreaterThanOrEqual(2);
    expect(cb(r.nic, 0, N.CB_SQ_HEAD)).toBe(cb(r.nic, 0, N.CB_SQ_TAIL));
    expect(counters(r.nic).nic_wqes_fetched).toBe(written); // the bogus range was not fetched
  });
});

describe("storage-side NIC under loss", () => {
  it("5% loss, reorder and duplication: 16 reads (data + response) and 8 writes (READ into staging) over 2 controllers all complete byte-exact", async () => {
    const r = await rig({ queues: 2, ctrls: 2, flags: N.NGF_TAIL_FAST_PATH | N.NGF_DIF_CHECK, seed: 11,
      link: { latencyNs: 1500, loss: 0.05, reorder: 0.05, duplicate: 0.05 } });
    for (let q = 0; q < 2; q++) hostRecvs(r, q, 16, 0xf0000 + q * 0x800);
    const reads: { q: number; off: number; data: Uint8Array }[] = [];
    const writes: { k: number; stage: number; data: Uint8Array; tag: number }[] = [];
    for (let i = 0; i < 16; i++) {
      const q = i % 2, k = q, len = 512 + ((i * 733) % 3000);
      const data = pattern(len, 300 + i);
      const so = 0x1000 + i * 0x2000;
      r.nic.u8.set(data, stageBase(k) + so);
      writeCqe(r.nic, k, 0x100 + i * 16, i);
      const raddr = VA0 + BigInt(0x40000 + i * 0x2000);
      reads.push({ q, off: 0x40000 + i * 0x2000, data });
      writeWqes(r.nic, k, [...dataWqes(r.tqpn[q]!, r.mtu, so, len, raddr, r.hq[q]!.key),
        { type: N.NicWqeType.RESPONSE, qpn: r.tqpn[q]!, stageOff: 0x100 + i * 16, len: 16, cid: i }]);
      if (i % 2 === 0) { // a host write: the NIC READs the host's buffer into staging
        const wd = pattern(700 + i * 100, 900 + i);
        fill(r.hq[q]!, 0xa0000 + i * 0x1000, wd);
        writes.push({ k, stage: 0x90000 + i * 0x1000, data: wd, tag: 0x7000 + i });
        writeWqes(r.nic, k, [{ type: N.NicWqeType.READ, qpn: r.tqpn[q]!, stageOff: 0x90000 + i * 0x1000, total: wd.length, raddr: VA0 + BigInt(0xa0000 + i * 0x1000), rkey: r.hq[q]!.key, tag: 0x7000 + i }]);
      }
      r.nic.fw.nicDoorbell(k);
    }
    const got = [0, 0], ev: ReturnType<typeof events> = [];
    rounds(r, () => {
      for (let q = 0; q < 2; q++) got[q] += poll(r.hq[q]!).filter((c) => c.opcode === R.WcOp.RECV && c.status === 0).length;
      for (let k = 0; k < 2; k++) ev.push(...events(r.nic, k));
      return got[0] === 8 && got[1] === 8 && ev.length === writes.length;
    }, 400_000);
    expect(got).toEqual([8, 8]);
    for (const rd of reads) expect(ram(r.hq[rd.q]!, rd.off, rd.data.length)).toEqual(rd.data);
    expect(ev.map((e) => e.kind).sort()).toEqual(writes.map(() => "READ_DONE"));
    for (const w of writes) expect(r.nic.u8.slice(stageBase(w.k) + w.stage, stageBase(w.k) + w.stage + w.data.length)).toEqual(w.data);
    expect(counters(r.nic).rdma_rc_resends).toBeGreaterThan(0);
  });
});
