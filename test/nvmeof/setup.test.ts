// The setup entry points refuse what they cannot honour, with a counted reason and no state
// change: fabric queues on QPs that are not connected or already taken, depths out of range,
// setup commands on queues that are not up, from outside card memory, or beyond the free slots.
import { describe, it, expect } from "vitest";
import { world, bringUp, F } from "./target.js";
import { Counter } from "../../assembly/counters.js";
import * as M from "../../assembly/memmap.js";

const NONE = 0xffffffff;

describe("NVMe-oF host setup calls", () => {
  it("nvmfQueueSetup refuses unconnected or taken QPs and depths out of range", async () => {
    const w = await world();
    const fw = w.host.fw;
    expect(fw.nvmfQueueSetup(0, 0x30, 0, 8)).toBe(Counter.err_nvmf_queue_down); // QP in RESET, no RC engine
    bringUp(w);
    const qpn = w.host.dv.getUint32(fw.rdmaCmConnAddr(1) + 16, true); // the I/O queue's QP (cm-wire CN_LOCAL_QPN)
    expect(fw.nvmfQueueSetup(5, qpn, 1, 8)).toBe(Counter.err_bad_config); // fabric queue 1 reads its completions
    for (const depth of [0, M.NVMF_DEPTH + 1]) expect(fw.nvmfQueueSetup(5, qpn, 1, depth)).toBe(Counter.err_bad_config);
    expect(fw.nvmfQueueSetup(M.NVMF_MAX_QUEUES, qpn, 1, 8)).toBe(Counter.err_bad_config);
    expect(fw.nvmfQueueState(5)).toBe(F.NvmfQueueState.IDLE);
    expect(fw.nvmfQueueLive(5)).toBe(Counter.err_bad_config); // IDLE → LIVE is no transition
    expect(fw.nvmfQueueState(1)).toBe(F.NvmfQueueState.LIVE);
  });

  it("nvmfSubmitRaw refuses idle queues, SQEs outside card memory and full queues; nvmfRawResult knows only CIDs in flight", async () => {
    const w = await world();
    const fw = w.host.fw, g = w.host.guests[0]!;
    const sqe = g.base + g.alloc(64);
    expect(fw.nvmfSubmitRaw(0, sqe, 0)).toBe(NONE);
    bringUp(w, { depth: 4 });
    const before = w.host.errors();
    expect(fw.nvmfSubmitRaw(0, 0x1000, 0)).toBe(NONE); // firmware state, not card memory
    expect(fw.nvmfSubmitRaw(0, sqe, F.INCAPSULE_MAX + 1)).toBe(NONE);
    expect(fw.nvmfSubmitRaw(0, w.host.u8.length - 32, 0)).toBe(NONE); // runs off the end
    expect(fw.nvmfRawResult(0, 0x1234)).toBe(NONE);
    w.target.hook = () => "drop"; // the admin queue's commands stay in flight
    const cids = [0, 1, 2, 3].map(() => fw.nvmfSubmitRaw(0, sqe, 0));
    expect(cids.every((c) => c !== NONE)).toBe(true);
    expect(new Set(cids).size).toBe(4);
    expect(fw.nvmfSubmitRaw(0, sqe, 0)).toBe(NONE); // depth 4: no fifth
    for (let i = 0; i < 50; i++) w.step();
    expect(cids.map((c) => fw.nvmfRawResult(0, c))).toEqual([F.RAW_PENDING, F.RAW_PENDING, F.RAW_PENDING, F.RAW_PENDING]);
    const e = w.host.errors();
    expect((e.err_bad_config ?? 0) - (before.err_bad_config ?? 0)).toBe(3);
    expect(e.err_nvmf_queue_full).toBe(1);
  });
});
