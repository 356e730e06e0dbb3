// The DPU's NVMe-oF host survives a lost connection: the firmware holds the requests of a queue
// whose QP broke (DREQ from the target, QP in ERR, retry exhaustion on a dead link), the
// NvmfReconnector brings the queue back over RDMA-CM + Fabrics Connect, and every request
// completes exactly once with the right data; a target that will not take the queue back gets
// the held requests failed (IOERR) after maxAttempts, never a hang.
import { describe, it, expect } from "vitest";
import { world, bringUp, settle, pattern, BlkOp, F, S, HOSTNQN, SUBNQN, type World } from "./target.js";
import { TARGET } from "../rdma/cm-pair.js";
import { NvmfReconnector, type ReconnectorOptions } from "../../host/nvmeof/reconnect.js";
import type { NvmfController } from "../../host/nvmeof/initiator.js";

const BLK_S_IOERR = 1;
const BS = 512;

interface Rig { w: World; ctrl: NvmfController; rec: NvmfReconnector }

/** A world with the controller up and a reconnector stepped after every round. */
async function rig(o: Partial<ReconnectorOptions> = {}, depth = 32): Promise<Rig> {
  const w = await world();
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
function mixed(w: World, count: number, seed: number): Io[] {
  const g = w.host.guests[0]!;
  const ios: Io[] = [];
  for (let i = 0; i < count; i++) {
    const n = i % 4 === 3 ? 1 : 8, lba = 64 * i, len = n * BS, gpa = g.alloc(len, 4096);
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
});

function cqe(sqid: number, cid: number, status = 0): Uint8Array {
  const b = new Uint8Array(16), dv = new DataView(b.buffer);
  dv.setUint32(S.CQE_DW2, (sqid << 16) >>> 0, true);
  dv.setUint32(S.CQE_DW3, (cid | (status << S.CQE_STATUS_SHIFT)) >>> 0, true);
  return b;
}

export { BLK_S_IOERR, settle };
