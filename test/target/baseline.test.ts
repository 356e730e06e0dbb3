// The reconnecting baseline (StorageNic mode "reconnect") against the DPU's NVMe-oF host and its
// NvmfReconnector: losing controller A's link tears down the connections bound to it (DREQ,
// target QP in ERR); the host reconnects, the new connections are bound to B (the live one),
// the held requests are resubmitted and every IO completes once, verified. Then A comes back.
import { describe, it, expect } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import * as F from "../../assembly/nvmeof/defs.js";
import { reconnectWorld, mixedIo, BS } from "./reconnect-world.js";

const setup = () => reconnectWorld("reconnect");


describe("baseline: a lost controller's connections are torn down and the host reconnects", () => {
  it("linkDown(A) with reads and writes in flight: DREQ, reconnect to B, resubmit, every IO once and verified; A back later takes new connections again", async () => {
    const w = await setup();
    const { host, nic, backend, drv, g, step, s, ctrl } = w;
    const a = nic.bindings().find((b) => b.qid === 1)!.controller;
    const { done, reap, verify } = mixedIo(w, 700);
    for (let i = 0; i < 4; i++) { step(); reap(); }
    expect(done.size).toBeLessThan(16);
    nic.linkDown(a);
    for (let i = 0; i < 20_000 && done.size < 16; i++) { step(); reap(); }
    expect([...done.values()]).toEqual(Array(16).fill(0));
    verify();
    const f = nic.failovers();
    expect(f).toMatchObject({ mode: "reconnect", takeovers: 0, commandsMoved: 0 });
    expect(f.disconnects).toBeGreaterThanOrEqual(1);
    const st = s.rec!.stats();
    expect(st.reconnects).toBeGreaterThanOrEqual(1);
    expect(st.failed).toBe(0);
    expect(nic.bindings().every((b) => b.home !== a && b.controller !== a)).toBe(true); // bound to the live controller only
    for (const q of [ctrl.adminQueue, ...ctrl.ioQueues]) expect(host.fw.nvmfQueueState(q)).toBe(F.NvmfQueueState.LIVE);
    nic.linkUp(a);
    const buf = g.alloc(4096, 4096);
    expect(drv.submit(BlkOp.READ, 128, 8, buf, 99)).toBe(true);
    drv.kick();
    let st2 = -1;
    for (let i = 0; i < 2000 && st2 < 0; i++) { step(); drv.reap((_t, x) => { st2 = x; }); }
    expect(st2).toBe(0);
    expect(Buffer.compare(g.u8.subarray(buf, buf + 4096), backend.bytes.subarray(128 * BS, 128 * BS + 4096))).toBe(0);
    expect(nic.failovers().controllers[a]).toMatchObject({ link: "up", nic: "up" });
  });
});
