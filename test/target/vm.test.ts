// The whole path: a VM's virtio-blk or NVMe driver → the DPU (queue sync, NVMe-oF host in
// firmware) → RoCEv2 fabric → storage-side NIC firmware → storage controllers (host/target/)
// → memory backend; then back. Random I/O against a shadow copy, under loss, reorder and
// duplication; with protection on, a corrupted block fails the VM's request instead of
// returning bad data.
import { describe, it, expect } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import { pattern } from "./nvmf.js";

import { world, settle, same } from "./vm-world.js";

describe("VM I/O through the DPU to the storage controllers", () => {
  for (const front of ["virtio", "nvme"] as const) {
    it(`${front}: random reads and writes, 16 in flight, verified against a shadow copy under 1% loss, reorder and duplication`, async () => {
      const w = await world({ front, link: { loss: 0.01, reorder: 0.01, duplicate: 0.01 }, seed: front === "nvme" ? 9 : 5 });
      const g = w.host.guests[0]!;
      const shadow = new Uint8Array(w.disk.length);
      const bufs = Array.from({ length: 16 }, () => g.alloc(16 * 512, 4096));
      let seed = 1234;
      const rnd = (n: number) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
      for (let round = 0; round < 8; round++) {
        // 16 requests on disjoint ranges (so their order does not matter), half writes
        const reqs = Array.from({ length: 16 }, (_, i) => ({ op: rnd(2) ? BlkOp.WRITE : BlkOp.READ, lba: i * 512 + rnd(480), n: 1 + rnd(16) }));
        for (const [i, r] of reqs.entries()) {
          if (r.op === BlkOp.WRITE) g.u8.set(pattern(r.n * 512, round * 100 + i + 1), bufs[i]!);
          else g.u8.fill(0xcc, bufs[i]!, bufs[i]! + r.n * 512);
          expect(w.drv.submit(r.op, r.lba, r.n, bufs[i]!, i)).toBe(true);
        }
        w.drv.kick();
        const st = settle(w, 16);
        for (const [i, r] of reqs.entries()) {
          expect(st.get(i)).toBe(0);
          const at = r.lba * 512, len = r.n * 512;
          if (r.op === BlkOp.WRITE) shadow.set(g.u8.subarray(bufs[i]!, bufs[i]! + len), at);
          else expect(same(g.u8.subarray(bufs[i]!, bufs[i]! + len), shadow.subarray(at, at + len))).toBe(true);
        }
        expect(same(w.disk, shadow)).toBe(true);
      }
      const ls = w.link.stats();
      expect(Math.min(ls.ab.lost, ls.ba.lost, ls.ab.duplicated + ls.ba.duplicated, ls.ab.reordered + ls.ba.reordered)).toBeGreaterThan(0); // the faults happened
      // The last responses' acknowledgements reach the target after the VM saw them: then every command is freed.
      const idle = () => w.nic.stats().controllers.every((c) => c.inFlight === 0 && c.stageInUse === 0);
      for (let i = 0; i < 10_000 && !idle(); i++) w.step();
      expect(idle()).toBe(true);
      expect(w.nic.stats().controllers.reduce((n, c) => n + (c.commands.read ?? 0) + (c.commands.write ?? 0), 0)).toBeGreaterThanOrEqual(128);
    });
  }

  it("failover under load: A's link cut mid-round, back two rounds later, then B crashes (heartbeat); every request verified, no QP error, no reconnect", async () => {
    const w = await world({ front: "nvme", link: { loss: 0.01, reorder: 0.01 }, seed: 31, controllers: 2, mtu: 1024 });
    const g = w.host.guests[0]!;
    const shadow = new Uint8Array(w.disk.length);
    const bufs = Array.from({ length: 16 }, () => g.alloc(32 * 512, 4096));
    let seed = 99;
    const rnd = (n: number) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
    const io = w.nic.bindings().find((b) => b.qid === 1)!;
    const cm0 = (w.host.counters() as Record<string, number>).cm_transitions;
    for (let round = 0; round < 10; round++) {
      const reqs = Array.from({ length: 16 }, (_, i) => ({ op: rnd(2) ? BlkOp.WRITE : BlkOp.READ, lba: i * 512 + rnd(480), n: 1 + rnd(32) }));
      for (const [i, r] of reqs.entries()) {
        if (r.op === BlkOp.WRITE) g.u8.set(pattern(r.n * 512, round * 100 + i + 1), bufs[i]!);
        else g.u8.fill(0xcc, bufs[i]!, bufs[i]! + r.n * 512);
        expect(w.drv.submit(r.op, r.lba, r.n, bufs[i]!, i)).toBe(true);
      }
      w.drv.kick();
      for (let s = 0; s < 6 + round; s++) w.step(); // some of the round's commands are on the wire or in flight
      if (round === 2) w.nic.linkDown(io.controller);
      if (round === 4) w.nic.linkUp(io.controller);
      if (round === 6) w.nic.crash(1 - io.controller);
      const st = settle(w, 16);
      for (const [i, r] of reqs.entries()) {
        expect(st.get(i), `round ${round} request ${i}`).toBe(0);
        const at = r.lba * 512, len = r.n * 512;
        if (r.op === BlkOp.WRITE) shadow.set(g.u8.subarray(bufs[i]!, bufs[i]! + len), at);
        else expect(same(g.u8.subarray(bufs[i]!, bufs[i]! + len), shadow.subarray(at, at + len))).toBe(true);
      }
      expect(same(w.disk, shadow)).toBe(true);
    }
    const f = w.nic.failovers();
    expect(f.takeovers).toBe(2);
    expect(f.heartbeatLosses).toBe(1);
    expect(f.failbacks).toBeGreaterThanOrEqual(1);
    expect(f.commandsMoved).toBeGreaterThan(0);
    expect(f.errorResponses).toBe(0);
    // The DPU's queues never saw a disconnect or an error: the same QPs, in RTS, no NVMe error.
    const hc = w.host.counters() as Record<string, number>;
    expect(hc.err_nvmf_status ?? 0).toBe(0);
    expect(hc.err_nvmf_queue_down ?? 0).toBe(0);
    expect(hc.cm_transitions, "no CM event on the DPU").toBe(cm0);
    expect(w.nic.bindings().find((b) => b.qid === 1)!.qpn).toBe(io.qpn);
    expect(w.tcard.fw.rdmaQpState(io.qpn)).toBe(3); // RTS
  });

  it("deterministic: the same seed gives the same virtual time, link counters, card counters and controller stats", async () => {
    const once = async () => {
      const w = await world({ link: { loss: 0.02, reorder: 0.02, duplicate: 0.02 }, seed: 21, controllers: 2 });
      const g = w.host.guests[0]!, buf = g.alloc(65536, 4096);
      g.u8.set(pattern(65536, 8), buf);
      for (let i = 0; i < 8; i++) w.drv.submit(i % 2 ? BlkOp.READ : BlkOp.WRITE, i * 64, 16, buf + (i % 8) * 8192, i);
      w.drv.kick();
      settle(w, 8);
      return JSON.stringify({ now: w.now, link: w.link.stats(), host: w.host.counters(), nic: w.tcard.counters(), ctrls: w.nic.stats() });
    };
    const a = await once();
    expect(await once()).toBe(a);
    expect(JSON.parse(a).link.ab.lost + JSON.parse(a).link.ba.lost).toBeGreaterThan(0);
  });

  it("protection on: a VM read of a corrupted block completes with an error, the others with good data", async () => {
    const w = await world({ protection: true, bs: 512, mtu: 4096 });
    const g = w.host.guests[0]!, buf = g.alloc(8192, 4096);
    const data = pattern(8192, 42);
    g.u8.set(data, buf);
    w.drv.submit(BlkOp.WRITE, 64, 16, buf, 1);
    w.drv.kick();
    expect(settle(w, 1).get(1)).toBe(0);
    w.nic.corrupt(70, 3);
    g.u8.fill(0, buf, buf + 8192);
    w.drv.submit(BlkOp.READ, 64, 16, buf, 2);
    w.drv.kick();
    expect(settle(w, 1).get(2)).not.toBe(0);
    expect(w.tcard.counters().err_nic_dif_guard).toBe(1);
    w.drv.submit(BlkOp.READ, 72, 8, buf, 3); // blocks 72..79 are intact
    w.drv.kick();
    expect(settle(w, 1).get(3)).toBe(0);
    expect(same(g.u8.subarray(buf, buf + 4096), data.subarray(4096))).toBe(true);
  });
});
