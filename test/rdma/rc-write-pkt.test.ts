// Per-packet RDMA WRITE work requests (WrOp.WRITE_PKT, rdma/req.ts): a message sent packet by
// packet from WQEs posted one per call arrives whole and byte-exact, also when frames are lost
// (go-back-N rebuilds each packet from its WQE); packets that break the MTU rules are refused
// with a completion error; unsignaled work requests complete silently unless they fail.
import { describe, it, expect } from "vitest";
import { pair, run, postSend, poll, ram, fill, counters, R, W, type Pair } from "./rc-setup.js";
import { pattern } from "./setup.js";

const MTU = 256;

/** Post each packet of a WRITE of `data` (at a's offset src) to b's offset dst as its own WRITE_PKT, one call each. */
function postPackets(p: Pair, src: number, dst: number, len: number, wrid0: number, flags = 0): number {
  const n = Math.ceil(len / MTU);
  for (let i = 0; i < n; i++) {
    const pos = n === 1 ? W.Pos.ONLY : i === 0 ? W.Pos.FIRST : i === n - 1 ? W.Pos.LAST : W.Pos.MIDDLE;
    const plen = Math.min(MTU, len - i * MTU);
    expect(postSend(p.a, [{ op: R.WrOp.WRITE_PKT, pos, flags, wrid: wrid0 + i, off: src + i * MTU, len: plen, rkey: p.b.key, roff: dst, imm: len }])).toBe(1);
    p.now += 100;
    p.a.c.fw.rdmaRcPoll(64, p.now); // one packet's WQE per round, as the NIC posts them
  }
  return n;
}

