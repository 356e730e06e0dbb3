// RC transport under faults: a lossy, reordering, duplicating link (every message delivered
// exactly once, data checked), the PSN sequence error NAK and go-back-N, RNR NAK until a
// receive is posted, remote access errors (bad R_Key, outside the region, missing right), and
// retry exhaustion moving the requester's QP to ERR with the rest flushed.
import { describe, it, expect } from "vitest";
import { pair, run, postSend, postRecv, poll, ram, fill, counters, R, M, QpState, VA0, type Cqe } from "./rc-setup.js";
import { pattern } from "./setup.js";

/** Opcode of a RoCEv2 frame (BTH first byte) and its PSN. */
const opOf = (f: Uint8Array) => f[42]!;
const psnOf = (f: Uint8Array) => (f[51]! << 16) | (f[52]! << 8) | f[53]!;

describe("RC transport under faults", () => {
  it("loss, reorder and duplication in both directions: every SEND, WRITE and READ completes exactly once with its data", async () => {
    const p = await pair({ mtu: 256, seed: 7, link: { gbps: 100, latencyNs: 1500, loss: 0.03, reorder: 0.05, duplicate: 0.03 }, ackEvery: 3 });
    const { a, b } = p;
    const N = 60;
    postRecv(b, Array.from({ length: 30 }, (_, i) => ({ wrid: 5000 + i, off: i * 4096, len: 4096 })));
    const wrs = Array.from({ length: N }, (_, i) => {
      const len = (i * 797) % 3000;
      const data = pattern(len, i + 1);
      const kind = i % 3;
      // SEND and WRITE sources on a, READ sources on b; WRITEs land on b at the same offset, READs on a.
      if (kind === 2) fill(b, 0x80000 + i * 4096, data);
      else fill(a, 0x80000 + i * 4096, data);
      return { kind, len, data, i };
    });
    const wr = (w: (typeof wrs)[number]) => ({ op: [R.WrOp.SEND, R.WrOp.WRITE, R.WrOp.READ][w.kind]!, wrid: w.i, off: 0x80000 + w.i * 4096, len: w.len, rkey: b.key, roff: 0x80000 + w.i * 4096 });
    expect(postSend(a, wrs.slice(0, 40).map(wr))).toBe(40);
    const aDone: Cqe[] = [], bDone: Cqe[] = [];
    let posted = 40;
    run(p, () => {
      aDone.push(...poll(a)); bDone.push(...poll(b));
      if (posted < N && aDone.length >= posted - 30) {
        expect(postSend(a, wrs.slice(posted, N).map(wr))).toBe(N - posted);
        posted = N;
      }
      return aDone.length === N;
    }, 200_000);
    expect(aDone.map((c) => [c.wrid, c.status])).toEqual(wrs.map((w) => [w.i, R.WcStatus.SUCCESS]));
    const sends = wrs.filter((w) => w.kind === 0);
    expect(bDone.map((c) => [c.wrid, c.len])).toEqual(sends.map((w, k) => [5000 + k, w.len]));
    sends.forEach((w, k) => expect(ram(b, k * 4096, w.len)).toEqual(w.data));
    wrs.filter((w) => w.kind === 1).forEach((w) => expect(ram(b, 0x80000 + w.i * 4096, w.len)).toEqual(w.data));
    wrs.filter((w) => w.kind === 2).forEach((w) => expect(ram(a, 0x80000 + w.i * 4096, w.len)).toEqual(w.data));
    const s = p.link.stats();
    expect(s.ab.lost + s.ba.lost).toBeGreaterThan(5);
    expect(s.ab.duplicated + s.ba.duplicated).toBeGreaterThan(5);
    const ca = counters(a), cb = counters(b);
    expect(ca.rdma_rc_resends).toBeGreaterThan(0);
    expect(cb.rdma_rx_duplicate + ca.rdma_rx_duplicate).toBeGreaterThan(0);
    expect(ca.err_rdma_retry_exceeded).toBe(0);
    expect(a.c.fw.rdmaQpState(a.qpn)).toBe(QpState.RTS);
  });

  it("deterministic: the same seed gives the same frames, counters and completions; another seed does not", async () => {
    const once = async (seed: number) => {
      const frames: string[] = [];
      const p = await pair({ mtu: 256, seed, link: { latencyNs: 1500, loss: 0.05, reorder: 0.05, duplicate: 0.05 } });
      postRecv(p.b, Array.from({ length: 10 }, (_, i) => ({ wrid: i, off: i * 4096, len: 4096 })));
      postSend(p.a, Array.from({ length: 20 }, (_, i) => ({ op: [R.WrOp.SEND, R.WrOp.WRITE, R.WrOp.READ][i % 3]!, wrid: i, off: i * 4096, len: 700 + i * 37, rkey: p.b.key, roff: 0x80000 + i * 4096 })));
      const done: Cqe[] = [];
      run(p, () => {
        for (const s of [p.a, p.b]) {
          const dv = s.c.dv, prod = dv.getUint32(M.NET_RX_CTRL, true);
          for (let k = dv.getUint32(M.NET_RX_CTRL + 4, true); k !== prod; k = (k + 1) >>> 0) {
            const at = M.NET_RX_SLOTS + (k % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
            frames.push(`${p.now} ${Buffer.from(s.c.u8.subarray(at + M.NET_SLOT_HDR, at + M.NET_SLOT_HDR + dv.getUint32(at, true))).toString("hex")}`);
          }
        }
        done.push(...poll(p.a));
        return done.length === 20;
      }, 100_000);
      return { frames, done, ca: counters(p.a), cb: counters(p.b) };
    };
    const x = await once(3), y = await once(3), z = await once(4);
    expect(x.done.every((c) => c.status === R.WcStatus.SUCCESS)).toBe(true);
    expect(x.frames.length).toBeGreaterThan(100);
    expect(y.frames).toEqual(x.frames);
    expect(y.ca).toEqual(x.ca);
    expect(y.cb).toEqual(x.cb);
    expect(z.frames).not.toEqual(x.frames);
  });

  it("a lost packet inside a message: the responder NAKs a PSN sequence error once, the requester goes back to that PSN", async () => {
    const p = await pair({ mtu: 256, timeoutNs: 1e9 }); // timer out of reach: only the NAK can recover
    const { a, b } = p;
    const data = pattern(256 * 10, 3);
    fill(a, 0, data);
    postRecv(b, [{ wrid: 1, off: 0, len: 4096 }]);
    const lostPsn = 100 + 2; // the third packet of the SEND
    p.link.inject({ kind: "drop", dir: "ab", match: (f) => psnOf(f) === lostPsn && opOf(f) === 0x01 });
    postSend(a, [{ op: R.WrOp.SEND, wrid: 7, off: 0, len: data.length }]);
    const aDone: Cqe[] = [], bDone: Cqe[] = [];
    run(p, () => (aDone.push(...poll(a)), bDone.push(...poll(b)), aDone.length === 1), 2000);
    expect(aDone).toMatchObject([{ wrid: 7, status: R.WcStatus.SUCCESS }]);
    expect(bDone).toMatchObject([{ wrid: 1, len: data.length }]);
    expect(ram(b, 0, data.length)).toEqual(data);
    const cb = counters(b), ca = counters(a);
    expect(cb.rdma_rc_naks_sent).toBe(1); // once, though 7 later packets were out of sequence
    expect(cb.err_rdma_psn_out_of_seq).toBe(7);
    expect(ca.rdma_rc_resends).toBe(1);
    expect(ca.rdma_rc_timeouts).toBe(0);
  });

  it("no receive posted: RNR NAK, the requester waits and retries; once a receive is posted the SEND completes", async () => {
    const p = await pair({ mtu: 1024 });
    const { a, b } = p;
    const data = pattern(3000, 9);
    fill(a, 0, data);
    postSend(a, [{ op: R.WrOp.SEND, wrid: 1, off: 0, len: data.length }]);
    const aDone: Cqe[] = [];
    run(p, () => (aDone.push(...poll(a)), false), 300);
    expect(aDone).toEqual([]);
    expect(counters(b).rdma_rc_rnr_naks_sent).toBeGreaterThan(3);
    expect(counters(b).err_rdma_rnr).toBe(counters(b).rdma_rc_rnr_naks_sent);
    expect(counters(a).rdma_rc_rnr_waits).toBe(counters(b).rdma_rc_rnr_naks_sent);
    postRecv(b, [{ wrid: 2, off: 0x1000, len: 4096 }]);
    const bDone: Cqe[] = [];
    run(p, () => (aDone.push(...poll(a)), bDone.push(...poll(b)), aDone.length === 1));
    expect(aDone).toMatchObject([{ wrid: 1, status: R.WcStatus.SUCCESS }]);
    expect(bDone).toMatchObject([{ wrid: 2, len: 3000, status: R.WcStatus.SUCCESS }]);
    expect(ram(b, 0x1000, 3000)).toEqual(data);
  });

  it("RNR retry count spent: RNR_RETRY_EXC_ERR and the QP in ERR", async () => {
    const p = await pair({ rnrRetry: 2 });
    postSend(p.a, [{ op: R.WrOp.SEND, wrid: 1, off: 0, len: 10 }]);
    const aDone: Cqe[] = [];
    run(p, () => (aDone.push(...poll(p.a)), aDone.length === 1), 2000);
    expect(aDone).toMatchObject([{ wrid: 1, status: R.WcStatus.RNR_RETRY_EXC_ERR }]);
    expect(counters(p.b).rdma_rc_rnr_naks_sent).toBe(3);
    expect(p.a.c.fw.rdmaQpState(p.a.qpn)).toBe(QpState.ERR);
  });

  for (const [what, wr, reason] of [
    ["a bad R_Key on a WRITE", (k: number) => ({ op: R.WrOp.WRITE, rkey: (k + 0x100) >>> 0, roff: 0 }), "err_rdma_bad_rkey"],
    ["a READ past the end of the region", (k: number) => ({ op: R.WrOp.READ, rkey: k, roff: (1 << 20) - 100 }), "err_rdma_mr_bounds"],
    ["a WRITE whose VA is below the region", (k: number) => ({ op: R.WrOp.WRITE, rkey: k, raddr: VA0 - 1n }), "err_rdma_mr_bounds"],
    ["a WRITE whose VA + length wraps 64 bits", (k: number) => ({ op: R.WrOp.WRITE, rkey: k, raddr: 0xffffffffffffff80n }), "err_rdma_mr_bounds"],
  ] as const) {
    it(`${what}: NAK remote access error, REM_ACCESS_ERR on the requester, later requests flushed, target memory untouched`, async () => {
      const p = await pair();
      const { a, b } = p;
      fill(a, 0, pattern(200, 1));
      const before = Buffer.from(ram(b, 0, 1 << 20));
      postSend(a, [{ wrid: 1, off: 0, len: 200, ...wr(b.key) }, { op: R.WrOp.WRITE, wrid: 2, off: 0, len: 8, rkey: b.key, roff: 0 }]);
      const aDone: Cqe[] = [];
      run(p, () => (aDone.push(...poll(a)), aDone.length === 2), 2000);
      expect(aDone).toMatchObject([{ wrid: 1, status: R.WcStatus.REM_ACCESS_ERR }, { wrid: 2, status: R.WcStatus.WR_FLUSH_ERR }]);
      expect(counters(b)[reason]).toBeGreaterThanOrEqual(1);
      expect(counters(b).rdma_rc_naks_sent).toBeGreaterThanOrEqual(1);
      expect(counters(a).err_rdma_remote_nak).toBe(1);
      expect(a.c.fw.rdmaQpState(a.qpn)).toBe(QpState.ERR);
      expect(Buffer.from(ram(b, 0, 1 << 20)).equals(before)).toBe(true);
    });
  }

  it("a region without REMOTE_WRITE refuses a WRITE (remote access error); a local buffer outside every region fails with LOC_PROT_ERR", async () => {
    const p = await pair({ access: R.MR_LOCAL_WRITE | R.MR_REMOTE_READ });
    postSend(p.a, [{ op: R.WrOp.WRITE, wrid: 1, off: 0, len: 16, rkey: p.b.key, roff: 0 }]);
    const aDone: Cqe[] = [];
    run(p, () => (aDone.push(...poll(p.a)), aDone.length === 1), 2000);
    expect(aDone).toMatchObject([{ wrid: 1, status: R.WcStatus.REM_ACCESS_ERR }]);
    expect(counters(p.b).err_rdma_mr_access).toBe(1);
    // Local protection: the buffer runs past the end of the requester's region.
    const q = await pair();
    postSend(q.a, [{ op: R.WrOp.SEND, wrid: 1, off: (1 << 20) - 8, len: 16 }]);
    const done: Cqe[] = [];
    run(q, () => (done.push(...poll(q.a)), done.length === 1), 100);
    expect(done).toMatchObject([{ wrid: 1, status: R.WcStatus.LOC_PROT_ERR }]);
    expect(counters(q.a).err_rdma_bad_wqe).toBe(1);
    expect(counters(q.a).rdma_tx_frames).toBe(0);
  });

  it("retry count spent on a dead link: RETRY_EXC_ERR after retry_cnt resends, the QP in ERR, the rest flushed", async () => {
    const p = await pair({ retry: 3, timeoutNs: 10_000 });
    p.link.setUp(false);
    postRecv(p.b, [{ wrid: 9, off: 0, len: 100 }]);
    postSend(p.a, [{ op: R.WrOp.SEND, wrid: 1, off: 0, len: 100 }, { op: R.WrOp.READ, wrid: 2, off: 0, len: 100, rkey: p.b.key, roff: 0 }]);
    const aDone: Cqe[] = [];
    // Idle between timeouts: the host jumps its clock to the next deadline (one step each).
    run(p, () => false, 1); // both WQEs go out at 1 µs, into a dead link
    const t0 = p.now;
    expect(p.a.c.fw.rdmaRcNextDeadline()).toBe(1000 + 10_000); // sent at 1 µs, 10 µs timeout
    for (let i = 0; i < 4; i++) {
      p.now = p.a.c.fw.rdmaRcNextDeadline() - 1000;
      expect(p.now).toBeGreaterThan(t0 - 1);
      run(p, () => false, 1);
    }
    expect(p.a.c.fw.rdmaRcNextDeadline()).toBe(Infinity);
    aDone.push(...poll(p.a));
    expect(aDone).toMatchObject([{ wrid: 1, status: R.WcStatus.RETRY_EXC_ERR }, { wrid: 2, status: R.WcStatus.WR_FLUSH_ERR }]);
    const ca = counters(p.a);
    expect(ca.rdma_rc_timeouts).toBe(4); // three retries, then the fourth timeout gives up
    expect(ca.rdma_rc_resends).toBe(3);
    expect(ca.err_rdma_retry_exceeded).toBe(1);
    expect(p.a.c.fw.rdmaQpState(p.a.qpn)).toBe(QpState.ERR);
    // A QP in ERR flushes what is posted later.
    postSend(p.a, [{ op: R.WrOp.SEND, wrid: 3, off: 0, len: 1 }]);
    run(p, () => (aDone.push(...poll(p.a)), aDone.length === 3), 10);
    expect(aDone[2]).toMatchObject({ wrid: 3, status: R.WcStatus.WR_FLUSH_ERR });
  });
});
