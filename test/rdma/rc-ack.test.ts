// What the responder puts on the wire, frame by frame (no fabric: frames are moved between the
// two cards' rings by hand): coalesced ACKs (due every RCC_ACK_EVERY packets and on AckReq, at
// most one per QP per receive batch, for the latest PSN) whose AETH carries the MSN and the
// credit count; a SEND larger than the posted receive
// buffer NAKed as an invalid request, which fails the requester's work request.
import { describe, it, expect } from "vitest";
import { pair, postSend, postRecv, poll, fill, counters, R, QpState, type Pair, type Cqe } from "./rc-setup.js";
import { txDrain, rxPush, pattern } from "./setup.js";

const opOf = (f: Uint8Array) => f[42]!;
const psnOf = (f: Uint8Array) => (f[51]! << 16) | (f[52]! << 8) | f[53]!;
const aethOf = (f: Uint8Array) => ((f[54]! << 24) | (f[55]! << 16) | (f[56]! << 8) | f[57]!) >>> 0;

/** One round by hand: a transmits, its frames reach b, b answers; returns b's frames (delivered to a too). */
function round(p: Pair, now: number): Uint8Array[] {
  p.a.c.fw.rdmaRcPoll(1024, now);
  rxPush(p.b.c, txDrain(p.a.c));
  p.b.c.fw.rdmaRcPoll(1024, now);
  const back = txDrain(p.b.c);
  rxPush(p.a.c, back);
  p.a.c.fw.rdmaRcPoll(1024, now);
  return back;
}

describe("RC responder on the wire", () => {
  it("coalesces ACKs (due every 4th packet and on AckReq; one per receive batch, for its latest PSN) with the MSN and the credit count in the AETH", async () => {
    const p = await pair({ mtu: 256, ackEvery: 4, psnA: 1000 });
    postRecv(p.b, Array.from({ length: 5 }, (_, i) => ({ wrid: i, off: i * 4096, len: 4096 })));
    fill(p.a, 0, pattern(2560, 1));
    postSend(p.a, [{ op: R.WrOp.WRITE, wrid: 1, off: 0, len: 2560, rkey: p.b.key, roff: 0x80000 }]); // 10 packets, one batch
    const acks = round(p, 1000);
    expect(acks.map(opOf)).toEqual([0x11]);
    expect(acks.map(psnOf)).toEqual([1009]);
    // Syndrome: ACK (000) with credit code 4 (5 receive WQEs: at least 4, fewer than 6, §9.7.5.1 table 44); MSN 1 after the WRITE.
    expect(acks.map(aethOf)).toEqual([(0x04 << 24) | 1]);
    expect(poll(p.a)).toMatchObject([{ wrid: 1, status: R.WcStatus.SUCCESS, opcode: R.WcOp.RDMA_WRITE }]);
    // A SEND consumes a receive WQE: MSN 2, four WQEs left (code 4).
    postSend(p.a, [{ op: R.WrOp.SEND, wrid: 2, off: 0, len: 8 }]);
    expect(round(p, 2000).map(aethOf)).toEqual([(0x04 << 24) | 2]);
    // Three SENDs in one batch: one ACK, MSN 5, one WQE left (code 1).
    postSend(p.a, [0, 1, 2].map((i) => ({ op: R.WrOp.SEND, wrid: 3 + i, off: 0, len: 8 })));
    expect(round(p, 3000).map(aethOf)).toEqual([(0x01 << 24) | 5]);
    expect(poll(p.b).map((c) => c.wrid)).toEqual([0, 1, 2, 3]);
    expect(poll(p.a).map((c) => [c.wrid, c.status])).toEqual([[2, 0], [3, 0], [4, 0], [5, 0]]);
    expect(counters(p.b).rdma_rc_acks_sent).toBe(3);
  });

  it("packets that trickle in one per batch are each acknowledged when due (every 4th, and the AckReq of the last)", async () => {
    const p = await pair({ mtu: 256, ackEvery: 4, psnA: 1000 });
    fill(p.a, 0, pattern(2560, 1));
    postSend(p.a, [{ op: R.WrOp.WRITE, wrid: 1, off: 0, len: 2560, rkey: p.b.key, roff: 0x80000 }]); // 10 packets
    p.a.c.fw.rdmaRcPoll(1024, 1000);
    const frames = txDrain(p.a.c);
    const acks: Uint8Array[] = [];
    for (const f of frames) {
      rxPush(p.b.c, [f]);
      p.b.c.fw.rdmaRcPoll(1024, 1000);
      acks.push(...txDrain(p.b.c));
    }
    expect(acks.map(psnOf)).toEqual([1003, 1007, 1009]);
  });

  it("an ACK owed by a QP that leaves RTS/RTR before the batch ends (connection torn down) is not sent", async () => {
    const p = await pair({ mtu: 256, ackEvery: 4, psnA: 1000 });
    fill(p.a, 0, pattern(512, 1));
    postSend(p.a, [{ op: R.WrOp.WRITE, wrid: 1, off: 0, len: 512, rkey: p.b.key, roff: 0x80000 }]);
    p.a.c.fw.rdmaRcPoll(1024, 1000);
    rxPush(p.b.c, txDrain(p.a.c));
    p.b.c.fw.rdmaRxPoll(1024); // accepted: an ACK is owed, sent when the RC engine services the QP
    expect(p.b.c.fw.rdmaQpModify(p.b.qpn, QpState.RESET, 0, 0, 0)).toBe(0);
    p.b.c.fw.rdmaRcPoll(1024, 1000);
    expect(txDrain(p.b.c)).toEqual([]);
    expect(counters(p.b).rdma_rc_acks_sent ?? 0).toBe(0);
  });

  it("a SEND larger than the receive buffer: NAK invalid request, REM_INV_REQ_ERR on the requester and its QP in ERR", async () => {
    const p = await pair({ mtu: 256 });
    postRecv(p.b, [{ wrid: 1, off: 0, len: 300 }]);
    postSend(p.a, [{ op: R.WrOp.SEND, wrid: 1, off: 0, len: 600 }, { op: R.WrOp.SEND, wrid: 2, off: 0, len: 1 }]);
    const back = round(p, 1000);
    // Packet 2 (bytes 256..511) overflows the 300-byte buffer: NAK (011) code 1 for its PSN.
    const naks = back.filter((f) => (aethOf(f) >>> 29) === 3);
    expect(naks.map((f) => [psnOf(f), (aethOf(f) >>> 24) & 0x1f])).toEqual([[101, 1]]);
    expect(counters(p.b).err_rdma_recv_overflow).toBe(1);
    const done: Cqe[] = poll(p.a);
    expect(done).toMatchObject([{ wrid: 1, status: R.WcStatus.REM_INV_REQ_ERR }, { wrid: 2, status: R.WcStatus.WR_FLUSH_ERR }]);
    expect(p.a.c.fw.rdmaQpState(p.a.qpn)).toBe(QpState.ERR);
  });
});
