// Shared connectors: the link to a storage controller cut at every stage of a read and of a
// write, with a scripted NVMe-oF host on the other card. What the host relies on: each command
// answered exactly once with success, the data byte-exact, its QP still in RTS with PSNs
// continuous, no CM event; failback; no live controller → retryable error responses, not hangs;
// the reconnecting baseline disconnects instead.
import { describe, it, expect } from "vitest";
import { host, command, run, DATA, type Host } from "./host.js";
import { postSend, postRecv, poll, R as RC, QpState } from "../rdma/rc-setup.js";
import { CW } from "../rdma/cm-pair.js";
import { capsule, connect, propertySet, pattern, parseCqe, CC_ENABLE, S, F, type Cqe } from "./nvmf.js";
import * as R from "../../assembly/nvme/regs.js";
import * as M from "../../assembly/memmap.js";
import * as N from "../../assembly/nic/defs.js";
import { VA0 } from "../rdma/rc-setup.js";
import { StorageNic } from "../../host/target/nic.js";

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;
const io = (opc: number, cid: number, slba: number, nlb: number, off: number, len: number, key: number) =>
  capsule({ opc, cid, nsid: 1, slba: BigInt(slba), cdw12: nlb - 1, sgl: { keyed: true, addr: VA0 + BigInt(DATA + off), len, key } });

function bringUp(h: Host): number {
  const c = command(h, 0, connect(1, 0, 31, F.CNTLID_DYNAMIC));
  expect(c.status).toBe(0);
  expect(command(h, 0, propertySet(2, R.NVME_REG_CC, CC_ENABLE)).status).toBe(0);
  for (let q = 1; q < h.q.length; q++) expect(command(h, q, connect(3, q, 31, c.dw0)).status).toBe(0);
  return c.dw0;
}

const tqpn = (h: Host, q: number) => h.nic.bindings().find((b) => b.qid === q)!.qpn;
const owner = (h: Host, q: number) => h.nic.card.dv.getUint8(M.NIC_BASE + N.NG_QP_CTRL + tqpn(h, q));

/** The connector entry of (target qpn, cid): stage and data packets sent; stage 0xff when none in flight. */
function entryOf(h: Host, qpn: number, cid: number): { stage: number; pkts: number } {
  const dv = h.nic.card.dv, r = dv.getUint8(M.NIC_BASE + N.NG_QP_RIDX + qpn);
  for (let i = r * M.NIC_RECV_DEPTH; i < (r + 1) * M.NIC_RECV_DEPTH; i++) {
    const e = M.NIC_CONN_BASE + i * M.NIC_CONN_ENTRY, st = dv.getUint8(e + N.CE_STATE);
    if (st !== N.ConnStage.DONE && dv.getUint16(e + N.CE_CID, true) === cid) return { stage: st, pkts: dv.getUint16(e + N.CE_PKTS, true) };
  }
  return { stage: 0xff, pkts: 0 };
}

let wrid = 1000;
const RESP = 0x10000 + 0x800; // response buffers of these tests (beside host.ts's), 8 × 64 B per queue
const recvs = new WeakMap<Host, Map<number, Map<number, number>>>(); // per host, per queue: posted RECV wrid → buffer offset
let slot = 0;

/**
 * Post a RECV (and on a queue's first use a spare one, which catches a duplicate response) and
 * SEND the capsule on queue q. Use cmd()/start() for every command of a queue once started.
 */
function start(h: Host, q: number, cap: Uint8Array, capSlot = 0): { q: number; cid: number } {
  const s = h.q[q]!;
  if (!recvs.has(h)) recvs.set(h, new Map());
  let m = recvs.get(h)!.get(q);
  const post = () => {
    const w = wrid++, off = RESP + q * 512 + (slot++ % 8) * 64;
    m!.set(w, off);
    expect(postRecv(s, [{ wrid: w, off, len: 64 }])).toBe(1);
  };
  if (!m) { m = new Map(); recvs.get(h)!.set(q, m); post(); }
  post();
  const at = 0x8000 + q * 0x1000 + capSlot * 0x100; // a capsule stays readable until acknowledged (RC may resend it)
  h.ram.set(cap, at);
  expect(postSend(s, [{ op: RC.WrOp.SEND, wrid: wrid++, off: at, len: cap.length }])).toBe(1);
  return { q, cid: cap[2]! | (cap[3]! << 8) };
}

