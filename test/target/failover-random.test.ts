// Shared connectors under random faults on the whole path (VM driver → DPU → fabric → NIC →
// controllers): each round 16 random reads and writes, then at a random moment a random event
// (link down, link up, crash, restart) on a random controller, keeping one able to serve. Every
// request completes once with status 0 and the disk and every read match a shadow copy; the
// DPU sees no CM event (no disconnect, no reconnect).
import { describe, it, expect } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import { pattern } from "./nvmf.js";

import { world, same } from "./vm-world.js";


const takeovers: number[] = [];

describe("failover under random events", () => {
  for (let sd = 0; sd < 12; sd++) it(`seed ${sd}: MTU ${[256, 1024, 4096][sd % 3]}, ${["no faults", "1% loss / 2% reorder", "3% loss / 3% reorder"][sd % 3]}${sd % 2 ? ", 1% duplication, NVMe front end" : ", virtio front end"}`, async () => {
    const link = { loss: [0, 0.01, 0.03][sd % 3]!, reorder: [0, 0.02, 0.03][sd % 3]!, duplicate: sd % 2 ? 0.01 : 0 };
    const w = await world({ front: sd % 2 ? "nvme" : "virtio", link, seed: 200 + sd, controllers: 2, mtu: [256, 1024, 4096][sd % 3] });
    const g = w.host.guests[0]!;
    const shadow = new Uint8Array(w.disk.length);
    const bufs = Array.from({ length: 16 }, () => g.alloc(32 * 512, 4096));
    let seed = 7 + sd * 13;
    const rnd = (n: number) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
    const cm0 = (w.host.counters() as Record<string, number>).cm_transitions;
    for (let round = 0; round < 12; round++) {
      const reqs = Array.from({ length: 16 }, (_, i) => ({ op: rnd(2) ? BlkOp.WRITE : BlkOp.READ, lba: i * 512 + rnd(480), n: 1 + rnd(32) }));
      for (const [i, r] of reqs.entries()) {
        if (r.op === BlkOp.WRITE) g.u8.set(pattern(r.n * 512, round * 100 + i + 1), bufs[i]!);
        else g.u8.fill(0xcc, bufs[i]!, bufs[i]! + r.n * 512);
        expect(w.drv.submit(r.op, r.lba, r.n, bufs[i]!, i)).toBe(true);
      }
      w.drv.kick();
      for (let s = rnd(40); s > 0; s--) w.step();
      const k = rnd(2), f = w.nic.failovers().controllers;
      const act = rnd(4);
      const other = f[1 - k]!;
      const otherOk = other.link === "up" && !other.crashed;
      if (act === 0 && otherOk) w.nic.linkDown(k);
      else if (act === 1) w.nic.linkUp(k);
      else if (act === 2 && otherOk) w.nic.crash(k);
      else w.nic.restart(k);
      const out = new Map<number, number>();
      for (let i = 0; i < 300_000 && out.size < 16; i++) { w.step(); w.drv.reap((t, s) => { expect(out.has(t)).toBe(false); out.set(t, s); }); }
      expect(out.size, `round ${round} ${JSON.stringify(w.nic.failovers())}`).toBe(16);
      for (const [i, r] of reqs.entries()) {
        expect(out.get(i), `round ${round} request ${i}`).toBe(0);
        const at = r.lba * 512, len = r.n * 512;
        if (r.op === BlkOp.WRITE) shadow.set(g.u8.subarray(bufs[i]!, bufs[i]! + len), at);
        else expect(same(g.u8.subarray(bufs[i]!, bufs[i]! + len), shadow.subarray(at, at + len)), `round ${round} read ${i}`).toBe(true);
      }
      expect(same(w.disk, shadow)).toBe(true);
    }
    takeovers.push(w.nic.failovers().commandsMoved);
    expect(w.nic.failovers().errorResponses).toBe(0);
    expect((w.host.counters() as Record<string, number>).cm_transitions).toBe(cm0);
  });
  it("the random events did move commands in flight", () => {
    expect(takeovers.filter((n) => n > 0).length).toBeGreaterThanOrEqual(6);
  });
});
