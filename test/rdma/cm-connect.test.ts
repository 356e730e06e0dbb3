// RDMA-CM between two cards over a Fabric: the NVMe-oF admin queue and I/O queues connect
// (REQ / REP / RTU with the NVMe-oF private data), their RC QPs end in RTS with each other's
// QPNs and PSNs, a lossy link still connects (retransmits on the virtual clock), a port nobody
// listens on is rejected, disconnect tears both sides down, and a silent peer is given up on.
import { describe, it, expect } from "vitest";
import { pair, connect, run, conn, conns, drops, madAttr, CW, HOST, TARGET, type Pair } from "./cm-pair.js";
import { writeDesc, txDrain, rxPush, rxLog, W } from "./setup.js";
import { postRecv, poll, R, VA0 } from "./rc-setup.js";
import { Counter } from "../../assembly/counters.js";
import type { Card } from "../../host/card.js";

// QP entry fields (assembly/rdma/qp.ts QP_*; seq.ts SEQ_EPSN at +0 of a stream).
const QP_MTU = 8, QP_DEST_QP = 12, QP_RQ_EPSN = 16, QP_SQ_PSN = 36;
const QpState = { RESET: 0, INIT: 1, RTR: 2, RTS: 3, ERR: 4 };

function qp(c: Card, qpn: number) {
  const a = c.fw.rdmaQpAddr(qpn);
  const u = (o: number) => c.dv.getUint32(a + o, true);
  return { state: c.fw.rdmaQpState(qpn), mtu: u(QP_MTU), destQp: u(QP_DEST_QP), expectedPsn: u(QP_RQ_EPSN), sendPsn: u(QP_SQ_PSN) };
}

/** Connect qids 0..n-1 and run until every connection is ESTABLISHED on both sides (or `ns` passes). */
function connectAll(p: Pair, n: number, ns: number): number[] {
  expect(p.target.fw.rdmaCmListen(4420)).not.toBe(0xffffffff);
  const ids = Array.from({ length: n }, (_, q) => connect(p, q, 32 + q, 31 + q));
  ids.forEach((id) => expect(id).not.toBe(0xffffffff));
  const done = () => ids.every((id) => p.host.fw.rdmaCmState(id) === CW.CmState.ESTABLISHED)
    && [...conns(p.target).values()].filter((c) => c.state === "ESTABLISHED").length === n;
  run(p, ns, done);
  expect(done()).toBe(true);
  return ids;
}

/** Each host connection, its target peer, and the QPs of both agree on QPNs, PSNs and MTU. */
function expectMatched(p: Pair, ids: number[]): void {
  const passive = [...conns(p.target).values()].filter((c) => c.role === CW.CmRole.PASSIVE && c.state === "ESTABLISHED");
  ids.forEach((id, q) => {
    const h = conn(p.host, id);
    const t = passive.find((c) => c.remoteCommId === h.localCommId)!;
    expect(t, `target side of qid ${q}`).toBeDefined();
    expect(h.remoteCommId).toBe(t.localCommId);
    // NVMe-oF private data, as the host sent it and the target answered.
    expect({ qid: t.qid, hrqsize: t.hrqsize, hsqsize: t.hsqsize, cntlid: t.cntlid, port: t.port }).toEqual({ qid: q, hrqsize: 32 + q, hsqsize: 31 + q, cntlid: q === 0 ? 0xffff : 1, port: 4420 });
    expect(h.crqsize).toBe(31 + q);
    // Negotiated QPNs and PSNs, and the QPs in RTS with them.
    expect(h.remoteQpn).toBe(t.localQpn);
    expect(t.remoteQpn).toBe(h.localQpn);
    expect(h.remotePsn).toBe(t.localPsn);
    expect(t.remotePsn).toBe(h.localPsn);
    const hq = qp(p.host, h.localQpn), tq = qp(p.target, t.localQpn);
    expect(hq).toEqual({ state: QpState.RTS, mtu: 1024, destQp: t.localQpn, expectedPsn: t.localPsn, sendPsn: h.localPsn });
    expect(tq).toEqual({ state: QpState.RTS, mtu: 1024, destQp: h.localQpn, expectedPsn: h.localPsn, sendPsn: t.localPsn });
  });
  expect(new Set(ids.map((id) => conn(p.host, id).localQpn)).size).toBe(ids.length);
}