/** Sub-steps of a round (StorageNic.step taken apart) with a small budget, until pred holds after one of them. */
function until(h: Host, pred: () => boolean, max = 5000): void {
  const fw = h.nic.card.fw, B = 2;
  const live = (k: number) => fw.nicCtrlLink(k) === N.CtrlLink.UP;
  for (let i = 0; i < max; i++) {
    h.p.now += 1000;
    h.p.fabric.step(h.p.now);
    h.p.host.fw.rdmaPoll(1024, h.p.now);
    h.nic.card.now = h.p.now;
    fw.rdmaPoll(B, h.p.now);
    if (pred()) return;
    let w = 0;
    for (let k = 0; k < h.nic.controllers.length; k++) if (live(k)) w += h.nic.controllers[k]!.step();
    if (pred()) return;
    if (w > 0) fw.nicPoll(B, h.p.now);
    if (pred()) return;
  }
  throw new Error("until: the stage was never reached");
}

const seen = new WeakMap<Host, Map<number, Cqe[]>>(); // per host, per queue: every response received

/** Run until the command's response arrived (by CID); it must come exactly once, and nothing on the host may fail. */
function finish(h: Host, t: { q: number; cid: number }): Cqe {
  const s = h.q[t.q]!, m = recvs.get(h)!.get(t.q)!;
  if (!seen.has(h)) seen.set(h, new Map());
  const all = seen.get(h)!.get(t.q) ?? [];
  seen.get(h)!.set(t.q, all);
  const mine = () => all.filter((c) => c.cid === t.cid);
  const take = () => {
    for (const c of poll(s)) {
      expect(c.status, "host completion status").toBe(0);
      const off = m.get(c.wrid);
      if (off === undefined) continue; // a SEND's completion
      m.delete(c.wrid);
      all.push(parseCqe(h.ram.slice(off, off + 16)));
    }
    return mine().length > 0;
  };
  run(h, take, 50_000);
  expect(mine().length, "the response arrived").toBeGreaterThan(0);
  run(h, () => { take(); return mine().length > 1; }, 3000); // a second response would land in the spare buffer
  expect(mine().length, "exactly one response").toBe(1);
  const r = mine()[0]!;
  all.splice(all.indexOf(r), 1);
  return r;
}
const cmd = (h: Host, q: number, cap: Uint8Array) => finish(h, start(h, q, cap));

/** The host's QP never noticed: RTS, CM still ESTABLISHED, every PSN the target sent accepted and acknowledged. */
function hostUnaware(h: Host, q: number): void {
  const hq = h.q[q]!.qpn, tq = tqpn(h, q), hfw = h.p.host.fw, tfw = h.nic.card.fw;
  run(h, () => h.nic.inFlight() === 0 && h.nic.nextDeadline() === Infinity, 20_000);
  expect(hfw.rdmaQpState(hq)).toBe(QpState.RTS);
  expect(tfw.rdmaQpState(tq)).toBe(QpState.RTS);
  expect(hfw.rdmaCmState(h.ids[q]!)).toBe(CW.CmState.ESTABLISHED);
  const ha = hfw.rdmaQpAddr(hq), ta = tfw.rdmaQpAddr(tq), dv = h.p.host.dv, tdv = h.nic.card.dv;
  expect(dv.getUint32(ha + 16, true), "host's expected PSN = target's next PSN").toBe(tdv.getUint32(ta + 36, true));
  expect(tdv.getUint32(ta + 40, true), "everything the target sent was acknowledged").toBe(tdv.getUint32(ta + 36, true));
}

