// The reconnecting baseline end to end against the real storage side: the DPU's NVMe-oF host
// (firmware + NvmfReconnector) → RoCEv2 fabric → storage-side NIC firmware and its controllers
// (host/target/, default "connectors" mode) → memory backend. The target drops the I/O queue's
// connection (RDMA-CM DREQ) with reads and writes in flight; the host reconnects, resubmits,
// and every IO completes once with verified data.
import { describe, it, expect } from "vitest";
import { BlkOp } from "../../host/guest/driver.js";
import * as F from "../../assembly/nvmeof/defs.js";
import { reconnectWorld, mixedIo } from "../target/reconnect-world.js";

const setup = () => reconnectWorld("connectors");

const CASES: [string, number[]][] = [
  ["the I/O queue", [1]],
  ["the admin queue (the association ends: a new one, the I/O queue joins it)", [0]],
  ["both queues", [0, 1]],
];

describe("reconnecting baseline against the storage-side NIC and its controllers", () => {
  for (const [what, qids] of CASES) it(`the target drops ${what} (DREQ) with reads and writes in flight: reconnect, resubmit, every IO once and verified`, async () => {
    const w = await setup();
    const { host, nicCard, nic, backend, drv, g, step, s, ctrl } = w;
    const { done, reap, verify } = mixedIo(w, 900);
    for (let i = 0; i < 4; i++) { step(); reap(); } // capsules out, the controllers at work
    expect(done.size).toBeLessThan(16);
    const cntlid = ctrl.cntlid;
    for (const qid of qids) expect(nicCard.fw.rdmaCmDisconnect(nic.bindings().find((b) => b.qid === qid)!.id)).toBe(0);
    for (let i = 0; i < 20_000 && done.size < 16; i++) { step(); reap(); }
    expect([...done.values()]).toEqual(Array(16).fill(0));
    verify();
    for (let i = 0; i < 500; i++) { step(); expect(drv.reap(() => {})).toBe(0); }
    expect(host.inFlight()).toBe(0);
    const st = s.rec!.stats();
    const admin = qids.includes(0); // then both queues reconnect, admin first
    expect(st.events.map((e) => [e.qid, e.outcome])).toEqual(admin ? [[0, "reconnected"], [1, "reconnected"]] : [[1, "reconnected"]]);
    expect([st.reconnects, st.failed]).toEqual([admin ? 2 : 1, 0]);
    expect(st.resubmitted).toBeGreaterThan(0);
    const e = st.events.find((x) => x.qid === 1)!;
    expect(e.stallNs!).toBeGreaterThan(0);
    expect(ctrl.cntlid === cntlid).toBe(!admin); // a lost admin queue means a new controller
    for (const q of [ctrl.adminQueue, ...ctrl.ioQueues]) expect(host.fw.nvmfQueueState(q)).toBe(F.NvmfQueueState.LIVE);
    expect(nic.bindings().map((b) => b.qid).sort()).toEqual([0, 1]); // the new connections, bound to controllers
    // And the queue carries on.
    const buf = g.alloc(4096, 4096);
    expect(drv.submit(BlkOp.READ, 0, 8, buf, 99)).toBe(true);
    drv.kick();
    let st2 = -1;
    for (let i = 0; i < 2000 && st2 < 0; i++) { step(); drv.reap((_t, x) => { st2 = x; }); }
    expect(st2).toBe(0);
    expect(Buffer.compare(g.u8.subarray(buf, buf + 4096), backend.bytes.subarray(0, 4096))).toBe(0);
  });
});
