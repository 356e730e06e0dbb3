// The DPU's NVMe-oF host survives a lost connection: the firmware holds the requests of a queue
// whose QP broke (DREQ from the target, QP in ERR, retry exhaustion on a dead link), the
// NvmfReconnector brings the queue back over RDMA-CM + Fabrics Connect, and every request
// completes exactly once with the right data; a target that will not take the queue back gets
// the held requests failed (IOERR) after maxAttempts, never a hang.
import { describe, it, expect } from "vitest";
import { world, bringUp, pattern, BlkOp, F, S, HOSTNQN, SUBNQN, type World } from "./target.js";
import { TARGET } from "../rdma/cm-pair.js";
import { NvmfReconnector, type ReconnectorOptions } from "../../host/nvmeof/reconnect.js";
import type { NvmfController } from "../../host/nvmeof/initiator.js";

const BLK_S_IOERR = 1;
const BS = 512;

interface Rig { w: World; ctrl: NvmfController; rec: NvmfReconnector }

/** A world with the controller up and a reconnector stepped after every round. */
async function rig(o: Partial<ReconnectorOptions> = {}, depth = 32, wo: Parameters<typeof world>[0] = {}): Promise<Rig> {
  const w = await world(wo);
  const ctrl = bringUp(w, { depth });
  const rec = new NvmfReconnector({ card: w.host, target: { ip: TARGET.ip, mac: TARGET.mac, subnqn: SUBNQN }, hostnqn: HOSTNQN, controllers: [ctrl], ...o });
  const inner = w.step;
  w.step = () => { inner(); rec.step(w.now); };
  return { w, ctrl, rec };
}

const ioCapsules = (w: World) => w.target.capsules.filter((c) => c.qid === 1 && c.opc !== F.OPC_FABRICS);
const ioConnects = (w: World) => w.target.capsules.filter((c) => c.qid === 1 && c.opc === F.OPC_FABRICS);

interface Io { op: BlkOp; lba: number; n: number; gpa: number; data: Uint8Array }

/**
 * Reads and writes on disjoint blocks, half of each: reads of blocks the target holds a
 * pattern in, writes of a pattern from guest RAM (keyed 4 KiB and in-capsule 512 B).
 */
function mixed(w: World, count: number, seed: number, lba0 = 0): Io[] {
  const g = w.host.guests[0]!;
  const ios: Io[] = [];
  for (let i = 0; i < count; i++) {
    const n = i % 4 === 3 ? 1 : 8, lba = lba0 + 64 * i, len = n * BS, gpa = g.alloc(len, 4096);
    const data = pattern(len, seed + i);
    const op = i % 2 === 0 ? BlkOp.READ : BlkOp.WRITE;
    if (op === BlkOp.READ) { w.target.disk.set(data, lba * BS); g.u8.fill(0, gpa, gpa + len); } else g.u8.set(data, gpa);
    ios.push({ op, lba, n, gpa, data });
  }
  return ios;
}

function submit(w: World, ios: Io[], tag0 = 0): void {
  ios.forEach((io, i) => expect(w.drv.submit(io.op, io.lba, io.n, io.gpa, tag0 + i)).toBe(true));
  w.drv.kick();
}

/** Every IO's data where it belongs: read data in guest RAM, written data on the target's disk. */
function verify(w: World, ios: Io[]): void {
  const g = w.host.guests[0]!;
  for (const io of ios) {
    const len = io.n * BS;
    const got = io.op === BlkOp.READ ? g.u8.subarray(io.gpa, io.gpa + len) : w.target.disk.subarray(io.lba * BS, io.lba * BS + len);
    expect(Buffer.compare(got, io.data)).toBe(0);
  }
}

/** Step until n completions, keyed by tag; fails on a tag completed twice. */
function complete(w: World, n: number, maxSteps = 20_000): Map<number, number> {
  const done = new Map<number, number>();
  for (let i = 0; i < maxSteps && done.size < n; i++) {
    w.step();
    w.drv.reap((tag, st) => { expect(done.has(tag)).toBe(false); done.set(tag, st); });
  }
  expect(done.size).toBe(n);
  return done;
}