const MTU = 1024, LEN = 16384, NLB = LEN / 512;
type Cut = { name: string; at: (h: Host, qpn: number, cid: number) => boolean };
const readCuts: Cut[] = [
  { name: "before data (WQEs written, not fetched)", at: (h, qpn, cid) => entryOf(h, qpn, cid).stage === N.ConnStage.RECEIVED && h.nic.controllers[0]!.inFlight() + h.nic.controllers[1]!.inFlight() > 0 },
  { name: "between data packets (6 of 16 sent)", at: (h, qpn, cid) => entryOf(h, qpn, cid).pkts >= 6 },
  { name: "after the data, before the response", at: (h, qpn, cid) => entryOf(h, qpn, cid).pkts === LEN / MTU && entryOf(h, qpn, cid).stage === N.ConnStage.DATA },
  { name: "with the response in flight", at: (h, qpn, cid) => entryOf(h, qpn, cid).stage === N.ConnStage.RESPONSE_PENDING },
];
const writeCuts: Cut[] = [
  { name: "before the READ", at: (h, qpn, cid) => entryOf(h, qpn, cid).stage === N.ConnStage.RECEIVED && h.nic.controllers[0]!.inFlight() + h.nic.controllers[1]!.inFlight() > 0 },
  { name: "with the READ in flight", at: (h, qpn, cid) => entryOf(h, qpn, cid).stage === N.ConnStage.READ_ISSUED },
  { name: "with the data read, not yet written", at: (h, qpn, cid) => entryOf(h, qpn, cid).stage === N.ConnStage.READ_DONE },
  { name: "with the response in flight", at: (h, qpn, cid) => entryOf(h, qpn, cid).stage === N.ConnStage.RESPONSE_PENDING },
];

