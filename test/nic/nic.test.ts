// Storage-side NIC (assembly/nic/nic.ts) between a host card and the storage controllers (played
// by the test): command capsules reach the bound controller's command ring and their receive
// buffers go back once consumed; INITIAL / INTERMEDIATE / TAIL / SINGLE WQEs become one RDMA
// WRITE message at the host, a RESPONSE its response SEND, a READ brings host data into staging;
// the tail fast path decides the order on the wire across controllers; hostile WQEs are refused.
import { describe, it, expect } from "vitest";
import {
  rig, rounds, writeWqes, dataWqes, writeCqe, commands, events, cb, setCb, stageBase, counters, ops, postSend, postRecv, poll, ram,
  fill, N, M, R, VA0, type Rig, type Cqe,
} from "./nic-setup.js";
import { pattern } from "../rdma/setup.js";

/** The host sends a 64-byte command capsule (bytes `c`) on queue q from its RAM at off. */
function sendCapsule(r: Rig, q: number, c: Uint8Array, off: number, wrid: number): void {
  fill(r.hq[q]!, off, c);
  expect(postSend(r.hq[q]!, [{ op: R.WrOp.SEND, wrid, off, len: c.length }])).toBe(1);
}

/** Host receive buffers for response capsules on queue q. */
function hostRecvs(r: Rig, q: number, n: number, off = 0xf0000): void {
  expect(postRecv(r.hq[q]!, Array.from({ length: n }, (_, i) => ({ wrid: 1000 + i, off: off + i * 64, len: 64 })))).toBe(n);
}

/** Host completions of queue q until `n` RECVs arrived (SEND completions are kept too). */
function hostRecvDone(r: Rig, q: number, n: number): Cqe[] {
  const all: Cqe[] = [];
  rounds(r, () => { all.push(...poll(r.hq[q]!)); return all.filter((c) => c.opcode === R.WcOp.RECV).length >= n; });
  return all.filter((c) => c.opcode === R.WcOp.RECV);
}

describe("storage-side NIC: command distribution", () => {
  it("a capsule lands in the command ring of the QP's controller; its buffer goes back to the QP once consumed; 150 capsules through 64 buffers", async () => {
    const r = await rig({ queues: 2, ctrls: 2, bind: [1, 0] });
    const blk = r.nic.fw.rdmaRcBlock(r.tqpn[0]!);
    const rqTail = () => r.nic.dv.getUint32(blk + R.RCC_RQ_TAIL, true);
    expect(rqTail()).toBe(M.NIC_RECV_DEPTH); // nicBindQp posted the QP's buffers
    const cap = pattern(64, 1);
    sendCapsule(r, 0, cap, 0, 1);
    rounds(r, () => commands(r.nic, 1).length === 1);
    const [cmd] = commands(r.nic, 1);
    expect(cmd!.qpn).toBe(r.tqpn[0]);
    expect(cmd!.len).toBe(64);
    expect(r.nic.u8.slice(cmd!.capsule, cmd!.capsule + 64)).toEqual(cap);
    expect(commands(r.nic, 0)).toEqual([]); // queue 0 is bound to controller 1 only
    rounds(r, () => false, 10);
    expect(rqTail()).toBe(M.NIC_RECV_DEPTH); // not given back while the controller holds it
    setCb(r.nic, 1, N.CB_CMD_CONS, cb(r.nic, 1, N.CB_CMD_PROD));
    rounds(r, () => rqTail() === M.NIC_RECV_DEPTH + 1);
    expect(rqTail()).toBe(M.NIC_RECV_DEPTH + 1);
    // Many more capsules than buffers, the controller consuming as they come: none is refused.
    let got = 0;
    for (let i = 0; i < 150; i++) sendCapsule(r, 0, pattern(64, 10 + i), 0x1000 + i * 64, 10 + i);
    const seen: Uint8Array[] = [];
    rounds(r, () => {
      for (const c of commands(r.nic, 1)) seen.push(r.nic.u8.slice(c.capsule, c.capsule + 64));
      got = seen.length;
      setCb(r.nic, 1, N.CB_CMD_CONS, cb(r.nic, 1, N.CB_CMD_PROD));
      return got === 150;
    });
    expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => pattern(64, 10 + i)));
    const c = counters(r.nic);
    expect([c.nic_commands, c.err_nic_cmd_ring_full, c.err_nic_short_capsule, c.err_nic_unbound_qp]).toEqual([151, 0, 0, 0]);
  });

  it("a short capsule and a capsule on an unbound QP are counted drops whose buffers are reposted at once; a rebound QP feeds its new controller", async () => {
    const r = await rig({ queues: 1, ctrls: 2 });
    const blk = r.nic.fw.rdmaRcBlock(r.tqpn[0]!);
    const rqTail = () => r.nic.dv.getUint32(blk + R.RCC_RQ_TAIL, true);
    sendCapsule(r, 0, pattern(40, 1), 0, 1);
    rounds(r, () => counters(r.nic).err_nic_short_capsule === 1);
    expect(rqTail()).toBe(M.NIC_RECV_DEPTH + 1);
    expect(r.nic.fw.nicBindQp(r.tqpn[0]!, N.NIC_NO_CTRL)).toBe(0);
    sendCapsule(r, 0, pattern(64, 2), 0, 2);
    rounds(r, () => counters(r.nic).err_nic_unbound_qp === 1);
    expect(rqTail()).toBe(M.NIC_RECV_DEPTH + 2);
    expect(r.nic.fw.nicBindQp(r.tqpn[0]!, 1)).toBe(0);
    expect(rqTail()).toBe(M.NIC_RECV_DEPTH + 2); // rebinding posts nothing twice
    sendCapsule(r, 0, pattern(64, 3), 0, 3);
    rounds(r, () => commands(r.nic, 1).length === 1);
    expect(commands(r.nic, 0)).toEqual([]);
    expect(counters(r.nic).nic_commands).toBe(1);
  });
});