/** Nothing more completes (no request answered twice) over `rounds` more rounds. */
function quiet(w: World, rounds = 300): void {
  let extra = 0;
  for (let i = 0; i < rounds; i++) { w.step(); extra += w.drv.reap(() => {}); }
  expect(extra).toBe(0);
  expect(w.host.inFlight()).toBe(0);
}

/** Hold 8 mixed IOs unanswered at the target; returns them once their capsules arrived. */
function inFlight(w: World, seed: number): Io[] {
  const ios = mixed(w, 8, seed);
  w.target.hold = true;
  submit(w, ios);
  for (let i = 0; i < 50 && ioCapsules(w).length < 8; i++) w.step();
  expect(ioCapsules(w).length).toBe(8);
  return ios;
}

describe("NVMe-oF host: a lost connection is reconnected and its requests resubmitted", () => {
  it("DREQ from the target with reads and writes in flight: the queue comes back, each request completes once with the right data", async () => {
    const { w, rec } = await rig();
    const ios = inFlight(w, 100);
    const oldCids = ioCapsules(w).map((c) => c.cid);
    w.target.hold = false; // the held commands die with their connection
    w.target.disconnect(1);
    const st = complete(w, 8);
    expect([...st.values()]).toEqual(Array(8).fill(0));
    verify(w, ios);
    quiet(w);
    expect(ioConnects(w).length).toBe(2); // the first Connect, and the reconnect's
    expect(ioCapsules(w).length).toBe(16); // each command once per connection
    expect(w.host.fw.nvmfQueueState(1)).toBe(F.NvmfQueueState.LIVE);
    const s = rec.stats();
    expect([s.reconnects, s.resubmitted, s.failed]).toEqual([1, 8, 0]);
    expect(s.events).toHaveLength(1);
    const e = s.events[0]!;
    expect([e.queue, e.qid, e.attempts, e.outcome]).toEqual([1, 1, 1, "reconnected"]);
    expect(e.liveAt!).toBeGreaterThan(e.lostAt);
    expect(e.firstDoneAt!).toBeGreaterThan(e.liveAt!);
    expect(e.stallNs).toBe(e.firstDoneAt! - e.lostAt);
    const c = w.host.counters();
    expect([c.nvmf_queue_lost, c.nvmf_held, c.nvmf_resubmitted]).toEqual([1, 8, 8]);
    expect(w.host.errors()).toEqual({ err_nvmf_send_failed: 1 }); // the flushed work request that revealed the loss
    // A late answer naming a command of the old connection completes nothing (new CIDs).
    const newCids = ioCapsules(w).slice(8).map((x) => x.cid);
    expect(newCids.some((cid) => oldCids.includes(cid))).toBe(false);
    w.target.sendRaw(1, cqe(1, oldCids[0]!));
    quiet(w, 50);
    expect(w.host.errors()).toEqual({ err_nvmf_send_failed: 1, err_nvmf_stale_response: 1 });
  });

  it("under loss, reordering and duplication (seeded): DREQ or QP error mid-IO, every request once with the right data", async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const { w, rec, ctrl } = await rig({}, 32, { seed, link: { loss: 0.02, reorder: 0.02, duplicate: 0.02 } });
      const ios = mixed(w, 16, 1000 * seed);
      submit(w, ios);
      for (let i = 0; i < 3 + seed; i++) w.step(); // some answered, some not, some not even sent
      if (seed % 2) w.target.disconnect(1);
      else w.host.fw.rdmaQpModify(w.host.dv.getUint32(w.host.fw.rdmaCmConnAddr(ctrl.cmIds[1]!) + 16, true), 4, 0, 0, 0);
      const st = complete(w, 16);
      expect([...st.values()]).toEqual(Array(16).fill(0));
      verify(w, ios);
      quiet(w);
      const s = rec.stats();
      expect([s.reconnects, s.failed]).toEqual([1, 0]);
      expect(s.resubmitted).toBe(w.host.counters().nvmf_held);
      expect(s.resubmitted).toBeGreaterThan(0);
    }
  });

  it("the host's QP forced to ERR (flushed work requests): the old connection is released, the queue comes back", async () => {
    const { w, rec, ctrl } = await rig();
    const ios = inFlight(w, 200);
    w.target.hold = false;
    const oldId = ctrl.cmIds[1]!;
    const qpn = w.host.dv.getUint32(w.host.fw.rdmaCmConnAddr(oldId) + 16, true); // CN_LOCAL_QPN
    expect(w.host.fw.rdmaQpModify(qpn, 4 /* ERR */, 0, 0, 0)).toBe(0);
    const st = complete(w, 8);
    expect([...st.values()]).toEqual(Array(8).fill(0));
    verify(w, ios);
    quiet(w);
    expect(ctrl.cmIds[1]).not.toBe(oldId); // the association names the new connection
    expect(w.host.fw.rdmaCmState(ctrl.cmIds[1]!)).toBe(6); // ESTABLISHED
    expect(rec.stats()).toMatchObject({ reconnects: 1, resubmitted: 8, failed: 0 });
  });

  it("the target's QP dies silently after acknowledging the commands: the I/O timeout declares the connection lost, the queue comes back", async () => {
    const { w, rec } = await rig({ ioTimeoutNs: 500_000 });
    const ios = inFlight(w, 250);
    w.target.hold = false;
    for (let i = 0; i < 20; i++) w.step(); // the SENDs are acknowledged: the host's QP has nothing to retry
    w.target.breakQp(1);
    const t0 = w.now;
    const st = complete(w, 8);
    expect([...st.values()]).toEqual(Array(8).fill(0));
    verify(w, ios);
    quiet(w);
    const s = rec.stats(), e = s.events[0]!;
    expect([s.reconnects, s.resubmitted, e.outcome]).toEqual([1, 8, "reconnected"]);
    expect(e.lostAt - t0).toBeGreaterThanOrEqual(500_000 - 50_000); // declared by the timeout, counted from the last command out
    expect(e.lostAt - t0).toBeLessThan(500_000 + 10_000);
    expect(w.host.errors()).toEqual({}); // no work request failed: the host dropped the connection itself
  });

  it("the link down long enough for retry exhaustion: the queue reconnects once the link is back", async () => {
    const { w, rec } = await rig();
    const ios = mixed(w, 8, 300);
    w.link.setUp(false);
    submit(w, ios); // the capsules go out into a dead link: the RC engine gives up, the QP goes to ERR
    for (let i = 0; i < 3000 && w.host.fw.nvmfQueueState(1) === F.NvmfQueueState.LIVE; i++) w.step();
    expect(w.host.fw.nvmfQueueState(1)).not.toBe(F.NvmfQueueState.LIVE);
    expect(w.host.errors().err_rdma_retry_exceeded).toBe(1);
    for (let i = 0; i < 2000; i++) w.step(); // 2 ms more of outage: attempts time out meanwhile
    w.link.setUp(true);
    const st = complete(w, 8);
    expect([...st.values()]).toEqual(Array(8).fill(0));
    verify(w, ios);
    quiet(w);
    const s = rec.stats(), e = s.events[0]!;
    expect([s.reconnects, s.resubmitted, s.failed, e.outcome]).toEqual([1, 8, 0, "reconnected"]);
    expect(e.attempts).toBeGreaterThan(1);
    expect(e.stallNs!).toBeGreaterThan(2_000_000);
  });

  it("requests issued during the outage wait and complete after the reconnect, in order with the held ones", async () => {
    const { w, rec } = await rig();
    const ios = inFlight(w, 400);
    w.target.hold = false;
    w.target.refuseIoConnects = 2; // two attempts fail: the outage lasts two retry delays
    w.target.disconnect(1);
    for (let i = 0; i < 50; i++) w.step();
    expect(w.host.fw.nvmfQueueState(1)).not.toBe(F.NvmfQueueState.LIVE);
    const more = mixed(w, 8, 500, 1024);
    submit(w, more, 100);
    for (let i = 0; i < 20; i++) { w.step(); expect(w.drv.reap(() => {})).toBe(0); } // they wait, nothing fails
    const st = complete(w, 16);
    expect([...st.values()]).toEqual(Array(16).fill(0));
    verify(w, [...ios, ...more]);
    quiet(w);
    // On the new connection the held requests went out first, then the ones that came meanwhile.
    const lbas = (x: Io[]) => x.map((io) => io.lba).sort((p, q) => p - q);
    const resent = ioCapsules(w).slice(8).map((c) => Number(c.slba));
    expect([resent.slice(0, 8).sort((p, q) => p - q), resent.slice(8).sort((p, q) => p - q)]).toEqual([lbas(ios), lbas(more)]);
    const s = rec.stats();
    expect([s.reconnects, s.resubmitted, s.failed, s.events[0]!.attempts]).toEqual([1, 8, 0, 3]);
    expect(ioConnects(w).length).toBe(4); // first bring-up, two refused, one accepted
    expect(w.host.counters().nvmf_waited).toBeGreaterThanOrEqual(8);
  });

  it("a target that refuses the reconnect: the held requests fail (IOERR) after maxAttempts, later ones too, no hang", async () => {
    const { w, rec } = await rig({ maxAttempts: 3 });
    inFlight(w, 600);
    w.target.hold = false;
    w.target.refuseIoConnects = 1000;
    w.target.disconnect(1);
    const st = complete(w, 8);
    expect([...st.values()]).toEqual(Array(8).fill(BLK_S_IOERR));
    expect(w.host.fw.nvmfQueueState(1)).toBe(F.NvmfQueueState.FAILED);
    const s = rec.stats(), e = s.events[0]!;
    expect([s.reconnects, s.resubmitted, s.failed, e.attempts, e.outcome]).toEqual([0, 0, 8, 3, "failed"]);
    expect(ioConnects(w).length).toBe(4);
    expect(w.host.errors().err_nvmf_queue_down).toBe(8);
    const g = w.host.guests[0]!, buf = g.alloc(4096);
    expect(w.drv.submit(BlkOp.READ, 0, 8, buf, 99)).toBe(true);
    w.drv.kick();
    expect([...complete(w, 1).values()]).toEqual([BLK_S_IOERR]);
    quiet(w);
  });

  it("a target that stops listening (RDMA-CM REJ) and never answers: the requests fail once giveUpNs has passed", async () => {
    const { w, rec } = await rig({ maxAttempts: 1000, giveUpNs: 1_000_000 });
    inFlight(w, 700);
    w.target.hold = false;
    w.target.listen(false);
    w.target.disconnect(1);
    const st = complete(w, 8);
    expect([...st.values()]).toEqual(Array(8).fill(BLK_S_IOERR));
    const e = rec.stats().events[0]!;
    expect(e.outcome).toBe("failed");
    expect(e.attempts).toBeGreaterThan(2); // REJ after REJ, every retry delay, until the deadline
    expect(w.now - e.lostAt).toBeLessThan(1_000_000 + 20_000);
    expect(w.host.counters().cm_rejects_received).toBe(e.attempts);
    quiet(w);
  });

  it("admin and I/O queue lost: the admin queue reconnects first as a new association, the I/O queue joins it", async () => {
    const { w, rec, ctrl } = await rig();
    w.target.newCntlidPerAdmin = true;
    const old = ctrl.cntlid;
    const ios = inFlight(w, 800);
    w.target.hold = false;
    w.target.disconnect(0); // the admin queue only: the host drops its I/O queue and reconnects both
    const st = complete(w, 8);
    expect([...st.values()]).toEqual(Array(8).fill(0));
    verify(w, ios);
    quiet(w);
    expect(ctrl.cntlid).toBe(old + 1);
    const connects = w.target.capsules.filter((c) => c.opc === F.OPC_FABRICS && c.bytes[F.FAB_FCTYPE] === F.FCTYPE_CONNECT);
    const cntlidOf = (c: { bytes: Uint8Array }) => new DataView(c.bytes.buffer).getUint16(S.SQE_SIZE + F.CD_CNTLID, true);
    expect(connects.map((c) => [c.qid, cntlidOf(c)])).toEqual([[0, 0xffff], [1, old], [0, 0xffff], [1, old + 1]]);
    const s = rec.stats();
    expect(s.events.map((e) => [e.qid, e.outcome])).toEqual([[0, "reconnected"], [1, "reconnected"]]);
    expect([s.reconnects, s.resubmitted]).toEqual([2, 8]);
    expect(w.target.cc & 1).toBe(1); // the new controller was enabled
  });
});

function cqe(sqid: number, cid: number, status = 0): Uint8Array {
  const b = new Uint8Array(16), dv = new DataView(b.buffer);
  dv.setUint32(S.CQE_DW2, (sqid << 16) >>> 0, true);
  dv.setUint32(S.CQE_DW3, (cid | (status << S.CQE_STATUS_SHIFT)) >>> 0, true);
  return b;
}