describe("shared connectors: link cut at every stage, the host never notices", () => {
  for (const link of [{}, { loss: 0.03, reorder: 0.03 }]) {
    const tag = "loss" in link ? " (3% loss, 3% reorder)" : "";
    for (const cut of readCuts) {
      it(`read: cut ${cut.name}${tag}`, async () => {
        const h = await host({ mtu: MTU, queues: 2, link, seed: 11 });
        bringUp(h);
        const data = pattern(LEN, 5);
        h.disk.set(data, 64 * 512);
        const k = owner(h, 1), qpn = tqpn(h, 1);
        const t = start(h, 1, io(S.IO_READ, 70, 64, NLB, 0x40000, LEN, h.key));
        until(h, () => cut.at(h, qpn, 70));
        const before = entryOf(h, qpn, 70);
        h.nic.linkDown(k);
        const r = finish(h, t);
        expect(r).toMatchObject({ cid: 70, status: 0, sqid: 1 });
        expect(same(h.ram.subarray(DATA + 0x40000, DATA + 0x40000 + LEN), data), "data byte-exact").toBe(true);
        expect(owner(h, 1)).toBe(1 - k);
        const f = h.nic.failovers();
        expect(f.takeovers).toBe(1);
        expect(f.commandsMoved).toBe(before.stage === N.ConnStage.RESPONSE_PENDING ? 0 : 1);
        expect(f.packetsSkipped).toBe(before.stage === N.ConnStage.RESPONSE_PENDING ? 0 : before.pkts);
        hostUnaware(h, 1);
        if (!("loss" in link)) expect(h.p.host.errors()).toEqual({});
        // The QP goes on: another read on it, served by the standby.
        h.ram.fill(0, DATA, DATA + LEN);
        expect(cmd(h, 1, io(S.IO_READ, 71, 64, NLB, 0, LEN, h.key)).status).toBe(0);
        expect(same(h.ram.subarray(DATA, DATA + LEN), data)).toBe(true);
      });
    }
    for (const cut of writeCuts) {
      it(`write: cut ${cut.name}${tag}`, async () => {
        const h = await host({ mtu: MTU, queues: 2, link, seed: 12 });
        bringUp(h);
        const data = pattern(LEN, 6);
        h.ram.set(data, DATA);
        const k = owner(h, 1), qpn = tqpn(h, 1);
        const t = start(h, 1, io(S.IO_WRITE, 80, 128, NLB, 0, LEN, h.key));
        until(h, () => cut.at(h, qpn, 80));
        h.nic.linkDown(k);
        expect(finish(h, t)).toMatchObject({ cid: 80, status: 0, sqid: 1 });
        expect(same(h.disk.subarray(128 * 512, 128 * 512 + LEN), data), "written byte-exact").toBe(true);
        hostUnaware(h, 1);
        if (!("loss" in link)) expect(h.p.host.errors()).toEqual({});
        h.ram.fill(0, DATA + 0x40000, DATA + 0x40000 + LEN);
        expect(cmd(h, 1, io(S.IO_READ, 81, 128, NLB, 0x40000, LEN, h.key)).status).toBe(0);
        expect(same(h.ram.subarray(DATA + 0x40000, DATA + 0x40000 + LEN), data)).toBe(true);
      });
    }
  }

  it("in-capsule write: cut after the controller wrote its response, before the NIC fetched it; the standby writes again from the held capsule", async () => {
    const h = await host({ mtu: 4096, queues: 2 });
    bringUp(h);
    const data = pattern(2048, 16), k = owner(h, 1), qpn = tqpn(h, 1);
    const t = start(h, 1, capsule({ opc: S.IO_WRITE, cid: 85, nsid: 1, slba: 900n, cdw12: 3, sgl: { inline: true, len: 2048 }, data }));
    until(h, () => entryOf(h, qpn, 85).stage === N.ConnStage.RECEIVED && h.nic.controllers[k]!.inFlight() > 0);
    h.disk.fill(0, 900 * 512, 904 * 512); // what k wrote does not count: the standby must write it again
    h.nic.linkDown(k);
    expect(finish(h, t)).toMatchObject({ cid: 85, status: 0 });
    expect(same(h.disk.subarray(900 * 512, 904 * 512), data)).toBe(true);
    expect(h.nic.failovers()).toMatchObject({ commandsMoved: 1, wqesDiscarded: 1 });
    hostUnaware(h, 1);
  });

  it("many commands in flight on two queues when A's link drops: each answered once, all data exact", async () => {
    const h = await host({ mtu: MTU, queues: 3, link: { loss: 0.01, reorder: 0.02 }, seed: 13 });
    bringUp(h);
    const reads: { t: ReturnType<typeof start>; off: number; want: Uint8Array }[] = [];
    for (let i = 0; i < 4; i++) h.disk.set(pattern(8192, 40 + i), (512 + i * 16) * 512);
    // queue 1 and queue 2 each one read at a time (the rig's capsule slot is per queue); cut mid-flight
    const qs = [1, 2];
    const a = owner(h, 1) === 0 ? 1 : 2; // the queue on controller A
    for (const q of qs) {
      const i = q - 1;
      const t = start(h, q, io(S.IO_READ, 90 + q, 512 + i * 16, 16, 0x10000 * q, 8192, h.key));
      reads.push({ t, off: 0x10000 * q, want: pattern(8192, 40 + i) });
    }
    until(h, () => entryOf(h, tqpn(h, a), 90 + a).pkts >= 2);
    h.nic.linkDown(0);
    for (const r of reads) {
      expect(finish(h, r.t).status).toBe(0);
      expect(same(h.ram.subarray(DATA + r.off, DATA + r.off + 8192), r.want)).toBe(true);
    }
    expect(h.nic.failovers().controllers.map((c) => [c.name, c.nic])).toEqual([["A", "lost"], ["B", "up"]]);
    expect(["A", "B", "C", "a"].map((n) => h.nic.indexOf(n))).toEqual([0, 1, -1, -1]);
    hostUnaware(h, 1);
    hostUnaware(h, 2);
  });
});