describe("storage-side NIC: a QP connected anew", () => {
  it("the same QPN after a disconnect gets fresh buffers; a command the controller held from the old connection does not post its buffer twice, its DIF failure is forgotten", async () => {
    const r = await rig({ queues: 1, ctrls: 1, flags: N.NGF_DIF_CHECK });
    const q = r.tqpn[0]!, blk = r.nic.fw.rdmaRcBlock(q);
    sendCapsule(r, 0, pattern(64, 1), 0, 1);
    rounds(r, () => commands(r.nic, 0).length === 1);
    // Its data fails the DIF check; the connection ends before its response is written.
    r.nic.u8.set(new Uint8Array(8).fill(0x55), stageBase(0) + 0x1000); // PI that does not match
    writeWqes(r.nic, 0, [{ type: N.NicWqeType.SINGLE, qpn: q, len: 512, total: 512, flags: N.NWF_DIF, block: 512, piOff: 0x1000, cid: 4, raddr: VA0, rkey: r.hq[0]!.key }]);
    r.nic.fw.nicDoorbell(0);
    rounds(r, () => cb(r.nic, 0, N.CB_DIF_FAILED) === 1, 100);
    expect(cb(r.nic, 0, N.CB_DIF_FAILED)).toBe(1);
    // The host disconnects while controller 0 still holds the capsule; the CM frees both sides.
    const id = [...Array(M.CM_MAX_CONNS).keys()].find((i) => r.host.fw.rdmaCmState(i) === 6)!;
    expect(r.host.fw.rdmaCmDisconnect(id)).toBe(0);
    rounds(r, () => r.nic.fw.rdmaQpState(q) === 0 && r.host.fw.rdmaCmState(id) === 0, 50_000);
    expect(r.nic.fw.rdmaQpState(q)).toBe(0);
    const id2 = r.host.fw.rdmaCmConnect(4420, 1, 32, 31, 1, r.mtu, 0x0200000a, 0x0200, 0x00000002);
    rounds(r, () => r.host.fw.rdmaCmState(id2) === 6 && r.nic.fw.rdmaQpState(q) === 3);
    expect(r.nic.fw.rdmaQpState(q)).toBe(3); // the same QPN again
    expect(r.nic.fw.nicBindQp(q, 0)).toBe(0);
    expect(r.nic.dv.getUint32(blk + R.RCC_RQ_TAIL, true)).toBe(M.NIC_RECV_DEPTH);
    setCb(r.nic, 0, N.CB_CMD_CONS, cb(r.nic, 0, N.CB_CMD_PROD)); // the old command is done now
    rounds(r, () => false, 5);
    expect(r.nic.dv.getUint32(blk + R.RCC_RQ_TAIL, true)).toBe(M.NIC_RECV_DEPTH); // its buffer was not posted again
    expect(counters(r.nic).err_nic_bad_index).toBe(0);
    expect(cb(r.nic, 0, N.CB_DIF_FAILED)).toBe(0);
  });
});