describe("RDMA-CM connection setup between two cards", () => {
  it("connects the admin queue and two I/O queues: QPs in RTS with each other's QPNs, PSNs and MTU; a capsule on the new QP is accepted", async () => {
    const p = await pair();
    const ids = connectAll(p, 3, 200_000);
    expectMatched(p, ids);
    const hc = p.host.counters(), tc = p.target.counters();
    expect([hc.cm_mads_sent, tc.cm_mads_sent, hc.cm_retransmits, tc.cm_retransmits]).toEqual([6, 3, 0, 0]); // REQ+RTU each; REP each
    expect(drops(p.host)).toEqual([]);
    expect(drops(p.target)).toEqual([]);
    // A 64-byte command capsule on the admin queue's QP, with the PSN the CM negotiated: the CM
    // handed the target's QP to the RC engine, so it lands in a posted receive buffer.
    const h = conn(p.host, ids[0]!);
    const tk = p.target.fw.rdmaMrRegister(0, 0, 1 << 20, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), R.MR_LOCAL_WRITE);
    const ts = { c: p.target, qpn: h.remoteQpn, key: tk, ram: p.target.guests[0]!.base, blk: p.target.fw.rdmaRcBlock(h.remoteQpn) };
    expect(postRecv(ts, [{ wrid: 5, off: 0, len: 256, lkey: tk }])).toBe(1);
    p.host.fw.rdmaTxPacket(writeDesc(p.host, { opcode: W.Op.RC_SEND_ONLY, dqp: h.remoteQpn, psn: h.localPsn, ackreq: true, payload: new Uint8Array(64), srcIp: HOST.ip, dstIp: TARGET.ip }));
    run(p, 10_000);
    const log = rxLog(p.target, (n) => Counter[n]!);
    expect(log.map((l) => [l.opcode, l.dqp, l.psn, l.accepted])).toEqual([[W.Op.RC_SEND_ONLY, h.remoteQpn, h.localPsn, true]]);
    expect(poll(ts).map((c) => [c.wrid, c.status, c.len])).toEqual([[5, 0, 64]]);
  });

  it("still connects over links that lose 30% of frames and duplicate and reorder 10% (4 seeds): REQ / REP / RTU retransmitted on the virtual clock, duplicates answered", async () => {
    let retransmits = 0, lost = 0;
    for (const seed of [1, 2, 3, 4]) {
      const p = await pair({ loss: 0.3, duplicate: 0.1, reorder: 0.1 }, { seed });
      const ids = connectAll(p, 3, 100_000_000);
      expectMatched(p, ids);
      retransmits += p.host.counters().cm_retransmits + p.target.counters().cm_retransmits;
      lost += p.fabric.stats().total.lost;
    }
    expect(lost).toBeGreaterThan(0);
    expect(retransmits).toBeGreaterThan(0);
  });

  it("is deterministic: the same seed over a lossy, duplicating link gives the same frames at the same virtual times", async () => {
    const trace = async () => {
      const frames: string[] = [];
      const p = await pair({ loss: 0.3, duplicate: 0.1, reorder: 0.1 }, { seed: 2, onEvent: (e) => { if (e.kind === "frame" && e.dir === "rx") frames.push(`${e.ns} ${Buffer.from(e.bytes).toString("hex")}`); } });
      connectAll(p, 3, 100_000_000);
      return frames;
    };
    const a = await trace();
    expect(a.length).toBeGreaterThan(9);
    expect(await trace()).toEqual(a);
  });

  it("rejects a REQ for a port nobody listens on (REJ, Invalid Service ID); the host's QP goes to ERR and the entry can be freed", async () => {
    const p = await pair();
    p.target.fw.rdmaCmListen(4420);
    const id = connect(p, 0, 32, 31, 4421);
    run(p, 100_000, () => p.host.fw.rdmaCmState(id) !== CW.CmState.REQ_SENT);
    const h = conn(p.host, id);
    expect([h.state, h.rejReason]).toEqual(["REJECTED", CW.REJ_REASON_INVALID_SERVICE_ID]);
    expect(qp(p.host, h.localQpn).state).toBe(QpState.ERR);
    expect(p.target.counters().cm_rejects_sent).toBe(1);
    expect(p.host.counters().cm_rejects_received).toBe(1);
    expect([...conns(p.target).values()].map((c) => c.state)).toEqual(["LISTEN"]);
    expect(p.host.fw.rdmaCmRelease(id)).toBe(0);
    expect(p.host.fw.rdmaCmState(id)).toBe(CW.CmState.IDLE);
    expect(qp(p.host, h.localQpn).state).toBe(QpState.RESET);
  });

  it("disconnects: DREQ / DREP, both sides through TIMEWAIT to IDLE, QPs to ERR then RESET; the other connections stay up", async () => {
    const p = await pair();
    const ids = connectAll(p, 2, 200_000);
    const h = conn(p.host, ids[1]!);
    const tid = [...conns(p.target).entries()].find(([, c]) => c.remoteCommId === h.localCommId)![0];
    expect(p.host.fw.rdmaCmDisconnect(ids[1]!)).toBe(0);
    expect(p.host.fw.rdmaCmState(ids[1]!)).toBe(CW.CmState.DISCONNECTING);
    run(p, 20_000, () => p.host.fw.rdmaCmState(ids[1]!) === CW.CmState.TIMEWAIT);
    expect(p.host.fw.rdmaCmState(ids[1]!)).toBe(CW.CmState.TIMEWAIT);
    expect(p.target.fw.rdmaCmState(tid)).toBe(CW.CmState.TIMEWAIT);
    expect(qp(p.host, h.localQpn).state).toBe(QpState.ERR);
    expect(qp(p.target, h.remoteQpn).state).toBe(QpState.ERR);
    run(p, 2_000_000);
    expect([p.host.fw.rdmaCmState(ids[1]!), p.target.fw.rdmaCmState(tid)]).toEqual([CW.CmState.IDLE, CW.CmState.IDLE]);
    expect([qp(p.host, h.localQpn).state, qp(p.target, h.remoteQpn).state]).toEqual([QpState.RESET, QpState.RESET]);
    expect(p.host.fw.rdmaCmState(ids[0]!)).toBe(CW.CmState.ESTABLISHED);
    expect(p.host.fw.rdmaCmDisconnect(ids[1]!)).toBe(0xffffffff); // not established any more
  });

  it("a lost RTU: the target resends its REP on its timer, the host answers it with the RTU again, both sides end ESTABLISHED", async () => {
    const p = await pair();
    p.link.inject({ kind: "drop", dir: "ab", count: 1, match: (f) => madAttr(f) === CW.CM_ATTR_RTU });
    const ids = connectAll(p, 1, 10_000_000);
    expectMatched(p, ids);
    expect([p.target.counters().cm_retransmits, p.host.counters().cm_duplicates, p.host.counters().cm_retransmits]).toEqual([1, 1, 1]);
  });

  it("a target whose REP is never answered gives up after its retransmits and frees the slot and the QP (TIMEWAIT, then IDLE)", async () => {
    const p = await pair();
    p.target.fw.rdmaCmConfig(100_000, 2);
    p.target.fw.rdmaCmListen(4420);
    p.link.inject({ kind: "drop", dir: "ab", count: 1000, match: (f) => madAttr(f) === CW.CM_ATTR_RTU });
    connect(p, 0);
    run(p, 5_000_000);
    expect(p.target.counters().cm_give_ups).toBe(1);
    expect(p.target.counters().cm_retransmits).toBe(2);
    expect([...conns(p.target).values()].map((c) => c.state)).toEqual(["LISTEN"]);
    expect(qp(p.target, 0x10).state).toBe(QpState.RESET);
  });

  it("gives up on a peer that never answers after the configured retransmits (counted), the connection TIMED_OUT", async () => {
    const p = await pair({ loss: 1 });
    p.host.fw.rdmaCmConfig(100_000, 3);
    const id = connect(p, 0);
    run(p, 1_000_000);
    expect(conn(p.host, id).state).toBe("TIMED_OUT");
    expect([p.host.counters().cm_retransmits, p.host.counters().cm_give_ups, p.host.counters().cm_mads_sent]).toEqual([3, 1, 4]);
  });

  it("ignores a DREQ naming a live connection from an address that is not its peer (counted drop); the connection stays up", async () => {
    const p = await pair();
    const [id] = connectAll(p, 1, 200_000);
    const h = conn(p.host, id!);
    const m = new Uint8Array(256), dv = new DataView(m.buffer);
    m.set([1, 0x07, 2, 3]);
    dv.setUint16(16, CW.CM_ATTR_DREQ);
    dv.setUint32(CW.DREQ_LOCAL_COMM_ID, h.remoteCommId);
    dv.setUint32(CW.DREQ_REMOTE_COMM_ID, h.localCommId);
    p.target.fw.rdmaTxPacket(writeDesc(p.target, { opcode: W.Op.UD_SEND_ONLY, dqp: W.QP1, qkey: W.GSI_QKEY, srcQp: 1, payload: m, srcIp: [10, 0, 0, 9], dstIp: HOST.ip }));
    rxPush(p.host, txDrain(p.target));
    drops(p.host);
    p.host.fw.rdmaRxPoll(16);
    expect(drops(p.host)).toEqual(["err_cm_unknown_conn"]);
    expect(p.host.fw.rdmaCmState(id!)).toBe(CW.CmState.ESTABLISHED);
  });

  it("drops malformed MADs on QP1 by reason: too short, wrong class, unknown attribute, unknown connection", async () => {
    const p = await pair();
    const mad = (cls: number, attr: number, len = 256) => {
      const m = new Uint8Array(len);
      m.set([1, cls, 2, 3]);
      m[16] = attr >> 8; m[17] = attr & 0xff;
      return m;
    };
    const send = (payload: Uint8Array) => p.host.fw.rdmaTxPacket(writeDesc(p.host, { opcode: W.Op.UD_SEND_ONLY, dqp: W.QP1, qkey: W.GSI_QKEY, srcQp: 1, payload }));
    send(mad(0x07, 0x10, 100));
    send(mad(0x04, 0x10));
    send(mad(0x07, 0x99));
    send(mad(0x07, CW.CM_ATTR_RTU)); // remote comm ID 0: no such connection
    rxPush(p.target, txDrain(p.host));
    p.target.fw.rdmaRxPoll(16);
    expect(drops(p.target)).toEqual(["err_cm_short_mad", "err_cm_bad_mad", "err_cm_unknown_attr", "err_cm_unknown_conn"]);
  });
});