describe("heartbeat, failback, no live controller, baseline", () => {
  it("a crashed controller is found by its heartbeat; its commands complete on the standby; restart brings it back (failback)", async () => {
    const h = await host({ mtu: MTU, queues: 2, heartbeatNs: 50_000 });
    bringUp(h);
    const data = pattern(LEN, 7);
    h.disk.set(data, 300 * 512);
    const k = owner(h, 1);
    const events: unknown[] = [];
    h.nic.onEvent = (e) => events.push(e);
    h.nic.crash(k);
    const t0 = h.p.now;
    const t = start(h, 1, io(S.IO_READ, 100, 300, NLB, 0, LEN, h.key));
    const r = finish(h, t);
    expect(r.status).toBe(0);
    expect(same(h.ram.subarray(DATA, DATA + LEN), data)).toBe(true);
    const f = h.nic.failovers();
    expect(f.heartbeatLosses).toBe(1);
    expect(f.controllers[k]).toMatchObject({ crashed: true, nic: "lost" });
    expect(owner(h, 1)).toBe(1 - k);
    expect(h.nic.bindings().find((b) => b.qid === 1)).toMatchObject({ controller: 1 - k, home: k });
    expect(h.p.now - t0).toBeGreaterThanOrEqual(50_000); // it waited for the heartbeat, not less
    h.nic.restart(k);
    expect(owner(h, 1)).toBe(k); // new commands go home at once
    h.ram.set(data, DATA + 0x40000);
    expect(cmd(h, 1, io(S.IO_WRITE, 101, 400, NLB, 0x40000, LEN, h.key)).status).toBe(0);
    expect(same(h.disk.subarray(400 * 512, 400 * 512 + LEN), data)).toBe(true);
    expect(h.nic.failovers().failbacks).toBe(2); // both of k's QPs (admin queue and queue 1) went home
    expect(h.nic.stats().controllers[k]!.commands.write).toBe(1); // served by the restarted controller
    const name = StorageNic.nameOf(k);
    expect(events).toMatchObject([{ controller: name, from: "up", to: "lost", reason: "heartbeat" }, { controller: name, from: "lost", to: "up", reason: "restart" }]);
    expect((events[0] as { at: number }).at - t0).toBeGreaterThan(50_000);
    hostUnaware(h, 1);
  });

  it("a controller that keeps stepping is never declared lost, across idle stretches of virtual time", async () => {
    const h = await host({ mtu: MTU, queues: 2, heartbeatNs: 10_000 });
    bringUp(h);
    const wqes = () => h.nic.stats().controllers.reduce((n, c) => n + c.wqes, 0);
    for (let i = 0; i < 5; i++) {
      // a busy round (controllers wrote WQEs, the NIC polled again after them), then a jump far beyond the limit
      const t = start(h, 1, io(S.IO_READ, 150 + i, 0, 8, 0, 4096, h.key));
      const w0 = wqes();
      run(h, () => wqes() > w0, 1000);
      h.p.now += 1_000_000;
      h.nic.step(h.p.now);
      expect(finish(h, t).status).toBe(0);
    }
    for (let i = 0; i < 20; i++) { h.p.now += 1_000_000; h.nic.step(h.p.now); }
    expect(h.nic.failovers().heartbeatLosses).toBe(0);
  });

  it("failback waits for the standby: a read the standby took over finishes there while new commands go home", async () => {
    const h = await host({ mtu: MTU, queues: 2 });
    bringUp(h);
    const data = pattern(LEN, 8);
    h.disk.set(data, 600 * 512);
    const k = owner(h, 1), qpn = tqpn(h, 1);
    const t = start(h, 1, io(S.IO_READ, 110, 600, NLB, 0, LEN, h.key));
    until(h, () => entryOf(h, qpn, 110).pkts >= 4);
    h.nic.linkDown(k);
    until(h, () => true); // the link comes back before the standby finished what it took over
    h.nic.linkUp(k);
    expect(finish(h, t).status).toBe(0);
    expect(same(h.ram.subarray(DATA, DATA + LEN), data)).toBe(true);
    expect(cmd(h, 1, io(S.IO_READ, 111, 600, NLB, 0x40000, LEN, h.key)).status).toBe(0);
    expect(same(h.ram.subarray(DATA + 0x40000, DATA + 0x40000 + LEN), data)).toBe(true);
    expect(owner(h, 1)).toBe(k);
    expect(h.nic.failovers().failbacks).toBe(2); // both of k's QPs (admin queue and queue 1) went home
    hostUnaware(h, 1);
  });

  it("a link back while the NIC may still resend packets from the old staging window: the controller waits, then comes back", async () => {
    const h = await host({ mtu: MTU, queues: 2 });
    bringUp(h);
    const k = owner(h, 1), qpn = tqpn(h, 1);
    const t = start(h, 1, io(S.IO_READ, 140, 0, NLB, 0, LEN, h.key));
    until(h, () => entryOf(h, qpn, 140).stage === N.ConnStage.RESPONSE_PENDING);
    h.nic.linkDown(k);
    expect(h.nic.card.fw.nicCtrlBusy(k)).toBeGreaterThan(0); // its response is posted, not yet acknowledged
    h.nic.linkUp(k);
    expect(h.nic.failovers().controllers[k]).toMatchObject({ link: "up", nic: "lost" });
    expect(finish(h, t).status).toBe(0);
    run(h, () => h.nic.failovers().controllers[k]!.nic === "up", 1000);
    expect(h.nic.failovers().controllers[k]!.nic).toBe("up");
    expect(h.nic.card.fw.nicCtrlBusy(k)).toBe(0);
    expect(cmd(h, 1, io(S.IO_READ, 141, 0, NLB, 0, LEN, h.key)).status).toBe(0);
    hostUnaware(h, 1);
  });

  it("failback with the standby still busy: the taken-over read finishes on the standby while a new write goes home; no deadlock", async () => {
    const h = await host({ mtu: MTU, queues: 2, budget: 2 }); // 2 frames / WQEs per poll: the standby takes many rounds
    bringUp(h);
    const BIG = 65536, data = pattern(BIG, 14), wdata = pattern(LEN, 15);
    h.disk.set(data, 700 * 512);
    h.ram.set(wdata, DATA + 0x40000);
    const k = owner(h, 1), qpn = tqpn(h, 1);
    const t1 = start(h, 1, io(S.IO_READ, 160, 700, BIG / 512, 0, BIG, h.key), 0);
    until(h, () => entryOf(h, qpn, 160).pkts >= 5);
    h.nic.linkDown(k);
    until(h, () => true);
    h.nic.linkUp(k);
    run(h, () => h.nic.card.fw.nicCtrlLink(k) === N.CtrlLink.UP, 1000); // back once its old packets are acknowledged
    expect(entryOf(h, qpn, 160).stage).toBe(N.ConnStage.DATA); // the standby is still sending the read's data
    const t2 = start(h, 1, io(S.IO_WRITE, 161, 800, NLB, 0x40000, LEN, h.key), 1);
    const r1 = finish(h, t1), r2 = finish(h, t2);
    expect([r1.cid, r1.status, r2.cid, r2.status]).toEqual([160, 0, 161, 0]);
    expect(same(h.ram.subarray(DATA, DATA + BIG), data)).toBe(true);
    expect(same(h.disk.subarray(800 * 512, 800 * 512 + LEN), wdata)).toBe(true);
    expect(h.nic.stats().controllers[k]!.commands.write).toBe(1); // the write went home
    expect(h.nic.failovers().failbacks).toBe(2); // both of k's QPs (admin queue and queue 1) went home
    hostUnaware(h, 1);
  });

  it("a controller's WQEs that name no command it holds (another QP's entry, a stale generation, out of range) are refused and counted", async () => {
    const h = await host({ mtu: MTU, queues: 3, heartbeatNs: 0 });
    bringUp(h);
    const k = owner(h, 1);
    const t = start(h, 1, io(S.IO_READ, 170, 0, 8, 0, 4096, h.key));
    h.nic.crash(k); // it stops stepping (no heartbeat detection here): its send queue is ours to play with
    run(h, () => entryOf(h, tqpn(h, 1), 170).stage === N.ConnStage.RECEIVED, 1000);
    const dv = h.nic.card.dv, cb = M.NIC_CTRLS + k * M.NIC_CTRL_SIZE;
    const id = dv.getUint32(cb + N.NC_CMD + ((dv.getUint32(cb + N.CB_CMD_PROD, true) - 1) % M.NIC_CMD_DEPTH) * N.CMD_SIZE + N.CMD_RECV_SLOT, true);
    // stale generation, out of range, the same slot of the next receive set (another QP's), the right entry with a wrong CID
    const bogus = [id ^ (1 << N.RBUF_GEN_SHIFT), 0xffff, id + M.NIC_RECV_DEPTH, id];
    let tail = dv.getUint32(cb + N.CB_SQ_TAIL, true);
    for (const [i, conn] of bogus.entries()) {
      const w = cb + N.NC_SQ + (tail % M.NIC_SQ_DEPTH) * N.NW_SIZE;
      h.nic.card.u8.fill(0, w, w + N.NW_SIZE);
      dv.setUint8(w + N.NW_TYPE, N.NicWqeType.RESPONSE);
      dv.setUint16(w + N.NW_CID, i === 3 ? 999 : 170, true); // the last: right entry, wrong CID
      dv.setUint32(w + N.NW_QPN, tqpn(h, 1), true);
      dv.setUint32(w + N.NW_LEN, 16, true);
      dv.setUint32(w + N.NW_CONN, conn, true);
      tail++;
    }
    dv.setUint32(cb + N.CB_SQ_TAIL, tail, true);
    h.nic.card.fw.nicDoorbell(k);
    run(h, () => dv.getUint32(cb + N.CB_SQ_HEAD, true) === tail, 100);
    expect(h.nic.card.counters().err_nic_conn_untracked).toBe(4);
    expect(entryOf(h, tqpn(h, 1), 170).stage).toBe(N.ConnStage.RECEIVED); // still held for a real answer
    h.nic.restart(k); // a restart moves what it held to the other controller first, then it comes back
    expect(finish(h, t).status).toBe(0);
    hostUnaware(h, 1);
  });

  it("both controllers lost: in-flight and new commands get Namespace Not Ready (DNR clear), no hang; a link back serves again", async () => {
    const h = await host({ mtu: MTU, queues: 2 });
    bringUp(h);
    const qpn = tqpn(h, 1);
    const t = start(h, 1, io(S.IO_READ, 120, 0, NLB, 0, LEN, h.key));
    until(h, () => entryOf(h, qpn, 120).pkts >= 3); // a WRITE message open: the connector must close it first
    h.nic.linkDown(0);
    h.nic.linkDown(1);
    expect(finish(h, t)).toMatchObject({ cid: 120, sct: 0, sc: 0x82, dnr: false });
    expect(cmd(h, 1, io(S.IO_WRITE, 121, 0, 8, 0, 4096, h.key))).toMatchObject({ cid: 121, sct: 0, sc: 0x82, dnr: false, sqid: 1 });
    expect(h.nic.failovers().errorResponses).toBe(2);
    hostUnaware(h, 1);
    h.nic.linkUp(1);
    const data = pattern(4096, 9);
    h.ram.set(data, DATA);
    expect(cmd(h, 1, io(S.IO_WRITE, 122, 0, 8, 0, 4096, h.key)).status).toBe(0);
    expect(same(h.disk.subarray(0, 4096), data)).toBe(true);
    hostUnaware(h, 1);
  });

  it("baseline (mode reconnect): losing the controller disconnects its QPs; the host sees the DREQ, nothing is failed over", async () => {
    const h = await host({ mtu: MTU, queues: 2, mode: "reconnect" });
    bringUp(h);
    const k = owner(h, 1);
    start(h, 1, io(S.IO_READ, 130, 0, NLB, 0, LEN, h.key));
    until(h, () => entryOf(h, tqpn(h, 1), 130).stage === 0xff && h.nic.controllers[k]!.inFlight() > 0);
    h.nic.linkDown(k);
    run(h, () => h.p.host.fw.rdmaCmState(h.ids[1]!) !== CW.CmState.ESTABLISHED, 20_000);
    expect(h.p.host.fw.rdmaCmState(h.ids[1]!)).not.toBe(CW.CmState.ESTABLISHED);
    const f = h.nic.failovers();
    expect(f).toMatchObject({ mode: "reconnect", takeovers: 0, commandsMoved: 0 });
    expect(f.disconnects).toBeGreaterThanOrEqual(1);
    expect(poll(h.q[1]!).some((c) => c.opcode === RC.WcOp.RECV && c.status === 0)).toBe(false); // no answer: the host must resubmit
    // The torn-down connections are unbound.
    run(h, () => h.nic.bindings().every((b) => b.home !== k), 20_000);
    expect(h.nic.bindings().every((b) => b.home !== k)).toBe(true);
  });
});