describe("storage-side NIC: WQE fetch", () => {
  it("INITIAL / INTERMEDIATE / TAIL + RESPONSE WQEs reach the host as one RDMA WRITE message (byte-exact), then the response SEND", async () => {
    const r = await rig({ queues: 1, ctrls: 1, flags: N.NGF_TAIL_FAST_PATH });
    const data = pattern(3 * r.mtu + 300, 5);
    r.nic.u8.set(data, stageBase(0) + 0x1000);
    const cqe = writeCqe(r.nic, 0, 0x100, 0x42, 0xabcd);
    hostRecvs(r, 0, 1);
    const q = r.tqpn[0]!;
    writeWqes(r.nic, 0, [...dataWqes(q, r.mtu, 0x1000, data.length, VA0 + 0x20000n, r.hq[0]!.key),
      { type: N.NicWqeType.RESPONSE, qpn: q, stageOff: 0x100, len: 16, cid: 0x42, tag: 77, flags: N.NWF_SIGNALED }]);
    r.nic.fw.nicDoorbell(0);
    const rc = hostRecvDone(r, 0, 1);
    expect(rc.map((c) => [c.wrid, c.status, c.len])).toEqual([[1000, 0, 16]]);
    expect(ram(r.hq[0]!, 0xf0000, 16)).toEqual(cqe);
    expect(ram(r.hq[0]!, 0x20000, data.length)).toEqual(data);
    expect(ops(r.sent)).toEqual(["RC_WRITE_FIRST", "RC_WRITE_MIDDLE", "RC_WRITE_MIDDLE", "RC_WRITE_LAST", "RC_SEND_ONLY"]);
    expect(new Set(r.sent.map((s) => s.dqp))).toEqual(new Set([r.hq[0]!.qpn]));
    // Only the signaled RESPONSE reports SENT, once acknowledged.
    rounds(r, () => cb(r.nic, 0, N.CB_EVT_PROD) === 1);
    expect(events(r.nic, 0)).toEqual([{ tag: 77, kind: "SENT", status: 0, qpn: q }]);
    expect(cb(r.nic, 0, N.CB_SQ_HEAD)).toBe(5);
    expect(r.nic.dv.getUint32(M.NIC_BASE + N.NG_DOORBELLS, true)).toBe(0); // queue empty: doorbell cleared
  });

  it("SINGLE + RESPONSE: one WRITE ONLY, then the response", async () => {
    const r = await rig({ queues: 1, ctrls: 1 });
    const data = pattern(500, 6);
    r.nic.u8.set(data, stageBase(0) + 0x4000);
    const cqe = writeCqe(r.nic, 0, 0x200, 9);
    hostRecvs(r, 0, 1);
    const q = r.tqpn[0]!;
    writeWqes(r.nic, 0, [...dataWqes(q, r.mtu, 0x4000, 500, VA0 + 0x30000n, r.hq[0]!.key),
      { type: N.NicWqeType.RESPONSE, qpn: q, stageOff: 0x200, len: 16, cid: 9 }]);
    r.nic.fw.nicDoorbell(0);
    hostRecvDone(r, 0, 1);
    expect(ram(r.hq[0]!, 0x30000, 500)).toEqual(data);
    expect(ram(r.hq[0]!, 0xf0000, 16)).toEqual(cqe);
    expect(ops(r.sent)).toEqual(["RC_WRITE_ONLY", "RC_SEND_ONLY"]);
    rounds(r, () => false, 50);
    expect(events(r.nic, 0)).toEqual([]); // nothing signaled, nothing failed
  });

  it("a READ WQE brings the host's data into staging and raises READ_DONE", async () => {
    const r = await rig({ queues: 1, ctrls: 2, bind: [1] });
    const data = pattern(5000, 7);
    fill(r.hq[0]!, 0x50000, data);
    const q = r.tqpn[0]!;
    writeWqes(r.nic, 1, [{ type: N.NicWqeType.READ, qpn: q, stageOff: 0x8000, len: 5000, total: 5000, raddr: VA0 + 0x50000n, rkey: r.hq[0]!.key, tag: 0x5150 }]);
    r.nic.fw.nicDoorbell(1);
    const ev: ReturnType<typeof events> = [];
    rounds(r, () => { ev.push(...events(r.nic, 1)); return ev.length > 0; });
    expect(ev).toEqual([{ tag: 0x5150, kind: "READ_DONE", status: 0, qpn: q }]);
    expect(r.nic.u8.slice(stageBase(1) + 0x8000, stageBase(1) + 0x8000 + 5000)).toEqual(data);
    expect(ops(r.sent)).toEqual(["RC_READ_REQUEST"]);
  });

  for (const fast of [false, true]) {
    it(`tail fast path ${fast ? "on" : "off"}: the order of packets on the wire across 3 controllers`, async () => {
      const r = await rig({ queues: 3, ctrls: 3, flags: fast ? N.NGF_TAIL_FAST_PATH : 0 });
      for (let k = 0; k < 3; k++) {
        r.nic.u8.set(pattern(2 * r.mtu, 20 + k), stageBase(k));
        writeCqe(r.nic, k, 0x10000, k);
        hostRecvs(r, k, 1);
        writeWqes(r.nic, k, [...dataWqes(r.tqpn[k]!, r.mtu, 0, 2 * r.mtu, VA0 + BigInt(0x10000 * (k + 1)), r.hq[k]!.key),
          { type: N.NicWqeType.RESPONSE, qpn: r.tqpn[k]!, stageOff: 0x10000, len: 16, cid: k }]);
      }
      for (let k = 0; k < 3; k++) r.nic.fw.nicDoorbell(k);
      for (let k = 0; k < 3; k++) hostRecvDone(r, k, 1);
      const seq = r.sent.map((s) => [r.hq.findIndex((h) => h.qpn === s.dqp), s.op]);
      const F = 0x06, L = 0x08, S = 0x04;
      expect(seq).toEqual(fast
        ? [[0, F], [1, F], [2, F], [0, L], [0, S], [1, L], [1, S], [2, L], [2, S]] // after a TAIL, its response before the next controller
        : [[0, F], [1, F], [2, F], [0, L], [1, L], [2, L], [0, S], [1, S], [2, S]]); // one WQE per controller per visit
      expect(counters(r.nic).nic_fast_path_sends).toBe(fast ? 3 : 0);
      for (let k = 0; k < 3; k++) expect(ram(r.hq[k]!, 0x10000 * (k + 1), 2 * r.mtu)).toEqual(pattern(2 * r.mtu, 20 + k));
    });
  }

  it("a QP takes no more work than its completion queue can report: with no ACKs coming, fetch stops at the limit; then all 250 complete, none lost", async () => {
    const r = await rig({ queues: 1, ctrls: 1 });
    const q = r.tqpn[0]!, limit = Math.min(R.RC_SQ_DEPTH, R.RC_CQ_DEPTH - M.NIC_RECV_DEPTH);
    writeWqes(r.nic, 0, Array.from({ length: 250 }, (_, i) => ({ type: N.NicWqeType.SINGLE, qpn: q, stageOff: 64 * i, len: 64, total: 64,
      raddr: VA0 + BigInt(64 * i), rkey: r.hq[0]!.key, flags: N.NWF_SIGNALED, tag: i })));
    r.nic.fw.nicDoorbell(0);
    for (let i = 0; i < 5; i++) r.nic.fw.nicPoll(1024, r.p.now + i); // the fabric does not move: no ACK arrives
    expect(cb(r.nic, 0, N.CB_SQ_HEAD)).toBe(limit);
    expect(r.nic.dv.getUint32(M.NIC_BASE + N.NG_DOORBELLS, true)).toBe(1); // work left: the doorbell stays
    const ev: ReturnType<typeof events> = [];
    rounds(r, () => { ev.push(...events(r.nic, 0)); return ev.length === 250; });
    expect(ev.map((e) => [e.tag, e.kind])).toEqual(Array.from({ length: 250 }, (_, i) => [i, "SENT"]));
    expect(counters(r.nic).err_rdma_cq_overflow).toBe(0);
  });

  it("nicSetFlags switches the fast path at run time; a budget that ends between a TAIL and its response resumes with the response", async () => {
    const r = await rig({ queues: 2, ctrls: 2, flags: 0 });
    r.nic.fw.nicSetFlags(N.NGF_TAIL_FAST_PATH);
    for (let k = 0; k < 2; k++) {
      writeCqe(r.nic, k, 0x100, k);
      hostRecvs(r, k, 1);
      writeWqes(r.nic, k, [...dataWqes(r.tqpn[k]!, r.mtu, 0, 100, VA0 + 0x40000n, r.hq[k]!.key),
        { type: N.NicWqeType.RESPONSE, qpn: r.tqpn[k]!, stageOff: 0x100, len: 16, cid: k }]);
      r.nic.fw.nicDoorbell(k);
    }
    // Budget 1 per NIC round: SINGLE of controller 0, then its response, then controller 1's pair.
    for (let i = 0; i < 4; i++) { r.p.now += 1000; r.nic.fw.nicPoll(1, r.p.now); }
    r.nic.fw.rdmaPoll(0, r.p.now + 1); // nothing left to fetch; moves no WQE
    for (let k = 0; k < 2; k++) hostRecvDone(r, k, 1);
    const seq = r.sent.map((s) => [r.hq.findIndex((h) => h.qpn === s.dqp), s.op]);
    expect(seq).toEqual([[0, 0x0a], [0, 0x04], [1, 0x0a], [1, 0x04]]);
  });
});