describe("RC WRITE_PKT: one WRITE message from per-packet work requests", () => {
  it("FIRST / MIDDLE / LAST posted one per call arrive as one message, byte-exact, each completed", async () => {
    const p = await pair({ mtu: MTU });
    const data = pattern(5 * MTU + 77, 11);
    fill(p.a, 0x1000, data);
    const n = postPackets(p, 0x1000, 0x40000, data.length, 1);
    const cqes: ReturnType<typeof poll> = [];
    run(p, () => { cqes.push(...poll(p.a)); return cqes.length === n; });
    expect(cqes.map((c) => [c.wrid, c.status, c.opcode])).toEqual(Array.from({ length: n }, (_, i) => [i + 1, 0, 1])); // RDMA_WRITE
    expect(ram(p.b, 0x40000, data.length)).toEqual(data);
    expect(poll(p.b)).toEqual([]); // a WRITE consumes no receive WQE
    expect(counters(p.b).err_rdma_write_length).toBe(0);
  });

  it("under 5% loss, reorder and duplication, go-back-N resends packets from their WQEs: 20 messages land whole", async () => {
    const p = await pair({ mtu: MTU, seed: 3, timeoutNs: 20_000, link: { latencyNs: 1500, loss: 0.05, reorder: 0.05, duplicate: 0.05 } });
    const msgs = Array.from({ length: 20 }, (_, i) => pattern(MTU * (1 + (i % 4)) + (i * 37) % MTU, 100 + i));
    let total = 0, wrid = 0;
    msgs.forEach((m, i) => { fill(p.a, i * 0x2000, m); total += postPackets(p, i * 0x2000, 0x40000 + i * 0x2000, m.length, wrid); wrid += 100; });
    const cqes: ReturnType<typeof poll> = [];
    run(p, () => { cqes.push(...poll(p.a)); return cqes.length === total; }, 200_000);
    expect(cqes.length).toBe(total);
    expect(cqes.every((c) => c.status === 0)).toBe(true);
    msgs.forEach((m, i) => expect(ram(p.b, 0x40000 + i * 0x2000, m.length)).toEqual(m));
    expect(counters(p.a).rdma_rc_resends).toBeGreaterThan(0);
  });

  it("a MIDDLE shorter than the MTU is refused (LOC_LEN_ERR completion, counted), and so are an ONLY with a wrong total and a missing position", async () => {
    for (const bad of [
      { pos: W.Pos.MIDDLE, len: MTU - 4, imm: 4 * MTU },
      { pos: W.Pos.FIRST, len: MTU, imm: MTU }, // a FIRST that is the whole message
      { pos: W.Pos.ONLY, len: 100, imm: 200 },
      { pos: W.Pos.LAST, len: MTU + 4, imm: 4 * MTU },
      { pos: W.Pos.NONE, len: 100, imm: 100 },
    ]) {
      const p = await pair({ mtu: MTU });
      expect(postSend(p.a, [{ op: R.WrOp.WRITE_PKT, wrid: 9, off: 0, rkey: p.b.key, roff: 0x40000, ...bad }])).toBe(1);
      const cqes: ReturnType<typeof poll> = [];
      run(p, () => { cqes.push(...poll(p.a)); return cqes.length > 0; }, 100);
      expect(cqes.map((c) => [c.wrid, c.status])).toEqual([[9, R.WcStatus.LOC_LEN_ERR]]);
      expect(counters(p.a).err_rdma_bad_wqe).toBe(1);
      expect(counters(p.a).rdma_tx_frames).toBe(0); // nothing went on the wire
    }
  });

  it("SWF_UNSIGNALED: no completion when the work request succeeds; the next signaled one still completes", async () => {
    const p = await pair({ mtu: MTU });
    const data = pattern(3 * MTU, 5);
    fill(p.a, 0, data);
    postPackets(p, 0, 0x40000, data.length, 1, R.SWF_UNSIGNALED);
    expect(postSend(p.a, [{ op: R.WrOp.SEND, wrid: 50, off: 0, len: 16, flags: R.SWF_UNSIGNALED }, { op: R.WrOp.WRITE, wrid: 51, off: 0, len: 8, rkey: p.b.key, roff: 0x50000 }])).toBe(2);
    const cqes: ReturnType<typeof poll> = [];
    let rcv: ReturnType<typeof poll> = [];
    // b has no receive WQE yet: post one so the SEND lands.
    const dv = p.b.c.dv, tail = dv.getUint32(p.b.blk + R.RCC_RQ_TAIL, true);
    const e = p.b.blk - R.RCQ_CTRL + R.RCQ_RQ + (tail % R.RC_RQ_DEPTH) * R.RWQE_SIZE;
    dv.setBigUint64(e + R.RWQE_WRID, 77n, true); dv.setBigUint64(e + R.RWQE_LADDR, 0x1_2345_0000n + 0x60000n, true);
    dv.setUint32(e + R.RWQE_LKEY, p.b.key, true); dv.setUint32(e + R.RWQE_LEN, 64, true);
    expect(p.b.c.fw.rdmaRcPostRecv(p.b.qpn, 1)).toBe(1);
    run(p, () => { cqes.push(...poll(p.a)); rcv = rcv.concat(poll(p.b)); return cqes.length > 0 && rcv.length > 0; });
    run(p, () => false, 50); // nothing else is coming
    cqes.push(...poll(p.a));
    expect(cqes.map((c) => [c.wrid, c.status])).toEqual([[51, 0]]);
    expect(rcv.map((c) => [c.wrid, c.len])).toEqual([[77, 16]]);
    expect(ram(p.b, 0x40000, data.length)).toEqual(data);
  });

  it("an unsignaled work request that fails still completes, with its error (a bad R_Key: remote access NAK)", async () => {
    const p = await pair({ mtu: MTU });
    expect(postSend(p.a, [{ op: R.WrOp.WRITE_PKT, pos: W.Pos.ONLY, flags: R.SWF_UNSIGNALED, wrid: 4, off: 0, len: 64, imm: 64, rkey: (p.b.key + 0x100) >>> 0, roff: 0 }])).toBe(1);
    const cqes: ReturnType<typeof poll> = [];
    run(p, () => { cqes.push(...poll(p.a)); return cqes.length > 0; }, 200);
    expect(cqes.map((c) => [c.wrid, c.status])).toEqual([[4, R.WcStatus.REM_ACCESS_ERR]]);
  });
});
