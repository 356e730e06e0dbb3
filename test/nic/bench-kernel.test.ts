// The nic-fetch benchmark (host/bench/nic.ts) measures real work: every WQE its kernel counts
// was fetched, checked, posted and built into a frame, in the wire order the fetch chose.
import { describe, it, expect } from "vitest";
import { nicBenchCard } from "../../host/bench/nic.js";
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";

describe("benchNicFetch kernel", () => {
  it("each fetched WQE became one frame; no errors; the last round's frames follow the fast-path order", async () => {
    const c = await nicBenchCard();
    const before = c.counters() as Record<string, number>;
    const n = c.fw.benchNicFetch(4, 64);
    const after = c.counters() as Record<string, number>;
    expect(n).toBe(4 * 64);
    expect(after.nic_wqes_fetched! - (before.nic_wqes_fetched ?? 0)).toBe(n);
    expect(after.rdma_tx_frames! - (before.rdma_tx_frames ?? 0)).toBe(n);
    expect(c.errors()).toEqual({});
    // The TX ring holds the last round (the kernel consumes the ring before each round): 64 frames.
    const prod = c.dv.getUint32(M.NET_TX_CTRL, true), cons = c.dv.getUint32(M.NET_TX_CTRL + 4, true);
    expect(prod - cons).toBe(64);
    const frames = Array.from({ length: 64 }, (_, i) => {
      const f = M.NET_TX_SLOTS + ((cons + i) % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE + M.NET_SLOT_HDR;
      return [c.u8[f + 42]!, c.u8[f + 49]!]; // opcode, low byte of the dest QP
    });
    // A SINGLE (WRITE ONLY) is always followed by its response on the same QP (fast path on).
    frames.forEach(([op, dqp], i) => { if (op === W.Op.RC_WRITE_ONLY && i < 63) expect(frames[i + 1]).toEqual([W.Op.RC_SEND_ONLY, dqp]); });
    expect(new Set(frames.map((f) => f[1]))).toEqual(new Set([0x40, 0x41, 0x42, 0x43]));
  });
});
